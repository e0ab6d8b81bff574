//! `/metrics` in the Prometheus text format: what the gateway answered, what
//! the transport delivered, and what is in flight.
//!
//! Label values come from closed sets only (route names, ESB codes, transport
//! kinds, outcomes, quota scopes) or from the configured app codes; an app
//! code that is not configured is counted as `app="-"`. No address, subject,
//! secret or other text a caller sent ever becomes a label.
//!
//! Counters are counted where things happen; gauges that describe a state
//! (the body budget in use) are read when `/metrics` is scraped, in
//! [`Metrics::render`]; with a queue, so are its depth by state and the age
//! of its oldest waiting message. Deliveries are counted where they happen:
//! in the gateway while the caller waits, or, with a queue, in the workers,
//! whose transport [`Counted`] wraps.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cmsi_mail::{
    CODE_BACKEND_FAILED, CODE_BAD_REQUEST, CODE_OK, CODE_RATE_LIMITED, Composed, Envelope, Error,
    Receipt, Sent, Transport, TransportError,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::Gateway;
use crate::quota::Scope;

/// Upper bounds of the duration histograms' buckets, in seconds: from a
/// refusal (milliseconds) to a large message through a slow relay (minutes).
const DURATION_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The label value for a request whose app is not known (or not configured).
const NO_APP: &str = "-";

/// The label value for a code a channel server answered with (relayed as it
/// is to the caller, but not a label: it could be anything).
const RELAYED_CODE: &str = "relayed";

/// The label value for the transport when the embedding program names none.
pub(crate) const UNNAMED_TRANSPORT: &str = "-";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    app: String,
    route: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    transport: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    app: String,
    quota: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn durations() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The gateway's metrics and the registry that renders them.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<RouteLabels>,
    deliveries: Family<DeliveryLabels, Counter>,
    delivery_duration: Histograms<TransportLabels>,
    recipients: Family<OutcomeLabels, Counter>,
    rate_limited: Family<QuotaLabels, Counter>,
    inflight_requests: Gauge,
    body_bytes_inflight: Gauge,
    queue_depth: Family<StateLabels, Gauge>,
    queue_oldest_age: Gauge<f64, AtomicU64>,
    /// The transport's kind, as the delivery metrics label it.
    pub(crate) transport: &'static str,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

