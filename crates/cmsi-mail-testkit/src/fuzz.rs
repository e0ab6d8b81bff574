//! The properties the fuzz targets check, shared with the regression tests that
//! replay every input a fuzzer ever found (`fuzz/regressions/TARGET/`). Each
//! function panics when the property fails.

use cmsi_mail::{
    ComposeOptions, Mailbox, Message, SendMailRequest, StaticDirectory, Validator,
    split_address_list,
};
use mail_parser::MimeHeaders;

use crate::oracle::wire_violations;

fn directory() -> StaticDirectory {
    StaticDirectory::from_toml(
        "[users]\nadmin = \"admin@example.com\"\nzhangsan = { email = \"zs@example.com\", name = \"张三\" }\n",
    )
    .expect("directory")
}

fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// mail-parser 0.11 turns the white space after a fold into one space when it
/// is a tab or more than one character (RFC 5322 §2.2.3 removes only the CRLF;
/// Python's email reader keeps it all). So a decoded header may differ from what
/// was sent in such white space only, and only when the header block has such a
/// fold.
fn assert_same_header(decoded: Option<&str>, sent: Option<&str>, raw: &[u8], what: &str) {
    if decoded == sent {
        return;
    }
    let head = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(raw, |end| raw.get(..end).unwrap_or(raw));
    let folded_run = head.windows(4).any(|w| match w {
        [b'\r', b'\n', b'\t', _] => true,
        [b'\r', b'\n', b' ', next] => *next == b' ' || *next == b'\t',
        _ => false,
    });
    assert!(
        folded_run && decoded.map(collapse) == sent.map(collapse),
        "{what}: decoded {decoded:?}, sent {sent:?}"
    );
}

/// Composes `message` and checks it against mail-parser: the wire rules, the
/// subject, the recipients, the body and every attachment.
pub fn check_message(message: &Message<'_>) {
    let composed = message.compose(&ComposeOptions::deterministic(1, 0));
    assert!(
        message.estimated_len() >= composed.bytes.len(),
        "estimated_len {} is below the composed {} octets",
        message.estimated_len(),
        composed.bytes.len()
    );
    let problems = wire_violations(&composed.bytes);
    assert!(problems.is_empty(), "wire format: {problems:?}");
    let parsed = mail_parser::MessageParser::default()
        .parse(&composed.bytes)
        .expect("mail-parser reads the message");
    let raw = &composed.bytes;
    assert_same_header(parsed.subject(), Some(message.subject()), raw, "subject");
    let to: Vec<_> = parsed
        .to()
        .map(|to| to.iter().collect())
        .unwrap_or_default();
    assert_eq!(to.len(), message.to().len(), "To");
    for (decoded, sent) in to.iter().zip(message.to()) {
        assert_eq!(decoded.address(), Some(sent.address()), "To address");
        assert_same_header(decoded.name(), sent.name(), raw, "To name");
    }
    let cc = parsed.cc().map_or(0, |cc| cc.iter().count());
    assert_eq!(cc, message.cc().len(), "Cc");
    let body = match message.body_format() {
        cmsi_mail::BodyFormat::Html => parsed.body_html(0),
        cmsi_mail::BodyFormat::Text => parsed.body_text(0),
    }
    .expect("a body");
    assert_eq!(lf(&body), lf(message.body()), "body");
    // The tree puts inline parts first: compare without regard to order. The
    // bytes are decoded from the part's raw base64 here: mail-parser hands
    // text/* parts back as (lossily) decoded text.
    let raw_message = parsed.raw_message();
    let mut decoded: Vec<(Option<String>, Vec<u8>)> = parsed
        .attachments()
        .map(|part| {
            let body = raw_message
                .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)
                .unwrap_or_default();
            let bytes = encodify::base64::MIME
                .decode(body)
                .expect("attachment base64");
            (part.attachment_name().map(str::to_owned), bytes)
        })
        .collect();
    let mut sent: Vec<(Option<String>, Vec<u8>)> = message
        .attachments()
        .iter()
        .map(|a| (Some(a.filename().to_owned()), a.bytes().into_owned()))
        .collect();
    decoded.sort();
    sent.sort();
    assert_eq!(decoded, sent, "attachments (file names and bytes)");
}

/// Target `request`: arbitrary bytes as a request. Nothing panics; whatever is
/// valid composes into a message that reads back as sent.
pub fn check_request(data: &[u8]) {
    let Ok(request) = SendMailRequest::from_json(data) else {
        return;
    };
    let directory = directory();
    let sender = Mailbox::parse("cmsi-mail@localhost").expect("sender");
    let Ok(validated) = Validator::new(sender, &directory).validate(request) else {
        return;
    };
    check_message(&validated.message);
}

/// Target `address_list`: arbitrary text as an address field. Nothing panics,
/// and every mailbox that parses is written back in a form that parses to the
/// same mailbox.
pub fn check_address_list(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for entry in split_address_list(text) {
        assert!(!entry.trim().is_empty(), "an empty entry from {text:?}");
        if let Ok(mailbox) = Mailbox::parse(entry) {
            let written = mailbox.to_string();
            assert_eq!(Mailbox::parse(&written), Ok(mailbox), "{written:?}");
        }
    }
}

/// Target `header`: arbitrary text as the subject and as a display name. When
/// accepted, both decode to exactly what was sent.
pub fn check_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let quoted = format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""));
    let request = serde_json::json!({
        "receiver": format!("{quoted} <to@example.com>"),
        "title": text,
        "content": "x",
    });
    let Ok(request) = SendMailRequest::from_value(request) else {
        return;
    };
    let directory = StaticDirectory::new();
    let sender = Mailbox::parse("cmsi-mail@localhost").expect("sender");
    if let Ok(validated) = Validator::new(sender, &directory).validate(request) {
        check_message(&validated.message);
    }
}

/// Replays every file under `fuzz/regressions/TARGET/` and `fuzz/seeds/TARGET/`
/// (but `README.md` and hidden files) through `check`; returns how many.
pub fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = crate::workspace_root().join("fuzz");
    let mut count = 0;
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_file() && name != "README.md" && !name.starts_with('.') {
                eprintln!("{target}: {}", path.display());
                check(&std::fs::read(&path).unwrap_or_default());
                count += 1;
            }
        }
    }
    count
}

/// Target `json`: arbitrary bytes read by our JSON reader
/// (`SendMailRequest::from_json`) and by serde_json with the same
/// `Deserialize`: both accept the same bodies, and read the same request.
pub fn check_json(data: &[u8]) {
    let ours = SendMailRequest::from_json(data);
    // What from_json promises beyond serde_json: an object only, UTF-8 as a
    // whole (serde_json does not check the strings it skips).
    let object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let reference = std::str::from_utf8(data)
        .ok()
        .filter(|_| object)
        .map(serde_json::from_str::<SendMailRequest<'_>>);
    match (&ours, &reference) {
        (Ok(ours), Some(Ok(theirs))) => assert_eq!(ours, theirs, "the two readers disagree"),
        (Err(_), None | Some(Err(_))) => {}
        (Ok(ours), _) => panic!("ours accepted what serde_json refuses: {ours:?} / {reference:?}"),
        (Err(error), Some(Ok(theirs))) => {
            panic!("ours refused ({error}) what serde_json reads: {theirs:?}")
        }
    }
}
