//! The whole path in one call: request → validated message → bytes → transport,
//! and the ESB response for the outcome.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::address::Mailbox;
use crate::compose::{ComposeOptions, Composed};
use crate::directory::{StaticDirectory, UserDirectory};
use crate::error::{CODE_OK, Error, Problem};
use crate::message::{Limits, UsernameCheck, Validator};
use crate::request::SendMailRequest;
use crate::transport::{Envelope, Receipt, Transport, TransportErrorKind};

/// Validates, composes and sends `send_mail` requests through one transport.
pub struct Mailer<T> {
    transport: T,
    sender: Mailbox,
    directory: Arc<dyn UserDirectory>,
    limits: Limits,
    compose: ComposeOptions,
}

/// A delivered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// What the transport reported.
    pub receipt: Receipt,
    /// Usernames that did not resolve (the mail went to the others).
    pub username_check: UsernameCheck,
}

impl<T: Transport> Mailer<T> {
    /// A mailer that sends through `transport`, from `default_sender` when a
    /// request names no sender, with no user directory (every username unknown).
    pub fn new(transport: T, default_sender: Mailbox) -> Self {
        Mailer {
            transport,
            sender: default_sender,
            directory: Arc::new(StaticDirectory::new()),
            limits: Limits::default(),
            compose: ComposeOptions::new(),
        }
    }

    /// Resolves `receiver__username` and `cc__username` through `directory`.
    pub fn with_directory(mut self, directory: Arc<dyn UserDirectory>) -> Self {
        self.directory = directory;
        self
    }

    /// Replaces the request limits.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Stamps every message with these options (a fixed seed and date make
    /// output reproducible in tests).
    pub fn with_compose_options(mut self, options: ComposeOptions) -> Self {
        self.compose = options;
        self
    }

    /// The transport.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Validates, composes and sends one request. Nothing is sent unless the
    /// whole request is valid.
    pub async fn send(&self, request: SendMailRequest<'_>) -> Result<Sent, Error> {
        let prepared = self.prepare(request)?;
        self.deliver(&prepared).await
    }

    /// Sends one request and answers as the ESB does; the usernames that did
    /// not resolve are reported whether or not delivery succeeded.
    pub async fn respond(&self, request: SendMailRequest<'_>) -> EsbResponse {
        match self.prepare(request) {
            Ok(prepared) => self.respond_prepared(&prepared).await,
            Err(error) => EsbResponse::error(&error),
        }
    }

    /// Sends a prepared message and answers as the ESB does.
    pub async fn respond_prepared(&self, prepared: &Prepared) -> EsbResponse {
        match self.deliver(prepared).await {
            Ok(sent) => EsbResponse::ok(&sent),
            Err(error) => EsbResponse::error(&error).with_username_check(&prepared.username_check),
        }
    }

    /// Reads a JSON request, sends it, and answers as the ESB does.
    pub async fn send_json(&self, json: &[u8]) -> EsbResponse {
        match SendMailRequest::from_json(json) {
            Ok(request) => self.respond(request).await,
            Err(error) => EsbResponse::error(&error.into()),
        }
    }

    /// Hands a prepared message to the transport.
    pub async fn deliver(&self, prepared: &Prepared) -> Result<Sent, Error> {
        let receipt = self
            .transport
            .send(&prepared.envelope, &prepared.composed)
            .await?;
        Ok(Sent {
            receipt,
            username_check: prepared.username_check.clone(),
        })
    }
}

impl<T> Mailer<T> {
    /// Validates and composes one request, without sending it: the CPU-bound
    /// half of [`Mailer::send`], for a caller that runs it off its async
    /// threads or hands the result to a queue. The validated message (with any
    /// decoded attachment) is dropped here; only the composed bytes are kept.
    pub fn prepare(&self, request: SendMailRequest<'_>) -> Result<Prepared, Error> {
        let validated = Validator::new(self.sender.clone(), self.directory.as_ref())
            .with_limits(self.limits)
            .validate(request)?;
        Ok(Prepared {
            composed: validated.message.compose(&self.compose),
            envelope: validated.message.envelope(),
            username_check: validated.username_check,
        })
    }
}

/// A request validated and composed: what a transport (or a queue) takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Who the message goes to.
    pub envelope: Envelope,
    /// The message.
    pub composed: Composed,
    /// Usernames that did not resolve.
    pub username_check: UsernameCheck,
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
            Error::Directory(_) => json!({ "kind": "directory" }),
            Error::Transport(transport) => json!({
                "kind": match transport.kind() {
                    TransportErrorKind::Transient => "transient",
                    TransportErrorKind::Permanent => "permanent",
                    TransportErrorKind::Configuration => "configuration",
                    TransportErrorKind::Io => "io",
                }
            }),
        };
        EsbResponse::failure(error.esb_code(), error.to_string(), data)
    }

    /// A failure with a code and message of the caller's choosing (the gateway
    /// uses it for authentication).
    pub fn failure(code: &str, message: impl Into<String>, data: Value) -> Self {
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
    pub fn with_username_check(mut self, check: &UsernameCheck) -> Self {
        if let (false, Value::Object(data)) = (check.invalid.is_empty(), &mut self.data) {
            data.entry("username_check").or_insert_with(|| json!(check));
        }
        self
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }
}
