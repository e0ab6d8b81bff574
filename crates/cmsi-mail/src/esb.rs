//! The ESB's view of an outcome: the umbrella [`Error`] of the whole flow, its
//! response codes, and the [`EsbResponse`] envelope. This is the one place that
//! maps outcomes to codes; the gateway and the CLI build their answers here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::directory::DirectoryError;
use crate::error::{Problem, RequestError};
use crate::mailer::Sent;
use crate::transport::{TransportError, TransportErrorKind};
use crate::validate::{UsernameCheck, ValidationError};

/// ESB code for a successful call.
pub const CODE_OK: &str = "00";
/// ESB code for a bad request or failed authentication.
pub const CODE_BAD_REQUEST: &str = "1306000";
/// ESB code for a failure behind the component: delivery or the user directory.
pub const CODE_BACKEND_FAILED: &str = "1306201";

/// Anything that stops a `send_mail` request from becoming a delivered
/// message: a step-2 failure ([`ValidationError`]) or a step-4 one
/// ([`TransportError`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request itself is wrong; the caller must change it.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The user directory could not answer.
    #[error("user directory: {0}")]
    Directory(#[from] DirectoryError),
    /// The transport did not deliver the message.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The composed message could not be DKIM-signed.
    #[error("{0}")]
    Signing(String),
}

impl Error {
    /// The ESB response code for this error (SPEC §4).
    pub fn esb_code(&self) -> &'static str {
        match self {
            Error::Request(_) => CODE_BAD_REQUEST,
            Error::Directory(_) | Error::Transport(_) | Error::Signing(_) => CODE_BACKEND_FAILED,
        }
    }

    /// What failed, in a word (for `data.kind` and for logs): `request`,
    /// `directory`, or the transport failure's kind (`transient`, `permanent`,
    /// `configuration`, `io`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Request(_) => "request",
            Error::Directory(_) => "directory",
            Error::Signing(_) => "signing",
            Error::Transport(transport) => match transport.kind() {
                TransportErrorKind::Transient => "transient",
                TransportErrorKind::Permanent => "permanent",
                TransportErrorKind::Configuration => "configuration",
                TransportErrorKind::Io => "io",
            },
        }
    }

    /// The request field at fault, for a bad request.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Request(request) => Some(request.field()),
            Error::Directory(_) | Error::Transport(_) | Error::Signing(_) => None,
        }
    }
}

impl From<ValidationError> for Error {
    fn from(error: ValidationError) -> Self {
        match error {
            ValidationError::Request(error) => Error::Request(error),
            ValidationError::Directory(error) => Error::Directory(error),
        }
    }
}

/// The ESB response envelope (SPEC §4):
/// `{"result": true, "code": "00", "message": "OK", "data": {...}, "request_id": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EsbResponse {
    /// Whether the mail was sent.
    pub result: bool,
    /// `"00"`, `"1306000"` (bad request) or `"1306201"` (delivery failed).
    pub code: String,
    /// `OK`, or what went wrong.
    pub message: String,
    /// Details: `message_id` and recipients on success; the field at fault,
    /// the failure kind and `username_check` on failure.
    pub data: Value,
    /// Set by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl EsbResponse {
    /// The response for a sent mail.
    pub fn ok(sent: &Sent) -> Self {
        let mut data = Map::new();
        data.insert(
            "message_id".into(),
            json!(format!("<{}>", sent.receipt.message_id)),
        );
        data.insert("accepted".into(), json!(sent.receipt.accepted));
        if !sent.receipt.rejected.is_empty() {
            data.insert("rejected".into(), json!(sent.receipt.rejected));
        }
        if let Some(id) = &sent.receipt.transport_id {
            data.insert("transport_id".into(), json!(id));
        }
        EsbResponse {
            result: true,
            code: CODE_OK.to_owned(),
            message: "OK".to_owned(),
            data: Value::Object(data),
            request_id: None,
        }
        .with_username_check(&sent.username_check)
    }

    /// The response for a failed request.
    pub fn error(error: &Error) -> Self {
        let data = match error {
            Error::Request(request) => {
                let mut data = Map::new();
                data.insert("field".into(), json!(request.field()));
                if let Problem::UnknownUsernames(names) = request.problem() {
                    data.insert("username_check".into(), json!({ "invalid": names }));
                }
                Value::Object(data)
            }
            Error::Directory(_) | Error::Transport(_) | Error::Signing(_) => {
                json!({ "kind": error.kind() })
            }
        };
        EsbResponse::failure(error.esb_code(), error.to_string(), data)
    }

    /// A refusal that is the caller's to fix and concerns no request field:
    /// failed authentication, a body the server will not read (code `1306000`).
    pub fn refused(message: impl Into<String>) -> Self {
        EsbResponse::failure(CODE_BAD_REQUEST, message, json!({}))
    }

    /// The service cannot take the request now; trying again later may work
    /// (code `1306201`).
    pub fn unavailable(message: impl Into<String>) -> Self {
        EsbResponse::failure(CODE_BACKEND_FAILED, message, json!({}))
    }

    fn failure(code: &str, message: impl Into<String>, data: Value) -> Self {
        EsbResponse {
            result: false,
            code: code.to_owned(),
            message: message.into(),
            data,
            request_id: None,
        }
    }

    /// The response for an outcome.
    pub fn from_result(result: &Result<Sent, Error>) -> Self {
        match result {
            Ok(sent) => EsbResponse::ok(sent),
            Err(error) => EsbResponse::error(error),
        }
    }

    /// Adds `username_check` to `data` when some usernames did not resolve
    /// (and `data` does not carry one already).
    #[must_use]
    pub fn with_username_check(mut self, check: &UsernameCheck) -> Self {
        if let (false, Value::Object(data)) = (check.invalid.is_empty(), &mut self.data) {
            data.entry("username_check").or_insert_with(|| json!(check));
        }
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}
