//! `/readyz`: whether this node can deliver, for a load balancer. The
//! transport is asked ([`Transport::ready`](cmsi_mail::Transport::ready)) at
//! most once per `ready_cache_secs`, and probes that arrive while it is asked
//! wait for that answer instead of asking again: probing often cannot make
//! the relay busy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cmsi_mail::{Error, TransportError};
use serde_json::json;
use tokio::sync::Mutex;

use crate::Gateway;

/// Longest a transport check may take; then the node counts as not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the transport is not ready, as `/readyz` shows it: the kind of
/// failure and the transport's message (which names the relay, never a
/// credential).
#[derive(Debug, Clone)]
struct Unready {
    kind: &'static str,
    message: String,
}

impl Unready {
    fn of(error: TransportError) -> Self {
        let message = error.message().to_owned();
        Unready {
            kind: Error::Transport(error).kind(),
            message,
        }
    }
}

/// The last answer and when it was found.
#[derive(Debug)]
struct Checked {
    at: Instant,
    result: Result<(), Unready>,
}

/// The cached readiness of the transport.
#[derive(Debug)]
pub(crate) struct Readiness {
    cache_for: Duration,
    last: Mutex<Option<Checked>>,
}

impl Readiness {
    pub(crate) fn new(cache_for: Duration) -> Self {
        Readiness {
            cache_for,
            last: Mutex::new(None),
        }
    }
}

impl Gateway {
    /// The transport's readiness, from the cache while it is fresh. The lock
    /// is held while the transport is asked, so concurrent probes share one
    /// check.
    async fn transport_ready(&self) -> Result<(), Unready> {
        let mut last = self.readiness.last.lock().await;
        if let Some(checked) = last.as_ref()
            && checked.at.elapsed() < self.readiness.cache_for
        {
            return checked.result.clone();
        }
        let transport = self.mailer.transport();
        let result = match tokio::time::timeout(CHECK_TIMEOUT, transport.ready()).await {
            Ok(result) => result.map_err(Unready::of),
            Err(_) => Err(Unready {
                kind: "transient",
                message: format!(
                    "the transport did not answer the check within {} s",
                    CHECK_TIMEOUT.as_secs()
                ),
            }),
        };
        if let Err(unready) = &result {
            tracing::warn!(kind = unready.kind, reason = %unready.message, "not ready");
        }
        *last = Some(Checked {
            at: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

/// `GET /readyz`: 200 `{"status": "ready", ...}`, or 503 naming the check
/// that failed.
pub(crate) async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.transport_ready().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "checks": {"transport": {"status": "ok"}},
            })),
        )
            .into_response(),
        Err(unready) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({
                "status": "not ready",
                "checks": {"transport": {
                    "status": "failed",
                    "kind": unready.kind,
                    "message": unready.message,
                }},
            })),
        )
            .into_response(),
    }
}
