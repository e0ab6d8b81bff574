//! The seam between composition and delivery: a [`Transport`] takes an
//! [`Envelope`] and the composed bytes and answers with a [`Receipt`] or a
//! [`TransportError`]. Every transport uses these same types, so a program can
//! choose its transport at run time (`Box<dyn Transport>`).

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::address::Envelope;
use crate::compose::Composed;

/// Delivers composed messages.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Delivers `message` to the envelope's recipients.
    ///
    /// Returns once the message is accepted for every recipient the receipt
    /// lists as accepted; recipients that were refused while others were
    /// accepted are listed in [`Receipt::rejected`]. When no recipient is
    /// accepted the result is an error. A transport retries transient failures
    /// itself, within its own bounds, and never delivers a message twice to
    /// the same recipient.
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError>;

    /// Ends what the transport keeps open (pooled connections), politely.
    /// Called when a program shuts down; the default does nothing.
    async fn close(&self) {}

    /// Whether the transport can deliver now, checked cheaply and without
    /// sending anything: SMTP connects and greets (or finds a pooled
    /// connection that answers NOOP), SES reaches its endpoint, the file
    /// transport finds its directory writable. A server's readiness probe
    /// calls it, so it must not be costly to the relay; callers cache the
    /// answer. The default says ready.
    async fn ready(&self) -> Result<(), TransportError> {
        Ok(())
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        (**self).send(envelope, message).await
    }

    async fn close(&self) {
        (**self).close().await;
    }

    async fn ready(&self) -> Result<(), TransportError> {
        (**self).ready().await
    }
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        (**self).send(envelope, message).await
    }

    async fn close(&self) {
        (**self).close().await;
    }

    async fn ready(&self) -> Result<(), TransportError> {
        (**self).ready().await
    }
}

/// What a transport reports for a delivered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// Our Message-ID, without angle brackets.
    pub message_id: String,
    /// Recipients the transport accepted the message for.
    pub accepted: Vec<String>,
    /// Recipients refused while others were accepted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
    /// The transport's own id: the SMTP server's queue reply, the SES
    /// MessageId, the file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport_id: Option<String>,
}

/// A recipient the transport refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    /// The address.
    pub recipient: String,
    /// The server's reason.
    pub reason: String,
    /// Whether the refusal was temporary (a 4xx reply) and the transport's
    /// retries for this recipient are spent.
    pub temporary: bool,
}

/// Delivery failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    kind: TransportErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// What kind of failure, for a caller that decides whether to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// May succeed later: a 4xx reply, throttling, a dropped connection, a
    /// timeout. The transport's own retries are already spent.
    Transient,
    /// Will not succeed as it is: a 5xx reply, a rejected message, bad
    /// credentials.
    Permanent,
    /// The transport is set up wrongly: missing settings, an unreadable
    /// certificate, an unknown region.
    Configuration,
    /// Local input or output failed: a full disk, a missing directory.
    Io,
}

impl TransportErrorKind {
    /// The kind in a word, as the ESB response's `data.kind` and the metrics
    /// say it: `transient`, `permanent`, `configuration`, `io`.
    pub fn label(self) -> &'static str {
        match self {
            TransportErrorKind::Transient => "transient",
            TransportErrorKind::Permanent => "permanent",
            TransportErrorKind::Configuration => "configuration",
            TransportErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Transient => "temporary delivery failure",
            TransportErrorKind::Permanent => "delivery refused",
            TransportErrorKind::Configuration => "transport configuration",
            TransportErrorKind::Io => "I/O error",
        })
    }
}

impl TransportError {
    /// An error of `kind` with a message that says what happened.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        TransportError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == TransportErrorKind::Transient
    }

    /// Whether the same message will never succeed.
    pub fn is_permanent(&self) -> bool {
        self.kind == TransportErrorKind::Permanent
    }
}
