//! An HTTP server that speaks the BlueKing ESB `send_mail` API on top of
//! cmsi-mail, so that existing BlueKing clients can point at it unchanged.
//!
//! Use [`Gateway::router`] to mount the API in your own axum application, or
//! [`serve`] to run it (that is what `cmsi-mail serve` does).
//!
//! - Routes: `POST` and `GET` on `/api/c/compapi/cmsi/send_mail/` and
//!   `/api/c/compapi/v2/cmsi/send_mail/` (with or without the final slash);
//!   `GET /healthz`.
//! - Bodies: JSON; `application/x-www-form-urlencoded` (list fields and
//!   `attachments` as strings, as older SDKs send them); the query string for GET.
//! - Authentication: `bk_app_code` + `bk_app_secret` checked against the
//!   registered apps (constant-time), and `bk_token` or, for apps allowed to,
//!   `bk_username`; from the `X-Bkapi-Authorization` header (wins) or the request.
//! - Responses: the ESB envelope with a fresh `request_id` (also in the
//!   `X-Request-Id` header), HTTP 200 for API errors, 413 for an oversize body.
//! - A bounded number of requests is processed at once; graceful shutdown lets
//!   every accepted request finish.
//! - [`Gateway::with_routes`] adds routes of the embedding program beside the
//!   API (`cmsi-mail serve` adds its outbox viewer so).
//!
//! Secrets and mail content never reach the logs.

mod auth;
mod config;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use cmsi_mail::{
    CODE_BAD_REQUEST, Error, EsbResponse, Mailer, RequestError, SendMailRequest, Transport,
};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

pub use config::{
    AppConfig, AppConfigError, AppRegistry, Apps, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_DELIVERIES, ServerConfig,
};

use auth::Credentials;

/// The paths the ESB serves `send_mail` on.
pub const SEND_MAIL_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/send_mail/",
    "/api/c/compapi/cmsi/send_mail",
    "/api/c/compapi/v2/cmsi/send_mail/",
    "/api/c/compapi/v2/cmsi/send_mail",
];

/// How long a client may take to send its request body.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `send_mail` endpoint: a mailer, the apps allowed to call it, and limits.
pub struct Gateway {
    mailer: Mailer<Box<dyn Transport>>,
    apps: AppRegistry,
    max_body_bytes: usize,
    deliveries: Semaphore,
    /// More routes served beside the API (e.g. the CLI's outbox viewer).
    extra_routes: Option<Router>,
}

/// What one request came to, for the log line.
struct Outcome {
    status: StatusCode,
    response: EsbResponse,
    app_code: Option<String>,
}

impl Gateway {
    /// A gateway that sends through `mailer` for the apps in `apps`.
    pub fn new(
        mailer: Mailer<Box<dyn Transport>>,
        apps: AppRegistry,
        server: &ServerConfig,
    ) -> Self {
        Gateway {
            mailer,
            apps,
            max_body_bytes: server.max_body_bytes(),
            deliveries: Semaphore::new(server.max_concurrent_deliveries()),
            extra_routes: None,
        }
    }

    /// Serves `routes` beside the API, in [`Gateway::router`] and so in
    /// [`serve`]. They must not use the API's paths; unmatched paths still get
    /// the API's 404.
    #[must_use]
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra_routes = Some(routes);
        self
    }

    /// Ends the transport's idle connections; for after the server stopped.
    pub async fn close(&self) {
        self.mailer.transport().close().await;
    }

    /// The API as an axum router, to serve or to nest in another application.
    pub fn router(self: Arc<Self>) -> Router {
        let send_mail: MethodRouter<Arc<Gateway>> =
            MethodRouter::new().get(send_mail).post(send_mail);
        let mut router = Router::new().route("/healthz", get(healthz));
        for path in SEND_MAIL_PATHS {
            router = router.route(path, send_mail.clone());
        }
        let extra = self.extra_routes.clone().unwrap_or_default();
        router
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(self)
            .merge(extra)
    }

    async fn handle(&self, method: &Method, headers: &HeaderMap, uri: &Uri, body: Body) -> Outcome {
        // Bounded from here on: a burst waits for its turn before its bodies
        // are read, so memory stays within max_concurrent_deliveries bodies.
        // (The semaphore is never closed, so acquiring cannot fail.)
        let _permit = self.deliveries.acquire().await;
        let bytes = match self.read_body(headers, body).await {
            Ok(bytes) => bytes,
            Err(outcome) => return *outcome,
        };
        let request = match decode(method, headers, uri.query(), &bytes) {
            Ok(request) => request,
            Err(error) => return bad_request(EsbResponse::error(&Error::Request(error)), None),
        };
        let credentials = Credentials::pick(headers, Credentials::of(&request));
        let app_code = match credentials.and_then(|c| c.authenticate(&self.apps)) {
            Ok(code) => code,
            Err(error) => {
                return bad_request(
                    EsbResponse::failure(CODE_BAD_REQUEST, error.to_string(), json!({})),
                    None,
                );
            }
        };
        Outcome {
            status: StatusCode::OK,
            response: self.mailer.respond(request).await,
            app_code: Some(app_code),
        }
    }

    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Box<Outcome>> {
        let too_large = || {
            Box::new(Outcome {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                response: EsbResponse::failure(
                    CODE_BAD_REQUEST,
                    format!(
                        "the request body is larger than {} bytes (max_body_bytes)",
                        self.max_body_bytes
                    ),
                    json!({}),
                ),
                app_code: None,
            })
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<usize>().ok());
        if declared.is_some_and(|len| len > self.max_body_bytes) {
            return Err(too_large());
        }
        let limited = http_body_util::Limited::new(body, self.max_body_bytes);
        let collected =
            tokio::time::timeout(BODY_TIMEOUT, http_body_util::BodyExt::collect(limited)).await;
        let Ok(collected) = collected else {
            return Err(Box::new(bad_request(
                EsbResponse::failure(
                    CODE_BAD_REQUEST,
                    format!(
                        "the request body did not arrive within {} s",
                        BODY_TIMEOUT.as_secs()
                    ),
                    json!({}),
                ),
                None,
            )));
        };
        match collected {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(error) => Err(Box::new(bad_request(
                EsbResponse::failure(
                    CODE_BAD_REQUEST,
                    format!("cannot read the request body: {error}"),
                    json!({}),
                ),
                None,
            ))),
        }
    }
}

