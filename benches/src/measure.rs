//! Timing several contenders fairly on a busy machine: round after round,
//! each contender runs in turn, in an order shuffled anew each round (so that
//! none always follows the one that just freed large buffers), with its minor
//! page faults counted; the result is the median over rounds of the time per
//! call and of the ratio to the first contender in the same round.

use std::hint::black_box;
use std::time::Instant;

/// Something to time; returns a value that is kept from the optimiser.
pub struct Contender<'a> {
    /// Shown in tables.
    pub name: &'static str,
    /// One call.
    pub run: Box<dyn Fn() -> usize + 'a>,
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// The medians of one contender.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Median time per call, in nanoseconds.
    pub nanos: f64,
    /// Median over rounds of (the first contender's time / this one's).
    pub first_over_this: f64,
    /// Median minor page faults per call.
    pub faults: f64,
}

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
pub fn minor_faults() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let after = stat.rsplit_once(')')?.1;
            after.split_whitespace().nth(7)?.parse().ok()
        })
        .unwrap_or(0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `rounds` rounds of `calls` calls of each contender (after one warm-up
/// round) and returns their medians, in the order given.
pub fn interleaved(contenders: &[Contender<'_>], rounds: usize, calls: usize) -> Vec<Stats> {
    let mut rng = fastrand::Rng::with_seed(14);
    let n = contenders.len();
    let mut times = vec![Vec::with_capacity(rounds); n];
    let mut faults = vec![Vec::with_capacity(rounds); n];
    let mut order: Vec<usize> = (0..n).collect();
    for round in 0..=rounds {
        rng.shuffle(&mut order);
        let mut this_round = vec![0.0; n];
        for &index in &order {
            let Some(contender) = contenders.get(index) else {
                continue;
            };
            let faults_before = minor_faults();
            let started = Instant::now();
            for _ in 0..calls {
                black_box((contender.run)());
            }
            let nanos = started.elapsed().as_nanos() as f64 / calls as f64;
            let faulted = (minor_faults() - faults_before) as f64 / calls as f64;
            if let Some(slot) = this_round.get_mut(index) {
                *slot = nanos;
            }
            if round > 0
                && let Some(samples) = faults.get_mut(index)
            {
                samples.push(faulted);
            }
        }
        if round == 0 {
            continue;
        }
        for (samples, nanos) in times.iter_mut().zip(&this_round) {
            samples.push(*nanos);
        }
    }
    let first = times.first().cloned().unwrap_or_default();
    times
        .into_iter()
        .zip(faults)
        .map(|(samples, faults)| Stats {
            first_over_this: median(first.iter().zip(&samples).map(|(f, t)| f / t).collect()),
            nanos: median(samples),
            faults: median(faults),
        })
        .collect()
}

/// `1.23 ms`, `4.56 µs`.
pub fn human(nanos: f64) -> String {
    if nanos >= 1e6 {
        format!("{:.2} ms", nanos / 1e6)
    } else {
        format!("{:.2} µs", nanos / 1e3)
    }
}
