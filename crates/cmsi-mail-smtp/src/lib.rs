#![doc = include_str!("../README.md")]

mod connection;
mod failure;
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
use crate::settings::Security;

pub use settings::SmtpSettings;

/// Delivers over SMTP. Cheap to share (`Arc`); connections are pooled inside.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
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
            .field("authenticates", &self.credentials.is_some())
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl SmtpTransport {
    /// A transport for `settings`. Fails when the settings contradict each
    /// other or the CA file cannot be read; no connection is made yet.
    pub fn new(settings: SmtpSettings) -> Result<Self, TransportError> {
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
        let credentials = match (settings.smtp_user, settings.smtp_pwd) {
            (Some(user), Some(password)) => Some(Credentials::new(user, password)),
            (None, None) => None,
            (Some(_), None) => return Err(configuration("smtp_user is set but smtp_pwd is not")),
            (None, Some(_)) => return Err(configuration("smtp_pwd is set but smtp_user is not")),
        };
        if credentials.is_some() && security == Security::Plain {
            tracing::warn!(
                host = %settings.smtp_host,
                "SMTP AUTH without TLS: the password crosses the network in clear text"
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
        let timeout = Duration::try_from_secs_f64(settings.timeout_secs.unwrap_or(10.0))
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| configuration("timeout_secs must be a positive number of seconds"))?;
        Ok(SmtpTransport {
            host: settings.smtp_host,
            port,
            security,
            tls,
            credentials,
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