fn bad_request(response: EsbResponse, app_code: Option<String>) -> Outcome {
    Outcome {
        status: StatusCode::OK,
        response,
        app_code,
    }
}

/// Reads the request from the body (JSON or form) or, for GET, the query.
fn decode<'b>(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &'b [u8],
) -> Result<SendMailRequest<'b>, RequestError> {
    if method == Method::GET {
        return from_pairs(query.unwrap_or_default().as_bytes());
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let looks_like_json = body
        .iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == b'{');
    if content_type.contains("json") || (!content_type.contains("form") && looks_like_json) {
        SendMailRequest::from_json(body)
    } else {
        from_pairs(body)
    }
}

/// A form or query string as a request: every value a string, a repeated key an
/// array of strings.
fn from_pairs(encoded: &[u8]) -> Result<SendMailRequest<'static>, RequestError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded).map_err(|error| {
        RequestError::new(
            "request",
            cmsi_mail::Problem::Malformed(format!(
                "the form is not valid application/x-www-form-urlencoded: {error}"
            )),
        )
    })?;
    let mut object = Map::new();
    for (key, value) in pairs {
        match object.get_mut(&key) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                object.insert(key, Value::Array(vec![first, Value::String(value)]));
            }
            None => {
                object.insert(key, Value::String(value));
            }
        }
    }
    SendMailRequest::from_value(Value::Object(object))
}

fn new_request_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

async fn send_mail(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let outcome = gateway.handle(&method, &headers, &uri, body).await;
    let recipients = outcome
        .response
        .data
        .get("accepted")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %uri.path(),
        app_code = %outcome.app_code.as_deref().unwrap_or("-"),
        status = outcome.status.as_u16(),
        code = %outcome.response.code,
        result = outcome.response.result,
        recipients,
        duration_ms = started.elapsed().as_millis() as u64,
        "send_mail"
    );
    if !outcome.response.result {
        // The field and kind only: the message may quote addresses or headers.
        let detail = |key: &str| {
            outcome
                .response
                .data
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        tracing::debug!(request_id = %request_id, field = %detail("field"), kind = %detail("kind"), "send_mail refused");
    }
    respond(
        outcome.status,
        outcome.response.with_request_id(&request_id),
        &request_id,
    )
}

fn respond(status: StatusCode, response: EsbResponse, request_id: &str) -> Response {
    let mut reply = (status, axum::Json(response)).into_response();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        reply.headers_mut().insert("x-request-id", value.clone());
        // What the BlueKing SDK reads as the request id.
        reply.headers_mut().insert("x-bkapi-request-id", value);
    }
    reply
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn not_found(uri: Uri) -> Response {
    refuse(StatusCode::NOT_FOUND, format!("no API at {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    refuse(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}; use POST or GET", uri.path()),
    )
}

/// An HTTP-level refusal, in the ESB envelope all the same.
fn refuse(status: StatusCode, message: String) -> Response {
    let request_id = new_request_id();
    let response = EsbResponse::failure(CODE_BAD_REQUEST, message, json!({}));
    respond(status, response.with_request_id(&request_id), &request_id)
}

/// Serves `gateway` on `listener` until `shutdown` completes; then stops
/// accepting, lets the requests in progress finish, and closes the transport.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let served = axum::serve(listener, Arc::clone(&gateway).router())
        .with_graceful_shutdown(shutdown)
        .await;
    gateway.close().await;
    served
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing the requests in progress");
}
