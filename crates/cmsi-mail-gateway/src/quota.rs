//! Request quotas: a token bucket per app (`[apps.NAME] rate`, `burst`) and
//! one for the whole server (`[server] rate`, `burst`), checked as soon as the
//! app is known: before the body is read when the header carries the
//! credentials, before the body is parsed otherwise.
//!
//! A request takes a token from its app's bucket first, then from the
//! server's: an app over its own quota never spends the server's, so one
//! runaway app cannot use up the quota of the others.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use axum::http::StatusCode;
use cmsi_mail::EsbResponse;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::Gateway;
use crate::config::AppRegistry;
use crate::outcome::Outcome;

/// A request rate as the configuration writes it: `10/s`, `600/m`, `5000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    count: NonZeroU32,
    per: Per,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Per {
    Second,
    Minute,
    Hour,
}

impl Per {
    fn duration(self) -> Duration {
        Duration::from_secs(match self {
            Per::Second => 1,
            Per::Minute => 60,
            Per::Hour => 3600,
        })
    }

    fn unit(self) -> &'static str {
        match self {
            Per::Second => "s",
            Per::Minute => "m",
            Per::Hour => "h",
        }
    }
}

/// A rate that is not `N/s`, `N/m` or `N/h` with N a whole number above 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rate: write N/s, N/m or N/h, with N a whole number above 0")]
pub struct RateError(String);

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = || RateError(text.to_owned());
        let (count, unit) = text.split_once('/').ok_or_else(error)?;
        let count = count.trim().parse::<NonZeroU32>().map_err(|_| error())?;
        let per = match unit.trim() {
            "s" => Per::Second,
            "m" => Per::Minute,
            "h" => Per::Hour,
            _ => return Err(error()),
        };
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, self.per.unit())
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A rate and the burst allowed on top of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit {
    rate: Rate,
    burst: NonZeroU32,
}

impl Limit {
    /// `rate` with `burst` requests at once (default: the rate's count, so
    /// `10/s` lets 10 through at once, then one every 100 ms).
    pub(crate) fn new(rate: Rate, burst: Option<NonZeroU32>) -> Self {
        Limit {
            rate,
            burst: burst.unwrap_or(rate.count),
        }
    }

    fn quota(self) -> Quota {
        let period = self.rate.per.duration() / self.rate.count.get();
        // The period is at least 1/4294967295 s, so never zero.
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(self.rate.count))
            .allow_burst(self.burst)
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (burst {})", self.rate, self.burst)
    }
}

/// Which quota refused a request: the label value of
/// `cmsi_rate_limited_total{quota}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    App,
    Server,
}

impl Scope {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Scope::App => "app",
            Scope::Server => "server",
        }
    }
}

/// A request over a quota.
#[derive(Debug)]
pub(crate) struct OverQuota {
    scope: Scope,
    limit: Limit,
    /// Whole seconds until a token is there again, at least 1.
    retry_after: u64,
}

/// One token bucket.
struct Bucket {
    limit: Limit,
    tokens: DefaultDirectRateLimiter,
}

impl Bucket {
    fn new(limit: Limit) -> Self {
        Bucket {
            limit,
            tokens: DefaultDirectRateLimiter::direct(limit.quota()),
        }
    }

    fn take(&self, scope: Scope) -> Result<(), OverQuota> {
        self.tokens.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            OverQuota {
                scope,
                limit: self.limit,
                retry_after: whole_seconds(wait),
            }
        })
    }
}

/// `Retry-After` in whole seconds, rounded up: never 0, which would invite
/// an immediate retry that is refused again.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

/// The buckets of the apps that have a quota, and the server's.
pub(crate) struct Quotas {
    apps: HashMap<String, Bucket>,
    server: Option<Bucket>,
}

impl fmt::Debug for Quotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quotas")
            .field(
                "apps",
                &self
                    .apps
                    .iter()
                    .map(|(app, bucket)| (app, bucket.limit))
                    .collect::<Vec<_>>(),
            )
            .field("server", &self.server.as_ref().map(|bucket| bucket.limit))
            .finish()
    }
}

