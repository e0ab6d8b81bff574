//! Connections: opened with STARTTLS or implicit TLS and AUTH, kept idle for
//! reuse, checked with NOOP before they are used again.

use std::time::Duration;

use cmsi_mail::TransportErrorKind;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::AsyncSmtpConnection;

use crate::failure::Failure;
use crate::settings::Security;
use crate::{Login, SmtpTransport};

impl SmtpTransport {
    pub(crate) fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<AsyncSmtpConnection>> {
        // A panic elsewhere cannot leave the list half-changed: push and pop only.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) async fn step<T>(
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

    pub(crate) async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
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
        match &self.login {
            Login::None => {}
            Login::Password(credentials) => {
                self.step(
                    "AUTH",
                    self.timeout,
                    connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
                )
                .await?;
            }
            Login::Xoauth2 { user, tokens } => {
                let token = tokens.token().await?;
                let first = self.xoauth2(&mut connection, user, token.clone()).await;
                // A refused token (revoked, or expired early) is fetched anew once.
                if let Err(failure) = first {
                    if !failure.is_auth_refusal() || !tokens.refused(&token).await {
                        return Err(failure);
                    }
                    tracing::info!("SMTP: the server refused the OAuth2 token; fetching a new one");
                    let token = tokens.token().await?;
                    self.xoauth2(&mut connection, user, token).await?;
                }
            }
        }
        Ok(connection)
    }

    async fn xoauth2(
        &self,
        connection: &mut AsyncSmtpConnection,
        user: &str,
        token: String,
    ) -> Result<(), Failure> {
        let credentials = Credentials::new(user.to_owned(), token);
        self.step(
            "AUTH XOAUTH2",
            self.timeout,
            connection.auth(&[Mechanism::Xoauth2], &credentials),
        )
        .await
        .map(drop)
    }

    /// An idle connection that still answers NOOP, or a new one.
    pub(crate) async fn checkout(&self) -> Result<AsyncSmtpConnection, Failure> {
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

    pub(crate) fn checkin(&self, connection: AsyncSmtpConnection) {
        let mut idle = self.lock_idle();
        if idle.len() < self.pool_size && !connection.has_broken() {
            idle.push(connection);
        }
    }
}
