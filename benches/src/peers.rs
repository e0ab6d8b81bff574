//! The peers, end to end: what a user would write to turn the same request
//! JSON (attachments in base64) into a message with mail-builder or lettre,
//! and the floor no pipeline can beat.
//!
//! None of them validates anything: they trust the request, split the address
//! lists on commas and guess types from file names.

use std::borrow::Cow;

use base64::Engine as _;
use serde::Deserialize;

/// The request as a user would declare it: owned strings.
#[derive(Deserialize)]
struct OwnedRequest {
    sender: String,
    receiver: String,
    #[serde(default)]
    cc: String,
    title: String,
    content: String,
    #[serde(default)]
    body_format: String,
    #[serde(default)]
    attachments: Vec<OwnedFile>,
}

#[derive(Deserialize)]
struct OwnedFile {
    filename: String,
    content: String,
    #[serde(default)]
    disposition: Option<String>,
    #[serde(default)]
    content_id: Option<String>,
}

/// The request with strings borrowed from the JSON where it has no escapes.
#[derive(Deserialize)]
struct BorrowedRequest<'a> {
    #[serde(borrow)]
    sender: Cow<'a, str>,
    #[serde(borrow)]
    receiver: Cow<'a, str>,
    #[serde(borrow, default)]
    cc: Cow<'a, str>,
    #[serde(borrow)]
    title: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(borrow, default)]
    body_format: Cow<'a, str>,
    #[serde(borrow, default)]
    attachments: Vec<BorrowedFile<'a>>,
}

#[derive(Deserialize)]
struct BorrowedFile<'a> {
    #[serde(borrow)]
    filename: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
    #[serde(borrow, default)]
    disposition: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content_id: Option<Cow<'a, str>>,
}

/// `Name <addr>, addr` as (name, address) pairs: a comma split, no more.
fn mailboxes(list: &str) -> Vec<(&str, &str)> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| match entry.split_once('<') {
            Some((name, rest)) => (name.trim(), rest.trim_end_matches('>').trim()),
            None => ("", entry),
        })
        .collect()
}

fn mime_of(filename: &str) -> String {
    mime_guess::from_path(filename)
        .first_or_octet_stream()
        .to_string()
}

/// A decoded file on its way into the builder.
struct Part<'a> {
    filename: &'a str,
    content_type: String,
    inline_id: Option<&'a str>,
    bytes: Vec<u8>,
}

#[allow(clippy::too_many_arguments)]
fn build_with_mail_builder(
    sender: &str,
    receiver: &str,
    cc: &str,
    title: &str,
    content: &str,
    text: bool,
    parts: &[Part<'_>],
) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    let from = mailboxes(sender);
    let mut builder = MessageBuilder::new()
        .from(from.first().copied().unwrap_or(("", "")))
        .to(mailboxes(receiver))
        .subject(title);
    let cc = mailboxes(cc);
    if !cc.is_empty() {
        builder = builder.cc(cc);
    }
    builder = if text {
        builder.text_body(content)
    } else {
        builder.html_body(content)
    };
    for part in parts {
        builder = match part.inline_id {
            Some(id) => builder.inline(part.content_type.as_str(), id, part.bytes.as_slice()),
            None => builder.attachment(
                part.content_type.as_str(),
                part.filename,
                part.bytes.as_slice(),
            ),
        };
    }
    builder.write_to_vec().unwrap_or_default()
}

fn is_inline(disposition: Option<&str>, content_type: &str) -> bool {
    match disposition {
        Some(disposition) => disposition.eq_ignore_ascii_case("inline"),
        None => content_type.starts_with("image/"),
    }
}

/// serde_json into owned strings, the `base64` crate, mail-builder: the
/// pipeline a user would write first.
pub fn mail_builder_plain(json: &[u8]) -> Vec<u8> {
    let Ok(request) = serde_json::from_slice::<OwnedRequest>(json) else {
        return Vec::new();
    };
    let parts: Vec<Part<'_>> = request
        .attachments
        .iter()
        .map(|file| {
            let content_type = mime_of(&file.filename);
            let inline = is_inline(file.disposition.as_deref(), &content_type);
            Part {
                filename: &file.filename,
                inline_id: inline.then(|| file.content_id.as_deref().unwrap_or(&file.filename)),
                content_type,
                bytes: base64::engine::general_purpose::STANDARD
                    .decode(&file.content)
                    .unwrap_or_default(),
            }
        })
        .collect();
    build_with_mail_builder(
        &request.sender,
        &request.receiver,
        &request.cc,
        &request.title,
        &request.content,
        request.body_format.eq_ignore_ascii_case("text"),
        &parts,
    )
}

