//! Composition: a validated [`Message`] becomes RFC 5322 bytes.
//!
//! mail-builder writes the structured headers (Date, From, To, Cc, Subject and
//! the RFC 2231 `filename` of Content-Disposition). The rest is written here
//! because mail-builder cannot do it: its boundaries cannot be seeded (no golden
//! tests), it has no `multipart/related` shape of its own, it will not write the
//! RFC 2047 `name=` that older Outlook and QQ Mail read, and it encodes every
//! attachment from bytes where ours are re-wrapped from the request's base64.

use std::borrow::Cow;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use encodify::{Fold, base64, qp, rfc2047};
use mail_builder::headers::Header;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::{IoWriter, Writer};

use crate::address::{Mailbox, looks_encoded};
use crate::message::{Attachment, BodyFormat, Data, Disposition, Message};

/// Base64 line length (RFC 2045 §6.8).
const LINE: usize = 76;
/// Bytes encoded per step: 800 whole lines, 62 400 bytes once encoded, which
/// fits the 64 KiB buffer of mail-builder's `IoWriter`.
const CHUNK: usize = LINE / 4 * 3 * 800;
/// Longest line of a 7bit body, CRLF excluded (RFC 5322 §2.1.1).
const MAX_7BIT_LINE: usize = 998;
/// Header lines that carry encoded words stay within 76 columns (RFC 2047 §2).
const ENCODED_LINE: usize = 76;

/// How to stamp a message: its Date, and the seed of its Message-ID and MIME
/// boundaries.
///
/// The default takes the current time and a random seed. With
/// [`ComposeOptions::deterministic`] the same message gives the same bytes,
/// for golden tests and for reproducing a fuzz finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComposeOptions {
    date: Option<i64>,
    seed: Option<u64>,
}

impl ComposeOptions {
    /// Current time, random seed.
    pub fn new() -> Self {
        ComposeOptions::default()
    }

    /// A fixed Date (seconds since the Unix epoch, written in UTC) and a fixed seed.
    pub fn deterministic(seed: u64, unix_time: i64) -> Self {
        ComposeOptions {
            date: Some(unix_time),
            seed: Some(seed),
        }
    }

    /// Fixes the Date only.
    pub fn with_date(mut self, unix_time: i64) -> Self {
        self.date = Some(unix_time);
        self
    }

    /// Fixes the seed only.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
}

/// A composed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Composed {
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The message: 7-bit, CRLF line ends, no line over 998 octets.
    pub bytes: Vec<u8>,
}

/// Content-Transfer-Encoding of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    SevenBit,
    QuotedPrintable,
    Base64,
}

impl Encoding {
    fn name(self) -> &'static [u8] {
        match self {
            Encoding::SevenBit => b"7bit",
            Encoding::QuotedPrintable => b"quoted-printable",
            Encoding::Base64 => b"base64",
        }
    }
}

/// The body with CRLF line ends and the encoding that suits it.
struct PreparedBody<'t> {
    text: Cow<'t, [u8]>,
    encoding: Encoding,
}

impl<'t> PreparedBody<'t> {
    fn new(text: &'t str) -> Self {
        let text = crlf(text);
        let encoding = choose_encoding(&text);
        PreparedBody { text, encoding }
    }

    /// The body as written when it is 7bit; boundaries must not occur in it.
    fn literal(&self) -> Option<&[u8]> {
        (self.encoding == Encoding::SevenBit).then_some(&self.text)
    }
}

