#![doc = include_str!("../README.md")]

mod auth;
mod body;
mod config;
#[doc(hidden)]
pub mod fuzz;
mod server;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use cmsi_mail::{Error, EsbResponse, Mailer, Problem, RequestError, SendMailRequest, Transport};
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

pub use config::{
    AppConfig, AppConfigError, AppRegistry, Apps, DEFAULT_BODY_TIMEOUT_SECS,
    DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_DELIVERIES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES,
    DEFAULT_REQUEST_TIMEOUT_SECS, ServerConfig, ServerConfigError,
};

use auth::{AuthError, Credentials};
use body::{BodyError, BodyReader};

/// The paths the ESB serves `send_mail` on.
pub const SEND_MAIL_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/send_mail/",
    "/api/c/compapi/cmsi/send_mail",
    "/api/c/compapi/v2/cmsi/send_mail/",
    "/api/c/compapi/v2/cmsi/send_mail",
];

/// Bodies up to this size are parsed and composed on the async threads; larger
/// ones on the blocking pool, so that no body holds up other requests.
const INLINE_WORK_BYTES: usize = 64 * 1024;

/// Most `key=value` pairs a form body or query string may hold.
const MAX_FORM_PAIRS: usize = 10_000;

/// The `send_mail` endpoint: a mailer, the apps allowed to call it, and limits.
pub struct Gateway {
    mailer: Mailer<Box<dyn Transport>>,
    apps: AppRegistry,
    bodies: BodyReader,
    deliveries: Semaphore,
    connections: server::ConnectionLimits,
    /// More routes served beside the API (e.g. the CLI's outbox viewer).
    extra_routes: Option<Router>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("apps", &self.apps)
            .field("bodies", &self.bodies)
            .field("connections", &self.connections)
            .finish_non_exhaustive()
    }
}

/// What one request came to: the answer, and what the log line says of it.
struct Outcome {
    status: StatusCode,
    response: EsbResponse,
    app_code: Option<String>,
    retry_after: Option<u64>,
    /// Recipients the transport accepted.
    recipients: usize,
    /// Why it failed, in words that quote nothing the caller sent: the field
    /// at fault or the kind of failure.
    failure: Option<String>,
}

impl Outcome {
    fn answer(status: StatusCode, response: EsbResponse, failure: &str) -> Self {
        Outcome {
            status,
            response,
            app_code: None,
            retry_after: None,
            recipients: 0,
            failure: Some(failure.to_owned()),
        }
    }

    fn auth(error: &AuthError) -> Self {
        Outcome::answer(
            StatusCode::OK,
            EsbResponse::refused(error.to_string()),
            "authentication",
        )
    }

    fn error(error: &Error, app_code: Option<String>) -> Self {
        Outcome {
            app_code,
            ..Outcome::answer(StatusCode::OK, EsbResponse::error(error), &describe(error))
        }
    }

    fn body(error: &BodyError) -> Self {
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

    fn internal() -> Self {
        Outcome::answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            EsbResponse::unavailable("internal error while processing the request"),
            "internal",
        )
    }
}

/// `field=receiver` or `kind=transient`: an error as the log may show it.
fn describe(error: &Error) -> String {
    match error.field() {
        Some(field) => format!("field={field}"),
        None => format!("kind={}", error.kind()),
    }
}

/// How the request's fields arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
    /// The query string of a GET.
    Query,
}

impl Encoding {
    fn of(method: &Method, headers: &HeaderMap, body: &[u8]) -> Self {
        if method == Method::GET {
            return Encoding::Query;
        }
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.contains("json")
            || (!content_type.contains("form") && auth::opens_object(body))
        {
            Encoding::Json
        } else {
            Encoding::Form
        }
    }
}

/// A request's fields: its body, or for GET its query string.
struct Fields {
    encoding: Encoding,
    body: Bytes,
    query: Option<String>,
}

impl Fields {
    fn credentials(&self) -> Result<Credentials<'_>, RequestError> {
        match self.encoding {
            Encoding::Json => Credentials::from_json(&self.body),
            Encoding::Form => Credentials::from_pairs(&self.body),
            Encoding::Query => Credentials::from_pairs(self.query_bytes()),
        }
    }

    fn request(&self) -> Result<SendMailRequest<'_>, RequestError> {
        match self.encoding {
            Encoding::Json => SendMailRequest::from_json(&self.body),
            Encoding::Form => from_pairs(&self.body),
            Encoding::Query => from_pairs(self.query_bytes()),
        }
    }

    fn query_bytes(&self) -> &[u8] {
        self.query.as_deref().unwrap_or_default().as_bytes()
    }

    fn len(&self) -> usize {
        self.body.len() + self.query.as_ref().map_or(0, String::len)
    }
}

