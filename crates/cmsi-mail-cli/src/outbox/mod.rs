//! `cmsi-mail outbox`: the file transport's outbox in the browser, as Mailpit
//! or MailHog show mail: a list (newest first, searchable, updated while it is
//! open) and each message as a mail client shows it.
//!
//! The same pages are served by `cmsi-mail serve` at `/outbox/` when the file
//! transport is in use and `[server] outbox_ui = true`.
//!
//! A local tool, not for the internet: there is no login. When it listens on
//! loopback (the default), requests must name a loopback host, so that a web
//! page cannot read the mail through DNS rebinding. A message's HTML is shown
//! in a sandboxed iframe (no scripts, an origin of its own) under a
//! Content-Security-Policy that lets it load only its own `cid:` images and
//! `data:` URLs; the browser reports what the policy blocked to
//! `api/messages/ID/blocked`, and the page says so.
//!
//! Routes, under the prefix (empty, or `/outbox`):
//! - `/`, `/app.js`, `/style.css`: the page;
//! - `GET api/version`: changes when the directory does;
//! - `GET api/messages?page=N&q=TEXT`: one page of the list;
//! - `GET api/messages/ID`: headers, envelope, text body and parts;
//! - `GET api/messages/ID/html`: the HTML body, `cid:` resolved;
//! - `GET api/messages/ID/raw`: the file (`?download` to save it);
//! - `GET api/messages/ID/parts/N`: a decoded part (`?download` to save it);
//! - `POST`/`GET api/messages/ID/blocked`: what the policy blocked.

mod index;
mod view;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::Outcome;
pub(crate) use index::Outbox;

/// Where `cmsi-mail outbox` listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8026";

/// Blocked loads remembered per message, and messages remembered.
const BLOCKED_PER_MESSAGE: usize = 20;
const BLOCKED_MESSAGES: usize = 500;
/// The longest blocked URL kept (reports quote whatever the mail named).
const BLOCKED_URL_CHARS: usize = 300;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The viewer page's own policy: its script and style only, frames from here.
const PAGE_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; frame-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// A part served on its own (an image the HTML shows, a download): nothing in
/// it may run or load, even when opened directly.
const PART_POLICY: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; sandbox";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The outbox directory (what `send` and `serve` write with the file
    /// transport).
    #[arg(long, value_name = "DIR", default_value = "outbox")]
    dir: PathBuf,
    /// Address to listen on; keep it on loopback: there is no login.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr()?;
    let router = router(Outbox::new(args.dir.clone()), "", local);
    warn_if_exposed(local);
    // One plain line for people and scripts, as `serve` prints it.
    eprintln!("cmsi-mail: listening on http://{local}/");
    eprintln!("cmsi-mail: showing the mail in {}", args.dir.display());
    axum::serve(listener, router)
        .with_graceful_shutdown(crate::shutdown::shutdown_signal())
        .await
        .context("the HTTP server failed")?;
    eprintln!("cmsi-mail: stopped");
    Ok(Outcome::Done)
}

/// Says on stderr that the mail is readable by anyone who can reach `local`.
pub(crate) fn warn_if_exposed(local: SocketAddr) {
    if !local.ip().is_loopback() {
        eprintln!(
            "cmsi-mail: warning: the outbox viewer has no login; anyone who can reach \
             {local} can read the mail"
        );
    }
}

/// The viewer's routes under `prefix` (`""` or a path like `/outbox`), for a
/// server listening on `local`.
pub(crate) fn router(outbox: Outbox, prefix: &str, local: SocketAddr) -> Router {
    let state = Arc::new(Viewer {
        outbox,
        blocked: Mutex::new(HashMap::new()),
        hosts: allowed_hosts(local),
    });
    let at = |path: &str| format!("{prefix}{path}");
    let mut router = Router::new()
        .route(&at("/"), get(page))
        .route(&at("/app.js"), get(script))
        .route(&at("/style.css"), get(style))
        .route(&at("/api/version"), get(version))
        .route(&at("/api/messages"), get(list))
        .route(&at("/api/messages/{id}"), get(message))
        .route(&at("/api/messages/{id}/html"), get(html))
        .route(&at("/api/messages/{id}/raw"), get(raw))
        .route(&at("/api/messages/{id}/parts/{index}"), get(part))
        .route(
            &at("/api/messages/{id}/blocked"),
            get(blocked).post(report_blocked),
        );
    if !prefix.is_empty() {
        // The page's URLs are relative: it must be seen at `prefix/`.
        let slash = at("/");
        router = router.route(
            prefix,
            get(move || async move { Redirect::permanent(&slash) }),
        );
    }
    router
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            guard,
        ))
        .with_state(state)
}

/// The shared state of the handlers.
#[derive(Debug)]
struct Viewer {
    outbox: Outbox,
    /// URLs the browser reported blocked, per message id.
    blocked: Mutex<HashMap<String, Vec<String>>>,
    /// The Host values accepted, or `None` for any.
    hosts: Option<Vec<String>>,
}

