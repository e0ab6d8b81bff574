//! Group commit of directory syncs: one `fsync` of the directory makes durable
//! every rename that happened before it started, so deliveries that renamed
//! their files at about the same time share it.
//!
//! A delivery joins the open round after its renames. The first to find no
//! sync running closes the round and syncs for all its members; those who join
//! meanwhile wait for the next round, which one of them leads. Every member of
//! a round gets the round's result.

use std::collections::HashMap;
use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// The shared state of the rounds.
#[derive(Debug, Default)]
pub(crate) struct GroupSync {
    state: Mutex<State>,
    finished: Condvar,
}

/// A round's result, kept for each member to read (`io::Error` is not `Clone`).
type Outcome = Result<(), (io::ErrorKind, String)>;

#[derive(Debug)]
struct State {
    /// The round new members join; rounds count from 1.
    open: u64,
    /// Members of the open round.
    open_members: usize,
    /// Whether a sync is running (for the round before `open`).
    syncing: bool,
    /// Every round up to this one is finished.
    finished: u64,
    /// Results not yet read by every member: round → (result, readers left).
    results: HashMap<u64, (Outcome, usize)>,
    /// Syncs run so far.
    syncs: u64,
}

impl GroupSync {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the counters consistent (no
        // code between the updates can panic), so the state stays usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a sync that started after this call has finished, running
    /// it with `sync` if no other member is; returns that sync's result.
    pub(crate) fn join(&self, sync: impl FnOnce() -> io::Result<()>) -> io::Result<()> {
        let mut state = self.lock();
        let round = state.open;
        state.open_members += 1;
        loop {
            if state.finished >= round {
                return take_result(&mut state, round);
            }
            if !state.syncing && state.open == round {
                // Lead: close the round, sync for all its members.
                state.syncing = true;
                let members = state.open_members;
                state.open += 1;
                state.open_members = 0;
                drop(state);
                let result = sync().map_err(|error| (error.kind(), error.to_string()));
                state = self.lock();
                state.syncing = false;
                state.syncs += 1;
                state.finished = round;
                state.results.insert(round, (result, members));
                self.finished.notify_all();
                return take_result(&mut state, round);
            }
            state = self
                .finished
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// How many syncs have run.
    pub(crate) fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// Members waiting in the open round (for tests that build a group).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().open_members
    }

    /// Whether a sync is running (for tests that build a group).
    #[cfg(test)]
    pub(crate) fn syncing(&self) -> bool {
        self.lock().syncing
    }
}

impl Default for State {
    fn default() -> Self {
        State {
            open: 1,
            open_members: 0,
            syncing: false,
            finished: 0,
            results: HashMap::new(),
            syncs: 0,
        }
    }
}

fn take_result(state: &mut State, round: u64) -> io::Result<()> {
    let Some((result, readers)) = state.results.get_mut(&round) else {
        return Err(io::Error::other("the directory sync left no result"));
    };
    let result = result
        .clone()
        .map_err(|(kind, message)| io::Error::new(kind, message));
    *readers -= 1;
    if *readers == 0 {
        state.results.remove(&round);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use super::*;

    /// Waits (at most a generous minute) until `done` says so.
    fn until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn until_waiting(group: &GroupSync, n: usize) {
        until(|| group.waiting() >= n);
    }

    #[test]
    fn members_that_wait_together_share_one_sync() {
        let group = Arc::new(GroupSync::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let first = {
            let group = Arc::clone(&group);
            let calls = Arc::clone(&calls);
            std::thread::spawn(move || {
                group.join(|| {
                    // While this sync runs, seven others join the next round.
                    until_waiting(&group, 7);
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })
            })
        };
        until(|| group.syncing());
        let others: Vec<_> = (0..7)
            .map(|_| {
                let group = Arc::clone(&group);
                let calls = Arc::clone(&calls);
                std::thread::spawn(move || {
                    group.join(|| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })
                })
            })
            .collect();
        first.join().unwrap().unwrap();
        for other in others {
            other.join().unwrap().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one sync per round");
        assert_eq!(group.syncs(), 2);
        assert!(group.lock().results.is_empty(), "every result was read");
    }

    #[test]
    fn a_failed_sync_fails_every_member_of_its_round_only() {
        let group = Arc::new(GroupSync::default());
        let leader = {
            let group = Arc::clone(&group);
            std::thread::spawn(move || {
                group.join(|| {
                    until_waiting(&group, 3);
                    Ok(())
                })
            })
        };
        until(|| group.syncing());
        // Three members wait in round 2, whose sync fails.
        let members: Vec<_> = (0..3)
            .map(|_| {
                let group = Arc::clone(&group);
                std::thread::spawn(move || {
                    group.join(|| Err(io::Error::new(io::ErrorKind::StorageFull, "disk full")))
                })
            })
            .collect();
        leader.join().unwrap().unwrap();
        for member in members {
            let error = member.join().unwrap().unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::StorageFull);
            assert_eq!(error.to_string(), "disk full");
        }
        // The next round syncs again, and succeeds.
        group.join(|| Ok(())).unwrap();
        assert_eq!(group.syncs(), 3);
    }
}
