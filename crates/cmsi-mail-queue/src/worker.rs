//! Workers: claim due messages under a lease, deliver them through a
//! transport at the shared pace, and record the outcome.
//!
//! A claim is one statement: the oldest due row, `FOR UPDATE SKIP LOCKED` so
//! that workers never wait on each other, becomes `sending` with a random lease
//! token and a lease end that the worker pushes forward while it delivers. A
//! row is due when its next attempt time has come, and a `sending` row's next
//! attempt time is its lease end: the row of a worker that died is due again
//! once its lease runs out. Every later update names the token, so a worker
//! that lost its lease cannot overwrite what another worker recorded.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cmsi_mail::{Composed, Envelope, Mailbox, Receipt, RetryPolicy, Transport, TransportError};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

use crate::queue::CHANNEL;
use crate::{Error, Queue};

/// The token bucket all workers share.
const PACE_BUCKET: &str = "default";
/// How often a process purges old rows and keys.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(300);
/// The shortest idle wait, so that a due row another worker is claiming right
/// now does not make this one spin.
const MIN_IDLE: Duration = Duration::from_millis(10);

/// Workers running in this process; [`Workers::shutdown`] stops them.
pub struct Workers {
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Workers {
    /// How many workers run.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// Whether none runs (`workers = 0`).
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Stops the workers: none claims another message; one waiting for its
    /// turn at the pace gives its message back at once; one delivering gets
    /// `shutdown_grace_seconds` to finish, then gives its message back. Returns
    /// once every worker has stopped.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for worker in self.workers.drain(..) {
            let _ = worker.await;
        }
        for task in self.background.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Dropped without shutdown: the workers still stop as shutdown says.
        let _ = self.stop.send(true);
    }
}

impl Queue {
    /// Starts `[queue] workers` workers (and a listener for new mail, and
    /// periodic housekeeping) on the current tokio runtime, delivering through
    /// `transport`.
    pub fn start_workers(&self, transport: Arc<dyn Transport>) -> Workers {
        let count = self.settings.workers();
        let (stop, stopped_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            queue: self.clone(),
            transport,
            wake: Notify::new(),
            name: process_name(),
        });
        let workers = (1..=count)
            .map(|index| tokio::spawn(Arc::clone(&shared).work(index, stopped_rx.clone())))
            .collect();
        let background = if count == 0 {
            Vec::new()
        } else {
            vec![
                tokio::spawn(Arc::clone(&shared).listen(stopped_rx.clone())),
                tokio::spawn(Arc::clone(&shared).housekeep(stopped_rx)),
            ]
        };
        Workers {
            stop,
            workers,
            background,
        }
    }
}

/// `host:pid`, the prefix of this process's worker names.
fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Waits until the stop signal (or until the signal can no longer come).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The wait after the `attempts`-th attempt failed, or `None` when it was the
/// last one allowed: the core's [`RetryPolicy`] (`base` doubled for each
/// attempt after the first, at most `max`), ±25% so that messages that failed
/// together are not all tried again in the same instant.
pub(crate) fn backoff(policy: &RetryPolicy, attempts: u32, jitter: f64) -> Option<Duration> {
    let wait = policy.delay_after(attempts)?;
    Some(
        wait.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
            .min(policy.max_delay()),
    )
}

/// A claimed message.
struct Job {
    id: i64,
    lease: i64,
    message_id: String,
    sender: String,
    recipients: Vec<String>,
    message: Option<Vec<u8>>,
    attempts: u32,
    taken_over: bool,
}

impl Job {
    fn envelope(&self) -> Result<Envelope, String> {
        let parse = |address: &str| {
            Mailbox::parse(address).map_err(|error| format!("stored address unreadable: {error}"))
        };
        let sender = parse(&self.sender)?;
        let recipients = self
            .recipients
            .iter()
            .map(|recipient| parse(recipient))
            .collect::<Result<Vec<_>, _>>()?;
        Envelope::try_new(&sender, &recipients).ok_or_else(|| "no recipient stored".to_owned())
    }
}

/// A claim's lease, kept alive while its worker delivers.
struct Lease {
    queue: Queue,
    id: i64,
    token: i64,
    message_id: String,
}

impl Lease {
    fn of(job: &Job, queue: &Queue) -> Lease {
        Lease {
            queue: queue.clone(),
            id: job.id,
            token: job.lease,
            message_id: job.message_id.clone(),
        }
    }

