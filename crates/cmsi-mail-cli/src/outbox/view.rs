//! One message as the page shows it: its headers, the envelope beside it, the
//! bodies, and the parts to download. mail-parser does all MIME decoding; here
//! we only choose what to show and point `cid:` references at the parts.

use std::borrow::Cow;
use std::path::Path;

use mail_parser::{HeaderValue, Message, MessagePart, MimeHeaders as _, PartType};
use serde::{Deserialize, Serialize};

use super::index::{Mailbox, damage, is_inline, mailboxes};

/// The envelope the file transport writes beside each message as `STEM.json`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    message_id: Option<String>,
    sender: Option<String>,
    #[serde(default)]
    recipients: Vec<String>,
}

/// One header field.
#[derive(Debug, Serialize)]
pub(crate) struct HeaderLine {
    name: String,
    /// As written, unfolded.
    value: String,
    /// As mail-parser decoded it, when that differs.
    decoded: Option<String>,
}

/// A part offered for download (or shown inline).
#[derive(Debug, Serialize)]
pub(crate) struct PartInfo {
    /// Index among the message's parts: what `parts/N` serves.
    index: usize,
    /// The decoded file name.
    name: Option<String>,
    content_type: String,
    /// Decoded size in bytes.
    size: usize,
    /// Shown in the body (an inline image) rather than attached.
    inline: bool,
    content_id: Option<String>,
}

/// Everything `GET api/messages/ID` answers.
#[derive(Debug, Serialize)]
pub(crate) struct View {
    id: String,
    subject: String,
    from: Vec<Mailbox>,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    /// Seconds since the epoch, from the Date header.
    date: Option<i64>,
    message_id: Option<String>,
    /// The sidecar `STEM.json`, when there is one.
    envelope: Option<Envelope>,
    /// Why the sidecar could not be read, when it exists but is broken.
    envelope_problem: Option<String>,
    headers: Vec<HeaderLine>,
    /// Whether there is an HTML body (served by `html`).
    html: bool,
    /// The text body, when there is one.
    text: Option<String>,
    /// Without a text body: the HTML as text, as mail-parser renders it.
    html_as_text: Option<String>,
    parts: Vec<PartInfo>,
    /// Why the file is not a complete message, when it is not.
    unreadable: Option<String>,
    /// Size of the file in bytes.
    size: usize,
}

/// A part's bytes, ready to serve.
#[derive(Debug)]
pub(crate) struct PartBytes<'a> {
    pub(crate) bytes: Cow<'a, [u8]>,
    /// A well-formed MIME type (`application/octet-stream` when the part's own
    /// is missing or malformed).
    pub(crate) content_type: String,
    pub(crate) name: Option<String>,
}

/// Parses a message file. `None` when there is no header at all.
pub(crate) fn parse(bytes: &[u8]) -> Option<Message<'_>> {
    mail_parser::MessageParser::new().parse(bytes)
}

/// The view of message `id`, parsed from `bytes`; `envelope` is the path of
/// its sidecar.
pub(crate) fn view(id: &str, bytes: &[u8], envelope: &Path) -> View {
    let (envelope, envelope_problem) = read_envelope(envelope);
    let Some(message) = parse(bytes) else {
        return View {
            id: id.to_owned(),
            subject: String::new(),
            from: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            date: None,
            message_id: None,
            envelope,
            envelope_problem,
            headers: Vec::new(),
            html: false,
            text: None,
            html_as_text: None,
            parts: Vec::new(),
            unreadable: Some(if bytes.is_empty() {
                "the file is empty".to_owned()
            } else {
                "no mail headers in this file".to_owned()
            }),
            size: bytes.len(),
        };
    };
    let parts = message
        .attachments
        .iter()
        .filter_map(|&index| {
            let part = message.parts.get(index as usize)?;
            Some(PartInfo {
                index: index as usize,
                name: part.attachment_name().map(str::to_owned),
                content_type: content_type(part),
                size: part.body.len(),
                inline: is_inline(part),
                content_id: part.content_id().map(str::to_owned),
            })
        })
        .collect();
    let text = text_body(&message);
    let html_as_text = match text {
        None => html_body(&message).map(mail_parser::decoders::html::html_to_text),
        Some(_) => None,
    };
    View {
        id: id.to_owned(),
        subject: message.subject().unwrap_or_default().to_owned(),
        from: mailboxes(message.from()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        date: message.date().map(mail_parser::DateTime::to_timestamp),
        message_id: message.message_id().map(str::to_owned),
        envelope,
        envelope_problem,
        headers: header_lines(&message),
        html: html_body(&message).is_some(),
        text: text.map(str::to_owned),
        html_as_text,
        parts,
        unreadable: damage(&message),
        size: bytes.len(),
    }
}

fn read_envelope(path: &Path) -> (Option<Envelope>, Option<String>) {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return (None, None),
        Err(error) => return (None, Some(format!("cannot read the envelope: {error}"))),
    };
    match serde_json::from_slice(&bytes) {
        Ok(envelope) => (Some(envelope), None),
        Err(error) => (None, Some(format!("the envelope is not valid: {error}"))),
    }
}

