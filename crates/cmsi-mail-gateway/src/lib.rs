#![doc = include_str!("../README.md")]

mod auth;
mod bk_cmsi;
mod body;
mod channels;
mod config;
#[doc(hidden)]
pub mod fuzz;
mod metrics;
mod outcome;
mod pipeline;
mod queued;
mod quota;
mod ready;
mod send_mail;
mod send_msg;
mod server;
mod tenants;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{MethodRouter, get};
use cmsi_mail::{Mailer, Transport};
use serde_json::json;
use tokio::sync::Semaphore;

pub use channels::{
    ChannelConfig, ChannelConfigError, Channels, DEFAULT_CHANNEL_TIMEOUT_SECS, MAX_ANSWER_BYTES,
};
pub use cmsi_mail_queue::Queue;
pub use config::{
    AppConfig, AppConfigError, AppRegistry, Apps, DEFAULT_BODY_TIMEOUT_SECS,
    DEFAULT_HEADER_TIMEOUT_SECS, DEFAULT_LISTEN, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONCURRENT_DELIVERIES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES,
    DEFAULT_READY_CACHE_SECS, DEFAULT_REQUEST_TIMEOUT_SECS, ServerConfig, ServerConfigError,
};
pub use queued::MAIL_STATUS_PATHS;
pub use quota::{Rate, RateError};
pub use send_mail::SEND_MAIL_PATHS;

use body::BodyReader;
use metrics::Metrics;
use outcome::{method_not_allowed, not_found};
use quota::Quotas;
use ready::Readiness;

