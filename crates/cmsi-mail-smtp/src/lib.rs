#![doc = include_str!("../README.md")]

mod connection;
mod failure;
mod oauth;
mod settings;
mod transaction;

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use cmsi_mail::{Composed, Envelope, Receipt, RetryPolicy, Transport, TransportError};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::failure::configuration;
use crate::oauth::{ClientCredentials, Tokens};
use crate::settings::Security;

pub use settings::{SmtpAuth, SmtpSettings};

/// How a connection logs in.
pub(crate) enum Login {
    /// No AUTH.
    None,
    /// AUTH PLAIN or LOGIN.
    Password(Credentials),
    /// AUTH XOAUTH2 as `user` with a bearer token.
    Xoauth2 { user: String, tokens: Tokens },
}

/// Delivers over SMTP. Cheap to share (`Arc`); connections are pooled inside.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    login: Login,
    hello: ClientId,
    timeout: Duration,
    retry: RetryPolicy,
    pool_size: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

/// The settings that say where and how it connects; never the credentials.
impl std::fmt::Debug for SmtpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpTransport")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field(
                "auth",
                &match &self.login {
                    Login::None => "none",
                    Login::Password(_) => "password",
                    Login::Xoauth2 { .. } => "xoauth2",
                },
            )
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `settings`. Fails when the settings contradict each
    /// other or the CA file cannot be read; no connection is made yet.
    pub fn new(mut settings: SmtpSettings) -> Result<Self, TransportError> {
        if settings.smtp_host.trim().is_empty() {
            return Err(configuration("smtp_host is empty"));
        }
        let security = match (settings.smtp_usessl, settings.smtp_usetls) {
            (true, true) => {
                return Err(configuration(
                    "smtp_usessl (implicit TLS) and smtp_usetls (STARTTLS) exclude each other; set one",
                ));
            }
            (true, false) => Security::Implicit,
            (false, true) => Security::StartTls,
            (false, false) => Security::Plain,
        };
        let port = settings.smtp_port.unwrap_or(match security {
            Security::Implicit => 465,
            _ => 25,
        });
        let timeout = Duration::try_from_secs_f64(settings.timeout_secs.unwrap_or(10.0))
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| configuration("timeout_secs must be a positive number of seconds"))?;
        let login = login(&mut settings, timeout)?;
        if !matches!(login, Login::None) && security == Security::Plain {
            tracing::warn!(
                host = %settings.smtp_host,
                "SMTP AUTH without TLS: the credentials cross the network in clear text"
            );
        }
        let tls = match security {
            Security::Plain => None,
            _ => {
                let mut builder = TlsParameters::builder(settings.smtp_host.clone());
                if let Some(path) = &settings.ca_file {
                    let pem = std::fs::read(path).map_err(|error| {
                        configuration(format!("ca_file {}: {error}", path.display()))
                    })?;
                    let certificate = Certificate::from_pem(&pem).map_err(|error| {
                        configuration(format!("ca_file {}: {error}", path.display()))
                    })?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(builder.build_rustls().map_err(|error| {
                    configuration(format!("TLS settings for {}: {error}", settings.smtp_host))
                })?)
            }
        };
        Ok(SmtpTransport {
            host: settings.smtp_host,
            port,
            security,
            tls,
            login,
            hello: settings
                .hello_name
                .map_or_else(|| ClientId::Ipv4([127, 0, 0, 1].into()), ClientId::Domain),
            timeout,
            retry: RetryPolicy::default().with_max_attempts(settings.max_attempts.unwrap_or(3)),
            pool_size: settings.pool_size.unwrap_or(4),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the first retry delay (default 500 ms; it doubles per attempt).
    #[must_use]
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.retry = self.retry.with_first_delay(first);
        self
    }
}

/// How the settings say to log in; the secrets are taken out of them.
fn login(settings: &mut SmtpSettings, timeout: Duration) -> Result<Login, TransportError> {
    let flow_keys = [
        ("oauth_token", settings.oauth_token.is_some()),
        ("oauth_token_url", settings.oauth_token_url.is_some()),
        ("oauth_client_id", settings.oauth_client_id.is_some()),
        (
            "oauth_client_secret",
            settings.oauth_client_secret.is_some(),
        ),
        ("oauth_scope", settings.oauth_scope.is_some()),
    ];
    if settings.auth != Some(SmtpAuth::Xoauth2) {
        if let Some((key, _)) = flow_keys.iter().find(|(_, set)| *set) {
            return Err(configuration(format!("{key} needs auth = \"xoauth2\"")));
        }
        return match (settings.smtp_user.take(), settings.smtp_pwd.take()) {
            (Some(user), Some(password)) => Ok(Login::Password(Credentials::new(user, password))),
            (None, None) if settings.auth == Some(SmtpAuth::Password) => Err(configuration(
                "auth = \"password\" needs smtp_user and smtp_pwd",
            )),
            (None, None) => Ok(Login::None),
            (Some(_), None) => Err(configuration("smtp_user is set but smtp_pwd is not")),
            (None, Some(_)) => Err(configuration("smtp_pwd is set but smtp_user is not")),
        };
    }
    let Some(user) = settings.smtp_user.take() else {
        return Err(configuration(
            "auth = \"xoauth2\" needs smtp_user (the mailbox that logs in)",
        ));
    };
    if settings.smtp_pwd.is_some() {
        return Err(configuration(
            "smtp_pwd is not used with auth = \"xoauth2\"; remove it",
        ));
    }
    let tokens = match (settings.oauth_token.take(), settings.oauth_token_url.take()) {
        (Some(_), Some(_)) => {
            return Err(configuration(
                "a fixed token (oauth_token, CMSI_MAIL_SMTP_TOKEN) and oauth_token_url exclude each other; set one",
            ));
        }
        (Some(token), None) => Tokens::Fixed(token),
        (None, Some(url)) => {
            let (Some(client_id), Some(secret)) = (
                settings.oauth_client_id.take(),
                settings.oauth_client_secret.take(),
            ) else {
                return Err(configuration(
                    "oauth_token_url needs oauth_client_id and oauth_client_secret (or CMSI_MAIL_OAUTH_CLIENT_SECRET)",
                ));
            };
            let flow = ClientCredentials::new(
                &url,
                client_id,
                secret,
                settings.oauth_scope.take(),
                timeout,
            )
            .map_err(configuration)?;
            Tokens::Flow(Box::new(flow))
        }
        (None, None) => {
            return Err(configuration(
                "auth = \"xoauth2\" needs a token: oauth_token_url with the client credentials, or CMSI_MAIL_SMTP_TOKEN",
            ));
        }
    };
    Ok(Login::Xoauth2 { user, tokens })
}

/// Adds a later transaction's outcome for some recipients to the receipt of
/// the first.
fn merge(receipt: &mut Receipt, later: Receipt) {
    receipt.rejected.retain(|r| {
        !later.accepted.contains(&r.recipient)
            && !later.rejected.iter().any(|l| l.recipient == r.recipient)
    });
    receipt.accepted.extend(later.accepted);
    receipt.rejected.extend(later.rejected);
    if let (Some(first), Some(next)) = (&mut receipt.transport_id, later.transport_id) {
        first.push_str("; ");
        first.push_str(&next);
    }
}

#[async_trait]
impl Transport for SmtpTransport {
    /// Sends, retrying what may succeed later: the whole message after a 4xx
    /// or a connection lost before the final dot, and then, in a transaction
    /// of their own, the recipients refused with a 4xx while others were
    /// accepted (greylisting). At most `max_attempts` transactions in all.
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        let mut attempt = 1;
        let mut receipt: Option<Receipt> = None;
        let mut pending = envelope.clone();
        loop {
            let outcome = self.attempt(&pending, message).await;
            // `None` when this was the last attempt allowed.
            let delay = self.retry.delay_after(attempt);
            let retry = match outcome {
                Ok(done) => {
                    let receipt = match &mut receipt {
                        Some(receipt) => {
                            merge(receipt, done);
                            receipt
                        }
                        None => receipt.insert(done),
                    };
                    let again = envelope.retain(|recipient| {
                        receipt
                            .rejected
                            .iter()
                            .any(|r| r.temporary && r.recipient == recipient)
                    });
                    match again {
                        Some(again) if delay.is_some() => {
                            pending = again;
                            "some recipients were refused for now".to_owned()
                        }
                        _ => return Ok(receipt.clone()),
                    }
                }
                Err(failure) if failure.retry && delay.is_some() => failure.error.to_string(),
                Err(failure) => {
                    return match receipt {
                        // The message went to some recipients already: the
                        // receipt lists them, and the rest as still refused.
                        Some(receipt) => Ok(receipt),
                        None if attempt > 1 => Err(TransportError::new(
                            failure.error.kind(),
                            format!("{} (after {attempt} attempts)", failure.error.message()),
                        )
                        .with_source(failure.error)),
                        None => Err(failure.error),
                    };
                }
            };
            let delay = delay.unwrap_or_default();
            tracing::info!(attempt, reason = %retry, delay_ms = delay.as_millis() as u64, "SMTP: trying again");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Ready when a pooled connection answers NOOP, or a new one connects,
    /// greets and authenticates (it is then kept for the next delivery).
    /// Tried once: no retries, each step within `timeout_secs`.
    async fn ready(&self) -> Result<(), TransportError> {
        let connection = self.checkout().await.map_err(|failure| failure.error)?;
        self.checkin(connection);
        Ok(())
    }

    async fn close(&self) {
        let idle = std::mem::take(&mut *self.lock_idle());
        for mut connection in idle {
            let _ = tokio::time::timeout(self.timeout, connection.quit()).await;
        }
    }
}