/// The top-level header fields in order, raw and decoded.
fn header_lines(message: &Message<'_>) -> Vec<HeaderLine> {
    let raw = message.raw_message();
    message
        .root_part()
        .headers
        .iter()
        .map(|header| {
            let value = raw
                .get(header.offset_start() as usize..header.offset_end() as usize)
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let value = unfold(&value);
            let decoded = decoded(header.value()).filter(|decoded| *decoded != value);
            HeaderLine {
                name: header.name().to_owned(),
                value,
                decoded,
            }
        })
        .collect()
}

/// A folded header value on one line.
fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|piece| !piece.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn decoded(value: &HeaderValue<'_>) -> Option<String> {
    match value {
        HeaderValue::Text(text) => Some(text.to_string()),
        HeaderValue::TextList(list) => Some(list.join(", ")),
        HeaderValue::Address(address) => Some(
            address
                .iter()
                .map(|addr| match (addr.name(), addr.address()) {
                    (Some(name), Some(address)) => format!("{name} <{address}>"),
                    (None, Some(address)) => address.to_owned(),
                    (Some(name), None) => name.to_owned(),
                    (None, None) => String::new(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        HeaderValue::DateTime(date) => Some(date.to_rfc3339()),
        _ => None,
    }
}

/// The first HTML body, when the message has one (mail-parser would otherwise
/// make one from the text).
pub(crate) fn html_body<'m>(message: &'m Message<'_>) -> Option<&'m str> {
    message.html_bodies().find_map(|part| match &part.body {
        PartType::Html(html) => Some(html.as_ref()),
        _ => None,
    })
}

/// The first text body, when the message has one.
fn text_body<'m>(message: &'m Message<'_>) -> Option<&'m str> {
    message.text_bodies().find_map(|part| match &part.body {
        PartType::Text(text) => Some(text.as_ref()),
        _ => None,
    })
}

/// The type of a part as `type/subtype`, when it is a well-formed MIME type.
fn content_type(part: &MessagePart<'_>) -> String {
    let declared = part.content_type().and_then(|ct| {
        let subtype = ct.subtype()?;
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
        };
        (token(ct.ctype()) && token(subtype))
            .then(|| format!("{}/{}", ct.ctype(), subtype).to_ascii_lowercase())
    });
    declared.unwrap_or_else(|| match part.body {
        PartType::Text(_) => "text/plain".to_owned(),
        PartType::Html(_) => "text/html".to_owned(),
        PartType::Message(_) => "message/rfc822".to_owned(),
        _ => "application/octet-stream".to_owned(),
    })
}

/// The decoded content of part `index`, unless it is a multipart container.
pub(crate) fn part<'m>(message: &'m Message<'_>, index: usize) -> Option<PartBytes<'m>> {
    let part = message.parts.get(index)?;
    let bytes: Cow<'m, [u8]> = match &part.body {
        PartType::Text(text) | PartType::Html(text) => Cow::Borrowed(text.as_bytes()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Cow::Borrowed(bytes.as_ref()),
        PartType::Message(nested) => Cow::Borrowed(nested.raw_message()),
        PartType::Multipart(_) => return None,
    };
    let mut content_type = content_type(part);
    if matches!(part.body, PartType::Text(_) | PartType::Html(_)) {
        // Decoded from whatever charset it had: served as UTF-8.
        content_type.push_str("; charset=utf-8");
    }
    Some(PartBytes {
        bytes,
        content_type,
        name: part.attachment_name().map(str::to_owned),
    })
}

/// `html` with every `cid:` reference that names a part of `message` pointed
/// at `parts/N` (relative to the HTML's own URL). Only references in an
/// attribute value or a CSS `url()` are touched; others stay and are blocked.
pub(crate) fn resolve_cids(html: &str, message: &Message<'_>) -> String {
    let targets: Vec<(String, usize)> = message
        .parts
        .iter()
        .enumerate()
        .filter_map(|(index, part)| Some((part.content_id()?.to_owned(), index)))
        .collect();
    let lookup = |reference: &str| {
        let decoded = percent_encoding::percent_decode_str(reference).decode_utf8_lossy();
        targets
            .iter()
            .find(|(id, _)| id == reference || *id == decoded)
            .map(|&(_, index)| index)
    };
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = find_ascii_case_insensitive(rest, "cid:") {
        let (before, from_cid) = rest.split_at(at);
        out.push_str(before);
        let opens_value = before
            .trim_end_matches([' ', '\t', '\r', '\n'])
            .ends_with(['"', '\'', '=', '(']);
        let after = from_cid.get(4..).unwrap_or_default();
        let end = after
            .find(['"', '\'', ')', '>', ' ', '\t', '\r', '\n'])
            .unwrap_or(after.len());
        let (reference, tail) = after.split_at(end);
        match lookup(reference).filter(|_| opens_value) {
            Some(index) => out.push_str(&format!("parts/{index}")),
            None => {
                out.push_str(from_cid.get(..4).unwrap_or_default());
                out.push_str(reference);
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELATED: &str = "From: a@example.com\r\nSubject: s\r\n\
        Content-Type: multipart/related; boundary=\"b\"\r\n\r\n\
        --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <img src=\"cid:logo.png\"><img src='CID:%E5%9B%BE'><div style=\"background:url(cid:logo.png)\">\
        <p>see cid:logo.png</p><img src=\"cid:unknown\">\r\n\
        --b\r\nContent-Type: image/png\r\nContent-ID: <logo.png>\r\nContent-Disposition: inline\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
        --b\r\nContent-Type: image/png\r\nContent-ID: <%E5%9B%BE>\r\n\
        Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n\
        --b--\r\n";

    #[test]
    fn cid_references_point_at_their_parts() {
        let message = parse(RELATED.as_bytes()).unwrap();
        let html = html_body(&message).unwrap();
        let resolved = resolve_cids(html, &message);
        assert_eq!(
            resolved,
            "<img src=\"parts/2\"><img src='parts/3'><div style=\"background:url(parts/2)\">\
             <p>see cid:logo.png</p><img src=\"cid:unknown\">"
        );
    }

    #[test]
    fn parts_have_types_names_and_bytes() {
        let message = parse(RELATED.as_bytes()).unwrap();
        let logo = part(&message, 2).unwrap();
        assert_eq!(logo.content_type, "image/png");
        assert_eq!(&*logo.bytes, b"\x89PNG\r\n\x1a\n");
        assert!(part(&message, 0).is_none(), "a multipart has no bytes");
        assert!(part(&message, 99).is_none());
        let html = part(&message, 1).unwrap();
        assert_eq!(html.content_type, "text/html; charset=utf-8");
    }

    #[test]
    fn the_view_has_headers_envelope_and_parts() {
        let dir = tempfile::tempdir().unwrap();
        let sidecar = dir.path().join("1.json");
        std::fs::write(
            &sidecar,
            r#"{"message_id":"<x@example.com>","sender":"a@example.com","recipients":["b@example.com"]}"#,
        )
        .unwrap();
        let view = view("1", RELATED.as_bytes(), &sidecar);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["envelope"]["recipients"][0], "b@example.com");
        assert_eq!(json["html"], true);
        assert_eq!(json["headers"][1]["name"], "Subject");
        assert_eq!(json["parts"].as_array().unwrap().len(), 2);
        assert_eq!(json["parts"][0]["inline"], true);
        assert_eq!(json["unreadable"], serde_json::Value::Null);
        let missing = view_json("1", RELATED, &dir.path().join("none.json"));
        assert_eq!(missing["envelope"], serde_json::Value::Null);
        assert_eq!(missing["envelope_problem"], serde_json::Value::Null);
    }

    fn view_json(id: &str, message: &str, sidecar: &Path) -> serde_json::Value {
        serde_json::to_value(view(id, message.as_bytes(), sidecar)).unwrap()
    }
}
