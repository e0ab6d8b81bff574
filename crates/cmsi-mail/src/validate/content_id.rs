//! Content-IDs (RFC 2392): the one a request gives, checked and kept as it
//! is; and the default of an inline part, which the HTML must be able to name.
//!
//! The default is the filename when a msg-id can hold it as it is. A name
//! with spaces, non-ASCII or other such characters gets an ASCII Content-ID
//! (`part2.png@cmsi-mail`) instead, and the HTML's `cid:` references to the
//! name, raw (`cid:告警趋势.png`) or percent-encoded (`cid:%E5%91%8A….png`), are
//! rewritten to it: readers disagree on whether to percent-decode a `cid:`
//! URL (mailparser resolves neither spelling of a percent-encoded ID), and
//! every one of them finds a plain ASCII ID.

use std::borrow::Cow;

use crate::address::is_atext;
use crate::error::Problem;
use crate::message::{Attachment, Disposition};

use super::raw_header_problem;

/// Longest Content-ID, so that its header line stays far below 998 octets.
pub(super) const MAX_CONTENT_ID: usize = 900;

/// The right-hand side of generated Content-IDs.
const GENERATED_DOMAIN: &str = "cmsi-mail";

/// What a Content-ID holds unescaped: RFC 5322 `atext` and `.` and `@`, but
/// not `%`, which escapes everything else in a `cid:` URL.
fn is_content_id_char(byte: u8) -> bool {
    (is_atext(byte) && byte != b'%') || byte == b'.' || byte == b'@'
}

/// A `content_id` as the request gives it, angle brackets optional.
pub(super) fn explicit_content_id(given: &str) -> Result<String, Problem> {
    let id = given
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(given);
    if let Some(problem) = raw_header_problem(id) {
        return Err(problem);
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|byte| is_content_id_char(byte) || byte == b'%')
    {
        return Err(Problem::ContentId(given.to_owned()));
    }
    if id.len() > MAX_CONTENT_ID {
        return Err(Problem::TooLong {
            len: id.len(),
            max: MAX_CONTENT_ID,
            unit: "octets",
        });
    }
    Ok(id.to_owned())
}

/// `filename` as the default Content-ID, as the API documents it (`<logo.png>`),
/// when a msg-id holds it as it is and a `cid:` URL names it unescaped: only
/// Content-ID characters but `?` and `#` (a query or fragment in a URL), and
/// nothing a reader would take for an encoded word (the raw header rule).
/// `None` when the part needs a generated ID instead.
pub(super) fn filename_content_id(filename: &str) -> Option<&str> {
    let plain = filename
        .bytes()
        .all(|byte| is_content_id_char(byte) && byte != b'?' && byte != b'#')
        && raw_header_problem(filename).is_none();
    plain.then_some(filename)
}

/// Gives every inline part without a Content-ID a generated one, unique in the
/// message; returns the parts that got one, as (filename, ID) pairs.
pub(super) fn assign_generated(attachments: &mut [Attachment<'_>]) -> Vec<(String, String)> {
    let mut renamed = Vec::new();
    for index in 0..attachments.len() {
        let Some(attachment) = attachments.get(index) else {
            continue;
        };
        if attachment.disposition != Disposition::Inline || attachment.content_id.is_some() {
            continue;
        }
        let stem = format!("part{}", index + 1);
        let extension = extension(&attachment.filename);
        let mut suffix = 1;
        let id = loop {
            let candidate = match (suffix, extension) {
                (1, Some(ext)) => format!("{stem}.{ext}@{GENERATED_DOMAIN}"),
                (1, None) => format!("{stem}@{GENERATED_DOMAIN}"),
                (n, Some(ext)) => format!("{stem}.{n}.{ext}@{GENERATED_DOMAIN}"),
                (n, None) => format!("{stem}.{n}@{GENERATED_DOMAIN}"),
            };
            let taken = attachments
                .iter()
                .any(|other| other.content_id.as_deref() == Some(candidate.as_str()));
            if !taken {
                break candidate;
            }
            suffix += 1;
        };
        if let Some(attachment) = attachments.get_mut(index) {
            attachment.content_id = Some(id.clone());
            renamed.push((attachment.filename.clone(), id));
        }
    }
    renamed
}

/// The filename's extension when it is short ASCII letters and digits (kept so
/// that a reader that names a part after its Content-ID gets the type right).
fn extension(filename: &str) -> Option<&str> {
    let (_, ext) = filename.rsplit_once('.')?;
    let plain = !ext.is_empty() && ext.len() <= 8 && ext.bytes().all(|b| b.is_ascii_alphanumeric());
    plain.then_some(ext)
}

/// `html` with every `cid:` reference to a renamed part (its filename raw,
/// percent-encoded, or with `&amp;` for `&`) pointing at the part's new ID.
pub(super) fn rewrite_references<'a>(
    html: Cow<'a, str>,
    renamed: &[(String, String)],
) -> Cow<'a, str> {
    if renamed.is_empty() {
        return html;
    }
    let bytes = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    for colon in memchr::memchr_iter(b':', bytes) {
        let Some(scheme) = colon
            .checked_sub(3)
            .and_then(|start| bytes.get(start..colon))
        else {
            continue;
        };
        let word_start = colon
            .checked_sub(4)
            .and_then(|before| bytes.get(before))
            .is_none_or(|byte| !byte.is_ascii_alphanumeric());
        if !scheme.eq_ignore_ascii_case(b"cid") || !word_start || colon < copied {
            continue;
        }
        let start = colon + 1;
        let rest = bytes.get(start..).unwrap_or_default();
        // The longest name that matches wins ("a b.png" over "a b").
        let found = renamed
            .iter()
            .filter_map(|(name, id)| spelled_len(rest, name.as_bytes()).map(|len| (len, id)))
            .max_by_key(|(len, _)| *len);
        if let Some((len, id)) = found {
            let kept = out.get_or_insert_with(|| String::with_capacity(html.len() + 64));
            kept.push_str(html.get(copied..start).unwrap_or_default());
            kept.push_str(id);
            copied = start + len;
        }
    }
    match out {
        Some(mut kept) => {
            kept.push_str(html.get(copied..).unwrap_or_default());
            Cow::Owned(kept)
        }
        None => html,
    }
}