    /// Pushes the lease end forward every third of the lease (a second after
    /// a renewal that failed), until aborted; returns when the lease is lost.
    async fn keep(self) {
        let lease = self.queue.settings.lease();
        let mut wait = lease / 3;
        loop {
            sleep(wait).await;
            let renewed = sqlx::query(
                "UPDATE cmsi_mail_message
                 SET locked_until = now() + make_interval(secs => $3),
                     next_attempt_at = now() + make_interval(secs => $3)
                 WHERE id = $1 AND lease = $2 AND state = 'sending'",
            )
            .bind(self.id)
            .bind(self.token)
            .bind(lease.as_secs_f64())
            .execute(&self.queue.pool)
            .await;
            match renewed {
                Ok(done) if done.rows_affected() == 0 => return,
                Ok(_) => wait = lease / 3,
                Err(error) => {
                    tracing::warn!(message_id = %self.message_id,
                        error = %Error::from(error), "cannot renew the lease");
                    wait = Duration::from_secs(1).min(lease / 3);
                }
            }
        }
    }
}

/// The lease renewer's task, aborted when dropped: also when the delivery
/// panics, so that no renewer outlives its attempt.
struct Renewer(JoinHandle<()>);

impl Drop for Renewer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How the wait for a delivery ended.
enum Attempt {
    /// The delivery's result; none when it was stopped.
    Done(Option<Result<Receipt, TransportError>>),
    /// The renewer found the row no longer ours.
    LeaseLost,
}

/// How an attempt ended.
enum Outcome {
    Sent(Receipt),
    Retry { reason: String, after: Duration },
    Failed(String),
}

struct Shared {
    queue: Queue,
    transport: Arc<dyn Transport>,
    /// Woken by the listener when mail is accepted or retried.
    wake: Notify,
    name: String,
}