/// When listening on loopback, the names a browser on this machine uses for it.
fn allowed_hosts(local: SocketAddr) -> Option<Vec<String>> {
    if !local.ip().is_loopback() {
        return None;
    }
    let port = local.port();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|host| format!("{host}:{port}"))
        .collect();
    if port == 80 {
        hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
    }
    Some(hosts)
}

/// Refuses other hosts (DNS rebinding) and adds the headers every answer
/// carries.
async fn guard(State(viewer): State<Arc<Viewer>>, request: Request, next: Next) -> Response {
    if let Some(hosts) = &viewer.hosts {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !hosts.contains(&host) {
            return (
                StatusCode::MISDIRECTED_REQUEST,
                "the outbox viewer answers only to localhost",
            )
                .into_response();
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str, policy: Option<&'static str>) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some(policy) = policy {
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    response
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML, Some(PAGE_POLICY))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS, None)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS, None)
}

async fn version(State(viewer): State<Arc<Viewer>>) -> Response {
    let version = blocking(move || viewer.outbox.version()).await;
    axum::Json(serde_json::json!({ "version": version })).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    q: Option<String>,
}

async fn list(State(viewer): State<Arc<Viewer>>, Query(query): Query<ListQuery>) -> Response {
    let page = blocking(move || {
        let page = viewer.outbox.page(
            query.q.as_deref().unwrap_or_default(),
            query.page.unwrap_or(1),
        );
        serde_json::json!({
            "dir": viewer.outbox.dir().display().to_string(),
            "page": page,
        })
    })
    .await;
    axum::Json(page).into_response()
}

/// Runs file work on the blocking pool: the runtime must not wait on the disk.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        // The work panicked: let the request fail as a handler panic would.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// Why a request about one message failed.
enum Refusal {
    /// No such message file in the directory.
    NoSuchMessage,
    /// No such part, or nothing to show.
    NoSuchPart,
    Unreadable(std::io::Error),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoSuchMessage => (StatusCode::NOT_FOUND, "no such message").into_response(),
            Refusal::NoSuchPart => {
                (StatusCode::NOT_FOUND, "no such part in this message").into_response()
            }
            Refusal::Unreadable(error) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot read the message: {error}"),
            )
                .into_response(),
        }
    }
}

/// The bytes of message `id` and the path of its envelope.
fn read_message(viewer: &Viewer, id: &str) -> Result<(Vec<u8>, PathBuf), Refusal> {
    let path = viewer.outbox.file(id).ok_or(Refusal::NoSuchMessage)?;
    let bytes = std::fs::read(&path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Refusal::NoSuchMessage,
        _ => Refusal::Unreadable(error),
    })?;
    Ok((bytes, path.with_extension("json")))
}

async fn message(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    blocking(move || {
        let (bytes, envelope) = read_message(&viewer, &id)?;
        Ok::<_, Refusal>(axum::Json(view::view(&id, &bytes, &envelope)))
    })
    .await
    .into_response()
}

async fn html(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let policy = body_policy(&host, uri.path());
    blocking(move || {
        let (bytes, _) = read_message(&viewer, &id)?;
        let message = view::parse(&bytes).ok_or(Refusal::NoSuchPart)?;
        let body = view::html_body(&message).ok_or(Refusal::NoSuchPart)?;
        // Links open outside the frame; the policy below forbids `<base href>`.
        let html = format!(
            "<base target=\"_blank\"><meta name=\"referrer\" content=\"no-referrer\">{}",
            view::resolve_cids(body, &message)
        );
        let mut response =
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
        if let Ok(policy) = HeaderValue::from_str(&policy) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        Ok::<_, Refusal>(response)
    })
    .await
    .into_response()
}

/// The policy of a message's HTML at `path` (`…/ID/html`): images only from
/// that message's parts (not the rest of this server, which may also serve the
/// send_mail API) or `data:`; nothing else loads, nothing runs; the browser
/// reports what it blocked to `blocked` beside it.
fn body_policy(host: &str, path: &str) -> String {
    let safe = |text: &str, extra: &[u8]| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b) || extra.contains(&b))
    };
    let parts = path
        .strip_suffix("/html")
        .filter(|dir| safe(host, b":[]") && safe(dir, b"/"))
        .map(|dir| format!("http://{host}{dir}/parts/ "))
        .unwrap_or_default();
    format!(
        "default-src 'none'; img-src {parts}data:; media-src {parts}data:; \
         style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'; \
         frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox; \
         report-uri blocked"
    )
}

#[derive(Deserialize)]
struct DownloadQuery {
    download: Option<String>,
}

async fn raw(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    blocking(move || {
        let (bytes, _) = read_message(&viewer, &id)?;
        let mut response = if query.download.is_some() {
            let mut response = ([(header::CONTENT_TYPE, "message/rfc822")], bytes).into_response();
            set_disposition(&mut response, "attachment", Some(&format!("{id}.eml")));
            response
        } else {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response()
        };
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PART_POLICY),
        );
        Ok::<_, Refusal>(response)
    })
    .await
    .into_response()
}

