//! `[queue]` of the configuration file.

use std::time::Duration;

use serde::Deserialize;

/// Default number of workers a process runs.
pub const DEFAULT_WORKERS: usize = 2;
/// Default attempts per message, the first included.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Default days an `Idempotency-Key` is remembered.
pub const DEFAULT_IDEMPOTENCY_DAYS: f64 = 1.0;
/// Default days a sent or failed message's row is kept.
pub const DEFAULT_RETENTION_DAYS: f64 = 30.0;
/// Default seconds a claim lasts without being renewed.
pub const DEFAULT_LEASE_SECONDS: f64 = 60.0;
/// Default seconds between looks for due mail when no notification comes.
pub const DEFAULT_POLL_SECONDS: f64 = 5.0;
/// Default wait before the second attempt; it doubles with each attempt.
/// With 10 attempts the retries span about a day (180 s × (2⁸ − 1) + 12 h).
pub const DEFAULT_RETRY_BASE_SECONDS: f64 = 180.0;
/// Default longest wait between two attempts.
pub const DEFAULT_RETRY_MAX_SECONDS: f64 = 12.0 * 3600.0;
/// Default seconds to wait for the database before calling it unreachable.
pub const DEFAULT_CONNECT_TIMEOUT_SECONDS: f64 = 1.5;
/// Default seconds an accept or a check may take, connection included,
/// before it fails as unreachable.
pub const DEFAULT_QUERY_TIMEOUT_SECONDS: f64 = 30.0;
/// Default seconds a worker given the stop signal lets a delivery in
/// progress finish before it abandons it and returns the message.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: f64 = 20.0;

/// `[queue]`: where the queue is and how its workers behave.
///
/// ```toml
/// [queue]
/// url = "postgres://cmsi_mail:secret@db.example.com/cmsi_mail"
/// workers = 2
/// max_per_second = 20
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// `postgres://user:password@host:port/database` (`CMSI_MAIL_QUEUE_URL`
    /// overrides it in the `cmsi-mail` command).
    pub url: String,
    /// Workers per process (default 2; 0 for a process that only accepts).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Attempts per message before it fails, the first included (default 10).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Deliveries per second across every worker on every machine; no limit
    /// when absent.
    #[serde(default)]
    pub max_per_second: Option<f64>,
    /// Deliveries that may start at once after a quiet time (default 1: evenly
    /// spaced). Only with `max_per_second`.
    #[serde(default)]
    pub burst: Option<f64>,
    /// Days an `Idempotency-Key` is remembered (default 1).
    #[serde(default)]
    pub idempotency_days: Option<f64>,
    /// Days a sent or failed message's row is kept (default 30).
    #[serde(default)]
    pub retention_days: Option<f64>,
    /// Seconds a worker's claim lasts; renewed every third of it while the
    /// worker is alive (default 60).
    #[serde(default)]
    pub lease_seconds: Option<f64>,
    /// Seconds between looks for due mail besides notifications (default 5).
    #[serde(default)]
    pub poll_seconds: Option<f64>,
    /// Wait before the second attempt, doubled for each further one, ±25%
    /// (default 180).
    #[serde(default)]
    pub retry_base_seconds: Option<f64>,
    /// Longest wait between attempts (default 43 200, 12 hours).
    #[serde(default)]
    pub retry_max_seconds: Option<f64>,
    /// Seconds to wait for a database connection before an operation fails
    /// as unreachable (default 1.5).
    #[serde(default)]
    pub connect_timeout_seconds: Option<f64>,
    /// Seconds an accept (storing up to a 40 MB message) or a check may take
    /// in all before it fails as unreachable: a database that stops answering
    /// in the middle of a statement (default 30).
    #[serde(default)]
    pub query_timeout_seconds: Option<f64>,
    /// Database connections per process (default: workers + 8; under
    /// `cmsi-mail serve`, workers + the gateway's concurrent deliveries + 2).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Seconds a delivery in progress may take to finish after the stop
    /// signal (default 20).
    #[serde(default)]
    pub shutdown_grace_seconds: Option<f64>,
}