/// Text line breaks in canonical form: a lone LF or CR becomes CRLF.
fn crlf(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    let canonical = match memchr::memchr(b'\r', bytes) {
        // Without CR, any LF is a bare one (text from JSON usually has LF only).
        None => memchr::memchr(b'\n', bytes).is_none(),
        Some(_) => memchr::memchr2_iter(b'\r', b'\n', bytes).all(|at| match bytes.get(at) {
            Some(b'\r') => bytes.get(at + 1) == Some(&b'\n'),
            _ => at > 0 && bytes.get(at - 1) == Some(&b'\r'),
        }),
    };
    if canonical {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut rest = bytes;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
        out.extend_from_slice(rest.get(..at).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        let skip = if rest.get(at..at + 2) == Some(b"\r\n") {
            2
        } else {
            1
        };
        rest = rest.get(at + skip..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// 7bit when the text allows it, else the shorter of quoted-printable and base64.
fn choose_encoding(text: &[u8]) -> Encoding {
    if text.is_ascii() && memchr::memchr(0, text).is_none() && longest_line(text) <= MAX_7BIT_LINE {
        return Encoding::SevenBit;
    }
    // Counting stops as soon as quoted-printable is known to be longer.
    match qp::BODY.encoded_len_within(text, base64_len(text.len())) {
        Some(_) => Encoding::QuotedPrintable,
        None => Encoding::Base64,
    }
}

fn longest_line(text: &[u8]) -> usize {
    let mut longest = 0;
    let mut start = 0;
    for at in memchr::memchr_iter(b'\n', text) {
        // Line ends are CRLF here; the CR is not part of the line.
        longest = longest.max(at.saturating_sub(start + 1));
        start = at + 1;
    }
    longest.max(text.len() - start)
}

/// Length of `len` bytes as base64 in 76-column lines joined by CRLF.
fn base64_len(len: usize) -> usize {
    let symbols = len.div_ceil(3) * 4;
    symbols + symbols.div_ceil(LINE).saturating_sub(1) * 2
}

impl Message<'_> {
    /// Composes the message into memory.
    pub fn compose(&self, options: &ComposeOptions) -> Composed {
        let mut bytes = Vec::with_capacity(self.estimated_len());
        let message_id = self.write(&mut bytes, options);
        Composed { message_id, bytes }
    }

    /// Composes the message into `out`, streaming: attachments are written in
    /// pieces, never held twice. Returns the Message-ID without angle brackets.
    pub fn write_to<W: io::Write>(&self, options: &ComposeOptions, out: W) -> io::Result<String> {
        let mut writer = IoWriter::new(out);
        let message_id = self.write(&mut writer, options);
        writer.finish()?.flush()?;
        Ok(message_id)
    }

    /// An upper bound of the composed size, good for reserving memory and for
    /// the size limit.
    pub fn estimated_len(&self) -> usize {
        // Encoded words and quoted strings at most double a text, folds
        // included; each mailbox also takes `<address>`, a comma and a fold.
        let mailbox =
            |m: &Mailbox| 16 + m.address().len() + m.name().map_or(0, |n| 2 * n.len() + 16);
        let recipients: usize = std::iter::once(&self.sender)
            .chain(&self.to)
            .chain(&self.cc)
            .map(mailbox)
            .sum();
        let headers = 512 + 2 * self.subject.len() + recipients;
        // Each lone CR or LF may become CRLF before encoding; quoted-printable
        // is only chosen when it is not longer than base64.
        let text = self.body.text.as_bytes();
        let breaks = memchr::memchr2_iter(b'\r', b'\n', text).count();
        let body = 256 + base64_len(text.len() + breaks);
        let attachments: usize = self
            .attachments
            .iter()
            .map(|a| {
                // name= as encoded words and filename* percent-encoded: at
                // most 2 + 3 times the name, with room for folds.
                let names = 6 * a.filename.len();
                let extra =
                    a.content_type.as_ref().len() + a.content_id.as_ref().map_or(0, String::len);
                512 + names + extra + base64_len(a.len())
            })
            .sum();
        headers + body + attachments
    }

    fn write<W: Writer>(&self, w: &mut W, options: &ComposeOptions) -> String {
        let mut rng = match options.seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        let date = options.date.unwrap_or_else(now);
        let message_id = format!(
            "{:016x}{:016x}@{}",
            rng.u64(..),
            rng.u64(..),
            self.sender.domain()
        );
        let body = PreparedBody::new(&self.body.text);

        w.write(b"Date: ");
        Date::new(date).write_header(w, 6);
        w.write(b"Message-ID: <");
        w.write(message_id.as_bytes());
        w.write(b">\r\nMIME-Version: 1.0\r\n");
        write_mailboxes(w, b"From: ", std::slice::from_ref(&self.sender));
        write_mailboxes(w, b"To: ", &self.to);
        if !self.cc.is_empty() {
            write_mailboxes(w, b"Cc: ", &self.cc);
        }
        write_subject(w, &self.subject);

        self.write_tree(w, &mut rng, &body);
        message_id
    }

    /// The MIME tree (SPEC §3): a single part when nothing is attached;
    /// `multipart/related` around an HTML body and its inline parts; and
    /// `multipart/mixed` around the body and the files.
    fn write_tree<W: Writer>(&self, w: &mut W, rng: &mut fastrand::Rng, body: &PreparedBody<'_>) {
        let format = self.body.format;
        if self.attachments.is_empty() {
            return write_body_part(w, format, body);
        }
        let related = format == BodyFormat::Html
            && self
                .attachments
                .iter()
                .any(|a| a.disposition == Disposition::Inline);
        let files = || {
            self.attachments
                .iter()
                .filter(move |a| !related || a.disposition == Disposition::Attachment)
        };
        if related && files().next().is_none() {
            return self.write_related(w, rng, body);
        }

        let boundary = boundary(rng, body.literal());
        write_multipart_headers(w, b"multipart/mixed", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        if related {
            self.write_related(w, rng, body);
        } else {
            write_body_part(w, format, body);
        }
        for attachment in files() {
            parts.next(w);
            write_attachment_part(w, attachment);
        }
        parts.close(w);
    }

    fn write_related<W: Writer>(
        &self,
        w: &mut W,
        rng: &mut fastrand::Rng,
        body: &PreparedBody<'_>,
    ) {
        let boundary = boundary(rng, body.literal());
        write_multipart_headers(w, b"multipart/related; type=\"text/html\"", &boundary);
        let mut parts = Parts::new(&boundary);
        parts.next(w);
        write_body_part(w, BodyFormat::Html, body);
        for attachment in self
            .attachments
            .iter()
            .filter(|a| a.disposition == Disposition::Inline)
        {
            parts.next(w);
            write_attachment_part(w, attachment);
        }
        parts.close(w);
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

fn address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(mailbox.name(), mailbox.address())
}

/// Text a reader would take for an RFC 2047 encoded word must be encoded itself
/// (RFC 2047 §5); mail-builder writes such text as it is, so those headers are
/// written here.
fn write_subject<W: Writer>(w: &mut W, subject: &str) {
    w.write(b"Subject: ");
    if looks_encoded(subject) {
        write_words(w, subject, "Subject: ".len(), rfc2047::Q_TEXT);
        w.write(b"\r\n");
    } else {
        Text::new(subject).write_header(w, "Subject: ".len());
    }
}

fn write_mailboxes<W: Writer>(w: &mut W, name: &[u8], mailboxes: &[Mailbox]) {
    w.write(name);
    if !mailboxes
        .iter()
        .any(|mailbox| mailbox.name().is_some_and(looks_encoded))
    {
        let header = match mailboxes {
            [single] => address(single),
            many => Address::new_list(many.iter().map(address).collect()),
        };
        return header.write_header(w, name.len());
    }
    // Every display name as encoded words, one mailbox per line.
    let mut column = name.len();
    for (index, mailbox) in mailboxes.iter().enumerate() {
        if index > 0 {
            w.write(b",\r\n ");
            column = 1;
        }
        if let Some(display) = mailbox.name() {
            column = write_words(w, display, column, rfc2047::Q_PHRASE);
            if column + 3 + mailbox.address().len() > ENCODED_LINE {
                w.write(b"\r\n");
                column = 0;
            }
            w.write(b" ");
            column += 1;
        }
        w.write(b"<");
        w.write(mailbox.address().as_bytes());
        w.write(b">");
        column += mailbox.address().len() + 2;
    }
    w.write(b"\r\n");
}

/// Writes `text` as UTF-8 encoded words, "Q" (`q` is the text or phrase
/// variant) or "B" whichever is shorter, folded at 76 columns; returns the
/// column after them.
fn write_words<W: Writer>(w: &mut W, text: &str, column: usize, q: rfc2047::WordEncoder) -> usize {
    let encoder = if q.payload_len(text) <= rfc2047::B.payload_len(text) {
        q
    } else {
        rfc2047::B
    };
    let mut column = column;
    let mut words = String::with_capacity(text.len() * 2);
    encoder.encode_words("utf-8", text, &mut column, Fold::HEADER, &mut words);
    w.write(words.as_bytes());
    column
}

/// A boundary that cannot occur in base64 or quoted-printable text (`=_` never
/// does, RFC 2045 §6.7) and, checked here, not in the 7bit body either.
fn boundary(rng: &mut fastrand::Rng, literal: Option<&[u8]>) -> String {
    loop {
        let mut boundary = String::with_capacity(32);
        boundary.push_str("=_");
        boundary.extend(std::iter::repeat_with(|| rng.alphanumeric()).take(30));
        let clashes =
            literal.is_some_and(|text| memchr::memmem::find(text, boundary.as_bytes()).is_some());
        if !clashes {
            return boundary;
        }
    }
}

fn write_multipart_headers<W: Writer>(w: &mut W, content_type: &[u8], boundary: &str) {
    w.write(b"Content-Type: ");
    w.write(content_type);
    w.write(b";\r\n boundary=\"");
    w.write(boundary.as_bytes());
    w.write(b"\"\r\n\r\n");
}

/// Writes the delimiters between the parts of one multipart.
struct Parts<'b> {
    boundary: &'b str,
    first: bool,
}

impl<'b> Parts<'b> {
    fn new(boundary: &'b str) -> Self {
        Parts {
            boundary,
            first: true,
        }
    }

    fn next<W: Writer>(&mut self, w: &mut W) {
        if !self.first {
            w.write(b"\r\n");
        }
        self.first = false;
        w.write(b"--");
        w.write(self.boundary.as_bytes());
        w.write(b"\r\n");
    }

    fn close<W: Writer>(self, w: &mut W) {
        w.write(b"\r\n--");
        w.write(self.boundary.as_bytes());
        w.write(b"--\r\n");
    }
}

fn write_body_part<W: Writer>(w: &mut W, format: BodyFormat, body: &PreparedBody<'_>) {
    w.write(match format {
        BodyFormat::Html => b"Content-Type: text/html; charset=utf-8\r\n".as_slice(),
        BodyFormat::Text => b"Content-Type: text/plain; charset=utf-8\r\n".as_slice(),
    });
    w.write(b"Content-Transfer-Encoding: ");
    w.write(body.encoding.name());
    w.write(b"\r\n\r\n");
    match body.encoding {
        Encoding::SevenBit => w.write(&body.text),
        Encoding::QuotedPrintable => {
            w.append_with(body.text.len() * 3 / 2, |buffer| {
                qp::BODY.encode_append(&body.text, buffer)
            });
        }
        Encoding::Base64 => write_base64(w, &body.text),
    }
}

fn write_attachment_part<W: Writer>(w: &mut W, attachment: &Attachment<'_>) {
    write_attachment_type(w, &attachment.content_type, &attachment.filename);
    write_disposition(w, attachment.disposition, &attachment.filename);
    w.write(b"Content-Transfer-Encoding: base64\r\n");
    if let Some(id) = &attachment.content_id {
        w.write(b"Content-ID: <");
        w.write(id.as_bytes());
        w.write(b">\r\n");
    }
    w.write(b"\r\n");
    match &attachment.data {
        Data::Base64 { text, .. } => write_wrapped(w, text.as_bytes()),
        Data::Bytes(bytes) => write_base64(w, bytes),
    }
}

/// A file name that must not go out as plain ASCII: non-ASCII, or text a reader
/// would decode as an encoded word.
fn needs_encoding(filename: &str) -> bool {
    !filename.is_ascii() || looks_encoded(filename)
}

/// `Content-Type: type/subtype; params; name="…"`. An encoded name is written as
/// RFC 2047 encoded words inside the quotes: not what RFC 2231 asks for, but what
/// older Outlook and QQ Mail read (Content-Disposition carries the RFC 2231 form).
fn write_attachment_type<W: Writer>(w: &mut W, content_type: &mime::Mime, filename: &str) {
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
        let mut column = " name=\"".len();
        // One column is kept for the closing quote.
        let fold = Fold::new(ENCODED_LINE - 1, b"\r\n ", 1);
        let mut words = String::with_capacity(filename.len() * 2);
        rfc2047::B.encode_words("utf-8", filename, &mut column, fold, &mut words);
        w.write(words.as_bytes());
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
fn write_disposition<W: Writer>(w: &mut W, disposition: Disposition, filename: &str) {
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

/// Bytes as base64 in 76-column lines joined by CRLF. The pieces handed to the
/// writer fit the 64 KiB buffer of mail-builder's `IoWriter`, so streaming to a
/// file never holds more than that.
fn write_base64<W: Writer>(w: &mut W, bytes: &[u8]) {
    let mut chunks = bytes.chunks(CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        w.append_with(base64::MIME.encoded_len(chunk.len()), |buffer| {
            base64::MIME.encode_append(chunk, buffer);
            // MIME ends every line with CRLF; the last one belongs to the
            // delimiter that follows the part.
            if last {
                buffer.truncate(buffer.len().saturating_sub(2));
            }
        });
    }
}

/// Base64 symbols in 76-column lines joined by CRLF. Canonical base64 text
/// written this way gives the same bytes as decoding it and calling
/// [`write_base64`].
fn write_wrapped<W: Writer>(w: &mut W, symbols: &[u8]) {
    let mut pieces = symbols.chunks(CHUNK / 3 * 4).peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        let len = piece.len() + piece.len().div_ceil(LINE) * 2;
        w.append_with(len, |buffer| {
            buffer.reserve(len);
            for line in piece.chunks(LINE) {
                buffer.extend_from_slice(line);
                buffer.extend_from_slice(b"\r\n");
            }
            if last {
                buffer.truncate(buffer.len().saturating_sub(2));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_become_crlf() {
        let cases = [
            ("a\r\nb", "a\r\nb"),
            ("a\nb\n", "a\r\nb\r\n"),
            ("a\rb", "a\r\nb"),
            ("\n\r\n\r", "\r\n\r\n\r\n"),
            ("\r\r\n\n", "\r\n\r\n\r\n"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(crlf(input).as_ref(), expected.as_bytes(), "{input:?}");
        }
        assert!(matches!(crlf("x\r\ny"), Cow::Borrowed(_)));
    }

    #[test]
    fn encoding_follows_the_content() {
        assert_eq!(choose_encoding(b"<p>Hello</p>\r\n"), Encoding::SevenBit);
        let long = "x".repeat(999);
        assert_eq!(choose_encoding(long.as_bytes()), Encoding::QuotedPrintable);
        assert_eq!(
            choose_encoding("Grüße aus Köln, and a longer mostly ASCII sentence".as_bytes()),
            Encoding::QuotedPrintable
        );
        // Short text with a few non-ASCII letters: base64 is shorter here.
        assert_eq!(
            choose_encoding("Grüße aus Köln, Hello world".as_bytes()),
            Encoding::Base64
        );
        assert_eq!(
            choose_encoding("蓝鲸智云欢迎您，这是一封测试邮件".as_bytes()),
            Encoding::Base64
        );
        assert_eq!(choose_encoding(b"nul\0byte"), Encoding::QuotedPrintable);
        assert_eq!(longest_line(b"ab\r\ncdef\r\n"), 4);
        assert_eq!(longest_line(b"abc"), 3);
    }

    #[test]
    fn rewrapping_equals_encoding() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [
            0,
            1,
            2,
            3,
            56,
            57,
            58,
            114,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 5,
        ] {
            let bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
            let mut encoded = Vec::new();
            write_base64(&mut encoded, &bytes);
            let text = base64::STANDARD.encode(&bytes);
            let mut rewrapped = Vec::new();
            write_wrapped(&mut rewrapped, text.as_bytes());
            assert_eq!(encoded, rewrapped, "length {len}");
            assert_eq!(encoded.len(), base64_len(len), "length {len}");
            assert!(
                encoded
                    .split(|&b| b == b'\n')
                    .all(|line| line.len() <= LINE + 1)
            );
        }
    }

    #[test]
    fn parameter_values_are_quoted_when_needed() {
        assert_eq!(quoted("report.pdf"), "report.pdf");
        assert_eq!(quoted("my report.pdf"), "\"my report.pdf\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quoted(""), "\"\"");
    }

    #[test]
    fn boundaries_avoid_the_literal_body() {
        let mut rng = fastrand::Rng::with_seed(1);
        let first = boundary(&mut rng, None);
        let mut rng = fastrand::Rng::with_seed(1);
        let body = format!("text\r\n--{first}\r\n");
        let second = boundary(&mut rng, Some(body.as_bytes()));
        assert_ne!(first, second);
        assert!(second.starts_with("=_") && second.len() == 32);
    }
}
