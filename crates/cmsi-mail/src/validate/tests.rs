//! One test per rule of SPEC §2, each bad input checked for the field it names.

use serde_json::{Value, json};

use super::*;
use crate::directory::{DirectoryError, StaticDirectory};
use crate::esb::{CODE_BACKEND_FAILED, Error};
use crate::message::Data;

fn directory() -> StaticDirectory {
    StaticDirectory::from_toml(
        r#"
        [users]
        admin = "admin@example.com"
        zhangsan = { email = "zhangsan@example.com", name = "张三" }
        lisi = "lisi@example.com"
        "#,
    )
    .unwrap()
}

fn validate_with(value: Value, limits: Limits) -> Result<Validated<'static>, ValidationError> {
    let directory = directory();
    let request = SendMailRequest::from_value(value)?;
    Validator::new(
        Mailbox::parse("CMSI <noreply@example.com>").unwrap(),
        &directory,
    )
    .with_limits(limits)
    .validate(request)
}

fn validate(value: Value) -> Result<Validated<'static>, ValidationError> {
    validate_with(value, Limits::default())
}

fn base() -> Value {
    json!({"receiver": "a@example.com", "title": "Hello", "content": "<p>Hi</p>"})
}

fn with(changes: Value) -> Value {
    let mut value = base();
    for (key, change) in changes.as_object().unwrap() {
        if change.is_null() {
            value.as_object_mut().unwrap().remove(key);
        } else {
            value[key] = change.clone();
        }
    }
    value
}

fn attachment(fields: Value) -> Value {
    let mut value = json!({"filename": "a.txt", "content": "aGVsbG8="});
    for (key, field) in fields.as_object().unwrap() {
        if field.is_null() {
            value.as_object_mut().unwrap().remove(key);
        } else {
            value[key] = field.clone();
        }
    }
    value
}

#[track_caller]
fn request_error(value: Value) -> RequestError {
    match validate(value) {
        Err(ValidationError::Request(error)) => error,
        other => panic!("expected a request error, got {other:?}"),
    }
}

#[track_caller]
fn message(value: Value) -> Message<'static> {
    match validate(value) {
        Ok(validated) => validated.message,
        Err(error) => panic!("expected a valid request, got: {error}"),
    }
}

fn addresses(mailboxes: &[Mailbox]) -> Vec<&str> {
    mailboxes.iter().map(Mailbox::address).collect()
}

#[test]
fn the_seed_example_is_valid() {
    let message = message(json!({
        "bk_app_code": "esb_test",
        "bk_app_secret": "xxx",
        "bk_token": "xxx",
        "receiver": "admin@bking.com",
        "sender": "admin@bking.com",
        "title": "This is a Test",
        "content": "<html>Welcome to Blueking</html>",
    }));
    assert_eq!(addresses(message.to()), ["admin@bking.com"]);
    assert!(message.cc().is_empty());
    assert_eq!(message.sender().address(), "admin@bking.com");
    assert_eq!(message.subject(), "This is a Test");
    assert_eq!(message.body(), "<html>Welcome to Blueking</html>");
    assert_eq!(message.body_format(), BodyFormat::Html);
    assert_eq!(message.envelope().recipients(), ["admin@bking.com"]);
}

#[test]
fn sender_defaults_to_the_configured_one() {
    let message = message(base());
    assert_eq!(message.sender().address(), "noreply@example.com");
    assert_eq!(message.sender().name(), Some("CMSI"));
    let message = message_with_sender("  ");
    assert_eq!(message.sender().address(), "noreply@example.com");
}

fn message_with_sender(sender: &str) -> Message<'static> {
    message(with(json!({ "sender": sender })))
}

#[test]
fn sender_may_carry_a_display_name() {
    let message = message_with_sender("蓝鲸 <bk@example.com>");
    assert_eq!(message.sender().name(), Some("蓝鲸"));
    assert_eq!(message.sender().address(), "bk@example.com");
}

