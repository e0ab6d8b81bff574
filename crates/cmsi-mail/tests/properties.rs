//! Arbitrary titles, names, filenames and contents: validation never panics, and
//! whatever it accepts composes into a message that keeps the wire rules and
//! reads back (mail-parser) exactly as sent.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};
use cmsi_mail_testkit::oracle::{parse, wire_violations};
use encodify::base64::STANDARD as BASE64;
use mail_parser::MimeHeaders;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text with the characters that break mail: controls, CR/LF, quotes, `=?`,
/// lines that look like boundaries, CJK, emoji, and very long runs.
fn nasty_text() -> impl Strategy<Value = String> {
    // Pieces that validation refuses in headers (line breaks, NUL, other
    // controls) are rare, so that most cases get as far as composing.
    let pieces = prop_oneof![
        8 => "[a-zA-Z0-9 ]{0,20}",
        1 => "[\\x00-\\x1f\\x7f]{1,3}",
        1 => Just("\r\n".to_owned()),
        1 => Just("\n".to_owned()),
        1 => Just("\r".to_owned()),
        2 => Just("\"".to_owned()),
        2 => Just("\\".to_owned()),
        2 => Just("=?utf-8?B?5ZGo?=".to_owned()),
        2 => Just("--=_".to_owned()),
        1 => Just("\r\n--=_boundary--\r\n".to_owned()),
        4 => "[\\u{4e00}-\\u{9fa5}]{1,12}",
        2 => "[\\u{1f300}-\\u{1f6ff}]{1,3}",
        2 => "[\\u{a0}-\\u{10ffff}]{1,4}",
        1 => Just(" ".repeat(80)),
        1 => Just("x".repeat(1200)),
        2 => Just(";,<>@()[]:".to_owned()),
    ];
    proptest::collection::vec(pieces, 1..6).prop_map(|pieces| pieces.concat())
}

fn long_lines() -> impl Strategy<Value = String> {
    (1usize..3, 1usize..10_001).prop_map(|(lines, len)| {
        (0..lines)
            .map(|i| format!("{}{}", i, "y".repeat(len)))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn payload() -> impl Strategy<Value = (Vec<u8>, String)> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|bytes| {
            let encoded = BASE64.encode(&bytes);
            (bytes, encoded)
        }),
        // Wrapped the way Python's base64.encodebytes wraps.
        proptest::collection::vec(any::<u8>(), 0..3000).prop_map(|bytes| {
            let encoded = BASE64
                .encode(&bytes)
                .as_bytes()
                .chunks(76)
                .map(|line| format!("{}\n", String::from_utf8_lossy(line)))
                .collect();
            (bytes, encoded)
        }),
    ]
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

struct Case {
    request: Value,
    payload: Vec<u8>,
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let directory = StaticDirectory::new();
    let request = match SendMailRequest::from_value(case.request.clone()) {
        Ok(request) => request,
        Err(_) => return Ok(()),
    };
    let sender = Mailbox::parse("sender@example.com").unwrap();
    let Ok(validated) = Validator::new(sender, &directory).validate(request) else {
        return Ok(());
    };
    let message = validated.message;
    let composed = message.compose(&ComposeOptions::deterministic(9, 0));
    let problems = wire_violations(&composed.bytes);
    prop_assert!(problems.is_empty(), "{problems:?}");
    prop_assert!(
        message.estimated_len() >= composed.bytes.len(),
        "estimated_len is an upper bound"
    );

    let parsed = parse(&composed.bytes);
    prop_assert_eq!(parsed.subject(), Some(message.subject()));
    let to = parsed.to().unwrap();
    let names: Vec<Option<&str>> = to.iter().map(|a| a.name()).collect();
    let expected: Vec<Option<&str>> = message.to().iter().map(|m| m.name()).collect();
    prop_assert_eq!(names, expected);
    let addresses: Vec<Option<&str>> = to.iter().map(|a| a.address()).collect();
    let expected: Vec<Option<&str>> = message.to().iter().map(|m| Some(m.address())).collect();
    prop_assert_eq!(addresses, expected);

    let body = parsed.body_html(0).unwrap();
    prop_assert_eq!(lf(&body), lf(message.body()));

    for (part, attachment) in parsed.attachments().zip(message.attachments()) {
        prop_assert_eq!(part.attachment_name(), Some(attachment.filename()));
        prop_assert_eq!(part.contents(), case.payload.as_slice());
    }
    prop_assert_eq!(parsed.attachments().count(), message.attachments().len());
    Ok(())
}

proptest! {
    // About 40% of the header cases and 50% of the file cases pass validation
    // and are composed and read back.
    #![proptest_config(ProptestConfig {
        cases: 400,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("tests/properties.proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_titles_names_and_bodies(
        title in nasty_text(),
        name in nasty_text(),
        body in prop_oneof![nasty_text(), long_lines()],
    ) {
        let request = json!({
            "receiver": format!("{} <to@example.com>", quote(&name)),
            "title": title,
            "content": body,
        });
        check(&Case { request, payload: Vec::new() })?;
    }

    #[test]
    fn arbitrary_filenames_and_payloads(
        filename in nasty_text(),
        (bytes, encoded) in payload(),
        disposition in prop_oneof![Just("inline"), Just("attachment"), Just("")],
    ) {
        let request = json!({
            "receiver": "to@example.com",
            "title": "files",
            "content": "<p>see attached</p>",
            "attachments": [{"filename": filename, "content": encoded, "disposition": disposition}],
        });
        check(&Case { request, payload: bytes })?;
    }

    #[test]
    fn arbitrary_base64_bodies_never_panic(content in "[A-Za-z0-9+/=\\s!]{0,200}") {
        let request = json!({
            "receiver": "to@example.com",
            "title": "t",
            "content": content,
            "is_content_base64": true,
        });
        check(&Case { request, payload: Vec::new() })?;
    }

    #[test]
    fn invalid_utf8_behind_base64_is_refused(bytes in proptest::collection::vec(any::<u8>(), 1..200)) {
        let request = json!({
            "receiver": "to@example.com",
            "title": "t",
            "content": BASE64.encode(&bytes),
            "is_content_base64": true,
        });
        let request = SendMailRequest::from_value(request).unwrap();
        let directory = StaticDirectory::new();
        let result = Validator::new(Mailbox::parse("s@example.com").unwrap(), &directory)
            .validate(request);
        match std::str::from_utf8(&bytes) {
            Ok(_) => prop_assert!(result.is_ok()),
            Err(_) => {
                let error = result.err().unwrap();
                prop_assert_eq!(error.to_string(), "content: decoded content is not valid UTF-8 text");
            }
        }
    }

    #[test]
    fn arbitrary_json_never_panics(json in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(request) = SendMailRequest::from_json(&json) {
            let directory = StaticDirectory::new();
            let _ = Validator::new(Mailbox::parse("s@example.com").unwrap(), &directory)
                .validate(request);
        }
    }
}
