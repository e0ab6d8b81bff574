//! The structured header lines: From, To, Cc and Subject, through mail-builder
//! unless the text looks like an encoded word.

use encodify::{Fold, rfc2047};
use mail_builder::Writer;
use mail_builder::headers::Header;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;

use crate::address::{Mailbox, looks_encoded};

use super::ENCODED_LINE;

fn address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(mailbox.name(), mailbox.address())
}

/// Text a reader would take for an RFC 2047 encoded word must be encoded itself
/// (RFC 2047 §5); mail-builder writes such text as it is, so those headers are
/// written here.
pub(super) fn write_subject<W: Writer>(w: &mut W, subject: &str) {
    w.write(b"Subject: ");
    if looks_encoded(subject) {
        write_words(w, subject, "Subject: ".len(), rfc2047::Q_TEXT);
        w.write(b"\r\n");
    } else {
        Text::new(subject).write_header(w, "Subject: ".len());
    }
}

pub(super) fn write_mailboxes<W: Writer>(w: &mut W, name: &[u8], mailboxes: &[Mailbox]) {
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