/// serde_json borrowing strings from the input, base64-simd, mail-builder: the
/// best a user can easily tune it.
pub fn mail_builder_tuned(json: &[u8]) -> Vec<u8> {
    let Ok(request) = serde_json::from_slice::<BorrowedRequest<'_>>(json) else {
        return Vec::new();
    };
    let parts: Vec<Part<'_>> = request
        .attachments
        .iter()
        .map(|file| {
            let content_type = mime_of(&file.filename);
            let inline = is_inline(file.disposition.as_deref(), &content_type);
            Part {
                filename: &file.filename,
                inline_id: inline.then(|| file.content_id.as_deref().unwrap_or(&file.filename)),
                content_type,
                bytes: base64_simd::STANDARD
                    .decode_to_vec(file.content.as_bytes())
                    .unwrap_or_default(),
            }
        })
        .collect();
    build_with_mail_builder(
        &request.sender,
        &request.receiver,
        &request.cc,
        &request.title,
        &request.content,
        request.body_format.eq_ignore_ascii_case("text"),
        &parts,
    )
}

/// serde_json into owned strings, the `base64` crate, lettre.
pub fn lettre_plain(json: &[u8]) -> Vec<u8> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
    let Ok(request) = serde_json::from_slice::<OwnedRequest>(json) else {
        return Vec::new();
    };
    let mailbox = |(name, address): (&str, &str)| {
        address
            .parse()
            .ok()
            .map(|address| Mailbox::new((!name.is_empty()).then(|| name.to_owned()), address))
    };
    let Some(from) = mailboxes(&request.sender).into_iter().find_map(mailbox) else {
        return Vec::new();
    };
    let mut builder = lettre::Message::builder()
        .from(from)
        .subject(request.title.as_str());
    for to in mailboxes(&request.receiver).into_iter().filter_map(mailbox) {
        builder = builder.to(to);
    }
    for cc in mailboxes(&request.cc).into_iter().filter_map(mailbox) {
        builder = builder.cc(cc);
    }
    let body = if request.body_format.eq_ignore_ascii_case("text") {
        SinglePart::plain(request.content)
    } else {
        SinglePart::html(request.content)
    };
    let mut inline = Vec::new();
    let mut files = Vec::new();
    for file in &request.attachments {
        let content_type = mime_of(&file.filename);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.content)
            .unwrap_or_default();
        let Ok(parsed) = ContentType::parse(&content_type) else {
            continue;
        };
        if is_inline(file.disposition.as_deref(), &content_type) {
            let id = file
                .content_id
                .clone()
                .unwrap_or_else(|| file.filename.clone());
            inline.push(Attachment::new_inline(id).body(bytes, parsed));
        } else {
            files.push(Attachment::new(file.filename.clone()).body(bytes, parsed));
        }
    }
    let message = if inline.is_empty() && files.is_empty() {
        builder.singlepart(body)
    } else {
        let mut related = MultiPart::related().singlepart(body);
        for part in inline {
            related = related.singlepart(part);
        }
        let mut mixed = MultiPart::mixed().multipart(related);
        for part in files {
            mixed = mixed.singlepart(part);
        }
        builder.multipart(mixed)
    };
    message.map(|m| m.formatted()).unwrap_or_default()
}

/// The floor: what any pipeline must at least do with this request. Find
/// every string end in the JSON (a memchr scan for `"` and `\`), check each
/// attachment's base64 with SIMD, and write `output_len` bytes into a fresh
/// buffer. Returns the buffer.
pub fn floor(json: &[u8], output_len: usize) -> Vec<u8> {
    let ends = memchr::memchr2_iter(b'"', b'\\', json).count();
    // The attachments' base64: the longest strings of the JSON, located by the
    // scan a parser would do; here taken from the known field name.
    let mut checked = 0;
    let mut rest = json;
    while let Some(at) = memchr::memmem::find(rest, b"\"content\":\"") {
        let value = rest.get(at + 11..).unwrap_or_default();
        let end = memchr::memchr(b'"', value).unwrap_or(value.len());
        let text = value.get(..end).unwrap_or_default();
        if base64_simd::STANDARD.check(text).is_ok() {
            checked += text.len();
        }
        rest = value.get(end..).unwrap_or_default();
    }
    let mut out = Vec::with_capacity(output_len);
    while out.len() < output_len {
        let take = (output_len - out.len()).min(json.len());
        out.extend_from_slice(json.get(..take).unwrap_or_default());
    }
    std::hint::black_box((ends, checked));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_peer_makes_a_message_of_about_our_size() {
        for workload in crate::all() {
            let ours = crate::ours_e2e(&workload.json).len();
            for (name, peer) in [
                (
                    "mail-builder plain",
                    mail_builder_plain as fn(&[u8]) -> Vec<u8>,
                ),
                ("mail-builder tuned", mail_builder_tuned),
                ("lettre", lettre_plain),
            ] {
                let len = peer(&workload.json).len();
                assert!(
                    len > ours * 9 / 10 && len < ours * 11 / 10,
                    "{} {name}: {len} bytes, ours {ours}",
                    workload.name
                );
            }
        }
    }
}