#[test]
fn bad_senders_name_the_field() {
    for sender in [
        "not-an-address",
        "bk@example.com\r\nBcc: victim@example.com",
        "Name\n <bk@example.com>",
        "bk\0@example.com",
    ] {
        let error = request_error(with(json!({ "sender": sender })));
        assert_eq!(error.field(), "sender", "{sender:?}");
    }
}

#[test]
fn title_rules() {
    let cases = [
        (Value::Null, Problem::Missing),
        (json!(""), Problem::Empty),
        (json!(" \t "), Problem::Empty),
        (
            json!("Hello\r\nBcc: victim@example.com"),
            Problem::LineBreak,
        ),
        (json!("Hello\nworld"), Problem::LineBreak),
        (json!("Hello\rworld"), Problem::LineBreak),
        (json!("Hello\0"), Problem::Nul),
        (
            json!("长".repeat(2001)),
            Problem::TooLong {
                len: 2001,
                max: 2000,
                unit: "characters",
            },
        ),
    ];
    for (title, problem) in cases {
        let error = request_error(with(json!({ "title": title })));
        assert_eq!(error.field(), "title");
        assert_eq!(error.problem(), &problem, "{title}");
    }
    let title = "周报 📈 ".repeat(60);
    assert_eq!(
        message(with(json!({ "title": title }))).subject(),
        title.trim()
    );
}

#[test]
fn content_rules() {
    for (content, problem) in [(Value::Null, Problem::Missing), (json!(""), Problem::Empty)] {
        let error = request_error(with(json!({ "content": content })));
        assert_eq!(
            (error.field(), error.problem()),
            ("content", &problem),
            "{content}"
        );
    }
}

#[test]
fn base64_content_is_decoded() {
    for flag in [
        json!(true),
        json!("true"),
        json!("TRUE"),
        json!("1"),
        json!(1),
    ] {
        let message = message(with(json!({
            "content": "5L2g5aW977yM\r\n6JOd6bK4",
            "is_content_base64": flag,
        })));
        assert_eq!(message.body(), "你好，蓝鲸");
    }
    let message = message(with(
        json!({"content": "aGk=", "is_content_base64": "false"}),
    ));
    assert_eq!(message.body(), "aGk=");
}

#[test]
fn bad_base64_content_is_an_error() {
    let cases = [
        ("aGk", "not a multiple of 4"),
        ("a!k=", "'!' at offset 1"),
        ("aG=k", "misplaced '='"),
        ("aGl=", "bits set"),
    ];
    for (content, detail) in cases {
        let error = request_error(with(json!({"content": content, "is_content_base64": true})));
        assert_eq!(error.field(), "content");
        assert!(
            error.to_string().contains(detail),
            "{content}: {error} lacks {detail:?}"
        );
    }
    // Valid base64 of bytes that are not UTF-8.
    let error = request_error(with(json!({"content": "/w==", "is_content_base64": true})));
    assert_eq!(error.problem(), &Problem::NotUtf8);
    let error = request_error(with(json!({"content": "", "is_content_base64": true})));
    assert_eq!(error.problem(), &Problem::Empty);
}

#[test]
fn body_format_is_html_or_text_in_any_case() {
    for (value, format) in [
        (Value::Null, BodyFormat::Html),
        (json!(""), BodyFormat::Html),
        (json!("Html"), BodyFormat::Html),
        (json!("HTML"), BodyFormat::Html),
        (json!("text"), BodyFormat::Text),
        (json!("Text"), BodyFormat::Text),
    ] {
        assert_eq!(
            message(with(json!({ "body_format": value }))).body_format(),
            format,
            "{value}"
        );
    }
    let error = request_error(with(json!({"body_format": "Markdown"})));
    assert_eq!(error.field(), "body_format");
    assert_eq!(
        error.to_string(),
        "body_format: \"Markdown\" is not one of Html or Text"
    );
}

