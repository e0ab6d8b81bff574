//! `[server]` and `[apps]` of the configuration file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::quota::{Limit, Rate};

/// Default listen address: loopback only, so that a fresh install is not open
/// to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8025";
/// Default request body limit: 32 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Default bound on deliveries in progress at once.
pub const DEFAULT_MAX_CONCURRENT_DELIVERIES: usize = 16;
/// Default bound on the bytes of all request bodies being read or held at once.
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: usize = 256 * 1024 * 1024;
/// Default time a client may let pass without sending any of its body.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 10;
/// Default time a client has to send a whole request body.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 120;
/// Default time a client has to send its request headers (also how long an
/// idle kept-alive connection stays open).
pub const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
/// Default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default time a readiness answer is reused before the transport is asked
/// again.
pub const DEFAULT_READY_CACHE_SECS: u64 = 5;

/// `[server]`: where to listen and the limits that keep one client from
/// stopping the others.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on (default `127.0.0.1:8025`).
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Largest request body in bytes (default 32 MiB); larger ones get 413.
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// Authenticated requests validated, composed and delivered at once; more
    /// wait their turn (default 16).
    #[serde(default)]
    pub max_concurrent_deliveries: Option<usize>,
    /// Bytes of request bodies being read or held at once, over all requests
    /// (default 256 MiB); a request that cannot get its share within
    /// `body_timeout_secs` gets 503.
    #[serde(default)]
    pub max_inflight_body_bytes: Option<usize>,
    /// Seconds a client may send no body bytes before its request is dropped
    /// (default 10).
    #[serde(default)]
    pub body_timeout_secs: Option<u64>,
    /// Seconds a client has for its whole request body (default 120).
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    /// Seconds a client has to send its request headers; an idle kept-alive
    /// connection is closed after as long (default 10).
    #[serde(default)]
    pub header_timeout_secs: Option<u64>,
    /// Connections open at once; more are closed as soon as they are accepted
    /// (default 1024).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Whether `cmsi-mail serve` also shows the file transport's outbox at
    /// `/outbox/` (default false: a local tool, not for the internet). The
    /// gateway only carries the setting; the CLI mounts the pages.
    #[serde(default)]
    pub outbox_ui: bool,
    /// Where `/metrics` is served instead of the main listener (default: on
    /// the main listener).
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// Requests of all apps together, e.g. `100/s` (default: no limit).
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Requests let through at once on top of `rate` (default: `rate`'s count).
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
    /// Seconds a `/readyz` answer is reused before the transport is checked
    /// again (default 5; 0 checks on every probe).
    #[serde(default)]
    pub ready_cache_secs: Option<u64>,
}

/// A `[server]` setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[server] {0}")]
pub struct ServerConfigError(String);

impl ServerConfig {
    /// The listen address.
    pub fn listen(&self) -> SocketAddr {
        self.listen
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8025)))
    }

    /// The body limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    /// The delivery bound (at least 1).
    pub fn max_concurrent_deliveries(&self) -> usize {
        self.max_concurrent_deliveries
            .unwrap_or(DEFAULT_MAX_CONCURRENT_DELIVERIES)
            .max(1)
    }

    /// The bound on body bytes held at once.
    pub fn max_inflight_body_bytes(&self) -> usize {
        self.max_inflight_body_bytes
            .unwrap_or(DEFAULT_MAX_INFLIGHT_BODY_BYTES)
    }

    /// How long a body may stall.
    pub fn body_timeout(&self) -> Duration {
        secs(self.body_timeout_secs, DEFAULT_BODY_TIMEOUT_SECS)
    }

    /// How long a whole body may take.
    pub fn request_timeout(&self) -> Duration {
        secs(self.request_timeout_secs, DEFAULT_REQUEST_TIMEOUT_SECS)
    }

    /// How long the headers may take.
    pub fn header_timeout(&self) -> Duration {
        secs(self.header_timeout_secs, DEFAULT_HEADER_TIMEOUT_SECS)
    }

    /// The bound on open connections (at least 1).
    pub fn max_connections(&self) -> usize {
        self.max_connections
            .unwrap_or(DEFAULT_MAX_CONNECTIONS)
            .max(1)
    }

    /// How long a readiness answer is reused.
    pub fn ready_cache(&self) -> Duration {
        Duration::from_secs(self.ready_cache_secs.unwrap_or(DEFAULT_READY_CACHE_SECS))
    }

    /// The server-wide request quota.
    pub(crate) fn limit(&self) -> Option<Limit> {
        self.rate.map(|rate| Limit::new(rate, self.burst))
    }

    /// Checks that the limits fit together.
    pub fn check(&self) -> Result<(), ServerConfigError> {
        if self.burst.is_some() && self.rate.is_none() {
            return Err(ServerConfigError(
                "burst is set but rate is not: a burst needs a rate (e.g. rate = \"10/s\")"
                    .to_owned(),
            ));
        }
        let inflight = self.max_inflight_body_bytes();
        if self.max_body_bytes() > inflight {
            return Err(ServerConfigError(format!(
                "max_body_bytes ({}) is larger than max_inflight_body_bytes ({inflight}): \
                 no body of the largest size could ever be read",
                self.max_body_bytes()
            )));
        }
        if u32::try_from(inflight).is_err() {
            return Err(ServerConfigError(format!(
                "max_inflight_body_bytes ({inflight}) must be below 4 GiB"
            )));
        }
        for (key, value) in [
            ("body_timeout_secs", self.body_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("header_timeout_secs", self.header_timeout_secs),
        ] {
            if value == Some(0) {
                return Err(ServerConfigError(format!("{key} must be at least 1")));
            }
        }
        Ok(())
    }
}

