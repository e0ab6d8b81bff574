//! The validated message: what validation builds and composition reads. Nothing
//! in it is an unchecked string; only [`crate::Validator`] builds one.

use std::borrow::Cow;

use encodify::base64;

use crate::address::{Envelope, Mailbox};

/// A validated message: nothing in it is an unchecked string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub(crate) sender: Mailbox,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) cc: Vec<Mailbox>,
    pub(crate) subject: String,
    pub(crate) body: Body<'a>,
    pub(crate) attachments: Vec<Attachment<'a>>,
}

/// The body text and how it is meant to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body<'a> {
    pub(crate) format: BodyFormat,
    pub(crate) text: Cow<'a, str>,
}

/// `body_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `text/html` (the default).
    Html,
    /// `text/plain`.
    Text,
}

/// Whether a part is shown in the body or offered as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Shown in the body; an HTML body refers to it by `cid:`.
    Inline,
    /// Offered as a file.
    Attachment,
}

/// A validated attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment<'a> {
    pub(crate) filename: String,
    pub(crate) content_type: mime::Mime,
    pub(crate) disposition: Disposition,
    pub(crate) content_id: Option<String>,
    pub(crate) data: Data<'a>,
}

/// Attachment bytes: kept as the canonical base64 the request gave (written out
/// re-wrapped, never decoded), or as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Data<'a> {
    /// Canonical standard base64 without white space; `len` is the decoded length.
    Base64 { text: Cow<'a, str>, len: usize },
    /// Raw bytes.
    Bytes(Vec<u8>),
}

impl<'a> Message<'a> {
    /// The From mailbox.
    pub fn sender(&self) -> &Mailbox {
        &self.sender
    }

    /// The To mailboxes; never empty.
    pub fn to(&self) -> &[Mailbox] {
        &self.to
    }

    /// The Cc mailboxes.
    pub fn cc(&self) -> &[Mailbox] {
        &self.cc
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The body text, decoded if it came as base64.
    pub fn body(&self) -> &str {
        &self.body.text
    }

    /// How the body is meant to be read.
    pub fn body_format(&self) -> BodyFormat {
        self.body.format
    }

    /// The attachments, in request order.
    pub fn attachments(&self) -> &[Attachment<'a>] {
        &self.attachments
    }

    /// The SMTP envelope: MAIL FROM the sender, RCPT TO every To and Cc address.
    pub fn envelope(&self) -> Envelope {
        Envelope::of_message(&self.sender, self.to.iter().chain(&self.cc))
    }

    /// Detaches the message from the request buffer it borrows from.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            sender: self.sender,
            to: self.to,
            cc: self.cc,
            subject: self.subject,
            body: Body {
                format: self.body.format,
                text: Cow::Owned(self.body.text.into_owned()),
            },
            attachments: self
                .attachments
                .into_iter()
                .map(Attachment::into_owned)
                .collect(),
        }
    }
}

impl<'a> Attachment<'a> {
    /// The file name shown to the reader.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// The MIME type.
    pub fn content_type(&self) -> &mime::Mime {
        &self.content_type
    }

    /// Inline or attachment.
    pub fn disposition(&self) -> Disposition {
        self.disposition
    }

    /// The Content-ID without angle brackets; always present on inline parts.
    pub fn content_id(&self) -> Option<&str> {
        self.content_id.as_deref()
    }

    /// Size of the file in octets.
    pub fn len(&self) -> usize {
        match &self.data {
            Data::Base64 { len, .. } => *len,
            Data::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file's bytes (decoded on each call when the request gave base64).
    pub fn bytes(&self) -> Cow<'_, [u8]> {
        match &self.data {
            Data::Base64 { text, .. } => {
                Cow::Owned(base64::STANDARD.decode(text.as_bytes()).unwrap_or_default())
            }
            Data::Bytes(bytes) => Cow::Borrowed(bytes),
        }
    }

    fn into_owned(self) -> Attachment<'static> {
        Attachment {
            filename: self.filename,
            content_type: self.content_type,
            disposition: self.disposition,
            content_id: self.content_id,
            data: match self.data {
                Data::Base64 { text, len } => Data::Base64 {
                    text: Cow::Owned(text.into_owned()),
                    len,
                },
                Data::Bytes(bytes) => Data::Bytes(bytes),
            },
        }
    }
}

impl Data<'_> {
    /// The first `n` bytes (fewer if the file is shorter), decoding only what
    /// that takes.
    pub(crate) fn prefix(&self, n: usize) -> Cow<'_, [u8]> {
        match self {
            Data::Base64 { text, .. } => {
                let symbols = n.div_ceil(3) * 4;
                let head = text.as_bytes().get(..symbols).unwrap_or(text.as_bytes());
                let mut bytes = base64::STANDARD.decode(head).unwrap_or_default();
                bytes.truncate(n);
                Cow::Owned(bytes)
            }
            Data::Bytes(bytes) => Cow::Borrowed(bytes.get(..n).unwrap_or(bytes)),
        }
    }
}
