//! A cmsi-mail [`Transport`] that delivers over SMTP, built on lettre's SMTP
//! client (tokio, rustls with ring).
//!
//! Use it to send through a mail relay, with the settings the BlueKing ESB
//! used (`smtp_host`, `smtp_port`, `smtp_user`, `smtp_pwd`, `smtp_usessl`,
//! `smtp_usetls`). It runs the SMTP transaction itself, command by command, so
//! that it can tell what lettre's one-call `send` cannot:
//!
//! - a recipient refused while others are accepted is listed in the receipt
//!   instead of failing the whole message; one refused with a 4xx is first
//!   tried again in a transaction of its own (greylisting);
//! - a 4xx reply or a lost connection *before* the message was complete is
//!   retried with backoff (3 attempts by default); a 5xx reply is not;
//! - a connection lost *after* the final dot, when the server may already have
//!   the message, is reported and not retried, so nothing arrives twice.
//!
//! Connections are kept open between messages and checked with NOOP before
//! reuse.
//!
//! ```no_run
//! # async fn example() -> Result<(), cmsi_mail::TransportError> {
//! use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
//!
//! let transport = SmtpTransport::new(SmtpSettings {
//!     smtp_host: "smtp.example.com".into(),
//!     smtp_port: Some(587),
//!     smtp_user: Some("noreply@example.com".into()),
//!     smtp_pwd: Some("secret".into()),
//!     smtp_usetls: true,
//!     ..SmtpSettings::default()
//! })?;
//! // transport.send(&envelope, &composed).await?;
//! # Ok(())
//! # }
//! ```

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use cmsi_mail::{
    Composed, Envelope, Receipt, Rejection, Transport, TransportError, TransportErrorKind,
};
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde::Deserialize;

/// SMTP settings, named as the ESB names them so that an operator can carry
/// them over.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Server host name or address.
    pub smtp_host: String,
    /// Server port; default 465 with `smtp_usessl`, else 25.
    #[serde(default)]
    pub smtp_port: Option<u16>,
    /// Login for AUTH (PLAIN or LOGIN); no AUTH when absent.
    #[serde(default)]
    pub smtp_user: Option<String>,
    /// Password for AUTH.
    #[serde(default)]
    pub smtp_pwd: Option<String>,
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    #[serde(default)]
    pub smtp_usessl: bool,
    /// STARTTLS, required: a server that does not offer it is an error.
    #[serde(default)]
    pub smtp_usetls: bool,
    /// PEM file of a CA to trust besides the public roots (a private relay).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds one SMTP step may take (default 10).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Attempts for a transient failure, the first included (default 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Name sent in EHLO (default: `localhost` as an address literal).
    #[serde(default)]
    pub hello_name: Option<String>,
    /// Idle connections kept for reuse (default 4).
    #[serde(default)]
    pub pool_size: Option<usize>,
}

/// Everything but the password.
impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("smtp_host", &self.smtp_host)
            .field("smtp_port", &self.smtp_port)
            .field("smtp_user", &self.smtp_user)
            .field("smtp_pwd", &self.smtp_pwd.as_ref().map(|_| "<redacted>"))
            .field("smtp_usessl", &self.smtp_usessl)
            .field("smtp_usetls", &self.smtp_usetls)
            .field("ca_file", &self.ca_file)
            .field("timeout_secs", &self.timeout_secs)
            .field("max_attempts", &self.max_attempts)
            .field("hello_name", &self.hello_name)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Plain,
    StartTls,
    Implicit,
}

/// Delivers over SMTP. Cheap to share (`Arc`); connections are pooled inside.
pub struct SmtpTransport {
    host: String,
    port: u16,
    security: Security,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
    pool_size: usize,
    idle: Mutex<Vec<AsyncSmtpConnection>>,
}

/// A failed attempt, and whether trying again is safe and may help.
struct Failure {
    error: TransportError,
    retry: bool,
    /// The connection is still in a known state and may be reused.
    reusable: bool,
}

impl Failure {
    fn new(kind: TransportErrorKind, message: String) -> Self {
        Failure {
            retry: kind == TransportErrorKind::Transient,
            error: TransportError::new(kind, message),
            reusable: false,
        }
    }

    /// From a lettre error at `step`: replies keep the connection usable; a
    /// transient reply or a broken connection may be retried.
    fn smtp(step: &str, error: SmtpError) -> Self {
        let kind = kind_of(&error);
        let reusable = is_reply(&error);
        let mut failure = Failure::new(kind, format!("{step}: {error}"));
        failure.error = failure.error.with_source(error);
        failure.reusable = reusable;
        failure
    }