impl QueueSettings {
    /// Settings for the database at `url`, every other value the default.
    pub fn new(url: impl Into<String>) -> Self {
        QueueSettings {
            url: url.into(),
            workers: None,
            max_attempts: None,
            max_per_second: None,
            burst: None,
            idempotency_days: None,
            retention_days: None,
            lease_seconds: None,
            poll_seconds: None,
            retry_base_seconds: None,
            retry_max_seconds: None,
            connect_timeout_seconds: None,
            query_timeout_seconds: None,
            max_connections: None,
            shutdown_grace_seconds: None,
        }
    }

    /// Workers per process.
    pub fn workers(&self) -> usize {
        self.workers.unwrap_or(DEFAULT_WORKERS)
    }

    /// Attempts per message (at least 1).
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS).max(1)
    }

    /// The pace, as (rate per second, burst), when there is one.
    pub fn pace(&self) -> Option<(f64, f64)> {
        let rate = self.max_per_second.filter(|rate| *rate > 0.0)?;
        Some((rate, self.burst.unwrap_or(1.0).max(1.0)))
    }

    /// How long an `Idempotency-Key` is remembered.
    pub fn idempotency(&self) -> Duration {
        days(self.idempotency_days.unwrap_or(DEFAULT_IDEMPOTENCY_DAYS))
    }

    /// How long a finished message's row is kept.
    pub fn retention(&self) -> Duration {
        days(self.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS))
    }

    /// How long a claim lasts unless renewed (at least 1 s).
    pub fn lease(&self) -> Duration {
        seconds(self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS)).max(Duration::from_secs(1))
    }

    /// The longest idle wait of a worker (at least 10 ms).
    pub fn poll(&self) -> Duration {
        seconds(self.poll_seconds.unwrap_or(DEFAULT_POLL_SECONDS)).max(Duration::from_millis(10))
    }

    /// The wait before the second attempt.
    pub fn retry_base(&self) -> Duration {
        seconds(
            self.retry_base_seconds
                .unwrap_or(DEFAULT_RETRY_BASE_SECONDS),
        )
    }

    /// The longest wait between attempts.
    pub fn retry_max(&self) -> Duration {
        seconds(self.retry_max_seconds.unwrap_or(DEFAULT_RETRY_MAX_SECONDS))
    }
    /// How transient failures are tried again: `max_attempts` attempts,
    /// `retry_base` doubling up to `retry_max` (the workers add ±25% jitter).
    pub fn retry_policy(&self) -> cmsi_mail::RetryPolicy {
        cmsi_mail::RetryPolicy::new(self.max_attempts(), self.retry_base())
            .with_max_delay(self.retry_max())
    }

    /// How long to wait for a connection (at least 100 ms).
    pub fn connect_timeout(&self) -> Duration {
        seconds(
            self.connect_timeout_seconds
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECONDS),
        )
        .max(Duration::from_millis(100))
    }

    /// How long an accept or a check may take in all (at least the connect
    /// timeout).
    pub fn query_timeout(&self) -> Duration {
        seconds(
            self.query_timeout_seconds
                .unwrap_or(DEFAULT_QUERY_TIMEOUT_SECONDS),
        )
        .max(self.connect_timeout())
    }

    /// Database connections per process.
    pub fn max_connections(&self) -> u32 {
        self.max_connections
            .unwrap_or_else(|| {
                u32::try_from(self.workers())
                    .unwrap_or(u32::MAX)
                    .saturating_add(8)
            })
            .max(2)
    }

    /// How long a delivery in progress may go on after the stop signal.
    pub fn shutdown_grace(&self) -> Duration {
        seconds(
            self.shutdown_grace_seconds
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECONDS),
        )
    }
}

/// Everything, the URL without its password.
impl std::fmt::Debug for QueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSettings")
            .field("url", &redact_url(&self.url))
            .field("workers", &self.workers)
            .field("max_attempts", &self.max_attempts)
            .field("max_per_second", &self.max_per_second)
            .field("burst", &self.burst)
            .field("idempotency_days", &self.idempotency_days)
            .field("retention_days", &self.retention_days)
            .field("lease_seconds", &self.lease_seconds)
            .field("poll_seconds", &self.poll_seconds)
            .field("retry_base_seconds", &self.retry_base_seconds)
            .field("retry_max_seconds", &self.retry_max_seconds)
            .field("connect_timeout_seconds", &self.connect_timeout_seconds)
            .field("query_timeout_seconds", &self.query_timeout_seconds)
            .field("max_connections", &self.max_connections)
            .field("shutdown_grace_seconds", &self.shutdown_grace_seconds)
            .finish()
    }
}