#[test]
fn receiver_lists_in_every_form() {
    let message = message(with(json!({
        "receiver": "a@example.com, 张三 <zs@example.com>;\"Li, Si\" <ls@example.com>\nww@例子.测试",
    })));
    assert_eq!(
        addresses(message.to()),
        [
            "a@example.com",
            "zs@example.com",
            "ls@example.com",
            "ww@xn--fsqu00a.xn--0zwm56d"
        ]
    );
    assert_eq!(message.to()[1].name(), Some("张三"));
    assert_eq!(message.to()[2].name(), Some("Li, Si"));

    let message = message_from_array();
    assert_eq!(addresses(message.to()), ["a@example.com", "b@example.com"]);
}

fn message_from_array() -> Message<'static> {
    message(with(
        json!({"receiver": ["a@example.com", " ", "B <b@example.com>"]}),
    ))
}

#[test]
fn a_bad_receiver_is_named() {
    let error = request_error(with(json!({"receiver": "a@example.com, nobody"})));
    assert_eq!(error.field(), "receiver");
    assert_eq!(
        error.to_string(),
        "receiver: \"nobody\" is not a valid address: there is no '@'"
    );
    let error = request_error(with(json!({"receiver": "用户@example.com"})));
    assert!(error.to_string().contains("SMTPUTF8"), "{error}");
    let error = request_error(with(json!({"cc": "bad@@example.com"})));
    assert_eq!(error.field(), "cc");
}

#[test]
fn receiver_wins_over_usernames() {
    let validated = validate(with(json!({
        "receiver": "a@example.com",
        "receiver__username": "admin",
    })))
    .unwrap();
    assert_eq!(addresses(validated.message.to()), ["a@example.com"]);

    let validated = validate(with(json!({
        "receiver": " ,; ",
        "receiver__username": "admin,zhangsan",
    })))
    .unwrap();
    assert_eq!(
        addresses(validated.message.to()),
        ["admin@example.com", "zhangsan@example.com"]
    );
    assert_eq!(validated.message.to()[1].name(), Some("张三"));
    assert!(validated.username_check.invalid.is_empty());
}

#[test]
fn partly_unknown_usernames_are_reported() {
    let validated = validate(with(json!({
        "receiver": null,
        "receiver__username": "ghost, admin; phantom",
        "cc__username": ["lisi", "nobody"],
    })))
    .unwrap();
    assert_eq!(addresses(validated.message.to()), ["admin@example.com"]);
    assert_eq!(addresses(validated.message.cc()), ["lisi@example.com"]);
    assert_eq!(
        validated.username_check.invalid,
        ["ghost", "phantom", "nobody"]
    );
}

#[test]
fn wholly_unknown_receivers_fail() {
    let error = request_error(with(json!({
        "receiver": null,
        "receiver__username": "ghost,phantom",
        "cc": "c@example.com",
    })));
    assert_eq!(error.field(), "receiver__username");
    assert_eq!(
        error.problem(),
        &Problem::UnknownUsernames(vec!["ghost".into(), "phantom".into()])
    );
    // Unknown Cc users alone do not stop the mail.
    let validated = validate(with(json!({"cc__username": "ghost"}))).unwrap();
    assert!(validated.message.cc().is_empty());
    assert_eq!(validated.username_check.invalid, ["ghost"]);
}

#[test]
fn no_receiver_is_an_error() {
    for receiver in [Value::Null, json!(""), json!([]), json!(" ; ")] {
        let error = request_error(with(json!({ "receiver": receiver, "cc": "c@example.com" })));
        assert_eq!(error.field(), "receiver", "{receiver}");
        assert_eq!(error.problem(), &Problem::NoRecipient("receiver"));
    }
}

#[test]
fn duplicates_are_dropped_keeping_the_first() {
    let message = message(with(json!({
        "receiver": "A <a@example.com>, b@example.com, Again <A@EXAMPLE.com>",
        "cc": "B@example.com, c@example.com, c@example.com, a@example.com",
    })));
    assert_eq!(addresses(message.to()), ["a@example.com", "b@example.com"]);
    assert_eq!(message.to()[0].name(), Some("A"));
    assert_eq!(addresses(message.cc()), ["c@example.com"]);
    assert_eq!(
        message.envelope().recipients(),
        ["a@example.com", "b@example.com", "c@example.com"]
    );
}

