//! `dest_url` channels: a message type other than mail (`weixin`, `sms`, …)
//! is sent by POSTing the validated request as JSON to a server of the
//! operator's, as the ESB's `send_sms`/`send_voice_msg` do, and its JSON
//! answer is relayed.
//!
//! The forward is bounded: one deadline (`timeout_secs`) for connecting,
//! sending and reading the answer; at most [`MAX_ANSWER_BYTES`] of answer;
//! redirects are not followed. TLS is rustls on ring, verified against the
//! system's CA certificates and the channel's `ca_file`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use cmsi_mail::{Error, EsbResponse};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;
use serde_json::Value;

use crate::Gateway;
use crate::outcome::{Fault, Outcome};
use crate::pipeline::{Call, off_runtime};
use crate::send_msg::{forward_body, interface_of};

/// The ESB's timeout for a `dest_url` (`REQUEST_TIMEOUT_SECS`).
pub const DEFAULT_CHANNEL_TIMEOUT_SECS: u64 = 30;
/// Largest answer read from a channel's server.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// Request headers copied to the channel's server, as the ESB copies the
/// first three; the tenant tells a shared server whose message it is.
const COPIED_HEADERS: [&str; 4] = [
    "blueking-language",
    "blueking-timezone",
    "traceparent",
    crate::tenants::TENANT_HEADER,
];

/// `[channels.NAME]`: the message type `NAME` is sent by POSTing to
/// `dest_url`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Where the request is POSTed (`http://` or `https://`).
    pub dest_url: String,
    /// Seconds the server has to answer, connection included (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// PEM file of CA certificates to trust for `dest_url` besides the
    /// system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The URL's scheme and host only: its path or query may carry a token.
impl std::fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("dest_url", &shown_url(&self.dest_url))
            .field("timeout_secs", &self.timeout_secs)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn shown_url(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => format!(
            "{}://{}/…",
            uri.scheme_str().unwrap_or("?"),
            uri.host().unwrap_or("?")
        ),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// `[channels]`, as written in the file.
pub type Channels = BTreeMap<String, ChannelConfig>;

/// A `[channels]` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[channels.{channel}]: {reason}")]
pub struct ChannelConfigError {
    channel: String,
    reason: String,
}

/// A configured channel, ready to forward.
pub(crate) struct Channel {
    /// The ESB component it stands for (`send_weixin`), for messages.
    interface: String,
    url: Uri,
    timeout: Duration,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("interface", &self.interface)
            .field("url", &shown_url(&self.url.to_string()))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Sends the message types of `channels` by POSTing them to their
    /// `dest_url`. Fails for a name that is not a message type (or is
    /// `mail`, which the transport sends), a URL that is not `http(s)://`, a
    /// `ca_file` that cannot be read, or an `https` URL with no CA to trust.
    pub fn with_channels(mut self, channels: &Channels) -> Result<Self, ChannelConfigError> {
        let mut system_roots = None;
        for (name, config) in channels {
            let error = |reason: String| ChannelConfigError {
                channel: name.clone(),
                reason,
            };
            if name == "mail" {
                return Err(error(
                    "mail is sent by the transport, not forwarded: remove this table".into(),
                ));
            }
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
            {
                return Err(error(
                    "a channel's name is its msg_type: letters, digits, _ and - only".into(),
                ));
            }
            let url: Uri = config
                .dest_url
                .parse()
                .map_err(|_| error("dest_url is not a URL".into()))?;
            let https = match url.scheme_str() {
                Some("https") => true,
                Some("http") => false,
                _ => return Err(error("dest_url must start with http:// or https://".into())),
            };
            if url.host().is_none_or(str::is_empty) {
                return Err(error("dest_url has no host".into()));
            }
            if config.timeout_secs == Some(0) {
                return Err(error("timeout_secs must be at least 1".into()));
            }
            let mut roots = RootCertStore::empty();
            if https {
                let system = system_roots.get_or_insert_with(native_roots);
                roots.extend(system.roots.iter().cloned());
            }
            if let Some(path) = &config.ca_file {
                let pem = std::fs::read(path)
                    .map_err(|e| error(format!("cannot read ca_file {}: {e}", path.display())))?;
                let mut found = 0;
                for certificate in CertificateDer::pem_slice_iter(&pem) {
                    let certificate = certificate.map_err(|e| {
                        error(format!("ca_file {} is not PEM: {e}", path.display()))
                    })?;
                    roots
                        .add(certificate)
                        .map_err(|e| error(format!("ca_file {}: {e}", path.display())))?;
                    found += 1;
                }
                if found == 0 {
                    return Err(error(format!(
                        "ca_file {} holds no certificate",
                        path.display()
                    )));
                }
            }
            if https && roots.is_empty() {
                return Err(error(
                    "no CA certificate to verify dest_url with: install the system's CA \
                     certificates (ca-certificates) or set ca_file"
                        .into(),
                ));
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| error(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let connector = HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .build();
            let client = Client::builder(TokioExecutor::new()).build(connector);
            self.channels.insert(
                name.clone(),
                Channel {
                    interface: interface_of(name),
                    url,
                    timeout: Duration::from_secs(
                        config.timeout_secs.unwrap_or(DEFAULT_CHANNEL_TIMEOUT_SECS),
                    ),
                    client,
                },
            );
        }
        Ok(self)
    }

    /// Forwards an authenticated `send_msg` call to the channel `name` and
    /// relays the answer. Takes a delivery slot, as sending mail does.
    pub(crate) async fn forward(
        self: &Arc<Self>,
        call: Call,
        name: &str,
        headers: &HeaderMap,
        request_id: &str,
    ) -> Outcome {
        let Some(channel) = self.channels.get(name) else {
            return Outcome::internal();
        };
        let _permit = match self.delivery_slot().await {
            Ok(permit) => permit,
            Err(busy) => return busy.for_app(call.app),
        };
        let fields = Arc::clone(&call.fields);
        let msg_type = name.to_owned();
        let body = off_runtime(fields.len(), move || {
            forward_body(&fields, &msg_type)
                .map(|(body, receivers)| (serde_json::to_vec(&body).unwrap_or_default(), receivers))
        })
        .await;
        let (body, receivers) = match body {
            Some(Ok(body)) => body,
            Some(Err(error)) => return Outcome::error(&Error::Request(error), Some(call.app)),
            None => return Outcome::internal(),
        };
        match channel.post(body, headers, request_id).await {
            Ok(answer) => {
                let response = EsbResponse::relayed(answer);
                let result = response.result;
                Outcome {
                    recipients: if result { receivers } else { 0 },
                    failure: (!result).then(|| format!("channel={name} kind=refused")),
                    fault: (!result).then_some(Fault::Upstream),
                    ..Outcome::ok(response, call.app)
                }
            }
            Err(error) => Outcome {
                app_code: Some(call.app),
                ..Outcome::answer(
                    StatusCode::OK,
                    EsbResponse::forward_failed(format!(
                        "Component request third-party system [CMSI] interface [{}] error: \
                         {error}, please try again later or contact component developer to \
                         handle this",
                        channel.interface
                    )),
                    &format!("channel={name} kind={}", error.kind()),
                )
                .with_fault(Fault::Upstream)
            },
        }
    }
}

/// Why a channel's server did not give a usable answer.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error(
        "Status Code: {0}, Error Message: third-party system interface response status code is not 200"
    )]
    Status(u16),
    #[error("Third-party system interface response time exceeds {0} seconds")]
    Timeout(u64),
    #[error("interface response is not the JSON format")]
    NotJson,
    #[error("interface response is not a JSON object")]
    NotObject,
    #[error("interface response is larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("cannot reach the third-party system: {0}")]
    Unreachable(String),
}