/// How many bytes of `text` spell `name` in a URL, each byte raw or as `%XX`
/// (`&` also as `&amp;`), followed by the end of the URL; `None` if they do not.
fn spelled_len(text: &[u8], name: &[u8]) -> Option<usize> {
    let mut at = 0;
    for &byte in name {
        let rest = text.get(at..)?;
        if byte == b'&' && rest.starts_with(b"&amp;") {
            at += 5;
        } else if rest.first() == Some(&byte) {
            at += 1;
        } else if rest.first() == Some(&b'%') && hex_byte(rest.get(1..3)?) == Some(byte) {
            at += 3;
        } else {
            return None;
        }
    }
    let ends = match text.get(at) {
        None => true,
        Some(next) => next.is_ascii_whitespace() || b"\"'()<>&".contains(next),
    };
    ends.then_some(at)
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |b: u8| char::from(b).to_digit(16);
    match pair {
        [high, low] => u8::try_from(digit(*high)? * 16 + digit(*low)?).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renamed() -> Vec<(String, String)> {
        vec![
            ("告警趋势.png".into(), "part1.png@cmsi-mail".into()),
            ("my logo.png".into(), "part2.png@cmsi-mail".into()),
            ("a&b c.gif".into(), "part3.gif@cmsi-mail".into()),
        ]
    }

    #[test]
    fn both_spellings_are_rewritten() {
        let html = "<img src=\"cid:告警趋势.png\"><img src='CID:%E5%91%8A%e8%ad%a6%E8%B6%8B%E5%8A%BF.png'>\
                    <div style=\"background: url(cid:my%20logo.png)\"></div><img src=\"cid:my logo.png\">\
                    <img src=\"cid:a&amp;b%20c.gif\">";
        let out = rewrite_references(Cow::Borrowed(html), &renamed());
        assert_eq!(
            out,
            "<img src=\"cid:part1.png@cmsi-mail\"><img src='CID:part1.png@cmsi-mail'>\
             <div style=\"background: url(cid:part2.png@cmsi-mail)\"></div><img src=\"cid:part2.png@cmsi-mail\">\
             <img src=\"cid:part3.gif@cmsi-mail\">"
        );
    }

    #[test]
    fn other_references_stay() {
        for html in [
            "<img src=\"cid:my logo.png.bak\">",
            "<img src=\"cid:logo.png\">",
            "<p>cid:my logo.pngx</p>",
            "decid:my logo.png",
            "no reference at all",
        ] {
            let out = rewrite_references(Cow::Borrowed(html), &renamed());
            assert!(matches!(out, Cow::Borrowed(_)), "{html}");
        }
    }

    #[test]
    fn filenames_that_fit_a_msg_id_stay_as_they_are() {
        assert_eq!(filename_content_id("logo.png"), Some("logo.png"));
        assert_eq!(filename_content_id("a+b_c-1@x.png"), Some("a+b_c-1@x.png"));
        for name in [
            "my logo.png",
            "告警趋势.png",
            "100%.png",
            "a(1).png",
            "=?utf-8?q?x?=.png",
            "why?.png",
            "a#b.png",
        ] {
            assert_eq!(filename_content_id(name), None, "{name}");
        }
        assert_eq!(extension("图.png"), Some("png"));
        assert_eq!(extension("图.图片"), None);
        assert_eq!(extension("noext"), None);
    }
}