async fn part(
    State(viewer): State<Arc<Viewer>>,
    Path((id, index)): Path<(String, usize)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    blocking(move || {
        let (bytes, _) = read_message(&viewer, &id)?;
        let message = view::parse(&bytes).ok_or(Refusal::NoSuchPart)?;
        let part = view::part(&message, index).ok_or(Refusal::NoSuchPart)?;
        // Only images are shown in place; anything else (HTML, SVG with
        // scripts…) is a download, and the policy keeps it inert regardless.
        let shown = query.download.is_none()
            && part.content_type.starts_with("image/")
            && part.content_type != "image/svg+xml";
        let content_type = HeaderValue::from_str(&part.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        let mut response = (
            [(header::CONTENT_TYPE, content_type)],
            part.bytes.into_owned(),
        )
            .into_response();
        let disposition = if shown { "inline" } else { "attachment" };
        set_disposition(&mut response, disposition, part.name.as_deref());
        response.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PART_POLICY),
        );
        Ok::<_, Refusal>(response)
    })
    .await
    .into_response()
}

/// Characters escaped in an RFC 5987 `filename*` value (attr-char kept).
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` with the file name as RFC 6266 says: an ASCII
/// `filename` for old clients and the exact one as `filename*`.
fn disposition(kind: &str, name: Option<&str>) -> String {
    let Some(name) = name.filter(|name| !name.is_empty()) else {
        return kind.to_owned();
    };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

fn set_disposition(response: &mut Response, kind: &str, name: Option<&str>) {
    if let Ok(value) = HeaderValue::from_str(&disposition(kind, name)) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
}

/// A CSP violation report (`application/csp-report`).
#[derive(Deserialize)]
struct Report {
    #[serde(rename = "csp-report")]
    report: ReportBody,
}

#[derive(Deserialize)]
struct ReportBody {
    #[serde(rename = "blocked-uri", default)]
    blocked_uri: String,
}

async fn report_blocked(
    State(viewer): State<Arc<Viewer>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    // Reports for messages that do not exist are not kept.
    let exists = {
        let viewer = Arc::clone(&viewer);
        let id = id.clone();
        blocking(move || viewer.outbox.file(&id).is_some()).await
    };
    let Ok(report) = serde_json::from_slice::<Report>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    if !exists {
        return StatusCode::NOT_FOUND;
    }
    // Only loads from elsewhere count; a `cid:` with no part is not remote.
    if !report.report.blocked_uri.contains("://") {
        return StatusCode::NO_CONTENT;
    }
    let url: String = report
        .report
        .blocked_uri
        .chars()
        .take(BLOCKED_URL_CHARS)
        .collect();
    let mut blocked = viewer
        .blocked
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if !blocked.contains_key(&id) && blocked.len() >= BLOCKED_MESSAGES {
        blocked.clear();
    }
    let urls = blocked.entry(id).or_default();
    if urls.len() < BLOCKED_PER_MESSAGE && !urls.contains(&url) {
        urls.push(url);
    }
    StatusCode::NO_CONTENT
}

async fn blocked(State(viewer): State<Arc<Viewer>>, Path(id): Path<String>) -> Response {
    let urls = viewer
        .blocked
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&id)
        .cloned()
        .unwrap_or_default();
    axum::Json(serde_json::json!({ "blocked": urls })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_rfc_6266() {
        assert_eq!(
            disposition("attachment", Some("季度报告（终版）.pdf")),
            "attachment; filename=\"________.pdf\"; \
             filename*=UTF-8''%E5%AD%A3%E5%BA%A6%E6%8A%A5%E5%91%8A%EF%BC%88%E7%BB%88%E7%89%88%EF%BC%89.pdf"
        );
        assert_eq!(
            disposition("inline", Some("a \"b\".png")),
            "inline; filename=\"a _b_.png\"; filename*=UTF-8''a%20%22b%22.png"
        );
        assert_eq!(disposition("attachment", None), "attachment");
    }

    #[test]
    fn the_body_may_load_only_its_own_parts() {
        let policy = body_policy("127.0.0.1:8026", "/outbox/api/messages/1-2/html");
        assert!(policy.starts_with(
            "default-src 'none'; img-src http://127.0.0.1:8026/outbox/api/messages/1-2/parts/ data:;"
        ));
        assert!(policy.contains("report-uri blocked"));
        let odd = body_policy("evil; script-src *", "/api/messages/1/html");
        assert!(
            odd.starts_with("default-src 'none'; img-src data:;"),
            "{odd}"
        );
    }

    #[test]
    fn only_loopback_names_are_accepted_on_loopback() {
        let hosts = allowed_hosts("127.0.0.1:8026".parse().unwrap()).unwrap();
        assert!(hosts.contains(&"localhost:8026".to_owned()));
        assert!(!hosts.contains(&"evil.example:8026".to_owned()));
        assert!(allowed_hosts("0.0.0.0:8026".parse().unwrap()).is_none());
    }
}