#[test]
fn recipient_limit() {
    let limits = Limits {
        max_recipients: 2,
        ..Limits::default()
    };
    let error = match validate_with(
        with(json!({"receiver": "a@x.com b@x.com", "cc": "c@x.com"})),
        limits,
    ) {
        Err(ValidationError::Request(error)) => error,
        other => panic!("{other:?}"),
    };
    assert_eq!(error.field(), "receiver");
}

#[test]
fn directory_failure_is_not_a_bad_request() {
    struct Down;
    impl UserDirectory for Down {
        fn lookup(&self, _: &str) -> Result<Option<Mailbox>, DirectoryError> {
            Err(DirectoryError::new("usermgr timed out", None))
        }
    }
    let request = SendMailRequest::from_value(with(
        json!({"receiver": null, "receiver__username": "admin"}),
    ))
    .unwrap();
    let error = Validator::new(Mailbox::parse("a@x.com").unwrap(), &Down)
        .validate(request)
        .unwrap_err();
    assert!(matches!(error, ValidationError::Directory(_)));
    assert_eq!(Error::from(error).esb_code(), CODE_BACKEND_FAILED);
}

fn attachments(list: Value) -> Vec<Attachment<'static>> {
    message(with(json!({ "attachments": list }))).attachments
}

#[track_caller]
fn attachment_error(fields: Value) -> RequestError {
    request_error(with(
        json!({"attachments": [attachment(json!({})), attachment(fields)]}),
    ))
}

#[test]
fn attachment_filename_rules() {
    let cases = [
        (Value::Null, Problem::Missing),
        (json!(""), Problem::Empty),
        (json!("  "), Problem::Empty),
        (json!("a\r\n.txt"), Problem::LineBreak),
        (json!("a\0.txt"), Problem::Nul),
        (json!("a\u{7}.txt"), Problem::Control),
        (
            json!("长".repeat(256)),
            Problem::TooLong {
                len: 256,
                max: 255,
                unit: "characters",
            },
        ),
    ];
    for (filename, problem) in cases {
        let error = attachment_error(json!({ "filename": filename }));
        assert_eq!(error.field(), "attachments[1].filename", "{filename}");
        assert_eq!(error.problem(), &problem, "{filename}");
    }
}

#[test]
fn attachment_content_rules() {
    let error = attachment_error(json!({"content": null}));
    assert_eq!(
        (error.field(), error.problem()),
        ("attachments[1].content", &Problem::Missing)
    );
    for content in ["aGVsbG8", "aGVs bG8", "aGVsbG8=\u{0}", "!!!!", "aGVsbG9="] {
        let error = attachment_error(json!({ "content": content }));
        assert_eq!(error.field(), "attachments[1].content", "{content:?}");
        assert!(
            matches!(error.problem(), Problem::Base64(_)),
            "{content:?}: {error}"
        );
    }
    // Padding at the end of a 64 KiB piece, with more after it.
    let content = format!("{}QQ==QUJD", "A".repeat(65_532));
    let error = attachment_error(json!({ "content": content }));
    assert_eq!(
        error.problem(),
        &Problem::Base64("misplaced '=' at offset 65534".into())
    );
    // The offset points into the content, also past the first piece.
    let mut content = "A".repeat(200_000);
    content.replace_range(150_001..150_002, "*");
    let error = attachment_error(json!({ "content": content }));
    assert!(
        error.to_string().contains("'*' at offset 150001"),
        "{error}"
    );
}

#[test]
fn attachment_content_may_be_wrapped_or_empty() {
    let list = attachments(json!([
        attachment(json!({"content": "aGVs\r\nbG8=\n"})),
        attachment(json!({"filename": "empty.txt", "content": ""})),
    ]));
    assert_eq!(list[0].bytes().as_ref(), b"hello");
    assert!(matches!(list[0].data, Data::Bytes(_)));
    assert_eq!(list[1].len(), 0);
    assert!(list[1].is_empty());
    let list = attachments(json!([attachment(json!({}))]));
    assert!(matches!(list[0].data, Data::Base64 { len: 5, .. }));
}

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