impl Gateway {
    /// A gateway that sends through `mailer` for the apps in `apps`, within
    /// the limits of `server`.
    pub fn new(
        mailer: Mailer<Box<dyn Transport>>,
        apps: AppRegistry,
        server: &ServerConfig,
    ) -> Result<Self, ServerConfigError> {
        server.check()?;
        Ok(Gateway {
            mailer,
            apps,
            bodies: BodyReader::new(
                server.max_body_bytes(),
                server.max_inflight_body_bytes(),
                server.body_timeout(),
                server.request_timeout(),
            ),
            deliveries: Semaphore::new(server.max_concurrent_deliveries()),
            connections: server::ConnectionLimits {
                max_connections: server.max_connections(),
                header_timeout: server.header_timeout(),
            },
            extra_routes: None,
        })
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
    ///
    /// The router bounds request bodies (size, budget, timeouts) itself; the
    /// bounds on connections (number, header timeout) belong to the server:
    /// [`serve`] sets them, an application that nests the router sets its own.
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

    /// The order matters: credentials are checked before any expensive work,
    /// and only an authenticated request takes a delivery permit or has its
    /// body parsed in full.
    async fn handle(
        self: &Arc<Self>,
        method: &Method,
        headers: &HeaderMap,
        uri: &Uri,
        body: Body,
    ) -> Outcome {
        // The header's credentials win, and need no body to be checked.
        let header_app = match Credentials::from_header(headers) {
            Ok(Some(credentials)) => match credentials.authenticate(&self.apps) {
                Ok(app) => Some(app),
                Err(error) => return Outcome::auth(&error),
            },
            Ok(None) => None,
            Err(error) => return Outcome::auth(&error),
        };
        let body = match self.bodies.read(headers, body).await {
            Ok(body) => body,
            Err(error) => return Outcome::body(&error),
        };
        let fields = Arc::new(Fields {
            encoding: Encoding::of(method, headers, &body.bytes),
            body: body.bytes.clone(),
            query: uri.query().map(str::to_owned),
        });
        let app = match header_app {
            Some(app) => app,
            None => {
                let gateway = Arc::clone(self);
                let scanned = Arc::clone(&fields);
                let checked = off_runtime(fields.len(), move || {
                    scanned
                        .credentials()
                        .map(|credentials| credentials.authenticate(&gateway.apps))
                })
                .await;
                match checked {
                    Some(Ok(Ok(app))) => app,
                    Some(Ok(Err(error))) => return Outcome::auth(&error),
                    Some(Err(error)) => return Outcome::error(&Error::Request(error), None),
                    None => return Outcome::internal(),
                }
            }
        };
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.deliveries.acquire().await;
        let gateway = Arc::clone(self);
        let prepared = off_runtime(fields.len(), move || {
            let request = fields.request()?;
            gateway.mailer.prepare(request)
        })
        .await;
        let prepared = match prepared {
            Some(Ok(prepared)) => prepared,
            Some(Err(error)) => return Outcome::error(&error, Some(app)),
            None => return Outcome::internal(),
        };
        drop(body);
        let result = self.mailer.deliver(&prepared).await;
        Outcome {
            status: StatusCode::OK,
            response: prepared.response(&result),
            app_code: Some(app),
            retry_after: None,
            recipients: result
                .as_ref()
                .map_or(0, |sent| sent.receipt.accepted.len()),
            failure: result.as_ref().err().map(describe),
        }
    }
}

/// Runs `work` here when `len` is small, else on the blocking pool; `None` if
/// it panicked.
async fn off_runtime<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if len <= INLINE_WORK_BYTES {
        return Some(work());
    }
    tokio::task::spawn_blocking(work).await.ok()
}

/// A form or query string as a request: every value a string, a repeated key an
/// array of strings.
fn from_pairs(encoded: &[u8]) -> Result<SendMailRequest<'static>, RequestError> {
    let mut object = Map::new();
    for (index, (key, value)) in form_urlencoded::parse(encoded).enumerate() {
        if index == MAX_FORM_PAIRS {
            return Err(RequestError::new(
                "request",
                Problem::Malformed(format!("the form has more than {MAX_FORM_PAIRS} fields")),
            ));
        }
        let value = Value::String(value.into_owned());
        match object.get_mut(key.as_ref()) {
            Some(Value::Array(items)) => items.push(value),
            Some(first) => {
                let first = first.take();
                *object.entry(key.into_owned()).or_insert(Value::Null) =
                    Value::Array(vec![first, value]);
            }
            None => {
                object.insert(key.into_owned(), value);
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
    let retry_after = outcome.retry_after;
    tracing::info!(
        request_id = %request_id,
        method = %method,
        path = %uri.path(),
        app_code = %outcome.app_code.as_deref().unwrap_or("-"),
        status = outcome.status.as_u16(),
        code = %outcome.response.code,
        result = outcome.response.result,
        recipients = outcome.recipients,
        duration_ms = started.elapsed().as_millis() as u64,
        "send_mail"
    );
    if let Some(failure) = &outcome.failure {
        tracing::debug!(request_id = %request_id, failure = %failure, "send_mail refused");
    }
    let mut reply = respond(
        outcome.status,
        outcome.response.with_request_id(&request_id),
        &request_id,
    );
    if let Some(seconds) = retry_after {
        reply
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    reply
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
    let response = EsbResponse::refused(message);
    respond(status, response.with_request_id(&request_id), &request_id)
}

/// Serves `gateway` on `listener` (HTTP/1.1) until `shutdown` completes; then
/// stops accepting, lets the requests in progress finish, and closes the
/// transport.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = gateway.connections;
    let served = server::run(listener, Arc::clone(&gateway).router(), limits, shutdown).await;
    gateway.close().await;
    served
}