/// What `/metrics` reads at scrape time.
pub(crate) struct Sample {
    /// Bytes of the body budget in use.
    pub(crate) body_bytes_inflight: usize,
    /// The queue's counts, when there is a queue and it answered.
    pub(crate) queue: Option<cmsi_mail_queue::Stats>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("cmsi");
        let requests = Family::default();
        registry.register(
            "requests",
            "API requests answered, by app, route and ESB code",
            requests.clone(),
        );
        let request_duration: Histograms<RouteLabels> =
            Family::new_with_constructor(durations as fn() -> Histogram);
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer, by route",
            Unit::Seconds,
            request_duration.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "deliveries",
            "Messages handed to the transport, by transport and outcome \
             (sent, transient, permanent, configuration, io)",
            deliveries.clone(),
        );
        let delivery_duration: Histograms<TransportLabels> =
            Family::new_with_constructor(durations as fn() -> Histogram);
        registry.register_with_unit(
            "delivery_duration",
            "Time the transport took to deliver or fail, retries included",
            Unit::Seconds,
            delivery_duration.clone(),
        );
        let recipients = Family::default();
        registry.register(
            "recipients",
            "Recipients of delivered messages the relay accepted or refused",
            recipients.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "Requests refused for a quota, by app and quota (app or server)",
            rate_limited.clone(),
        );
        let inflight_requests = Gauge::default();
        registry.register(
            "inflight_requests",
            "API requests being answered now",
            inflight_requests.clone(),
        );
        let body_bytes_inflight = Gauge::default();
        registry.register(
            "body_bytes_inflight",
            "Bytes of request bodies being read or held now (of max_inflight_body_bytes)",
            body_bytes_inflight.clone(),
        );
        let queue_depth = Family::default();
        registry.register(
            "queue_depth",
            "Messages in the delivery queue by state (queued, sending, sent, failed; \
             with [queue] only)",
            queue_depth.clone(),
        );
        let queue_oldest_age = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "queue_oldest_age",
            "Age of the oldest message waiting in the queue (0 when none; with [queue] only)",
            Unit::Seconds,
            queue_oldest_age.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            deliveries,
            delivery_duration,
            recipients,
            rate_limited,
            inflight_requests,
            body_bytes_inflight,
            queue_depth,
            queue_oldest_age,
            transport: UNNAMED_TRANSPORT,
        }
    }

    /// Shows the series an alert or a dashboard may divide by as 0 before
    /// anything happened: deliveries by `transport` and outcome, recipients,
    /// and refusals for each quota `quotas` names (app code, scope).
    pub(crate) fn start_at_zero<'a>(
        &self,
        transport: &'static str,
        quotas: impl Iterator<Item = (&'a str, Scope)>,
    ) {
        for outcome in ["sent", "transient", "permanent", "configuration", "io"] {
            drop(
                self.deliveries
                    .get_or_create(&DeliveryLabels { transport, outcome }),
            );
        }
        for outcome in ["accepted", "refused"] {
            drop(self.recipients.get_or_create(&OutcomeLabels { outcome }));
        }
        for (app, scope) in quotas {
            drop(self.rate_limited.get_or_create(&QuotaLabels {
                app: app.to_owned(),
                quota: scope.label(),
            }));
        }
    }

    /// The metrics in the Prometheus text format, with the gauges read now.
    pub(crate) fn render(&self, sample: &Sample) -> String {
        self.body_bytes_inflight
            .set(i64::try_from(sample.body_bytes_inflight).unwrap_or(i64::MAX));
        if let Some(stats) = &sample.queue {
            for (state, count) in [
                ("queued", stats.queued),
                ("sending", stats.sending),
                ("sent", stats.sent),
                ("failed", stats.failed),
            ] {
                self.queue_depth
                    .get_or_create(&StateLabels { state })
                    .set(i64::try_from(count).unwrap_or(i64::MAX));
            }
            self.queue_oldest_age
                .set(stats.oldest_queued_seconds.unwrap_or(0.0));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Counts one delivery the gateway made while the caller waited.
    pub(crate) fn delivered(&self, result: &Result<Sent, Error>, took: Duration) {
        match result {
            Ok(sent) => self.record("sent", Some(&sent.receipt), took),
            // transient, permanent, configuration or io
            Err(error) => self.record(error.kind(), None, took),
        }
    }

    /// Counts one delivery: its outcome, its time, and the recipients its
    /// receipt lists.
    fn record(&self, outcome: &'static str, receipt: Option<&Receipt>, took: Duration) {
        let transport = self.transport;
        self.deliveries
            .get_or_create(&DeliveryLabels { transport, outcome })
            .inc();
        self.delivery_duration
            .get_or_create(&TransportLabels { transport })
            .observe(took.as_secs_f64());
        if let Some(receipt) = receipt {
            for (outcome, count) in [
                ("accepted", receipt.accepted.len()),
                ("refused", receipt.rejected.len()),
            ] {
                self.recipients
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc_by(count as u64);
            }
        }
    }

    /// Counts a request refused for a quota; `app` is authenticated.
    pub(crate) fn rate_limited(&self, app: &str, scope: Scope) {
        self.rate_limited
            .get_or_create(&QuotaLabels {
                app: app.to_owned(),
                quota: scope.label(),
            })
            .inc();
    }
}

/// What an API request came to, as [`observe`] counts it: set on the reply
/// by `Answering::finish`.
#[derive(Debug, Clone)]
pub(crate) struct Answered {
    pub(crate) route: &'static str,
    pub(crate) app: Option<String>,
    pub(crate) code: String,
}

/// `code` as a label value: our own ESB codes, every other one as
/// [`RELAYED_CODE`].
fn code_label(code: &str) -> String {
    match code {
        CODE_OK | CODE_BAD_REQUEST | CODE_BACKEND_FAILED | CODE_RATE_LIMITED => code.to_owned(),
        _ => RELAYED_CODE.to_owned(),
    }
}

/// Counts an API request: in flight while it is answered (also when the
/// client goes away meanwhile), then by app, route and code, and its time.
pub(crate) async fn observe(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let metrics = &gateway.metrics;
    let started = Instant::now();
    let _inflight = InFlight::enter(&metrics.inflight_requests);
    let reply = next.run(request).await;
    if let Some(answered) = reply.extensions().get::<Answered>() {
        let app = match &answered.app {
            Some(app) if gateway.apps.contains(app) => app.clone(),
            _ => NO_APP.to_owned(),
        };
        metrics
            .requests
            .get_or_create(&RequestLabels {
                app,
                route: answered.route,
                code: code_label(&answered.code),
            })
            .inc();
        metrics
            .request_duration
            .get_or_create(&RouteLabels {
                route: answered.route,
            })
            .observe(started.elapsed().as_secs_f64());
    }
    reply
}

/// One request in `cmsi_inflight_requests` until dropped.
struct InFlight(Gauge);

impl InFlight {
    fn enter(gauge: &Gauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A transport whose deliveries the metrics count: the queue's workers
/// deliver through it.
pub(crate) struct Counted {
    inner: Arc<dyn Transport>,
    metrics: Arc<Metrics>,
}

impl Counted {
    pub(crate) fn new(inner: Arc<dyn Transport>, metrics: Arc<Metrics>) -> Self {
        Counted { inner, metrics }
    }
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Transport for Counted {
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        let started = Instant::now();
        let result = self.inner.send(envelope, message).await;
        match &result {
            Ok(receipt) => self
                .metrics
                .record("sent", Some(receipt), started.elapsed()),
            Err(error) => self
                .metrics
                .record(error.kind().label(), None, started.elapsed()),
        }
        result
    }

    async fn ready(&self) -> Result<(), TransportError> {
        self.inner.ready().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}

/// How long a scrape waits for the queue's counts.
const QUEUE_STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /metrics`.
pub(crate) async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    let queue = match &gateway.queue {
        // A database that does not answer leaves the queue's gauges as they
        // were; /readyz tells that it is down.
        Some(queue) => tokio::time::timeout(QUEUE_STATS_TIMEOUT, queue.stats())
            .await
            .ok()
            .and_then(Result::ok),
        None => None,
    };
    let sample = Sample {
        body_bytes_inflight: gateway.bodies.in_use(),
        queue,
    };
    (
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        gateway.metrics.render(&sample),
    )
        .into_response()
}
