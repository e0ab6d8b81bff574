//! `cmsi-mail compose` as a user runs it: exit status, stderr, stdout.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use cmsi_mail_testkit::oracle::{assert_wire_format, parse, python_email_clean, python_shape};
use cmsi_mail_testkit::workspace_root;
use serde_json::{Value, json};

fn cmsi_mail(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before reading (a bad --users file) may have
    // closed its stdin already: its exit status and stderr tell.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn compose_json(request: &Value) -> Output {
    cmsi_mail(
        &["compose", "-", "--users", "examples/users.toml"],
        request.to_string().as_bytes(),
    )
}

#[test]
fn composes_the_readme_example() {
    let output = cmsi_mail(
        &["compose", "examples/send_mail.json", "--deterministic"],
        b"",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty());
    assert_wire_format(&output.stdout);
    let report = python_email_clean(&output.stdout);
    assert_eq!(
        python_shape(&report),
        "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png,image/png],application/pdf]"
    );
    assert_eq!(report["date"], "Sat, 01 Jan 2000 00:00:00 +0000");
    let again = cmsi_mail(
        &["compose", "examples/send_mail.json", "--deterministic"],
        b"",
    );
    assert_eq!(
        output.stdout, again.stdout,
        "--deterministic repeats itself"
    );
}

#[test]
fn reads_standard_input_and_applies_the_defaults() {
    let output = compose_json(&json!({
        "receiver__username": "zhangsan",
        "title": "周报",
        "content": "hello",
    }));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed = parse(&output.stdout);
    let to = parsed.to().unwrap().first().unwrap();
    assert_eq!(to.name(), Some("张三"));
    assert_eq!(to.address(), Some("zhangsan@example.com"));
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("cmsi-mail@localhost"));

    let output = cmsi_mail(
        &["compose", "--sender", "运维 <ops@example.com>"],
        br#"{"receiver": "a@example.com", "title": "t", "content": "c"}"#,
    );
    assert!(output.status.success());
    let parsed = parse(&output.stdout);
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(
        (from.name(), from.address()),
        (Some("运维"), Some("ops@example.com"))
    );
}

#[test]
fn partly_unknown_usernames_are_reported_on_stderr() {
    let output = compose_json(&json!({
        "receiver__username": "zhangsan,ghost",
        "title": "t",
        "content": "c",
    }));
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "cmsi-mail: unknown usernames left out: ghost\n"
    );
}

#[test]
fn every_bad_input_exits_2_naming_the_field() {
    // The valid request with some fields replaced (Null removes the field).
    let with = |changes: &[(&str, Value)]| {
        let mut request = json!({"receiver": "a@example.com", "title": "t", "content": "c"});
        for (key, value) in changes {
            match value {
                Value::Null => drop(request.as_object_mut().unwrap().remove(*key)),
                value => request[*key] = value.clone(),
            }
        }
        request
    };
    let attachment = |fields: Value| {
        let mut entry = json!({"filename": "a.txt", "content": "aGk="});
        for (key, value) in fields.as_object().unwrap() {
            entry[key] = value.clone();
        }
        with(&[("attachments", json!([entry]))])
    };
    let cases = [
        (with(&[("title", Value::Null)]), "title"),
        (with(&[("title", json!("  "))]), "title"),
        (
            with(&[("title", json!("a\r\nBcc: x@example.com"))]),
            "title",
        ),
        (with(&[("title", json!("a\0b"))]), "title"),
        (with(&[("content", Value::Null)]), "content"),
        (with(&[("content", json!(""))]), "content"),
        (with(&[("receiver", Value::Null)]), "receiver"),
        (with(&[("receiver", json!("not-an-address"))]), "receiver"),
        (with(&[("receiver", json!("张三@example.com"))]), "receiver"),
        (with(&[("receiver", json!("a@-bad-.com"))]), "receiver"),
        (
            with(&[
                ("receiver", Value::Null),
                ("receiver__username", json!("ghost")),
            ]),
            "receiver__username",
        ),
        (with(&[("cc", json!("bad"))]), "cc"),
        (
            with(&[("sender", json!("x@example.com\r\nBcc: y@example.com"))]),
            "sender",
        ),
        (with(&[("sender", json!("nobody"))]), "sender"),
        (with(&[("body_format", json!("markdown"))]), "body_format"),
        (
            with(&[("is_content_base64", json!("maybe"))]),
            "is_content_base64",
        ),
        (
            with(&[
                ("is_content_base64", json!(true)),
                ("content", json!("not base64!")),
            ]),
            "content",
        ),
        (with(&[("attachments", json!("[not json"))]), "attachments"),
        (
            attachment(json!({"filename": ""})),
            "attachments[0].filename",
        ),
        (
            attachment(json!({"filename": "a\nb.txt"})),
            "attachments[0].filename",
        ),
        (
            attachment(json!({"content": "%%%"})),
            "attachments[0].content",
        ),
        (
            attachment(json!({"type": "not a type"})),
            "attachments[0].type",
        ),
        (
            attachment(json!({"disposition": "sideways"})),
            "attachments[0].disposition",
        ),
        (
            attachment(json!({"content_id": "<a b>"})),
            "attachments[0].content_id",
        ),
        (json!([1, 2]), "request"),
    ];
    for (request, field) in cases {
        let output = compose_json(&request);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{request}: {stderr}");
        assert!(output.stdout.is_empty(), "{request}: nothing on stdout");
        assert_eq!(stderr.lines().count(), 1, "{request}: one line: {stderr}");
        assert!(
            stderr.starts_with(&format!("cmsi-mail: bad request: {field}: ")),
            "{request}: {stderr} should name {field}"
        );
    }
    let output = cmsi_mail(&["compose"], b"{not json");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn other_failures_exit_1() {
    let output = cmsi_mail(&["compose", "does-not-exist.json"], b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("does-not-exist.json"));

    let users = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(users.path(), "[users]\nbob = \"not an address\"\n").unwrap();
    let output = cmsi_mail(
        &["compose", "--users", users.path().to_str().unwrap()],
        br#"{"receiver": "a@example.com", "title": "t", "content": "c"}"#,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("bob"));

    let output = cmsi_mail(&["compose", "--sender", "bad"], b"{}");
    assert_eq!(output.status.code(), Some(1));
}
