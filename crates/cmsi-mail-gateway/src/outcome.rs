//! What a request came to: the ESB answer, its HTTP status, and the one log
//! line every route writes.

use std::time::Instant;

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use cmsi_mail::{Error, EsbResponse, Rejection};
use serde_json::{Value, json};

use crate::auth::AuthError;
use crate::body::BodyError;

/// What one request came to: the answer, and what the log line says of it.
pub(crate) struct Outcome {
    pub(crate) status: StatusCode,
    pub(crate) response: EsbResponse,
    pub(crate) app_code: Option<String>,
    pub(crate) retry_after: Option<u64>,
    /// Recipients the transport accepted.
    pub(crate) recipients: usize,
    /// Why it failed, in words that quote nothing the caller sent: the field
    /// at fault or the kind of failure.
    pub(crate) failure: Option<String>,
    /// Whose fault a failed answer is, for routes that show it as an HTTP
    /// status (the bk-cmsi API).
    pub(crate) fault: Option<Fault>,
    /// What a delivery came to, when mail was delivered (not queued).
    pub(crate) delivered: Option<Delivered>,
}

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The credentials were refused.
    Authentication,
    /// The app may not send for the tenant it named.
    Tenant,
    /// The request is wrong; the caller must change it.
    Request,
    /// The transport, the queue or a channel's server failed.
    Upstream,
}

/// A delivered mail's recipients, as the transport and the directory told.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delivered {
    pub(crate) accepted: usize,
    pub(crate) rejected: Vec<Rejection>,
    /// Usernames the directory does not know.
    pub(crate) invalid_usernames: Vec<String>,
}

impl Outcome {
    pub(crate) fn answer(status: StatusCode, response: EsbResponse, failure: &str) -> Self {
        Outcome {
            status,
            response,
            app_code: None,
            retry_after: None,
            recipients: 0,
            failure: Some(failure.to_owned()),
            fault: None,
            delivered: None,
        }
    }

    /// The same, told to try again after `seconds`.
    pub(crate) fn with_retry_after(self, seconds: u64) -> Self {
        Outcome {
            retry_after: Some(seconds),
            ..self
        }
    }

    /// The same, answered to `app`.
    pub(crate) fn for_app(self, app: String) -> Self {
        Outcome {
            app_code: Some(app),
            ..self
        }
    }

    /// The HTTP status API-gateway clients read a failure by (they look at
    /// nothing else): 401 for credentials, 403 for a tenant the app may not
    /// use, 400 for a bad request, 502 when the transport, the queue or a
    /// channel failed; the body limits and the quota keep theirs (413, 408,
    /// 503, 429).
    fn with_status_by_fault(mut self) -> Self {
        if self.status != StatusCode::OK || self.response.result {
            return self;
        }
        self.status = match self.fault {
            Some(Fault::Authentication) => StatusCode::UNAUTHORIZED,
            Some(Fault::Tenant) => StatusCode::FORBIDDEN,
            Some(Fault::Request) => StatusCode::BAD_REQUEST,
            Some(Fault::Upstream) | None => StatusCode::BAD_GATEWAY,
        };
        self
    }

    /// The same, `fault`'s.
    pub(crate) fn with_fault(self, fault: Fault) -> Self {
        Outcome {
            fault: Some(fault),
            ..self
        }
    }

    pub(crate) fn auth(error: &AuthError) -> Self {
        Outcome::answer(
            StatusCode::OK,
            EsbResponse::refused(error.to_string()),
            "authentication",
        )
        .with_fault(Fault::Authentication)
    }

    /// A successful answer to `app`.
    pub(crate) fn ok(response: EsbResponse, app: String) -> Self {
        Outcome {
            app_code: Some(app),
            failure: None,
            ..Outcome::answer(StatusCode::OK, response, "")
        }
    }

    /// An authenticated app that may not send for the tenant it named.
    pub(crate) fn tenant(error: &AuthError, app: &str) -> Self {
        Outcome {
            app_code: Some(app.to_owned()),
            ..Outcome::answer(
                StatusCode::OK,
                EsbResponse::refused(error.to_string()),
                "tenant",
            )
            .with_fault(Fault::Tenant)
        }
    }

    pub(crate) fn error(error: &Error, app_code: Option<String>) -> Self {
        Outcome {
            app_code,
            ..Outcome::answer(StatusCode::OK, EsbResponse::error(error), &describe(error))
                .with_fault(match error {
                    Error::Request(_) => Fault::Request,
                    _ => Fault::Upstream,
                })
        }
    }

