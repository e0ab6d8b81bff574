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

/// CJK, emoji, ASCII and two-byte letters in runs: the mixes whose encoded
/// words could end in `=` padding.
fn wide_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        4 => "[\u{4e00}-\u{9fa5}]{1,12}",
        2 => "[\u{1f300}-\u{1f6ff}]{1,4}",
        2 => "[a-zA-Z0-9]{1,3}",
        1 => Just(" ".to_owned()),
        1 => "[\u{3000}-\u{303f}\u{ff01}-\u{ff5e}]{1,3}",
        1 => "[\u{a0}-\u{2ff}]{1,4}",
    ];
    proptest::collection::vec(pieces, 1..16)
        .prop_map(|pieces| pieces.concat().trim().to_owned())
        .prop_filter("not blank", |text| !text.is_empty())
}

/// The encoded words of a header value, in order.
fn encoded_words(value: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?utf-8?") {
        let after = &rest[start + "=?utf-8?".len() + 2..];
        let end = after.find("?=").unwrap();
        words.push(&rest[start..start + "=?utf-8?".len() + 2 + end + 2]);
        rest = &after[end + 2..];
    }
    words
}

/// Every word decodes to whole characters, and every "B" word but the last
/// carries a multiple of 3 bytes, so it has no `=` padding.
fn check_words(what: &str, value: &str, expected: &str) -> Result<(), TestCaseError> {
    let words = encoded_words(value);
    prop_assert!(!words.is_empty(), "{what}: no encoded words in {value:?}");
    let mut decoded = String::new();
    for (index, word) in words.iter().enumerate() {
        let bytes = encodify::rfc2047::EncodedWord::parse(word.as_bytes())
            .unwrap()
            .0
            .decode()
            .unwrap();
        let text = std::str::from_utf8(&bytes);
        prop_assert!(text.is_ok(), "{what}: {word} splits a character");
        decoded.push_str(text.unwrap());
        let last = index + 1 == words.len();
        if word.starts_with("=?utf-8?B?") && !last {
            prop_assert!(
                bytes.len().is_multiple_of(3) && !word.ends_with("=?="),
                "{what}: {word} is padded and not last in {value:?}"
            );
        }
    }
    prop_assert_eq!(decoded, expected, "{}", what);
    Ok(())
}

/// The unfolded value of the first header line that starts with `name`.
fn header_value(raw: &str, name: &str) -> String {
    let unfolded = raw.replace("\r\n ", " ");
    unfolded
        .split("\r\n")
        .find_map(|line| line.strip_prefix(name))
        .unwrap()
        .to_owned()
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
    fn non_final_base64_words_are_unpadded(
        title in wide_text(),
        name in wide_text(),
        filename in wide_text(),
    ) {
        let request = json!({
            "receiver": format!("{} <to@example.com>", quote(&name)),
            "title": title,
            "content": "<p>x</p>",
            "attachments": [{"filename": format!("{filename}.pdf"), "content": "aGVsbG8="}],
        });
        let request = SendMailRequest::from_value(request).unwrap();
        let directory = StaticDirectory::new();
        let message = Validator::new(Mailbox::parse("s@example.com").unwrap(), &directory)
            .validate(request)
            .unwrap()
            .message;
        let composed = message.compose(&ComposeOptions::deterministic(9, 0));
        let raw = std::str::from_utf8(&composed.bytes).unwrap();
        prop_assert!(wire_violations(&composed.bytes).is_empty());
        if !message.subject().is_ascii() {
            check_words("Subject", &header_value(raw, "Subject: "), message.subject())?;
        }
        let to = &message.to()[0];
        if let Some(name) = to.name().filter(|name| !name.is_ascii()) {
            let value = header_value(raw, "To: ");
            let phrase = value.split(" <").next().unwrap();
            check_words("To", phrase, name)?;
        }
        if !filename.is_ascii() {
            let part_type = header_value(raw, "Content-Type: application/pdf;");
            let quoted = part_type.split("name=\"").nth(1).unwrap().trim_end_matches('"');
            check_words("name=", quoted, &format!("{filename}.pdf"))?;
        }
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
