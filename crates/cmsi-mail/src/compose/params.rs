//! MIME parameters: the attachment's `Content-Type` with its `name=`, and
//! `Content-Disposition` with its `filename=` (RFC 2231 when needed).

use std::borrow::Cow;

use encodify::rfc2047;
use mail_builder::Writer;

use crate::address::looks_encoded;
use crate::message::Disposition;

use super::ENCODED_LINE;
use super::words::{Words, write_words};

/// A file name that must not go out as plain ASCII: non-ASCII, or text a reader
/// would decode as an encoded word.
fn needs_encoding(filename: &str) -> bool {
    !filename.is_ascii() || looks_encoded(filename)
}

/// `Content-Type: type/subtype; params; name="…"`. An encoded name is written as
/// RFC 2047 encoded words inside the quotes: not what RFC 2231 asks for, but what
/// older Outlook and QQ Mail read (Content-Disposition carries the RFC 2231 form).
pub(super) fn write_attachment_type<W: Writer>(
    w: &mut W,
    content_type: &mime::Mime,
    filename: &str,
) {
    w.write(b"Content-Type: ");
    w.write(content_type.essence_str().as_bytes());
    let mut column = "Content-Type: ".len() + content_type.essence_str().len();
    for (name, value) in content_type.params() {
        if name == "name" {
            continue;
        }
        let value = quoted(value.as_str());
        let len = name.as_str().len() + 1 + value.len();
        column = separate(w, column, len + 1);
        w.write(name.as_str().as_bytes());
        w.write(b"=");
        w.write(value.as_bytes());
        column += len;
    }
    if needs_encoding(filename) {
        w.write(b";\r\n name=\"");
        // One column is kept for the closing quote; a "Q" piece, if any, must
        // not hold a quote itself, as the phrase variant ensures.
        let words = Words::Base64(rfc2047::Q_PHRASE);
        write_words(w, filename, " name=\"".len(), ENCODED_LINE - 1, words);
        w.write(b"\"");
    } else {
        // Always quoted, though a token would do: some readers expect quotes here.
        let value = quoted_string(filename);
        separate(w, column, "name=".len() + value.len());
        w.write(b"name=");
        w.write(value.as_bytes());
    }
    w.write(b"\r\n");
}

/// `Content-Disposition: inline|attachment; filename=…`: a quoted string, or the
/// RFC 2231 extended form (`filename*0*=utf-8''%E5%AD%A3…`) split into sections
/// of at most 76 columns, never inside a character.
pub(super) fn write_disposition<W: Writer>(w: &mut W, disposition: Disposition, filename: &str) {
    let disposition: &[u8] = match disposition {
        Disposition::Inline => b"inline",
        Disposition::Attachment => b"attachment",
    };
    w.write(b"Content-Disposition: ");
    w.write(disposition);
    let column = "Content-Disposition: ".len() + disposition.len();
    if !needs_encoding(filename) {
        let value = quoted_string(filename);
        separate(w, column, "filename=".len() + value.len());
        w.write(b"filename=");
        w.write(value.as_bytes());
        w.write(b"\r\n");
        return;
    }
    const CHARSET: &str = "utf-8''";
    let whole = encodify::hex::PERCENT.encoded_len(filename);
    if column + 2 + "filename*=".len() + CHARSET.len() + whole <= ENCODED_LINE {
        w.write(b"; filename*=utf-8''");
        w.append_with(whole, |buffer| {
            encodify::hex::PERCENT.encode_append(filename, buffer)
        });
        w.write(b"\r\n");
        return;
    }
    let mut section = 0usize;
    let mut rest = filename;
    while !rest.is_empty() {
        let prefix = match section {
            0 => format!("filename*0*={CHARSET}"),
            n => format!("filename*{n}*="),
        };
        // " " + prefix + value + ";" fits in 76 columns; a section takes at
        // least one character.
        let budget = ENCODED_LINE - 2 - prefix.len();
        let (mut taken, mut len) = (0, 0);
        for (index, c) in rest.char_indices() {
            let end = index + c.len_utf8();
            let escaped =
                encodify::hex::PERCENT.encoded_len(rest.get(index..end).unwrap_or_default());
            if len + escaped > budget && taken > 0 {
                break;
            }
            (taken, len) = (end, len + escaped);
        }
        let (chunk, tail) = rest.split_at(taken);
        w.write(b";\r\n ");
        w.write(prefix.as_bytes());
        w.append_with(len, |buffer| {
            encodify::hex::PERCENT.encode_append(chunk, buffer)
        });
        rest = tail;
        section += 1;
    }
    w.write(b"\r\n");
}

/// Writes `;` and then a space, or a fold when `len` more would pass 76 columns;
/// returns the new column.
fn separate<W: Writer>(w: &mut W, column: usize, len: usize) -> usize {
    if column + 2 + len > ENCODED_LINE {
        w.write(b";\r\n ");
        1
    } else {
        w.write(b"; ");
        column + 2
    }
}

/// A MIME parameter value: a token as it is, anything else as a quoted string.
fn quoted(value: &str) -> Cow<'_, str> {
    const TSPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";
    let token = !value.is_empty()
        && value
            .bytes()
            .all(|byte| byte.is_ascii_graphic() && !TSPECIALS.contains(&byte));
    if token {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(quoted_string(value))
    }
}

/// `value` as an RFC 5322 quoted string.
fn quoted_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_values_are_quoted_when_needed() {
        assert_eq!(quoted("report.pdf"), "report.pdf");
        assert_eq!(quoted("my report.pdf"), "\"my report.pdf\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted(""), "\"\"");
    }
}