#[test]
fn attachment_types() {
    let cases = [
        (json!({"filename": "报告.PDF"}), "application/pdf"),
        (json!({"filename": "logo.png"}), "image/png"),
        (json!({"filename": "noext"}), "application/octet-stream"),
        (
            json!({"filename": "a.unknownext"}),
            "application/octet-stream",
        ),
        (json!({"filename": "mail.eml"}), "application/octet-stream"),
        (
            json!({"filename": "a.bin", "type": "pdf"}),
            "application/pdf",
        ),
        (json!({"filename": "a.bin", "type": ".png"}), "image/png"),
        (
            json!({"filename": "a.bin", "type": "Application/PDF"}),
            "application/pdf",
        ),
        (
            json!({"filename": "a.csv", "type": "text/csv; charset=utf-8"}),
            "text/csv; charset=utf-8",
        ),
        (
            json!({"filename": "a.bin", "type": "image", "content": PNG}),
            "image/png",
        ),
        (json!({"filename": "a.gif", "type": "image"}), "image/gif"),
        (
            json!({"filename": "a.txt", "type": "image"}),
            "application/octet-stream",
        ),
        // "hello" is UTF-8.
        (
            json!({"filename": "a.txt", "type": ""}),
            "text/plain; charset=utf-8",
        ),
    ];
    for (fields, expected) in cases {
        let list = attachments(json!([attachment(fields.clone())]));
        assert_eq!(list[0].content_type().to_string(), expected, "{fields}");
    }
    for bad in [
        "a b",
        "not/a/type",
        "multipart/mixed",
        "message/rfc822",
        "*",
    ] {
        let error = attachment_error(json!({ "type": bad }));
        assert_eq!(error.field(), "attachments[1].type", "{bad}");
    }
    let error =
        attachment_error(json!({"type": "text/plain; x=\"=?utf-8?q?a=0D=0AX-Injected=3A_1?=\""}));
    assert_eq!(error.field(), "attachments[1].type");
    assert_eq!(error.problem(), &Problem::EncodedWord);
}

#[test]
fn attachment_disposition_defaults_and_values() {
    let list = attachments(json!([
        attachment(json!({"filename": "logo.png", "content": PNG})),
        attachment(json!({"filename": "a.pdf"})),
        attachment(json!({"filename": "b.png", "disposition": "ATTACHMENT"})),
        attachment(json!({"filename": "c.pdf", "disposition": "Inline"})),
        attachment(json!({"filename": "d.bin", "type": "image", "content": PNG})),
    ]));
    let dispositions: Vec<_> = list.iter().map(Attachment::disposition).collect();
    assert_eq!(
        dispositions,
        [
            Disposition::Inline,
            Disposition::Attachment,
            Disposition::Attachment,
            Disposition::Inline,
            Disposition::Inline
        ]
    );
    let error = attachment_error(json!({"disposition": "embedded"}));
    assert_eq!(error.field(), "attachments[1].disposition");
}

#[test]
fn content_ids() {
    let list = attachments(json!([
        attachment(json!({"filename": "logo.png"})),
        attachment(json!({"filename": "a.pdf"})),
        attachment(json!({"filename": "b.png", "content_id": "<banner@example.com>"})),
        attachment(json!({"filename": "c.png", "content_id": "chart"})),
        attachment(json!({"filename": "季度 图(1).png"})),
        attachment(json!({"filename": "d.pdf", "content_id": "doc1"})),
        attachment(json!({"filename": "100%.png"})),
    ]));
    let ids: Vec<_> = list.iter().map(Attachment::content_id).collect();
    assert_eq!(
        ids,
        [
            Some("logo.png"),
            None,
            Some("banner@example.com"),
            Some("chart"),
            Some("part5.png@cmsi-mail"),
            Some("doc1"),
            Some("part7.png@cmsi-mail"),
        ]
    );
    for bad in ["a b", "<a>b>", "a\"b", "\u{5f20}", "a(b)", "<>"] {
        let error = attachment_error(json!({ "content_id": bad }));
        assert_eq!(error.field(), "attachments[1].content_id", "{bad:?}");
    }
    let error = attachment_error(json!({"content_id": "x\r\ny"}));
    assert_eq!(error.problem(), &Problem::LineBreak);
    // Written as it is, so an encoded-word look-alike would be decoded by readers.
    for look_alike in ["=?utf-8?q?c=0D=0AX-Injected=3A_1?=", "<a=?b>"] {
        let error = attachment_error(json!({ "content_id": look_alike }));
        assert_eq!(error.field(), "attachments[1].content_id");
        assert_eq!(error.problem(), &Problem::EncodedWord, "{look_alike:?}");
    }
    // A default Content-ID never holds one either.
    let list = attachments(json!([attachment(
        json!({"filename": "=?utf-8?q?x?=.png"})
    )]));
    assert_eq!(list[0].content_id(), Some("part1.png@cmsi-mail"));
}

