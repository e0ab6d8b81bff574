//! The property the `credentials` fuzz target checks, shared with the
//! regression test that replays every input a fuzzer found
//! (`fuzz/regressions/credentials/`). Not part of the API.
// A property check fails by panicking, as the fuzzer and the test expect.
#![allow(clippy::panic)]

use axum::http::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::auth::{AUTHORIZATION_HEADER, Credentials};

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

    match (
        Credentials::from_json(data),
        serde_json::from_slice::<Value>(data),
    ) {
        (Ok(scanned), Ok(Value::Object(object))) => {
            for (field, found) in FIELDS.into_iter().zip(scanned.fields()) {
                let parsed = object.get(field).and_then(Value::as_str);
                assert_eq!(found, parsed, "{field}: the scan and the parse disagree");
            }
        }
        (Ok(_), parsed) => panic!("the scan accepted what a JSON parse reads as {parsed:?}"),
        (Err(_), _) => {}
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
