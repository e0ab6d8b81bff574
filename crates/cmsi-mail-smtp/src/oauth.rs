//! OAuth2 bearer tokens for AUTH XOAUTH2 (Microsoft 365 and Gmail retire
//! password logins): a fixed token, or the client-credentials flow (RFC 6749
//! §4.4) against a token endpoint, the token cached until shortly before it
//! expires and fetched anew when the server refuses it.
//!
//! The HTTPS client is hyper-util's with hyper-rustls on ring: the stack the
//! SES transport already builds, so no second HTTP client or TLS stack.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cmsi_mail::TransportErrorKind;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::failure::Failure;

/// Largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;
/// Lifetime assumed when the endpoint does not say (`expires_in`).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// A token is refreshed this long before it expires, or a tenth of its
/// lifetime when that is shorter.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Where tokens come from.
pub(crate) enum Tokens {
    /// A token given by the operator (`CMSI_MAIL_SMTP_TOKEN`); it cannot be
    /// refreshed here.
    Fixed(String),
    /// The client-credentials flow.
    Flow(Box<ClientCredentials>),
}

/// The client-credentials flow and its cached token.
pub(crate) struct ClientCredentials {
    url: hyper::Uri,
    client_id: String,
    client_secret: String,
    scope: Option<String>,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

struct Cached {
    token: String,
    refresh_at: Instant,
}

/// Where the token comes from; never the secret or a token.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokens::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            Tokens::Flow(flow) => f
                .debug_struct("ClientCredentials")
                .field("url", &flow.url)
                .field("client_id", &flow.client_id)
                .field("client_secret", &"<redacted>")
                .field("scope", &flow.scope)
                .finish_non_exhaustive(),
        }
    }
}

impl ClientCredentials {
    /// The flow against `url`: HTTPS, or plain HTTP to this machine only (the
    /// secret must not cross a network in clear text).
    pub(crate) fn new(
        url: &str,
        client_id: String,
        client_secret: String,
        scope: Option<String>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|error| format!("oauth_token_url {url:?}: {error}"))?;
        let host = uri.host().unwrap_or_default();
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]" | "::1");
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            _ => {
                return Err(format!(
                    "oauth_token_url {url:?} must be https:// (plain http only to this machine)"
                ));
            }
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Ok(ClientCredentials {
            url: uri,
            client_id,
            client_secret,
            scope,
            timeout,
            client: Client::builder(TokioExecutor::new()).build(connector),
            cached: tokio::sync::Mutex::new(None),
        })
    }
}

impl Tokens {
    /// A token that is not known to be expired or refused: the cached one, or
    /// a fresh one.
    pub(crate) async fn token(&self) -> Result<String, Failure> {
        match self {
            Tokens::Fixed(token) => Ok(token.clone()),
            Tokens::Flow(flow) => {
                let mut cached = flow.cached.lock().await;
                if let Some(current) = cached.as_ref()
                    && Instant::now() < current.refresh_at
                {
                    return Ok(current.token.clone());
                }
                let fresh = flow.fetch().await?;
                let token = fresh.token.clone();
                *cached = Some(fresh);
                Ok(token)
            }
        }
    }

    /// Forgets `refused` (the server answered 535 to it); whether a new token
    /// can be fetched.
    pub(crate) async fn refused(&self, refused: &str) -> bool {
        match self {
            Tokens::Fixed(_) => false,
            Tokens::Flow(flow) => {
                let mut cached = flow.cached.lock().await;
                if cached
                    .as_ref()
                    .is_some_and(|current| current.token == refused)
                {
                    *cached = None;
                }
                true
            }
        }
    }
}

impl ClientCredentials {
    async fn fetch(&self) -> Result<Cached, Failure> {
        // Built before any await: the serializer is not `Send`.
        let form = {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "client_credentials");
            form.append_pair("client_id", &self.client_id);
            form.append_pair("client_secret", &self.client_secret);
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            form.finish()
        };
        let request = hyper::Request::post(self.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|error| {
                Failure::new(
                    TransportErrorKind::Configuration,
                    format!("OAuth2 token request: {error}"),
                )
            })?;
        let asked = Instant::now();
        let step = format!("OAuth2 token from {}", self.url);
        let exchange = async {
            let response = self.client.request(request).await.map_err(|error| {
                Failure::new(TransportErrorKind::Transient, format!("{step}: {error}"))
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|error| {
                    Failure::new(TransportErrorKind::Transient, format!("{step}: {error}"))
                })?
                .to_bytes();
            Ok::<_, Failure>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Failure::timeout(&step, self.timeout))??;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let field = |name: &str| json.get(name);
        let text = |name: &str| field(name).and_then(serde_json::Value::as_str);
        if !status.is_success() {
            // The endpoint's own words (RFC 6749 §5.2); never the request.
            let reason = [text("error"), text("error_description")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            let kind = if status.is_server_error() {
                TransportErrorKind::Transient
            } else {
                TransportErrorKind::Configuration
            };
            return Err(Failure::new(
                kind,
                format!("{step}: HTTP {status} {reason}"),
            ));
        }
        let Some(token) = text("access_token").filter(|t| !t.is_empty()) else {
            return Err(Failure::new(
                TransportErrorKind::Configuration,
                format!("{step}: the answer has no access_token"),
            ));
        };
        // Some endpoints send the number as a string.
        let lifetime = field("expires_in")
            .and_then(serde_json::Value::as_u64)
            .or_else(|| text("expires_in").and_then(|s| s.parse().ok()))
            .map_or(DEFAULT_LIFETIME, Duration::from_secs);
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            "SMTP: fetched an OAuth2 token"
        );
        Ok(Cached {
            token: token.to_owned(),
            refresh_at: asked + lifetime.saturating_sub(margin),
        })
    }
}
