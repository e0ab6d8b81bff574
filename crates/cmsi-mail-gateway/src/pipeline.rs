//! The path every authenticated route shares: credentials before any expensive
//! work, the app's quota as soon as the app is known, the body within its
//! bounds, then the full parse off the async threads for an authenticated app
//! only.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use cmsi_mail::{Error, Problem, RequestError, SendMailRequest};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Gateway;
use crate::auth::{self, Credentials, Require};
use crate::body::ReadBody;
use crate::outcome::{Answering, Outcome};

/// Bodies up to this size are parsed and composed on the async threads; larger
/// ones on the blocking pool, so that no body holds up other requests.
const INLINE_WORK_BYTES: usize = 64 * 1024;

/// The header that makes a repeated request safe (with a queue).
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Most `key=value` pairs a form body or query string may hold.
const MAX_FORM_PAIRS: usize = 10_000;

/// How the request's fields arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
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
pub(crate) struct Fields {
    encoding: Encoding,
    body: Bytes,
    query: Option<String>,
}

impl Fields {
    /// Fields as a body of `encoding` holds them (for the fuzz targets).
    pub(crate) fn new(encoding: Encoding, body: Bytes, query: Option<String>) -> Self {
        Fields {
            encoding,
            body,
            query,
        }
    }

    fn credentials(&self) -> Result<Credentials<'_>, RequestError> {
        match self.encoding {
            Encoding::Json => Credentials::from_json(&self.body),
            Encoding::Form => Credentials::from_pairs(&self.body),
            Encoding::Query => Credentials::from_pairs(self.query_bytes()),
        }
    }

    pub(crate) fn request(&self) -> Result<SendMailRequest<'_>, RequestError> {
        match self.encoding {
            Encoding::Json => SendMailRequest::from_json(&self.body),
            Encoding::Form => SendMailRequest::from_value(pairs_object(&self.body)?),
            Encoding::Query => SendMailRequest::from_value(pairs_object(self.query_bytes())?),
        }
    }

    /// The fields as any other request type (the routes that do not send
    /// mail): JSON read directly, a form or query string as strings.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T, RequestError> {
        let value = match self.encoding {
            Encoding::Json => {
                if !auth::opens_object(&self.body) {
                    return Err(RequestError::new(
                        "request",
                        Problem::Malformed("the request must be a JSON object".to_owned()),
                    ));
                }
                let mut deserializer = serde_json::Deserializer::from_slice(&self.body);
                let parsed =
                    serde_path_to_error::deserialize(&mut deserializer).map_err(path_error)?;
                deserializer.end().map_err(|error| {
                    RequestError::new(
                        "request",
                        Problem::Malformed(format!("the body is not valid JSON: {error}")),
                    )
                })?;
                return Ok(parsed);
            }
            Encoding::Form => pairs_object(&self.body)?,
            Encoding::Query => pairs_object(self.query_bytes())?,
        };
        serde_path_to_error::deserialize(value).map_err(path_error)
    }

    fn query_bytes(&self) -> &[u8] {
        self.query.as_deref().unwrap_or_default().as_bytes()
    }

    pub(crate) fn len(&self) -> usize {
        self.body.len() + self.query.as_ref().map_or(0, String::len)
    }
}

/// An authenticated request: the app that sent it, the tenant it sends for
/// (`None`: the top-level settings) and its fields. The body's share of the
/// byte budget is held until the call is dropped.
pub(crate) struct Call {
    pub(crate) app: String,
    pub(crate) tenant: Option<String>,
    pub(crate) fields: Arc<Fields>,
    pub(crate) body: ReadBody,
    /// The `Idempotency-Key` header: with a queue, a repeated key gets the
    /// first answer and queues nothing.
    pub(crate) idempotency_key: Option<String>,
}