    fn timeout(step: &str, after: Duration) -> Self {
        Failure::new(
            TransportErrorKind::Transient,
            format!("{step}: no answer within {:.1} s", after.as_secs_f64()),
        )
    }

    fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

/// Whether the error is the server's 4xx or 5xx reply (the connection is fine).
fn is_reply(error: &SmtpError) -> bool {
    error.status().is_some()
}

/// Whether the server's certificate was refused, somewhere in the error chain.
fn is_untrusted_certificate(error: &SmtpError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        let rustls_error = current.downcast_ref::<rustls::Error>().or_else(|| {
            current
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(_)) = rustls_error {
            return true;
        }
        cause = current.source();
    }
    false
}

fn kind_of(error: &SmtpError) -> TransportErrorKind {
    if is_untrusted_certificate(error) {
        // Retrying will not make the certificate trusted: set ca_file.
        TransportErrorKind::Configuration
    } else if error.is_permanent() {
        TransportErrorKind::Permanent
    } else if error.is_transient() || error.is_timeout() {
        TransportErrorKind::Transient
    } else if error.is_tls() || error.is_client() {
        TransportErrorKind::Configuration
    } else {
        // The connection failed or broke: nothing is known to be delivered.
        TransportErrorKind::Transient
    }
}

fn configuration(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Configuration, message)
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
            max_attempts: settings.max_attempts.unwrap_or(3).max(1),
            backoff: Duration::from_millis(500),
            pool_size: settings.pool_size.unwrap_or(4),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Replaces the first retry delay (default 500 ms; it doubles per attempt).
    pub fn with_backoff(mut self, first: Duration) -> Self {
        self.backoff = first;
        self
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<AsyncSmtpConnection>> {
        // A panic elsewhere cannot leave the list half-changed: push and pop only.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn step<T>(
        &self,
        step: &str,
        limit: Duration,
        future: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(limit, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::smtp(step, error)),
            Err(_) => Err(Failure::timeout(step, limit)),
        }
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let implicit = match self.security {
            Security::Implicit => self.tls.clone(),
            _ => None,
        };
        let server = (self.host.as_str(), self.port);
        let mut connection = self
            .step(
                &format!("connect to {}:{}", self.host, self.port),
                self.timeout,
                AsyncSmtpConnection::connect_tokio1(
                    server,
                    Some(self.timeout),
                    &self.hello,
                    implicit,
                    None,
                ),
            )
            .await?;
        if self.security == Security::StartTls {
            let Some(tls) = self.tls.clone() else {
                return Err(Failure::new(
                    TransportErrorKind::Configuration,
                    "STARTTLS without TLS parameters".into(),
                ));
            };
            if !connection.can_starttls() {
                return Err(Failure::new(
                    TransportErrorKind::Permanent,
                    format!(
                        "{}:{} does not offer STARTTLS, which smtp_usetls requires",
                        self.host, self.port
                    ),
                ));
            }
            self.step(
                "STARTTLS",
                self.timeout,
                connection.starttls(tls, &self.hello),
            )
            .await?;
        }
        if let Some(credentials) = &self.credentials {
            self.step(
                "AUTH",
                self.timeout,
                connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await?;
        }
        Ok(connection)
    }

    /// An idle connection that still answers NOOP, or a new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
        loop {
            let Some(mut connection) = self.lock_idle().pop() else {
                return self.connect().await;
            };
            let alive = tokio::time::timeout(self.timeout, connection.test_connected())
                .await
                .unwrap_or(false);
            if alive {
                return Ok(connection);
            }
            tracing::debug!("idle SMTP connection was closed by the server; dropping it");
            connection.abort().await;
        }
    }

    fn checkin(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.lock_idle();
        if idle.len() < self.pool_size && !connection.has_broken() {
            idle.push(connection);
        }
    }

    async fn attempt(&self, envelope: &Envelope, message: &Composed) -> Result<Receipt, Failure> {
        let mut connection = self.checkout().await?;
        match self.transaction(&mut connection, envelope, message).await {
            Ok(receipt) => {
                self.checkin(connection);
                Ok(receipt)
            }
            Err(failure) => {
                let reset = failure.reusable
                    && self
                        .step("RSET", self.timeout, connection.command("RSET\r\n"))
                        .await
                        .is_ok();
                if reset {
                    self.checkin(connection);
                } else {
                    connection.abort().await;
                }
                Err(failure)
            }
        }
    }