#[test]
fn generated_content_ids_are_unique_and_the_html_follows_them() {
    let value = with(json!({
        "content": "<img src=\"cid:my logo.png\"><img src=\"cid:%E5%9B%BE.gif\"><img src=\"cid:图.gif\">",
        "attachments": [
            attachment(json!({"filename": "my logo.png"})),
            attachment(json!({"filename": "x.png", "content_id": "part3.gif@cmsi-mail"})),
            attachment(json!({"filename": "图.gif", "type": "image/gif"})),
        ]
    }));
    let message = validate(value).unwrap().message;
    let ids: Vec<_> = message
        .attachments()
        .iter()
        .map(Attachment::content_id)
        .collect();
    assert_eq!(
        ids,
        [
            Some("part1.png@cmsi-mail"),
            Some("part3.gif@cmsi-mail"),
            Some("part3.2.gif@cmsi-mail")
        ]
    );
    assert_eq!(
        message.body(),
        "<img src=\"cid:part1.png@cmsi-mail\"><img src=\"cid:part3.2.gif@cmsi-mail\"><img src=\"cid:part3.2.gif@cmsi-mail\">"
    );
    // A text body is left as it is.
    let value = with(json!({
        "body_format": "Text",
        "content": "cid:my logo.png",
        "attachments": [attachment(json!({"filename": "my logo.png"}))]
    }));
    assert_eq!(validate(value).unwrap().message.body(), "cid:my logo.png");
}

#[test]
fn duplicate_content_ids_are_an_error() {
    let error = request_error(with(json!({"attachments": [
        attachment(json!({"filename": "logo.png"})),
        attachment(json!({"filename": "x.png", "content_id": "<logo.png>"})),
    ]})));
    assert_eq!(error.field(), "attachments[1].content_id");
    assert_eq!(
        error.problem(),
        &Problem::DuplicateContentId {
            id: "logo.png".into(),
            other: 0
        }
    );
}

#[test]
fn attachment_and_size_limits() {
    let limits = Limits {
        max_attachments: 1,
        ..Limits::default()
    };
    let value = with(json!({"attachments": [attachment(json!({})), attachment(json!({}))]}));
    match validate_with(value, limits) {
        Err(ValidationError::Request(error)) => assert_eq!(error.field(), "attachments"),
        other => panic!("{other:?}"),
    }

    let limits = Limits {
        max_message_bytes: 10_000,
        ..Limits::default()
    };
    let big = "QUFB".repeat(3000);
    let value = with(json!({"attachments": [attachment(json!({"content": big}))]}));
    match validate_with(value, limits) {
        Err(ValidationError::Request(error)) => {
            assert_eq!(error.field(), "attachments");
            assert!(matches!(error.problem(), Problem::TooLong { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn attachments_as_a_json_string() {
    let list = attachments(json!(r#"[{"filename": "a.txt", "content": "aGk="}]"#));
    assert_eq!(list[0].bytes().as_ref(), b"hi");
    let error = request_error(with(json!({"attachments": "[{\"filename\": 1}]"})));
    assert_eq!(error.field(), "attachments");
}