impl Shared {
    async fn work(self: Arc<Self>, index: usize, mut stop: watch::Receiver<bool>) {
        let name = format!("{}/{index}", self.name);
        let poll = self.queue.settings.poll();
        while !*stop.borrow() {
            // Registered before looking, so that mail accepted meanwhile wakes us.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let idle = match self.claim(&name).await {
                Ok(Some(job)) => {
                    self.process(job, &mut stop).await;
                    continue;
                }
                Ok(None) => match self.next_due().await {
                    Ok(Some(seconds)) => Duration::try_from_secs_f64(seconds)
                        .unwrap_or(Duration::ZERO)
                        .clamp(MIN_IDLE, poll),
                    Ok(None) => poll,
                    Err(error) => {
                        tracing::warn!(worker = %name, %error, "cannot look for due mail");
                        poll
                    }
                },
                Err(error) => {
                    tracing::warn!(worker = %name, %error, "cannot claim mail");
                    poll
                }
            };
            tokio::select! {
                () = &mut notified => {}
                () = sleep(idle) => {}
                () = stopped(&mut stop) => {}
            }
        }
    }

    /// Claims the oldest due message, if any.
    ///
    /// The claim's commit does not wait for the disk: a claim lost in a
    /// database crash only makes the message due again, as a lease that ran
    /// out does. (Outcomes are recorded durably.)
    async fn claim(&self, worker: &str) -> Result<Option<Job>, Error> {
        let lease = fastrand::i64(..);
        let row = sqlx::query(
            "UPDATE cmsi_mail_message m
             SET state = 'sending', attempts = m.attempts + 1, lease = $1, locked_by = $2,
                 locked_until = now() + make_interval(secs => $3),
                 next_attempt_at = now() + make_interval(secs => $3),
                 updated_at = now()
             FROM (
                SELECT id, state FROM cmsi_mail_message
                WHERE state IN ('queued', 'sending') AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT 1
                FOR UPDATE SKIP LOCKED
             ) due, (SELECT set_config('synchronous_commit', 'off', true)) no_flush
             WHERE m.id = due.id
             RETURNING m.id, m.message_id, m.sender, m.recipients, m.message, m.attempts,
                       due.state = 'sending' AS taken_over",
        )
        .bind(lease)
        .bind(worker)
        .bind(self.queue.settings.lease().as_secs_f64())
        .fetch_optional(&self.queue.pool)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Job {
            id: row.try_get(0)?,
            lease,
            message_id: row.try_get(1)?,
            sender: row.try_get(2)?,
            recipients: row.try_get(3)?,
            message: row.try_get(4)?,
            attempts: u32::try_from(row.try_get::<i32, _>(5)?).unwrap_or(u32::MAX),
            taken_over: row.try_get(6)?,
        }))
    }

    /// Seconds until the next message is due (negative when one is due now).
    async fn next_due(&self) -> Result<Option<f64>, Error> {
        Ok(sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - clock_timestamp())::FLOAT8
             FROM cmsi_mail_message WHERE state IN ('queued', 'sending')",
        )
        .fetch_one(&self.queue.pool)
        .await?)
    }

    async fn process(&self, mut job: Job, stop: &mut watch::Receiver<bool>) {
        let settings = &self.queue.settings;
        if job.taken_over {
            tracing::info!(message_id = %job.message_id, attempt = job.attempts,
                "taking over a message whose worker's lease ran out");
        }
        let max_attempts = settings.max_attempts();
        if job.attempts > max_attempts {
            let reason = format!(
                "attempts used up ({} of {max_attempts}); the last one did not finish (its worker stopped)",
                job.attempts - 1
            );
            return self.finish(&job, Outcome::Failed(reason)).await;
        }
        let envelope = match job.envelope() {
            Ok(envelope) => envelope,
            Err(reason) => return self.finish(&job, Outcome::Failed(reason)).await,
        };
        let Some(bytes) = job.message.take() else {
            let reason = "the message's bytes are gone".to_owned();
            return self.finish(&job, Outcome::Failed(reason)).await;
        };
        let composed = Composed {
            message_id: job.message_id.clone(),
            bytes,
        };

        let started = AtomicBool::new(false);
        let mut pace_stop = stop.clone();
        let work = async {
            if !self.take_token(&mut pace_stop).await {
                return None;
            }
            started.store(true, Ordering::Relaxed);
            Some(self.transport.send(&envelope, &composed).await)
        };
        tokio::pin!(work);
        // Renewed on a task of its own, so that a slow database never pauses
        // the delivery; a renewal still on its way when the outcome is
        // recorded finds the row no longer ours and changes nothing.
        let mut renewer = Renewer(tokio::spawn(Lease::of(&job, &self.queue).keep()));
        let grace = sleep(Duration::ZERO);
        tokio::pin!(grace);
        let mut stopping = false;
        let result = loop {
            tokio::select! {
                result = &mut work => break Attempt::Done(result),
                _ = &mut renewer.0 => break Attempt::LeaseLost,
                () = stopped(stop), if !stopping => {
                    stopping = true;
                    grace.as_mut().reset(Instant::now() + settings.shutdown_grace());
                }
                () = &mut grace, if stopping => break Attempt::Done(None),
            }
        };
        drop(renewer);
        let outcome = match result {
            // Another worker has the message now: dropping the delivery ends
            // its SMTP transaction before the final dot, or it never started.
            Attempt::LeaseLost => {
                tracing::warn!(message_id = %job.message_id,
                    "lost the lease while delivering: the attempt is abandoned, another worker delivers");
                return;
            }
            // Stopped while waiting for the pace, or out of grace: dropping the
            // delivery ends its SMTP transaction before the final dot.
            Attempt::Done(None) => {
                return self.release(&job, started.load(Ordering::Relaxed)).await;
            }
            Attempt::Done(Some(Ok(receipt))) => Outcome::Sent(receipt),
            Attempt::Done(Some(Err(error))) => self.judge(&job, &error),
        };
        self.finish(&job, outcome).await;
    }

    /// What a failed attempt means for the message.
    fn judge(&self, job: &Job, error: &TransportError) -> Outcome {
        let settings = &self.queue.settings;
        let reason = error.to_string();
        if error.is_permanent() {
            return Outcome::Failed(reason);
        }
        match backoff(&settings.retry_policy(), job.attempts, fastrand::f64()) {
            Some(after) => Outcome::Retry { reason, after },
            None => Outcome::Failed(format!("gave up after {} attempts: {reason}", job.attempts)),
        }
    }

    /// Waits for a token of the shared pace; false when stopped meanwhile.
    async fn take_token(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let Some((rate, burst)) = self.queue.settings.pace() else {
            return true;
        };
        loop {
            if *stop.borrow() {
                return false;
            }
            let wait = match sqlx::query_scalar::<_, f64>("SELECT cmsi_mail_take_token($1, $2, $3)")
                .bind(PACE_BUCKET)
                .bind(rate)
                .bind(burst)
                .fetch_one(&self.queue.pool)
                .await
            {
                Ok(wait) if wait <= 0.0 => return true,
                // A few milliseconds of jitter, so that waiting workers do not
                // all ask again in the same instant.
                Ok(wait) => {
                    Duration::try_from_secs_f64(wait.min(60.0)).unwrap_or(Duration::ZERO)
                        + Duration::from_micros(fastrand::u64(0..3000))
                }
                Err(error) => {
                    tracing::warn!(error = %Error::from(error), "cannot take a token of the pace");
                    self.queue.settings.poll()
                }
            };
            tokio::select! {
                () = sleep(wait) => {}
                () = stopped(stop) => return false,
            }
        }
    }

    /// Gives the message back, due now; the attempt counts only if it started.
    async fn release(&self, job: &Job, started: bool) {
        let released = sqlx::query(
            "WITH released AS (
                UPDATE cmsi_mail_message
                SET state = 'queued', attempts = attempts - $3, next_attempt_at = now(),
                    lease = NULL, locked_until = NULL, updated_at = now()
                WHERE id = $1 AND lease = $2 AND state = 'sending'
                RETURNING id
             )
             SELECT pg_notify('cmsi_mail_queue', '')::TEXT FROM released",
        )
        .bind(job.id)
        .bind(job.lease)
        .bind(if started { 0_i32 } else { 1 })
        .execute(&self.queue.pool)
        .await;
        match released {
            Ok(_) => tracing::info!(message_id = %job.message_id, "stopping: message given back"),
            Err(error) => tracing::warn!(message_id = %job.message_id, error = %Error::from(error),
                "stopping: cannot give the message back; it is due again when the lease ends"),
        }
    }

    /// Records the outcome, if the lease is still ours. A database that does
    /// not answer is asked again until the lease would have ended: a delivered
    /// message that cannot be marked is delivered again by the next worker.
    async fn finish(&self, job: &Job, outcome: Outcome) {
        let deadline = Instant::now() + self.queue.settings.lease();
        loop {
            match self.mark(job, &outcome).await {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!(message_id = %job.message_id,
                        "the lease ran out before the outcome was recorded; another worker has the message");
                    return;
                }
                Err(error) if error.is_unavailable() && Instant::now() < deadline => {
                    tracing::warn!(message_id = %job.message_id, %error,
                        "cannot record the outcome yet");
                    sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    tracing::error!(message_id = %job.message_id, %error,
                        "cannot record the outcome; the message is due again when the lease ends");
                    return;
                }
            }
        }
        match &outcome {
            Outcome::Sent(_) => {
                tracing::info!(message_id = %job.message_id, attempt = job.attempts, "sent");
            }
            Outcome::Retry { reason, after } => {
                tracing::warn!(message_id = %job.message_id, attempt = job.attempts,
                    retry_in_seconds = after.as_secs_f64(), "delivery failed, will retry");
                tracing::debug!(message_id = %job.message_id, %reason, "why");
            }
            Outcome::Failed(reason) => {
                tracing::warn!(message_id = %job.message_id, attempt = job.attempts, "failed");
                tracing::debug!(message_id = %job.message_id, %reason, "why");
            }
        }
    }

    /// One try at recording the outcome: false when the lease is not ours.
    async fn mark(&self, job: &Job, outcome: &Outcome) -> Result<bool, Error> {
        let pool = &self.queue.pool;
        let done = match outcome {
            Outcome::Sent(receipt) => {
                sqlx::query(
                    "UPDATE cmsi_mail_message
                     SET state = 'sent', message = NULL, accepted = $3, rejected = $4::JSONB,
                         transport_id = $5, sent_at = now(), updated_at = now(),
                         lease = NULL, locked_until = NULL
                     WHERE id = $1 AND lease = $2 AND state = 'sending'",
                )
                .bind(job.id)
                .bind(job.lease)
                .bind(&receipt.accepted)
                .bind(storable_json(&receipt.rejected))
                .bind(receipt.transport_id.as_deref().map(storable))
                .execute(pool)
                .await?
            }
            Outcome::Retry { reason, after } => {
                sqlx::query(
                    "UPDATE cmsi_mail_message
                     SET state = 'queued', next_attempt_at = now() + make_interval(secs => $3),
                         last_error = $4, updated_at = now(), lease = NULL, locked_until = NULL
                     WHERE id = $1 AND lease = $2 AND state = 'sending'",
                )
                .bind(job.id)
                .bind(job.lease)
                .bind(after.as_secs_f64())
                .bind(storable(reason))
                .execute(pool)
                .await?
            }
            Outcome::Failed(reason) => {
                sqlx::query(
                    "UPDATE cmsi_mail_message
                     SET state = 'failed', last_error = $3, updated_at = now(),
                         lease = NULL, locked_until = NULL
                     WHERE id = $1 AND lease = $2 AND state = 'sending'",
                )
                .bind(job.id)
                .bind(job.lease)
                .bind(storable(reason))
                .execute(pool)
                .await?
            }
        };
        Ok(done.rows_affected() == 1)
    }

    /// Wakes the workers on every NOTIFY; reconnects when the connection is lost.
    async fn listen(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let poll = self.queue.settings.poll();
        loop {
            match PgListener::connect_with(&self.queue.pool).await {
                Ok(mut listener) => match listener.listen(CHANNEL).await {
                    Ok(()) => loop {
                        // Mail may have come while no one listened.
                        self.wake.notify_waiters();
                        tokio::select! {
                            received = listener.try_recv() => match received {
                                Ok(_) => continue,
                                Err(error) => {
                                    tracing::warn!(error = %Error::from(error), "lost the notifications");
                                    break;
                                }
                            },
                            () = stopped(&mut stop) => return,
                        }
                    },
                    Err(error) => {
                        tracing::warn!(error = %Error::from(error), "cannot listen for new mail");
                    }
                },
                Err(error) => {
                    tracing::warn!(error = %Error::from(error), "cannot listen for new mail");
                }
            }
            tokio::select! {
                () = sleep(poll) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }

    /// Purges now and then.
    async fn housekeep(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            match self.queue.housekeep().await {
                Ok(done) if done.purged > 0 || done.keys_expired > 0 => {
                    tracing::info!(
                        purged = done.purged,
                        keys_expired = done.keys_expired,
                        "housekeeping"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "housekeeping failed"),
            }
            tokio::select! {
                () = sleep(HOUSEKEEPING_INTERVAL) => {}
                () = stopped(&mut stop) => return,
            }
        }
    }
}

/// Text as PostgreSQL can store it: TEXT and JSONB hold no NUL, and a relay's
/// reply may carry one (it becomes U+FFFD).
fn storable(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// `value` as JSON text for a JSONB column, its strings [`storable`].
fn storable_json(value: &impl serde::Serialize) -> String {
    fn clean(value: &mut Value) {
        match value {
            Value::String(text) if text.contains('\0') => *text = storable(text).into_owned(),
            Value::Array(items) => items.iter_mut().for_each(clean),
            Value::Object(fields) => fields.values_mut().for_each(clean),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    clean(&mut value);
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retries_span_about_a_day() {
        let settings = crate::QueueSettings::new("postgres://db/x");
        let policy = settings.retry_policy();
        let total: Duration = (1..settings.max_attempts())
            .map(|attempt| backoff(&policy, attempt, 0.5).unwrap())
            .sum();
        let hours = total.as_secs_f64() / 3600.0;
        assert!((20.0..30.0).contains(&hours), "{hours} h");
        assert_eq!(backoff(&policy, settings.max_attempts(), 0.5), None);
    }

    #[test]
    fn backoff_doubles_within_its_bounds() {
        let policy =
            RetryPolicy::new(50, Duration::from_secs(10)).with_max_delay(Duration::from_secs(100));
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(backoff(&policy, 1, 0.5), secs(10));
        assert_eq!(backoff(&policy, 3, 0.5), secs(40));
        assert_eq!(backoff(&policy, 3, 0.0), secs(30));
        assert_eq!(backoff(&policy, 3, 1.0), secs(50));
        assert_eq!(backoff(&policy, 40, 1.0), secs(100));
        assert_eq!(backoff(&policy, 50, 1.0), None);
    }

    #[test]
    fn nul_bytes_of_a_reply_become_storable() {
        assert_eq!(storable("450 busy\0 now"), "450 busy\u{FFFD} now");
        assert!(matches!(storable("250 ok"), Cow::Borrowed("250 ok")));
        let rejected = vec![cmsi_mail::Rejection {
            recipient: "a@example.com".to_owned(),
            reason: "550 no\0such \\u0000 user".to_owned(),
            temporary: false,
        }];
        let json = storable_json(&rejected);
        let back: Value = serde_json::from_str(&json).unwrap();
        // The NUL is replaced; the text that only looks like one stays.
        assert_eq!(
            back[0]["reason"], "550 no\u{FFFD}such \\u0000 user",
            "{json}"
        );
        assert_eq!(back[0]["recipient"], "a@example.com");
    }
}
