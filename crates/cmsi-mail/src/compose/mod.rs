//! Composition, step 3 of the flow: a validated [`Message`] becomes RFC 5322
//! bytes. The tree (which multiparts, in which order) is decided in [`tree`],
//! the header lines are written in [`headers`] and [`params`] (their encoded
//! words in [`words`]), the text of an HTML body is made in [`text`], and the
//! bodies are encoded in [`encode`].
//!
//! mail-builder writes the structured headers (Date, From, To, Cc, Subject and
//! the RFC 2231 `filename` of Content-Disposition). The rest is written here
//! because mail-builder cannot do it: its boundaries cannot be seeded (no golden
//! tests), it has no `multipart/related` shape of its own, it will not write the
//! RFC 2047 `name=` that older Outlook and QQ Mail read, and it encodes every
//! attachment from bytes where ours are re-wrapped from the request's base64.

mod encode;
mod headers;
mod params;
mod text;
mod tree;
mod words;

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_builder::headers::Header;
use mail_builder::headers::date::Date;
use mail_builder::{IoWriter, Writer};

use crate::address::Mailbox;
use crate::message::{BodyFormat, Message};

use self::encode::{PreparedBody, base64_len};
use self::headers::{write_mailboxes, write_subject};
use self::tree::Content;

/// Base64 line length (RFC 2045 §6.8).
const LINE: usize = 76;
/// Bytes encoded per step: 800 whole lines, 62 400 bytes once encoded, which
/// fits the 64 KiB buffer of mail-builder's `IoWriter`.
const CHUNK: usize = LINE / 4 * 3 * 800;
/// Longest line of a 7bit body, CRLF excluded (RFC 5322 §2.1.1).
const MAX_7BIT_LINE: usize = 998;
/// Header lines that carry encoded words stay within 76 columns (RFC 2047 §2).
const ENCODED_LINE: usize = 76;

/// How to stamp a message: its Date, the seed of its Message-ID and MIME
/// boundaries, and whether an HTML body gets a plain-text alternative.
///
/// The default takes the current time and a random seed, and adds the text
/// alternative. With [`ComposeOptions::deterministic`] the same message gives
/// the same bytes, for golden tests and for reproducing a fuzz finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComposeOptions {
    date: Option<i64>,
    seed: Option<u64>,
    text_alternative: bool,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            date: None,
            seed: None,
            text_alternative: true,
        }
    }
}

impl ComposeOptions {
    /// Current time, random seed, text alternative.
    pub fn new() -> Self {
        ComposeOptions::default()
    }

    /// A fixed Date (seconds since the Unix epoch, written in UTC) and a fixed seed.
    pub fn deterministic(seed: u64, unix_time: i64) -> Self {
        ComposeOptions {
            date: Some(unix_time),
            seed: Some(seed),
            ..ComposeOptions::default()
        }
    }

    /// Whether an HTML body is sent as `multipart/alternative` with a
    /// plain-text version made from it (on by default): HTML-only mail is
    /// penalised by spam filters and unreadable in text clients.
    #[must_use]
    pub fn with_text_alternative(mut self, on: bool) -> Self {
        self.text_alternative = on;
        self
    }

    /// Fixes the Date only.
    #[must_use]
    pub fn with_date(mut self, unix_time: i64) -> Self {
        self.date = Some(unix_time);
        self
    }

    /// Fixes the seed only.
    #[must_use]
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
        // The text alternative of an HTML body, its part headers and the
        // multipart/alternative around both.
        let alternative = match self.body.format {
            BodyFormat::Html => 512 + base64_len(text::max_len(text.len())),
            BodyFormat::Text => 0,
        };
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
        headers + body + alternative + attachments
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
        let text = match self.body.format {
            BodyFormat::Html if options.text_alternative => text::text_alternative(&self.body.text),
            _ => None,
        };
        let content = Content {
            format: self.body.format,
            body: PreparedBody::new(&self.body.text),
            text: text.as_deref().map(PreparedBody::new),
        };

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

        self.write_tree(w, &mut rng, &content);
        message_id
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
