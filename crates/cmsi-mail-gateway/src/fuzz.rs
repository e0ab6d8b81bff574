//! The properties the `credentials` and `send_msg` fuzz targets check, shared
//! with the regression tests that replay every input a fuzzer found
//! (`fuzz/regressions/TARGET/`). Not part of the API.
// A property check fails by panicking, as the fuzzer and the test expect.
#![allow(clippy::panic)]

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue};
use cmsi_mail::SendMailRequest;
use cmsi_mail::split_username_list;
use serde_json::Value;

use crate::auth::{AUTHORIZATION_HEADER, Credentials};
use crate::pipeline::{Encoding, Fields};
use crate::send_msg::{MsgFields, forward_body, mail_request};

const FIELDS: [&str; 4] = ["bk_app_code", "bk_app_secret", "bk_token", "bk_username"];

/// Arbitrary bytes as an `X-Bkapi-Authorization` header, a JSON body and a
/// form body. Nothing panics; a refused header is never quoted; the JSON scan
/// finds exactly the credentials a full JSON parse finds; the form scan finds
/// what the form's pairs say.
///
/// # Panics
/// When the property fails.
pub fn check_credentials(data: &[u8]) {
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION_HEADER, value);
        if let Err(error) = Credentials::from_header(&headers) {
            let message = error.to_string();
            let fixed = message
                .strip_prefix("X-Bkapi-Authorization is not a JSON object of credentials")
                .is_some_and(|rest| {
                    [
                        "",
                        ": it is not ASCII text",
                        ": every credential must be a string",
                        ": it is not valid JSON",
                    ]
                    .contains(&rest)
                });
            assert!(
                fixed,
                "a header error says more than it should: {message:?}"
            );
        }
    }

    // The scan and the full parse of the request (what an authenticated
    // body goes through next) agree on the JSON's syntax and on the
    // credentials; other fields' types are the full parse's business alone.
    if let Ok(scanned) = Credentials::from_json(data) {
        match SendMailRequest::from_json(data) {
            Ok(request) => {
                let parsed = [
                    request.bk_app_code.as_deref(),
                    request.bk_app_secret.as_deref(),
                    request.bk_token.as_deref(),
                    request.bk_username.as_deref(),
                ];
                for ((field, found), parsed) in FIELDS.into_iter().zip(scanned.fields()).zip(parsed)
                {
                    assert_eq!(found, parsed, "{field}: the scan and the parse disagree");
                }
            }
            Err(error) => assert_ne!(
                error.field(),
                "request",
                "the scan accepted a body the full parse cannot read: {error}"
            ),
        }
    }

    if let Ok(scanned) = Credentials::from_pairs(data) {
        let pairs: Vec<_> = form_urlencoded::parse(data).collect();
        for (field, found) in FIELDS.into_iter().zip(scanned.fields()) {
            let given: Vec<_> = pairs.iter().filter(|(key, _)| key == field).collect();
            assert!(given.len() <= 1, "{field} given twice, yet accepted");
            assert_eq!(
                found,
                given.first().map(|(_, value)| value.as_ref()),
                "{field}"
            );
        }
    }
}

/// Keys a forwarded `send_msg` never carries: credentials, the address
/// fields `send_msg` drops, and the type (each channel has its own URL).
const NEVER_FORWARDED: [&str; 7] = [
    "bk_app_code",
    "bk_app_secret",
    "bk_token",
    "bk_username",
    "receiver",
    "cc",
    "msg_type",
];

/// Arbitrary bytes as a `send_msg` (and bk-cmsi) body, JSON and form. Nothing
/// panics; `msg_type=mail` reads exactly the `send_mail` request but for
/// `receiver` and `cc`, and has a receiver username; a forwarded body is one
/// the mail mapping also accepts, names the same usernames one by one, carries
/// no credential, and `weixin`'s `data` repeats the title and content; the
/// `msg_type` scan finds what a full JSON parse finds; `receiver_username`
/// reads as `receiver__username`.
///
/// # Panics
/// When the property fails.
pub fn check_send_msg(data: &[u8]) {
    let parsed = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    for encoding in [Encoding::Json, Encoding::Form] {
        let fields = Fields::new(encoding, Bytes::copy_from_slice(data), None);
        let full = fields.request();
        let mail = mail_request(&fields);
        if let Ok(mail) = &mail {
            let Ok(full) = &full else {
                panic!("the mail mapping read what the request parse refuses")
            };
            let mut expected = full.clone();
            expected.receiver.clear();
            expected.cc.clear();
            assert_eq!(
                mail, &expected,
                "{encoding:?}: the mail mapping changed more than receiver and cc"
            );
            assert!(
                mail.receiver_username
                    .iter()
                    .any(|entry| split_username_list(entry).next().is_some()),
                "no receiver username, yet accepted"
            );
        }
        if let Ok((body, count)) = forward_body(&fields, "weixin") {
            let (Ok(mail), Ok(full)) = (&mail, &full) else {
                panic!("{encoding:?}: forwarded what the mail mapping refuses")
            };
            for key in NEVER_FORWARDED {
                assert!(!body.contains_key(key), "{key} forwarded");
            }
            let receivers: Vec<&str> = body
                .get("receiver__username")
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let split: Vec<&str> = mail
                .receiver_username
                .iter()
                .flat_map(|entry| split_username_list(entry))
                .collect();
            assert_eq!(receivers, split, "the usernames, one by one");
            assert_eq!(receivers.len(), count);
            let text = |key: &str| body.get(key).and_then(Value::as_str).unwrap_or_default();
            let title = text("title");
            assert!(!title.is_empty() && title == full.title.as_deref().unwrap_or_default().trim());
            assert!(!text("content").is_empty());
            let weixin = body.get("data").unwrap_or(&Value::Null);
            assert_eq!(weixin.get("heading").and_then(Value::as_str), Some(title));
            assert_eq!(
                weixin.get("message").and_then(Value::as_str),
                Some(text("content"))
            );
            let written = serde_json::to_vec(&body).unwrap_or_default();
            let read: Value = serde_json::from_slice(&written).unwrap_or_default();
            assert_eq!(read, Value::Object(body), "the forwarded JSON reads back");
        }
        let (Encoding::Json, Some(object)) = (encoding, &parsed) else {
            continue;
        };
        if let (Ok(scanned), Some(Value::String(msg_type))) =
            (fields.parse::<MsgFields>(), object.get("msg_type"))
        {
            assert_eq!(
                scanned.msg_type.as_deref(),
                Some(msg_type.as_str()),
                "msg_type"
            );
        }
        if let (Ok(full), Some(Value::String(alias)), None) = (
            &full,
            object.get("receiver_username"),
            object.get("receiver__username"),
        ) {
            assert_eq!(
                full.receiver_username,
                std::slice::from_ref(alias),
                "receiver_username"
            );
        }
    }
}
