//! What can be wrong with a request: the field, and the problem with it.

use std::fmt;

use crate::address::AddressError;

/// A request field that breaks a rule: which field, and what is wrong with it.
///
/// `Display` gives one line such as
/// `attachments[1].content: not valid base64 (bad character '!' at offset 12)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct RequestError {
    field: String,
    problem: Problem,
}

impl RequestError {
    /// A problem with `field` (a path such as `attachments[0].content`, or
    /// `request` for the request as a whole).
    pub fn new(field: impl Into<String>, problem: Problem) -> Self {
        RequestError {
            field: field.into(),
            problem,
        }
    }

    /// The field at fault, as a path into the request: `title`, `receiver`,
    /// `attachments[2].filename`; `request` when the whole body is unreadable.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong with the field.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

/// What is wrong with a request field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A required field is absent.
    #[error("is required")]
    Missing,
    /// A required field is present but empty (or only white space).
    #[error("must not be empty")]
    Empty,
    /// CR or LF where a header value is built from the field.
    #[error("must not contain a line break")]
    LineBreak,
    /// A NUL character.
    #[error("must not contain a NUL character")]
    Nul,
    /// `=?` in a value written into a header as it is, where a reader would
    /// decode it as an RFC 2047 encoded word.
    #[error("must not contain \"=?\": mail readers would decode it as an encoded word")]
    EncodedWord,
    /// A control character that has no place in the field.
    #[error("must not contain control characters")]
    Control,
    /// An entry that is not a valid mailbox.
    #[error("{entry:?} is not a valid address: {reason}")]
    Address {
        /// The entry as given.
        entry: String,
        /// Why it is not valid.
        reason: AddressError,
    },
    /// Content that is not standard base64.
    #[error("is not valid base64: {0}")]
    Base64(String),
    /// Base64 content that does not decode to UTF-8 text.
    #[error("decoded content is not valid UTF-8 text")]
    NotUtf8,
    /// A value outside the field's closed set.
    #[error("{value:?} is not one of {expected}")]
    NotOneOf {
        /// The value as given.
        value: String,
        /// The accepted values, for the message.
        expected: &'static str,
    },
    /// An attachment type that is neither a suffix, `image`, nor a MIME type.
    #[error("{0:?} is not a file suffix, \"image\" or a MIME type such as application/pdf")]
    Type(String),
    /// A Content-ID with characters a msg-id cannot hold.
    #[error(
        "{0:?} is not a valid Content-ID (printable ASCII without spaces, quotes, angle brackets or parentheses)"
    )]
    ContentId(String),
    /// Two parts would carry the same Content-ID.
    #[error("Content-ID <{id}> is already used by attachments[{other}]")]
    DuplicateContentId {
        /// The Content-ID, without angle brackets.
        id: String,
        /// Index of the attachment that has it first.
        other: usize,
    },
    /// A value longer than the limit.
    #[error("is too long ({len} {unit}; the limit is {max})")]
    TooLong {
        /// The length found.
        len: usize,
        /// The limit.
        max: usize,
        /// What is counted.
        unit: &'static str,
    },
    /// None of the usernames resolved to a mailbox.
    #[error("none of the usernames is known: {}", .0.join(", "))]
    UnknownUsernames(Vec<String>),
    /// Neither the address field nor the username field gave a recipient.
    #[error("no recipient: give {0} or {0}__username")]
    NoRecipient(&'static str),
    /// The value has the wrong JSON type or is not JSON at all.
    #[error("{0}")]
    Malformed(String),
    /// A `msg_type` that names no message type.
    #[error("{value:?} is not a message type: use one of {known}")]
    UnknownMessageType {
        /// The type as given.
        value: String,
        /// The types there are, for the message.
        known: String,
    },
    /// A `msg_type` the ESB knows, for which this server has no channel.
    #[error("{value:?} is not configured on this server: it sends {configured}")]
    NotConfigured {
        /// The type as given.
        value: String,
        /// The types it does send, for the message.
        configured: String,
    },
}

/// Path of a field inside an attachment, e.g. `attachments[3].content`.
pub(crate) struct AttachmentField(pub(crate) usize, pub(crate) &'static str);

impl fmt::Display for AttachmentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attachments[{}].{}", self.0, self.1)
    }
}

impl From<AttachmentField> for String {
    fn from(field: AttachmentField) -> String {
        field.to_string()
    }
}
