//! With a queue (`[queue]`): `send` stores the composed message instead of
//! delivering it, and `mail_status` says what became of it.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use cmsi_mail::{EsbResponse, Prepared, Problem, RequestError};
use cmsi_mail_queue::Queue;
use serde::Deserialize;

use crate::Gateway;
use crate::auth::Require;
use crate::outcome::{Answering, Fault, Outcome};
use crate::pipeline::Call;

/// The paths `mail_status` is served on, beside the ESB's `send_mail`.
pub const MAIL_STATUS_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/mail_status/",
    "/api/c/compapi/cmsi/mail_status",
    "/api/c/compapi/v2/cmsi/mail_status/",
    "/api/c/compapi/v2/cmsi/mail_status",
];

/// Stores `prepared` in `queue` for `app`; answers once it is committed.
pub(crate) async fn enqueue(
    queue: &Queue,
    app: String,
    idempotency_key: Option<&str>,
    prepared: &Prepared,
) -> Outcome {
    let recipients = prepared.envelope.recipients();
    let first = EsbResponse::queued(
        &prepared.composed.message_id,
        recipients,
        &prepared.username_check,
    );
    let accepted = queue
        .accept(
            &app,
            idempotency_key,
            &prepared.envelope,
            &prepared.composed,
            &first.data,
        )
        .await;
    match accepted {
        Ok(accepted) => Outcome {
            status: StatusCode::OK,
            // A repeated key answers with what the first request was told.
            response: EsbResponse::ok_with_data(accepted.response),
            app_code: Some(app),
            retry_after: None,
            recipients: if accepted.repeated {
                0
            } else {
                recipients.len()
            },
            failure: None,
            fault: None,
            delivered: None,
        },
        Err(error) => Outcome {
            app_code: Some(app),
            ..queue_failure(&error)
        },
    }
}

/// What a queue error means for the caller: its own mistake (a bad key), or
/// the service's (the database), never with the database's password.
fn queue_failure(error: &cmsi_mail_queue::Error) -> Outcome {
    match error {
        cmsi_mail_queue::Error::IdempotencyKey => Outcome::answer(
            StatusCode::OK,
            EsbResponse::refused(error.to_string()),
            "idempotency key",
        )
        .with_fault(Fault::Request),
        // Stored or not, nobody knows: only the key can tell.
        cmsi_mail_queue::Error::TimedOut(_) => Outcome::answer(
            StatusCode::OK,
            EsbResponse::unavailable(
                "the delivery queue did not answer in time: whether the message was stored \
                 is unknown; repeat the request with the same Idempotency-Key to find out \
                 (without one, a repeat may send it twice)",
            ),
            "queue timed out",
        )
        .with_fault(Fault::Upstream),
        _ if error.is_unavailable() => Outcome::answer(
            StatusCode::OK,
            EsbResponse::unavailable(
                "the delivery queue cannot be reached: nothing was stored; try again",
            ),
            "queue unavailable",
        )
        .with_fault(Fault::Upstream),
        _ => Outcome::answer(
            StatusCode::OK,
            EsbResponse::unavailable(format!("the delivery queue failed: {error}")),
            "queue failed",
        )
        .with_fault(Fault::Upstream),
    }
}

/// The fields of a `mail_status` request (besides the credentials).
#[derive(Deserialize)]
struct StatusRequest {
    #[serde(default)]
    message_id: Option<String>,
}

pub(crate) async fn mail_status(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("mail_status");
    gateway
        .answer(
            answering,
            Require::AppAndUser,
            request,
            async |call, _, _| gateway.status(call).await,
        )
        .await
}

impl Gateway {
    /// The state of one of the calling app's messages.
    async fn status(&self, call: Call) -> Outcome {
        let app = call.app.clone();
        let with_app = |outcome: Outcome| Outcome {
            app_code: Some(app.clone()),
            ..outcome
        };
        let Some(queue) = &self.queue else {
            return with_app(
                Outcome::answer(
                    StatusCode::OK,
                    EsbResponse::refused(
                        "mail_status needs the delivery queue ([queue] in the configuration): \
                     without it send_mail delivers at once, and its answer is final",
                    ),
                    "no queue",
                )
                .with_fault(Fault::Request),
            );
        };
        let request: StatusRequest = match call.fields.parse() {
            Ok(request) => request,
            Err(error) => return Outcome::error(&error.into(), Some(app)),
        };
        let Some(message_id) = request.message_id.filter(|id| !id.trim().is_empty()) else {
            let error = RequestError::new("message_id", Problem::Missing);
            return Outcome::error(&error.into(), Some(app));
        };
        match queue.status(&call.app, message_id.trim()).await {
            Ok(Some(status)) => match serde_json::to_value(&status) {
                Ok(data) => with_app(Outcome {
                    failure: None,
                    ..Outcome::answer(StatusCode::OK, EsbResponse::ok_with_data(data), "")
                }),
                Err(_) => with_app(Outcome::internal()),
            },
            // Another app's message is as unknown as one that never was.
            Ok(None) => with_app(
                Outcome::answer(
                    StatusCode::OK,
                    EsbResponse::refused("message_id: no such message for this app"),
                    "unknown message",
                )
                .with_fault(Fault::Request),
            ),
            Err(error) => with_app(queue_failure(&error)),
        }
    }
}