/// The endpoints: a mailer (and one per tenant), the channels, the apps
/// allowed to call, and limits.
pub struct Gateway {
    mailer: Mailer<Box<dyn Transport>>,
    /// `[tenants.NAME]`: a mailer each, over the same transport.
    tenants: BTreeMap<String, Mailer<Box<dyn Transport>>>,
    /// `[channels.NAME]`: message types forwarded to a `dest_url`.
    channels: BTreeMap<String, channels::Channel>,
    apps: AppRegistry,
    bodies: BodyReader,
    deliveries: Semaphore,
    connections: server::ConnectionLimits,
    /// More routes served beside the API (e.g. the CLI's outbox viewer).
    extra_routes: Option<Router>,
    /// Where mail goes instead of the transport, when `[queue]` is configured.
    queue: Option<Queue>,
    quotas: Quotas,
    metrics: Arc<Metrics>,
    /// Where `/metrics` is served instead of the main listener.
    metrics_listen: Option<SocketAddr>,
    readiness: Readiness,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("apps", &self.apps)
            .field("tenants", &self.tenants.keys().collect::<Vec<_>>())
            .field("channels", &self.channels)
            .field("bodies", &self.bodies)
            .field("connections", &self.connections)
            .field("quotas", &self.quotas)
            .field("metrics", &self.metrics)
            .field("metrics_listen", &self.metrics_listen)
            .finish_non_exhaustive()
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
        let quotas = Quotas::new(&apps, server.limit());
        let metrics = Metrics::new();
        metrics.start_at_zero(metrics::UNNAMED_TRANSPORT, quotas.scopes(&apps));
        Ok(Gateway {
            mailer,
            tenants: BTreeMap::new(),
            channels: BTreeMap::new(),
            quotas,
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
            queue: None,
            metrics: Arc::new(metrics),
            metrics_listen: server.metrics_listen,
            readiness: Readiness::new(server.ready_cache()),
        })
    }

    /// Names the transport's kind in the delivery metrics
    /// (`cmsi_deliveries_total{transport}`): `file`, `smtp`, `ses`, or the
    /// embedding program's own (a fixed name: no address, no host). Without
    /// it the label is `-`.
    #[must_use]
    pub fn with_transport_label(mut self, kind: &'static str) -> Self {
        // Fresh metrics: no series is left under the `-` label.
        let mut metrics = Metrics::new();
        metrics.transport = kind;
        metrics.start_at_zero(kind, self.quotas.scopes(&self.apps));
        self.metrics = Arc::new(metrics);
        self
    }

    /// `transport`, with its deliveries counted in this gateway's metrics:
    /// give it to the queue's workers (`Queue::start_workers`), which deliver
    /// for the gateway when it queues.
    pub fn counting(&self, transport: Arc<dyn Transport>) -> Arc<dyn Transport> {
        Arc::new(metrics::Counted::new(transport, Arc::clone(&self.metrics)))
    }

    /// Serves `routes` beside the API, in [`Gateway::router`] and so in
    /// [`serve`]. They must not use the API's paths; unmatched paths still get
    /// the API's 404.
    #[must_use]
    pub fn with_routes(mut self, routes: Router) -> Self {
        self.extra_routes = Some(routes);
        self
    }

    /// Stores mail in `queue` for its workers instead of delivering it while
    /// the caller waits (the answer then says `"queued": true`), and serves
    /// `mail_status`.
    #[must_use]
    pub fn with_queue(mut self, queue: Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Ends the transport's idle connections; for after the server stopped.
    pub async fn close(&self) {
        self.mailer.transport().close().await;
    }

    /// The API as an axum router, to serve or to nest in another application:
    /// the API routes, `/healthz`, `/readyz`, and `/metrics` unless `[server]
    /// metrics_listen` moves it to [`Gateway::metrics_router`].
    ///
    /// The router bounds request bodies (size, budget, timeouts) itself; the
    /// bounds on connections (number, header timeout) belong to the server:
    /// [`serve`] sets them, an application that nests the router sets its own.
    pub fn router(self: Arc<Self>) -> Router {
        let send_mail: MethodRouter<Arc<Gateway>> = MethodRouter::new()
            .get(send_mail::send_mail)
            .post(send_mail::send_mail);
        let mut router = Router::new();
        for path in SEND_MAIL_PATHS {
            router = router.route(path, send_mail.clone());
        }
        let mail_status: MethodRouter<Arc<Gateway>> = MethodRouter::new()
            .get(queued::mail_status)
            .post(queued::mail_status);
        for path in MAIL_STATUS_PATHS {
            router = router.route(path, mail_status.clone());
        }
        router = send_msg::routes(router);
        router = bk_cmsi::routes(router);
        // Counts the API routes added above it (in flight, by app, route and
        // code): an API route goes above, an operational one below.
        router = router
            .route_layer(middleware::from_fn_with_state(
                Arc::clone(&self),
                metrics::observe,
            ))
            .route("/healthz", get(healthz))
            .route("/readyz", get(ready::readyz));
        if self.metrics_listen.is_none() {
            router = router.route("/metrics", get(metrics::metrics));
        }
        let extra = self.extra_routes.clone().unwrap_or_default();
        router
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(self)
            .merge(extra)
    }

    /// `/metrics` alone, for the listener of `[server] metrics_listen`
    /// ([`serve`] serves it there itself).
    pub fn metrics_router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", get(metrics::metrics))
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .with_state(self)
    }
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Serves `gateway` on `listener` (HTTP/1.1) until `shutdown` completes; then
/// stops accepting, lets the requests in progress finish, and closes the
/// transport. With `[server] metrics_listen` it also listens there and serves
/// `/metrics` on it, within the same connection bounds.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gateway: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = gateway.connections;
    let router = Arc::clone(&gateway).router();
    let served = match gateway.metrics_listen {
        None => server::run(listener, router, limits, shutdown).await,
        Some(address) => {
            let metrics_listener =
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|error| {
                        std::io::Error::new(
                            error.kind(),
                            format!(
                                "cannot listen on {address} ([server] metrics_listen): {error}"
                            ),
                        )
                    })?;
            tracing::info!(listen = %address, "serving /metrics");
            let metrics = Arc::clone(&gateway).metrics_router();
            // Both listeners stop when `shutdown` completes.
            let (stop, stopped) = tokio::sync::watch::channel(false);
            let signal = async move {
                shutdown.await;
                let _ = stop.send(true);
            };
            let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            };
            let (api, metrics, ()) = tokio::join!(
                server::run(listener, router, limits, until_stopped(stopped.clone())),
                server::run(metrics_listener, metrics, limits, until_stopped(stopped)),
                signal,
            );
            api.and(metrics)
        }
    };
    gateway.close().await;
    served
}
