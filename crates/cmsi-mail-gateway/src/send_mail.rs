//! `send_mail`: a request becomes a message, and the message goes to the
//! transport. Other routes that send mail (`send_msg` with `msg_type=mail`)
//! come through [`Gateway::send`] too.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use cmsi_mail::{Error, EsbResponse, RequestError, SendMailRequest};
use tokio::sync::SemaphorePermit;

use crate::Gateway;
use crate::auth::Require;
use crate::outcome::{Answering, Delivered, Fault, Outcome, describe};
use crate::pipeline::{Call, Fields, off_runtime};
use crate::queued;

/// The paths the ESB serves `send_mail` on.
pub const SEND_MAIL_PATHS: [&str; 4] = [
    "/api/c/compapi/cmsi/send_mail/",
    "/api/c/compapi/cmsi/send_mail",
    "/api/c/compapi/v2/cmsi/send_mail/",
    "/api/c/compapi/v2/cmsi/send_mail",
];

pub(crate) async fn send_mail(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("send_mail");
    gateway
        .answer(
            answering,
            Require::AppAndUser,
            request,
            async |call, _, _| gateway.send(call, Fields::request).await,
        )
        .await
}

impl Gateway {
    /// A delivery slot (`max_concurrent_deliveries`), waited for at most the
    /// request deadline (`request_timeout_secs`): a request that cannot get
    /// one is answered busy and gives its body's share of the budget back,
    /// rather than holding it while a slow relay holds every slot.
    pub(crate) async fn delivery_slot(&self) -> Result<SemaphorePermit<'_>, Outcome> {
        let wait = self.bodies.deadline();
        match tokio::time::timeout(wait, self.deliveries.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (the semaphore is never closed).
            _ => Err(Outcome::answer(
                StatusCode::SERVICE_UNAVAILABLE,
                EsbResponse::unavailable(format!(
                    "the server is busy delivering other mail: no delivery slot \
                     (max_concurrent_deliveries) came free within {} s; try again shortly",
                    wait.as_secs()
                )),
                "deliveries busy",
            )
            .with_retry_after(1)),
        }
    }

    /// Sends an authenticated call's mail: `request` reads it from the call's
    /// fields. Only here is a delivery slot taken, and the parse and
    /// composition run off the async threads when the body is large. With a
    /// queue the message is stored for the workers instead of delivered.
    pub(crate) async fn send(
        self: &Arc<Self>,
        call: Call,
        request: fn(&Fields) -> Result<SendMailRequest<'_>, RequestError>,
    ) -> Outcome {
        let _permit = match self.delivery_slot().await {
            Ok(permit) => permit,
            Err(busy) => return busy.for_app(call.app),
        };
        let Call {
            app,
            tenant,
            fields,
            body,
            idempotency_key,
        } = call;
        let gateway = Arc::clone(self);
        let prepared = off_runtime(fields.len(), move || {
            let request = request(&fields).map_err(Error::from)?;
            gateway.mailer_for(tenant.as_deref()).prepare(request)
        })
        .await;
        // The request's body (and its share of the budget) is not needed any
        // more while the message travels: only the composed bytes are.
        drop(body);
        let prepared = match prepared {
            Some(Ok(prepared)) => prepared,
            Some(Err(error)) => return Outcome::error(&error, Some(app)),
            None => return Outcome::internal(),
        };
        if let Some(queue) = &self.queue {
            return queued::enqueue(queue, app, idempotency_key.as_deref(), &prepared).await;
        }
        // Any tenant's mailer delivers: they share the one transport.
        let started = std::time::Instant::now();
        let result = self.mailer.deliver(&prepared).await;
        self.metrics.delivered(&result, started.elapsed());
        Outcome {
            status: StatusCode::OK,
            response: prepared.response(&result),
            app_code: Some(app),
            retry_after: None,
            recipients: result
                .as_ref()
                .map_or(0, |sent| sent.receipt.accepted.len()),
            failure: result.as_ref().err().map(describe),
            fault: result.is_err().then_some(Fault::Upstream),
            delivered: result.as_ref().ok().map(|sent| Delivered {
                accepted: sent.receipt.accepted.len(),
                rejected: sent.receipt.rejected.clone(),
                invalid_usernames: prepared.username_check.invalid.clone(),
            }),
        }
    }
}
