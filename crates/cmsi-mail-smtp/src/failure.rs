//! What went wrong in an attempt, and what that means for trying again.

use std::time::Duration;

use cmsi_mail::{TransportError, TransportErrorKind};
use lettre::transport::smtp::Error as SmtpError;

/// A failed attempt, and whether trying again is safe and may help.
pub(crate) struct Failure {
    pub(crate) error: TransportError,
    pub(crate) retry: bool,
    /// The connection is still in a known state and may be reused.
    pub(crate) reusable: bool,
    /// The server answered 535: credentials refused.
    auth_refused: bool,
}

impl Failure {
    pub(crate) fn new(kind: TransportErrorKind, message: String) -> Self {
        Failure {
            retry: kind == TransportErrorKind::Transient,
            error: TransportError::new(kind, message),
            reusable: false,
            auth_refused: false,
        }
    }

    /// From a lettre error at `step`: replies keep the connection usable; a
    /// transient reply or a broken connection may be retried.
    pub(crate) fn smtp(step: &str, error: SmtpError) -> Self {
        let kind = kind_of(&error);
        let reusable = is_reply(&error);
        let auth_refused = error.status().is_some_and(|code| code.to_string() == "535");
        let mut failure = Failure::new(kind, format!("{step}: {error}"));
        failure.auth_refused = auth_refused;
        failure.error = failure.error.with_source(error);
        failure.reusable = reusable;
        failure
    }

    pub(crate) fn timeout(step: &str, after: Duration) -> Self {
        Failure::new(
            TransportErrorKind::Transient,
            format!("{step}: no answer within {:.1} s", after.as_secs_f64()),
        )
    }

    /// Whether the server refused the credentials (535).
    pub(crate) fn is_auth_refusal(&self) -> bool {
        self.auth_refused
    }

    pub(crate) fn no_retry(mut self) -> Self {
        self.retry = false;
        self
    }
}

/// Whether the error is the server's 4xx or 5xx reply (the connection is fine).
pub(crate) fn is_reply(error: &SmtpError) -> bool {
    error.status().is_some()
}

/// Whether the server's certificate was refused, somewhere in the error chain.
pub(crate) fn is_untrusted_certificate(error: &SmtpError) -> bool {
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

pub(crate) fn kind_of(error: &SmtpError) -> TransportErrorKind {
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

pub(crate) fn configuration(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Configuration, message)
}