fn secs(value: Option<u64>, default: u64) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(1))
}

/// `[apps.NAME]`: an app allowed to call, by its `bk_app_code`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app secret (`bk_app_secret`).
    #[serde(default)]
    pub secret: Option<String>,
    /// The name of an environment variable holding the secret instead.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Whether the app may name its user with `bk_username` alone, without a
    /// `bk_token` (the ESB's "免登录态验证" whitelist).
    #[serde(default)]
    pub allow_bk_username: bool,
    /// The tenants (`[tenants.NAME]`) the app may send for, by the
    /// `X-Bk-Tenant-Id` header; unset, it may use any, and the top-level
    /// settings. An app limited to tenants cannot use the top-level settings.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
    /// The app's request quota, e.g. `10/s`, `600/m`, `5000/h` (default: no
    /// limit of its own).
    #[serde(default)]
    pub rate: Option<Rate>,
    /// Requests let through at once on top of `rate` (default: `rate`'s count).
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
}

/// Everything but the secret.
impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_env", &self.secret_env)
            .field("allow_bk_username", &self.allow_bk_username)
            .field("tenants", &self.tenants)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish()
    }
}

/// `[apps]`, as written in the file.
pub type Apps = BTreeMap<String, AppConfig>;

/// The registered apps with their secrets resolved.
#[derive(Clone, Default)]
pub struct AppRegistry {
    apps: BTreeMap<String, App>,
}

#[derive(Clone)]
struct App {
    secret: Vec<u8>,
    allow_bk_username: bool,
    tenants: Option<Vec<String>>,
    limit: Option<Limit>,
}

impl std::fmt::Debug for AppRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets.
        f.debug_list().entries(self.apps.keys()).finish()
    }
}

/// An `[apps]` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[apps.{app}]: {reason}")]
pub struct AppConfigError {
    app: String,
    reason: String,
}

impl AppRegistry {
    /// Resolves `apps`, reading `secret_env` variables through `env`.
    pub fn new(
        apps: &Apps,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AppRegistry, AppConfigError> {
        let mut resolved = BTreeMap::new();
        for (code, app) in apps {
            let error = |reason: String| AppConfigError {
                app: code.clone(),
                reason,
            };
            let secret = match (&app.secret, &app.secret_env) {
                (Some(_), Some(_)) => {
                    return Err(error("give secret or secret_env, not both".into()));
                }
                (Some(secret), None) => secret.clone(),
                (None, Some(variable)) => env(variable).ok_or_else(|| {
                    error(format!("the environment variable {variable} is not set"))
                })?,
                (None, None) => return Err(error("no secret: set secret or secret_env".into())),
            };
            if secret.is_empty() {
                return Err(error("the secret is empty".into()));
            }
            if app.tenants.as_ref().is_some_and(Vec::is_empty) {
                return Err(error(
                    "tenants is empty: the app could send for none; remove it to allow any".into(),
                ));
            }
            if app.burst.is_some() && app.rate.is_none() {
                return Err(error(
                    "burst is set but rate is not: a burst needs a rate (e.g. rate = \"10/s\")"
                        .into(),
                ));
            }
            resolved.insert(
                code.clone(),
                App {
                    secret: secret.into_bytes(),
                    allow_bk_username: app.allow_bk_username,
                    tenants: app.tenants.clone(),
                    limit: app.rate.map(|rate| Limit::new(rate, app.burst)),
                },
            );
        }
        Ok(AppRegistry { apps: resolved })
    }

    /// Whether no app is registered.
    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    /// Number of apps.
    pub fn len(&self) -> usize {
        self.apps.len()
    }

    /// The tenants an authenticated app is limited to, if it is.
    pub(crate) fn tenants_of(&self, code: &str) -> Option<&[String]> {
        self.apps.get(code).and_then(|app| app.tenants.as_deref())
    }

    /// Whether `code` is a registered app (and so may be a metric label).
    pub(crate) fn contains(&self, code: &str) -> bool {
        self.apps.contains_key(code)
    }

    /// The registered app codes.
    pub(crate) fn codes(&self) -> impl Iterator<Item = &str> {
        self.apps.keys().map(String::as_str)
    }

    /// The apps that have a quota of their own.
    pub(crate) fn limits(&self) -> impl Iterator<Item = (&str, Limit)> {
        self.apps
            .iter()
            .filter_map(|(code, app)| app.limit.map(|limit| (code.as_str(), limit)))
    }

    /// Checks an app's credentials: `Some(allow_bk_username)` when the code is
    /// registered and the secret matches. The secret is compared in constant
    /// time, also for unknown codes.
    pub(crate) fn check(&self, code: &str, secret: &str) -> Option<bool> {
        const UNKNOWN: &[u8] = b"\0no such app\0";
        let app = self.apps.get(code);
        let expected = app.map_or(UNKNOWN, |app| app.secret.as_slice());
        let matches: bool = expected.ct_eq(secret.as_bytes()).into();
        match app {
            Some(app) if matches => Some(app.allow_bk_username),
            _ => None,
        }
    }
}
