#![doc = include_str!("../README.md")]
//!
//! ## The flow
//!
//! Data flows one way:
//!
//! 1. [`SendMailRequest`]: the JSON request, read leniently (the ESB's string
//!    and array forms), large strings borrowed from the input;
//! 2. [`Validator::validate`]: every rule of the API checked, usernames resolved
//!    through a [`UserDirectory`], giving a [`Message`] with no unchecked string
//!    left in it, or a [`ValidationError`]: a [`RequestError`] that names the
//!    field, or the directory's failure;
//! 3. [`Message::compose`] or [`Message::write_to`]: 7-bit, CRLF bytes, with the
//!    `multipart/related` tree that makes `<img src="cid:…">` display and the
//!    plain-text alternative of an HTML body; then, with feature `dkim`, a
//!    DKIM signature (`DkimSigner`, applied by [`Mailer::prepare`]);
//! 4. [`Transport::send`] with the message's [`Envelope`] (a [`Receipt`] or a
//!    [`TransportError`]; transports retry by one [`RetryPolicy`]); or all of
//!    it at once through [`Mailer`].
//!
//! [`EsbResponse`] is the ESB's view of any outcome, and [`Error`] the umbrella
//! of steps 2 and 4; `esb.rs` is the one place that maps outcomes to codes.
//!
//! Where the code lives: `request.rs` (1), `validate/` (2, with `base64.rs`,
//! `content_id.rs` and `content_type.rs`), `message.rs` (the validated model),
//! `compose/` (3: `tree.rs`, `headers.rs`, `params.rs`, `words.rs`, `text.rs`,
//! `encode.rs`), `dkim/` (3, feature `dkim`: `canonical.rs`, `key.rs`), `transport.rs` and `retry.rs`
//! (4), `address/` (mailboxes, the ESB's list fields, the envelope),
//! `directory.rs`, `mailer.rs`, `esb.rs`.

mod address;
mod compose;
mod directory;
#[cfg(feature = "dkim")]
mod dkim;
mod error;
mod esb;
mod json;
mod mailer;
mod message;
mod request;
mod retry;
mod transport;
mod validate;

pub use address::{AddressError, Envelope, Mailbox, split_address_list, split_username_list};
pub use compose::{ComposeOptions, Composed};
#[cfg(feature = "toml")]
pub use directory::LoadError;
pub use directory::{DirectoryError, StaticDirectory, UserDirectory};
#[cfg(feature = "dkim")]
pub use dkim::{DEFAULT_SIGNED_HEADERS, DkimError, DkimSigner};
pub use error::{Problem, RequestError};
pub use esb::{
    CODE_BACKEND_FAILED, CODE_BAD_REQUEST, CODE_OK, CODE_RATE_LIMITED, Error, EsbResponse,
};
pub use mailer::{Mailer, Prepared, Sent};
pub use message::{Attachment, BodyFormat, Disposition, Message};
pub use request::{AttachmentRequest, MAX_ATTACHMENT_ENTRIES, MAX_LIST_ENTRIES, SendMailRequest};
pub use retry::RetryPolicy;
pub use transport::{Receipt, Rejection, Transport, TransportError, TransportErrorKind};
pub use validate::{Limits, UsernameCheck, Validated, ValidationError, Validator};

/// Re-exported so that callers can name attachment types.
pub use mime;
