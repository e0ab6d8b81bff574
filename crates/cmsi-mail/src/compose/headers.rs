//! The structured header lines: From, To, Cc and Subject, through mail-builder
//! when they are plain ASCII, else as our own encoded words ([`super::words`]).

use encodify::rfc2047;
use mail_builder::Writer;
use mail_builder::headers::Header;
use mail_builder::headers::address::Address;
use mail_builder::headers::text::Text;

use crate::address::{Mailbox, looks_encoded};

use super::ENCODED_LINE;
use super::words::{Words, write_words};

fn address(mailbox: &Mailbox) -> Address<'_> {
    Address::new_address(mailbox.name(), mailbox.address())
}

/// Text that is written as encoded words here: non-ASCII text (whose "B"
/// words must end unpadded, which mail-builder's do not), and text a reader
/// would take for an encoded word, which must be encoded itself (RFC 2047 §5)
/// and which mail-builder writes as it is.
fn needs_words(text: &str) -> bool {
    !text.is_ascii() || looks_encoded(text)
}

pub(super) fn write_subject<W: Writer>(w: &mut W, subject: &str) {
    w.write(b"Subject: ");
    if needs_words(subject) {
        let words = Words::Shorter(rfc2047::Q_TEXT);
        write_words(w, subject, "Subject: ".len(), ENCODED_LINE, words);
        w.write(b"\r\n");
    } else {
        Text::new(subject).write_header(w, "Subject: ".len());
    }
}

pub(super) fn write_mailboxes<W: Writer>(w: &mut W, name: &[u8], mailboxes: &[Mailbox]) {
    w.write(name);
    if !mailboxes
        .iter()
        .any(|mailbox| mailbox.name().is_some_and(needs_words))
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
            let words = Words::Shorter(rfc2047::Q_PHRASE);
            column = write_words(w, display, column, ENCODED_LINE, words);
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