impl Quotas {
    pub(crate) fn new(apps: &AppRegistry, server: Option<Limit>) -> Self {
        Quotas {
            apps: apps
                .limits()
                .map(|(app, limit)| (app.to_owned(), Bucket::new(limit)))
                .collect(),
            server: server.map(Bucket::new),
        }
    }

    /// Every (app, scope) a request may be refused for: each app with a quota
    /// of its own, and every app when the server has one.
    pub(crate) fn scopes<'a>(
        &'a self,
        apps: &'a AppRegistry,
    ) -> impl Iterator<Item = (&'a str, Scope)> + 'a {
        let own = self.apps.keys().map(|app| (app.as_str(), Scope::App));
        let server = self
            .server
            .iter()
            .flat_map(|_| apps.codes().map(|app| (app, Scope::Server)));
        own.chain(server)
    }

    /// Takes a token for a request of `app`: from its own bucket, then from
    /// the server's.
    fn take(&self, app: &str) -> Result<(), OverQuota> {
        if let Some(bucket) = self.apps.get(app) {
            bucket.take(Scope::App)?;
        }
        if let Some(bucket) = &self.server {
            bucket.take(Scope::Server)?;
        }
        Ok(())
    }
}

impl Gateway {
    /// Admits one more request of the authenticated `app`, or refuses it with
    /// 429, code `1306429` and `Retry-After`, counted in the metrics.
    #[allow(
        clippy::result_large_err,
        reason = "`admit`'s own error, returned as it is"
    )]
    pub(crate) fn within_quota(&self, app: &str) -> Result<(), Outcome> {
        self.quotas.take(app).map_err(|over| {
            self.metrics.rate_limited(app, over.scope);
            Outcome::over_quota(app, &over)
        })
    }
}

impl Outcome {
    fn over_quota(app: &str, over: &OverQuota) -> Self {
        let whose = match over.scope {
            Scope::App => format!("app [{app}] is over its quota"),
            Scope::Server => "the server is over its quota".to_owned(),
        };
        let message = format!(
            "Access frequency limit: {whose} of {}; try again in {} s",
            over.limit, over.retry_after
        );
        let data = json!({"quota": over.scope.label(), "retry_after": over.retry_after});
        Outcome {
            app_code: Some(app.to_owned()),
            retry_after: Some(over.retry_after),
            ..Outcome::answer(
                StatusCode::TOO_MANY_REQUESTS,
                EsbResponse::rate_limited(message, data),
                "quota",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_read_as_written() {
        for (text, shown) in [("10/s", "10/s"), ("600/m", "600/m"), (" 7 / h ", "7/h")] {
            assert_eq!(text.parse::<Rate>().unwrap().to_string(), shown);
        }
        for bad in [
            "", "10", "0/s", "-1/s", "1.5/s", "10/d", "10/sec", "s/10", "10/s/m",
        ] {
            let error = bad.parse::<Rate>().unwrap_err();
            assert!(
                error.to_string().contains("N/s, N/m or N/h"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn the_burst_defaults_to_the_rate_and_then_one_per_period() {
        let limit = Limit::new("5/s".parse().unwrap(), None);
        let bucket = Bucket::new(limit);
        let taken = (0..20).filter(|_| bucket.take(Scope::App).is_ok()).count();
        assert_eq!(taken, 5);
        let over = bucket.take(Scope::App).unwrap_err();
        assert_eq!(over.retry_after, 1);
        assert_eq!(limit.to_string(), "5/s (burst 5)");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(200)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2001)), 3);
        let hourly = Bucket::new(Limit::new("1/h".parse().unwrap(), None));
        hourly.take(Scope::Server).unwrap();
        let over = hourly.take(Scope::Server).unwrap_err();
        assert!((3599..=3600).contains(&over.retry_after), "{over:?}");
    }
}
