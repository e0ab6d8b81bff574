//! The ESB's view of an outcome: the umbrella [`Error`] of the whole flow, its
//! response codes, and the [`EsbResponse`] envelope. This is the one place that
//! maps outcomes to codes; the gateway and the CLI build their answers here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::directory::DirectoryError;
use crate::error::{Problem, RequestError};
use crate::mailer::Sent;
use crate::transport::TransportError;
use crate::validate::{UsernameCheck, ValidationError};

/// ESB code for a successful call.
pub const CODE_OK: &str = "00";
/// ESB code for a bad request or failed authentication.
pub const CODE_BAD_REQUEST: &str = "1306000";
/// ESB code for a failure behind the component: delivery or the user directory.
pub const CODE_BACKEND_FAILED: &str = "1306201";
/// ESB code for a request over its app's quota or the server's: the ESB's own
/// `RATE_LIMIT_RESTRICTION` ("Access frequency limit").
pub const CODE_RATE_LIMITED: &str = "1306429";

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
            Error::Transport(transport) => transport.kind().label(),
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
    /// `"00"`, `"1306000"` (bad request), `"1306201"` (delivery failed) or
    /// `"1306429"` (over a request quota).
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
        EsbResponse::ok_with_data(Value::Object(data)).with_username_check(&sent.username_check)
    }

    /// The response for a message a queue has taken, to be delivered later:
    /// `data` holds `message_id`, `"queued": true`, the envelope's
    /// `recipients` and, when some usernames did not resolve, `username_check`.
    pub fn queued(message_id: &str, recipients: &[String], check: &UsernameCheck) -> Self {
        EsbResponse::ok_with_data(json!({
            "message_id": format!("<{message_id}>"),
            "queued": true,
            "recipients": recipients,
        }))
        .with_username_check(check)
    }

    /// A success whose `data` was made before: a queue's stored first answer
    /// to a repeated request, or a status.
    pub fn ok_with_data(data: Value) -> Self {
        EsbResponse {
            result: true,
            code: CODE_OK.to_owned(),
            message: "OK".to_owned(),
            data,
            request_id: None,
        }
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

    /// A channel's server (a `dest_url`) could not be reached or did not
    /// answer as it must (code `1306201`, `data.kind` `channel`).
    pub fn forward_failed(message: impl Into<String>) -> Self {
        EsbResponse::failure(CODE_BACKEND_FAILED, message, json!({ "kind": "channel" }))
    }

    /// A channel server's JSON answer relayed as the ESB relays it: `result` is
    /// its truthiness (absent is false), `message` and `data` are kept, and
    /// `data.username_check.invalid` is added when missing. The code is `00`
    /// when `result` is true; otherwise the answer's own code (a string or a
    /// number), else `1306000`.
    pub fn relayed(mut answer: Map<String, Value>) -> Self {
        let result = answer.get("result").is_some_and(truthy);
        let code = match answer.get("code") {
            _ if result => CODE_OK.to_owned(),
            Some(Value::String(code)) if !code.is_empty() => code.clone(),
            Some(Value::Number(code)) => code.to_string(),
            _ => CODE_BAD_REQUEST.to_owned(),
        };
        let message = match answer.remove("message") {
            Some(Value::String(message)) => message,
            None | Some(Value::Null) => String::new(),
            Some(other) => other.to_string(),
        };
        let mut data = answer.remove("data").unwrap_or(Value::Null);
        if data.is_null() {
            data = json!({});
        }
        if let Value::Object(fields) = &mut data {
            fields
                .entry("username_check")
                .or_insert_with(|| json!({ "invalid": [] }));
        }
        EsbResponse {
            result,
            code,
            message,
            data,
            request_id: None,
        }
    }

    /// The caller is over a request quota; trying again after the time the
    /// server names will work (code `1306429`).
    pub fn rate_limited(message: impl Into<String>, data: Value) -> Self {
        EsbResponse::failure(CODE_RATE_LIMITED, message, data)
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

/// Python's truth value of a JSON value, as the ESB tests `result`.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(fields) => !fields.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(answer: Value) -> EsbResponse {
        match answer {
            Value::Object(answer) => EsbResponse::relayed(answer),
            _ => unreachable!(),
        }
    }

    #[test]
    fn relayed_answers_keep_their_message_and_data() {
        let ok = relay(json!({"result": true, "code": 0, "message": "sent", "data": {"id": 7}}));
        assert!(ok.result);
        assert_eq!(ok.code, CODE_OK);
        assert_eq!(ok.message, "sent");
        assert_eq!(ok.data, json!({"id": 7, "username_check": {"invalid": []}}));

        let failed = relay(json!({"result": false, "code": 42, "message": "no such user"}));
        assert!(!failed.result);
        assert_eq!(failed.code, "42");
        assert_eq!(failed.data, json!({"username_check": {"invalid": []}}));

        for (answer, result, code) in [
            (json!({}), false, CODE_BAD_REQUEST),
            (json!({"result": 1}), true, CODE_OK),
            (json!({"result": "False"}), true, CODE_OK),
            (json!({"result": ""}), false, CODE_BAD_REQUEST),
            (json!({"result": 0, "code": "E1"}), false, "E1"),
            (json!({"result": null, "code": ""}), false, CODE_BAD_REQUEST),
        ] {
            let relayed = relay(answer.clone());
            assert_eq!(
                (relayed.result, relayed.code.as_str()),
                (result, code),
                "{answer}"
            );
        }
        let listed = relay(json!({"result": true, "data": [1, 2], "message": ["x"]}));
        assert_eq!(listed.data, json!([1, 2]));
        assert_eq!(listed.message, r#"["x"]"#);
    }
}
