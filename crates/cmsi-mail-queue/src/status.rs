//! What the queue reports: a message's state and receipt, counts by state.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmsi_mail::Rejection;
use serde::{Serialize, Serializer};
use serde_json::Value;

/// Where a message is on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for its first or next attempt.
    Queued,
    /// A worker is delivering it (under a lease; if the worker dies, the
    /// message is queued again when the lease ends).
    Sending,
    /// Delivered: the transport accepted it for at least one recipient.
    Sent,
    /// Refused for good, or out of attempts. `retry` queues it again.
    Failed,
}

impl State {
    /// Every state, in the order of a message's life.
    pub const ALL: [State; 4] = [State::Queued, State::Sending, State::Sent, State::Failed];

    /// The name stored in the database and shown to callers.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Sending => "sending",
            State::Sent => "sent",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a [`State`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a queue state (queued, sending, sent, failed)")]
pub struct UnknownState(String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(name: &str) -> Result<State, UnknownState> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == name)
            .ok_or_else(|| UnknownState(name.to_owned()))
    }
}

/// A moment, to the microsecond, shown and serialized in UTC as RFC 3339
/// (`2025-06-01T08:30:00.123Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_micros: i64,
}

impl Timestamp {
    /// The moment `unix_micros` microseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_micros(unix_micros: i64) -> Self {
        Timestamp { unix_micros }
    }

    /// Microseconds since 1970-01-01T00:00:00Z.
    pub fn unix_micros(self) -> i64 {
        self.unix_micros
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_micros(self.unix_micros.unsigned_abs());
        if self.unix_micros >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.unix_micros.div_euclid(1_000_000);
        let millis = self.unix_micros.rem_euclid(1_000_000) / 1000;
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        let of_day = seconds.rem_euclid(86_400);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            of_day / 3600,
            of_day / 60 % 60,
            of_day % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Year, month and day of a day number counted from 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What [`Queue::accept`](crate::Queue::accept) did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accepted {
    /// The Message-ID of the queued message, without angle brackets: the
    /// first one when the key was seen before.
    pub message_id: String,
    /// The response data stored with the message: the caller's own for a new
    /// message, the first request's for a repeated key.
    pub response: Value,
    /// Whether the idempotency key was seen before, so nothing was queued.
    pub repeated: bool,
}

/// A message in the queue, as its sender may see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Our Message-ID, without angle brackets.
    pub message_id: String,
    /// The app that sent it.
    pub app_code: String,
    /// Where it is.
    pub state: State,
    /// Attempts started so far.
    pub attempts: u32,
    /// Why the latest failed attempt failed (the server's reply), if one did.
    pub last_error: Option<String>,
    /// The envelope's recipients.
    pub recipients: Vec<String>,
    /// Recipients the transport accepted it for (when sent).
    pub accepted: Vec<String>,
    /// Recipients refused while others were accepted (when sent).
    pub rejected: Vec<Rejection>,
    /// The transport's id of the delivery: the SMTP server's queue reply, the
    /// SES MessageId, the file name.
    pub transport_id: Option<String>,
    /// The message's size in bytes.
    pub size: u64,
    /// When it was accepted.
    pub created_at: Timestamp,
    /// When its row last changed.
    pub updated_at: Timestamp,
    /// When it is tried next (queued), or when the current lease ends (sending).
    pub next_attempt_at: Option<Timestamp>,
    /// When it was delivered.
    pub sent_at: Option<Timestamp>,
    /// The worker that claimed it last.
    pub worker: Option<String>,
}

/// Counts by state, for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Messages waiting.
    pub queued: u64,
    /// Of those, the ones due now (not waiting for a retry time).
    pub due: u64,
    /// Messages being delivered.
    pub sending: u64,
    /// Messages delivered and not yet purged.
    pub sent: u64,
    /// Messages that failed and were not retried or purged.
    pub failed: u64,
    /// Seconds since the oldest waiting message was accepted.
    pub oldest_queued_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc_3339_in_utc() {
        for (micros, text) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00.000Z"),
            (1_748_766_600_123_456, "2025-06-01T08:30:00.123Z"),
            (-1_000, "1969-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(Timestamp::from_unix_micros(micros).to_string(), text);
        }
    }

    #[test]
    fn states_read_back() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("done".parse::<State>().is_err());
    }
}