    async fn transaction(
        &self,
        connection: &mut AsyncSmtpConnection,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, Failure> {
        // Addresses were validated by cmsi-mail: no line breaks, no spaces
        // outside a quoted local part.
        let mail = format!("MAIL FROM:<{}>\r\n", envelope.sender());
        self.step("MAIL FROM", self.timeout, connection.command(mail))
            .await?;

        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        let mut only_transient = true;
        for recipient in envelope.recipients() {
            let rcpt = format!("RCPT TO:<{recipient}>\r\n");
            match tokio::time::timeout(self.timeout, connection.command(rcpt)).await {
                Ok(Ok(_)) => accepted.push(recipient.clone()),
                Ok(Err(error)) if is_reply(&error) => {
                    only_transient &= error.is_transient();
                    rejected.push(Rejection {
                        recipient: recipient.clone(),
                        reason: error.to_string(),
                        temporary: error.is_transient(),
                    });
                }
                Ok(Err(error)) => return Err(Failure::smtp("RCPT TO", error)),
                Err(_) => return Err(Failure::timeout("RCPT TO", self.timeout)),
            }
        }
        if accepted.is_empty() {
            let reasons: Vec<String> = rejected
                .iter()
                .map(|r| format!("{}: {}", r.recipient, r.reason))
                .collect();
            let kind = if only_transient {
                TransportErrorKind::Transient
            } else {
                TransportErrorKind::Permanent
            };
            let mut failure = Failure::new(
                kind,
                format!("every recipient was refused: {}", reasons.join("; ")),
            );
            failure.reusable = true;
            return Err(failure);
        }

        self.step("DATA", self.timeout, connection.command("DATA\r\n"))
            .await?;

        // Whether every byte of the message was handed to the connection: a
        // failure before that leaves the server without a complete message
        // (safe to retry); a failure after it may follow a delivery.
        let sent_all = AtomicBool::new(false);
        let pieces = Pieces {
            rest: &message.bytes,
            done: &sent_all,
        };
        // Slow links get time in proportion to the size.
        let per_mib = u32::try_from(message.bytes.len() >> 20).unwrap_or(u32::MAX);
        let limit = self.timeout.saturating_mul(per_mib.saturating_add(1));
        match tokio::time::timeout(limit, connection.message_iter(pieces)).await {
            Ok(Ok(response)) => Ok(Receipt {
                message_id: message.message_id.clone(),
                accepted,
                rejected,
                transport_id: Some(
                    std::iter::once(response.code().to_string())
                        .chain(response.message().map(str::to_owned))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
            }),
            Ok(Err(error)) if is_reply(&error) => Err(Failure::smtp("end of DATA", error)),
            Ok(Err(error)) if !sent_all.load(Ordering::Relaxed) => {
                Err(Failure::smtp("sending DATA", error))
            }
            // Out of time before the last byte was handed over: the server has
            // no complete message, so trying again is safe.
            Err(_) if !sent_all.load(Ordering::Relaxed) => {
                Err(Failure::timeout("sending DATA", limit))
            }
            outcome => {
                let cause = match outcome {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {:.1} s", limit.as_secs_f64()),
                };
                Err(Failure::new(
                    TransportErrorKind::Transient,
                    format!(
                        "the connection failed after the whole message was sent ({cause}); \
                         the server may have accepted it, so it is not sent again"
                    ),
                )
                .no_retry())
            }
        }
    }
}

/// The message in pieces for lettre's `message_iter`, noting when the last
/// piece has been taken (lettre writes each piece before asking for the next).
struct Pieces<'m> {
    rest: &'m [u8],
    done: &'m AtomicBool,
}

impl<'m> Iterator for Pieces<'m> {
    type Item = &'m [u8];

    fn next(&mut self) -> Option<&'m [u8]> {
        if self.rest.is_empty() {
            self.done.store(true, Ordering::Relaxed);
            return None;
        }
        let (piece, rest) = self.rest.split_at(self.rest.len().min(256 * 1024));
        self.rest = rest;
        Some(piece)
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
            let retry = match self.attempt(&pending, message).await {
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
                        Some(again) if attempt < self.max_attempts => {
                            pending = again;
                            "some recipients were refused for now".to_owned()
                        }
                        _ => return Ok(receipt.clone()),
                    }
                }
                Err(failure) if failure.retry && attempt < self.max_attempts => {
                    failure.error.to_string()
                }
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
            let delay = self.backoff.saturating_mul(1 << (attempt - 1).min(6));
            tracing::info!(attempt, reason = %retry, delay_ms = delay.as_millis() as u64, "SMTP: trying again");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn close(&self) {
        let idle = std::mem::take(&mut *self.lock_idle());
        for mut connection in idle {
            let _ = tokio::time::timeout(self.timeout, connection.quit()).await;
        }
    }
}