    pub(crate) fn body(error: &BodyError) -> Self {
        let (status, failure) = match error {
            BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            BodyError::Stalled(_) => (StatusCode::REQUEST_TIMEOUT, "body stalled"),
            BodyError::Late(_) => (StatusCode::REQUEST_TIMEOUT, "body late"),
            BodyError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "body budget full"),
            BodyError::Broken(_) => (StatusCode::BAD_REQUEST, "body broken"),
        };
        let response = match error {
            BodyError::Busy => EsbResponse::unavailable(error.to_string()),
            _ => EsbResponse::refused(error.to_string()),
        };
        Outcome {
            retry_after: matches!(error, BodyError::Busy).then_some(1),
            ..Outcome::answer(status, response, failure)
        }
    }

    pub(crate) fn internal() -> Self {
        Outcome::answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            EsbResponse::unavailable("internal error while processing the request"),
            "internal",
        )
    }
}

/// `field=receiver` or `kind=transient`: an error as the log may show it.
pub(crate) fn describe(error: &Error) -> String {
    match error.field() {
        Some(field) => format!("field={field}"),
        None => format!("kind={}", error.kind()),
    }
}

/// A request being answered: its id (also in the response) and when it began.
pub(crate) struct Answering {
    route: &'static str,
    request_id: String,
    started: Instant,
    shape: Shape,
}

/// How the answer is written: the ESB envelope, or the same with the
/// `error` object API-gateway clients look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Esb,
    Apigw,
}

impl Answering {
    /// Starts answering a request on `route` (the name the log line carries).
    pub(crate) fn start(route: &'static str) -> Self {
        Answering {
            route,
            request_id: new_request_id(),
            started: Instant::now(),
            shape: Shape::Esb,
        }
    }

    /// Answers in the bk-cmsi API's shape: a failure also carries
    /// `error: {code, message}`.
    #[must_use]
    pub(crate) fn apigw(mut self) -> Self {
        self.shape = Shape::Apigw;
        self
    }

    /// The request's id, for the servers a request is forwarded to.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Logs the outcome (never secrets or mail content) and writes the reply.
    pub(crate) fn finish(self, method: &Method, uri: &Uri, outcome: Outcome) -> Response {
        let Answering {
            route,
            request_id,
            started,
            shape,
        } = self;
        let outcome = match shape {
            Shape::Esb => outcome,
            Shape::Apigw => outcome.with_status_by_fault(),
        };
        tracing::info!(
            request_id = %request_id,
            route,
            method = %method,
            path = %uri.path(),
            app_code = %outcome.app_code.as_deref().unwrap_or("-"),
            status = outcome.status.as_u16(),
            code = %outcome.response.code,
            result = outcome.response.result,
            recipients = outcome.recipients,
            duration_ms = started.elapsed().as_millis() as u64,
            "answered"
        );
        if let Some(failure) = &outcome.failure {
            tracing::debug!(request_id = %request_id, route, failure = %failure, "refused");
        }
        let answered = crate::metrics::Answered {
            route,
            app: outcome.app_code.clone(),
            code: outcome.response.code.clone(),
        };
        let mut reply = respond_as(
            shape,
            outcome.status,
            outcome.response.with_request_id(&request_id),
            &request_id,
        );
        reply.extensions_mut().insert(answered);
        if let Some(seconds) = outcome.retry_after {
            reply
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        reply
    }
}

pub(crate) fn new_request_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn respond(status: StatusCode, response: EsbResponse, request_id: &str) -> Response {
    respond_as(Shape::Esb, status, response, request_id)
}

fn respond_as(
    shape: Shape,
    status: StatusCode,
    response: EsbResponse,
    request_id: &str,
) -> Response {
    let mut reply = match shape {
        Shape::Apigw if !response.result => {
            let error = json!({"code": response.code, "message": response.message});
            let mut body = serde_json::to_value(response).unwrap_or_default();
            if let Value::Object(fields) = &mut body {
                fields.insert("error".to_owned(), error);
            }
            (status, axum::Json(body)).into_response()
        }
        _ => (status, axum::Json(response)).into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(request_id) {
        reply.headers_mut().insert("x-request-id", value.clone());
        // What the BlueKing SDK reads as the request id.
        reply.headers_mut().insert("x-bkapi-request-id", value);
    }
    reply
}

pub(crate) async fn not_found(uri: Uri) -> Response {
    refuse(StatusCode::NOT_FOUND, format!("no API at {}", uri.path()))
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}; use POST or GET", uri.path()),
    )
}

/// An HTTP-level refusal, in the ESB envelope all the same.
fn refuse(status: StatusCode, message: String) -> Response {
    let request_id = new_request_id();
    let response = EsbResponse::refused(message);
    respond(status, response.with_request_id(&request_id), &request_id)
}