/// The longest duration a setting can mean (ten years): more is taken as
/// this, so that adding it to the clock can never overflow.
const LONGEST: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A negative or NaN number of seconds counts as none, more than ten years
/// (or infinity) as ten years.
fn seconds(value: f64) -> Duration {
    if value >= LONGEST.as_secs_f64() {
        return LONGEST;
    }
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

fn days(value: f64) -> Duration {
    seconds(value * 86_400.0)
}

/// `url` with the password replaced by `***`, whether it is in the user
/// information (`postgres://user:secret@host/db`) or a `password=` parameter.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    // The user information ends at the last `@`: a password written without
    // percent-encoding may hold `/`, `@`, `?` or `#`. When that `@` is in
    // the query instead, this hides too much (the host), never too little.
    let (authority, path) = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, after) = rest.split_at(at);
            let userinfo = match userinfo.find(':') {
                Some(colon) => format!("{}:***", userinfo.get(..colon).unwrap_or("")),
                None => userinfo.to_owned(),
            };
            (userinfo, after)
        }
        None => (String::new(), rest),
    };
    let path = match path.find('?') {
        Some(question) => {
            let (before, query) = path.split_at(question + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{before}{}", query.join("&"))
        }
        None => path.to_owned(),
    };
    format!("{scheme}{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        for (url, redacted) in [
            (
                "postgres://mail:s3cret@db.example.com:5432/cmsi",
                "postgres://mail:***@db.example.com:5432/cmsi",
            ),
            (
                "postgres://mail:p%40ss:w@rd@db/cmsi?sslmode=require",
                "postgres://mail:***@db/cmsi?sslmode=require",
            ),
            (
                "postgres://mail:pa/ss@db/cmsi",
                "postgres://mail:***@db/cmsi",
            ),
            (
                "postgres://db/cmsi?user=mail&password=s3cret&sslmode=verify-full",
                "postgres://db/cmsi?user=mail&password=***&sslmode=verify-full",
            ),
            (
                "postgres://mail:pa?ss@db/cmsi",
                "postgres://mail:***@db/cmsi",
            ),
            (
                "postgres://mail:pa#ss@db/cmsi?password=x",
                "postgres://mail:***@db/cmsi?password=***",
            ),
            (
                "postgres://mail:p?s@db/cmsi?application_name=a@b",
                "postgres://mail:***@b",
            ),
            (
                "postgres://mail:p@ss?word@db/cmsi",
                "postgres://mail:***@db/cmsi",
            ),
            (
                "postgres://db/cmsi?application_name=a@b",
                "postgres://db/cmsi?application_name=a@b",
            ),
            ("postgres://mail@db/cmsi", "postgres://mail@db/cmsi"),
            ("postgres:///cmsi", "postgres:///cmsi"),
        ] {
            assert_eq!(redact_url(url), redacted);
        }
        let settings = QueueSettings::new("postgres://mail:s3cret@db/cmsi?password=other");
        let debug = format!("{settings:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("other"),
            "{debug}"
        );
    }

    #[test]
    fn reads_the_queue_table() {
        let settings: QueueSettings = toml::from_str(
            "url = \"postgres://db/cmsi\"\nworkers = 0\nmax_per_second = 20\nlease_seconds = 2.5\n",
        )
        .unwrap();
        assert_eq!(settings.workers(), 0);
        assert_eq!(settings.pace(), Some((20.0, 1.0)));
        assert_eq!(settings.lease(), Duration::from_millis(2500));
        assert_eq!(settings.max_attempts(), DEFAULT_MAX_ATTEMPTS);
        assert_eq!(settings.idempotency(), Duration::from_secs(86_400));
        assert!(toml::from_str::<QueueSettings>("url = \"x\"\nworkrs = 1\n").is_err());
    }
}
