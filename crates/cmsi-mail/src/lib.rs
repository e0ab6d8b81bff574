//! Turns a BlueKing CMSI `send_mail` request into a correct RFC 5322 message.
//!
//! Depend on this crate to compose mail the way the ESB endpoint does, and on
//! one transport crate (`cmsi-mail-smtp`, `cmsi-mail-ses`, `cmsi-mail-file`) to
//! deliver it. This crate does no network or file I/O and needs no runtime.
//!
//! Data flows one way:
//!
//! 1. [`SendMailRequest`]: the JSON request, read leniently (the ESB's string
//!    and array forms), large strings borrowed from the input;
//! 2. [`Validator::validate`]: every rule of the API checked, usernames resolved
//!    through a [`UserDirectory`], giving a [`Message`] with no unchecked string
//!    left in it, or a [`RequestError`] that names the field;
//! 3. [`Message::compose`] or [`Message::write_to`]: 7-bit, CRLF bytes, with the
//!    `multipart/related` tree that makes `<img src="cid:…">` display;
//! 4. [`Transport::send`] with the message's [`Envelope`]; or all of it at once
//!    through [`Mailer`], which also gives the ESB response.
//!
//! ```
//! use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};
//!
//! let json = r#"{"receiver": "张三 <zhangsan@example.com>", "title": "周报",
//!                 "content": "<p>见附件</p>"}"#;
//! let request = SendMailRequest::from_json(json.as_bytes())?;
//! let directory = StaticDirectory::new();
//! let sender = Mailbox::parse("noreply@example.com")?;
//! let validated = Validator::new(sender, &directory).validate(request)?;
//! let composed = validated.message.compose(&ComposeOptions::deterministic(1, 0));
//! assert!(composed.bytes.starts_with(b"Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod compose;
mod directory;
mod error;
mod mailer;
mod message;
mod request;
mod sniff;
mod transport;

pub use address::{AddressError, Mailbox, split_address_list, split_username_list};
pub use compose::{ComposeOptions, Composed};
pub use directory::{DirectoryError, LoadError, StaticDirectory, UserDirectory};
pub use error::{CODE_BACKEND_FAILED, CODE_BAD_REQUEST, CODE_OK, Error, Problem, RequestError};
pub use mailer::{EsbResponse, Mailer, Prepared, Sent};
pub use message::{
    Attachment, Body, BodyFormat, Disposition, Limits, Message, UsernameCheck, Validated, Validator,
};
pub use request::{AttachmentRequest, MAX_ATTACHMENT_ENTRIES, MAX_LIST_ENTRIES, SendMailRequest};
pub use transport::{Envelope, Receipt, Rejection, Transport, TransportError, TransportErrorKind};

/// Re-exported so that callers can name attachment types.
pub use mime;