impl ForwardError {
    /// A word for the log.
    fn kind(&self) -> &'static str {
        match self {
            ForwardError::Status(_) => "status",
            ForwardError::Timeout(_) => "timeout",
            ForwardError::NotJson | ForwardError::NotObject => "not_json",
            ForwardError::TooLarge => "too_large",
            ForwardError::Unreachable(_) => "unreachable",
        }
    }
}

impl Channel {
    /// POSTs `body` and reads the JSON object the server answers, all
    /// within the channel's timeout.
    async fn post(
        &self,
        body: Vec<u8>,
        headers: &HeaderMap,
        request_id: &str,
    ) -> Result<serde_json::Map<String, Value>, ForwardError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("cmsi-mail/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| ForwardError::Unreachable(error.to_string()))?;
        let forwarded = request.headers_mut();
        if let Ok(id) = HeaderValue::from_str(request_id) {
            forwarded.insert("x-bkapi-request-id", id);
        }
        for name in COPIED_HEADERS {
            if let Some(value) = headers.get(name) {
                forwarded.insert(name, value.clone());
            }
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| ForwardError::Unreachable(innermost(&error)))?;
            if response.status() != StatusCode::OK {
                return Err(ForwardError::Status(response.status().as_u16()));
            }
            let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        ForwardError::TooLarge
                    } else {
                        ForwardError::Unreachable(innermost(error.as_ref()))
                    }
                })?
                .to_bytes();
            match serde_json::from_slice(&bytes) {
                Ok(Value::Object(answer)) => Ok(answer),
                Ok(_) => Err(ForwardError::NotObject),
                Err(_) => Err(ForwardError::NotJson),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ForwardError::Timeout(self.timeout.as_secs()))?
    }
}

/// The system's CA certificates; those it cannot read are skipped.
struct SystemRoots {
    roots: Vec<rustls::pki_types::TrustAnchor<'static>>,
}

fn native_roots() -> SystemRoots {
    let mut store = RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(found.certs);
    SystemRoots { roots: store.roots }
}

/// The deepest cause of an error (`Connection refused (os error 111)`),
/// which says more than hyper's outer `client error (Connect)`. It names no
/// URL.
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}
