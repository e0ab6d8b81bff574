//! The bk-cmsi API (`/api/bk-cmsi/{stage}/v1/…`, and `/v1/…` behind an API
//! gateway that strips the prefix), as BlueKing's newer clients call it:
//! `send_mail`, `send_msg` and `channels`.
//!
//! The same path as the ESB's routes (admission, `send`, channels), with what
//! these clients need: app credentials alone suffice; failures have a non-2xx
//! status and an `error` object, since bk-user, bk-job and the bkapi SDK look
//! only at those; a sent mail's `data` carries the `summary` bk-ci reads.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use cmsi_mail::EsbResponse;
use serde_json::{Value, json};

use crate::Gateway;
use crate::auth::Require;
use crate::outcome::{Answering, Outcome};
use crate::pipeline::Fields;
use crate::send_msg::Listing;

/// `send_mail` under both prefixes, with and without the final slash.
const SEND_MAIL_PATHS: [&str; 4] = [
    "/api/bk-cmsi/{stage}/v1/send_mail/",
    "/api/bk-cmsi/{stage}/v1/send_mail",
    "/v1/send_mail/",
    "/v1/send_mail",
];

/// `send_msg`; bk-monitor calls it without `v1`.
const SEND_MSG_PATHS: [&str; 6] = [
    "/api/bk-cmsi/{stage}/v1/send_msg/",
    "/api/bk-cmsi/{stage}/v1/send_msg",
    "/v1/send_msg/",
    "/v1/send_msg",
    "/api/bk-cmsi/{stage}/send_msg/",
    "/api/bk-cmsi/{stage}/send_msg",
];

/// `channels`; bk-monitor calls it without the final slash.
const CHANNELS_PATHS: [&str; 4] = [
    "/api/bk-cmsi/{stage}/v1/channels/",
    "/api/bk-cmsi/{stage}/v1/channels",
    "/v1/channels/",
    "/v1/channels",
];

/// Adds the bk-cmsi routes.
pub(crate) fn routes(mut router: Router<Arc<Gateway>>) -> Router<Arc<Gateway>> {
    for path in SEND_MAIL_PATHS {
        router = router.route(path, post(send_mail));
    }
    for path in SEND_MSG_PATHS {
        router = router.route(path, post(send_msg));
    }
    for path in CHANNELS_PATHS {
        router = router.route(path, get(channels));
    }
    router
}

async fn send_mail(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("v1_send_mail").apigw();
    gateway
        .answer(answering, Require::App, request, async |call, _, _| {
            summarized(gateway.send(call, Fields::request).await)
        })
        .await
}

async fn send_msg(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("v1_send_msg").apigw();
    gateway
        .answer(
            answering,
            Require::App,
            request,
            async |call, headers, request_id| {
                summarized(gateway.send_message(call, headers, request_id).await)
            },
        )
        .await
}

async fn channels(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let answering = Answering::start("v1_channels").apigw();
    gateway
        .answer(
            answering,
            Require::App,
            request,
            async |call, headers, _| {
                Outcome::ok(
                    EsbResponse::ok_with_data(gateway.message_types(headers, Listing::Apigw)),
                    call.app,
                )
            },
        )
        .await
}

/// A delivered mail's `data` with the `summary`, `message` and `details`
/// bk-ci reads (`message` is empty on success); other answers as they are.
fn summarized(mut outcome: Outcome) -> Outcome {
    let Some(delivered) = &outcome.delivered else {
        return outcome;
    };
    let Value::Object(data) = &mut outcome.response.data else {
        return outcome;
    };
    let succeeded = delivered.accepted;
    let failed = delivered.rejected.len() + delivered.invalid_usernames.len();
    data.insert(
        "summary".into(),
        json!({"total": succeeded + failed, "succeeded": succeeded, "failed": failed}),
    );
    data.insert("message".into(), json!(""));
    let details = if failed == 0 {
        json!({})
    } else {
        json!({"rejected": delivered.rejected, "invalid_usernames": delivered.invalid_usernames})
    };
    data.insert("details".into(), details);
    outcome
}