impl Gateway {
    /// What every API route does: admits `request`, lets `serve` answer the
    /// admitted call (with the request's headers and id), and writes the
    /// answer in `answering`'s shape, with its one log line.
    pub(crate) async fn answer(
        self: &Arc<Self>,
        answering: Answering,
        require: Require,
        request: Request,
        serve: impl AsyncFnOnce(Call, &HeaderMap, &str) -> Outcome,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let outcome = match self
            .admit(
                &parts.method,
                &parts.headers,
                parts.uri.query(),
                body,
                require,
            )
            .await
        {
            Ok(call) => serve(call, &parts.headers, answering.request_id()).await,
            Err(outcome) => outcome,
        };
        answering.finish(&parts.method, &parts.uri, outcome)
    }

    /// Authenticates a request and reads its body, in that order as far as
    /// the credentials allow: the header's before the body is read, a body's
    /// by a scan that builds nothing else. The app's quota is asked as soon as
    /// the app is known, so a request over it is refused before its body is
    /// read or parsed. Then the tenant the app sends for.
    pub(crate) async fn admit(
        self: &Arc<Self>,
        method: &Method,
        headers: &HeaderMap,
        query: Option<&str>,
        body: Body,
        require: Require,
    ) -> Result<Call, Outcome> {
        let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
            None => None,
            Some(value) => match value.to_str() {
                Ok(key) => Some(key.to_owned()),
                Err(_) => {
                    return Err(Outcome::answer(
                        axum::http::StatusCode::OK,
                        cmsi_mail::EsbResponse::refused(
                            "Idempotency-Key must be printable ASCII text",
                        ),
                        "idempotency key",
                    )
                    .with_fault(crate::outcome::Fault::Request));
                }
            },
        };
        let header_app = match Credentials::from_header(headers) {
            Ok(Some(credentials)) => match credentials.authenticate(&self.apps, require) {
                // Over its quota: refused before the body is read.
                Ok(app) => self.within_quota(&app).map(|()| Some(app))?,
                Err(error) => return Err(Outcome::auth(&error)),
            },
            Ok(None) => None,
            Err(error) => return Err(Outcome::auth(&error)),
        };
        let body = self
            .bodies
            .read(headers, body, header_app.is_some())
            .await
            .map_err(|error| Outcome::body(&error))?;
        let fields = Arc::new(Fields {
            encoding: Encoding::of(method, headers, &body.bytes),
            body: body.bytes.clone(),
            query: query.map(str::to_owned),
        });
        let app = match header_app {
            Some(app) => app,
            None => {
                let gateway = Arc::clone(self);
                let scanned = Arc::clone(&fields);
                let checked = off_runtime(fields.len(), move || {
                    scanned
                        .credentials()
                        .map(|credentials| credentials.authenticate(&gateway.apps, require))
                })
                .await;
                match checked {
                    // Over its quota: refused before the body is parsed.
                    Some(Ok(Ok(app))) => self.within_quota(&app).map(|()| app)?,
                    Some(Ok(Err(error))) => return Err(Outcome::auth(&error)),
                    Some(Err(error)) => return Err(Outcome::error(&Error::Request(error), None)),
                    None => return Err(Outcome::internal()),
                }
            }
        };
        let tenant = self
            .tenant(&app, headers)
            .map_err(|error| Outcome::tenant(&error, &app))?;
        Ok(Call {
            app,
            tenant,
            fields,
            body,
            idempotency_key,
        })
    }
}

/// Runs `work` here when `len` is small, else on the blocking pool; `None` if
/// it panicked.
pub(crate) async fn off_runtime<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    if len <= INLINE_WORK_BYTES {
        return Some(work());
    }
    tokio::task::spawn_blocking(work).await.ok()
}

/// A form or query string as a JSON object: every value a string, a repeated
/// key an array of strings.
fn pairs_object(encoded: &[u8]) -> Result<Value, RequestError> {
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
    Ok(Value::Object(object))
}

/// A serde error as a request error naming the field; broken JSON is the
/// request's as a whole.
fn path_error(error: serde_path_to_error::Error<serde_json::Error>) -> RequestError {
    let path = error.path().to_string();
    let inner = error.into_inner();
    if path == "." || inner.is_syntax() || inner.is_eof() {
        RequestError::new(
            "request",
            Problem::Malformed(format!("the body is not valid JSON: {inner}")),
        )
    } else {
        RequestError::new(path, Problem::Malformed(inner.to_string()))
    }
}
