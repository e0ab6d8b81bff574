//! `/readyz`: whether this node can deliver, for a load balancer. The
//! transport is asked ([`Transport::ready`](cmsi_mail::Transport::ready)),
//! and with a queue its database, at most once per `ready_cache_secs`; probes
//! that arrive while they are asked wait for that answer instead of asking
//! again: probing often cannot make the relay busy.

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

/// The last answers and when they were found.
#[derive(Debug)]
struct Checked {
    at: Instant,
    result: Checks,
}

/// The transport's answer, and the queue's database's when there is a queue.
#[derive(Debug, Clone)]
struct Checks {
    transport: Result<(), Unready>,
    queue: Option<Result<(), Unready>>,
}

impl Checks {
    fn ready(&self) -> bool {
        self.transport.is_ok() && self.queue.as_ref().is_none_or(Result::is_ok)
    }
}

fn report(check: &Result<(), Unready>) -> serde_json::Value {
    match check {
        Ok(()) => json!({"status": "ok"}),
        Err(unready) => json!({
            "status": "failed",
            "kind": unready.kind,
            "message": unready.message,
        }),
    }
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
    /// The transport's readiness (and the queue's, with a queue), from the
    /// cache while it is fresh. The lock is held while they are asked, so
    /// concurrent probes share one check.
    async fn checks(&self) -> Checks {
        let mut last = self.readiness.last.lock().await;
        if let Some(checked) = last.as_ref()
            && checked.at.elapsed() < self.readiness.cache_for
        {
            return checked.result.clone();
        }
        let transport = self.mailer.transport();
        let transport = match tokio::time::timeout(CHECK_TIMEOUT, transport.ready()).await {
            Ok(result) => result.map_err(Unready::of),
            Err(_) => Err(Unready {
                kind: "transient",
                message: format!(
                    "the transport did not answer the check within {} s",
                    CHECK_TIMEOUT.as_secs()
                ),
            }),
        };
        let queue = match &self.queue {
            Some(queue) => Some(
                match tokio::time::timeout(CHECK_TIMEOUT, queue.ping()).await {
                    Ok(result) => result.map_err(|error| Unready {
                        kind: if error.is_unavailable() {
                            "unavailable"
                        } else {
                            "failed"
                        },
                        // The queue's errors show the URL without its password.
                        message: error.to_string(),
                    }),
                    Err(_) => Err(Unready {
                        kind: "unavailable",
                        message: format!(
                            "the queue database did not answer the check within {} s",
                            CHECK_TIMEOUT.as_secs()
                        ),
                    }),
                },
            ),
            None => None,
        };
        for (check, result) in [("transport", Some(&transport)), ("queue", queue.as_ref())] {
            if let Some(Err(unready)) = result {
                tracing::warn!(check, kind = unready.kind, reason = %unready.message, "not ready");
            }
        }
        let result = Checks { transport, queue };
        *last = Some(Checked {
            at: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

/// `GET /readyz`: 200 `{"status": "ready", ...}`, or 503 naming the check
/// that failed (the transport, or with a queue the queue's database).
pub(crate) async fn readyz(State(gateway): State<Arc<Gateway>>) -> Response {
    let checks = gateway.checks().await;
    let mut report_of = serde_json::Map::new();
    report_of.insert("transport".into(), report(&checks.transport));
    if let Some(queue) = &checks.queue {
        report_of.insert("queue".into(), report(queue));
    }
    let (status, word) = if checks.ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (
        status,
        axum::Json(json!({"status": word, "checks": report_of})),
    )
        .into_response()
}
