//! Validation, step 2 of the flow: a [`SendMailRequest`] becomes a [`Message`]
//! in which every address is parsed and every header value checked, or a
//! [`ValidationError`] that says what is wrong.

mod base64;
mod content_id;
mod content_type;

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Serialize;

use crate::address::{
    LineFault, Mailbox, line_fault, looks_encoded, split_address_list, split_username_list,
};
use crate::directory::{DirectoryError, UserDirectory};
use crate::error::{AttachmentField, Problem, RequestError};
use crate::message::{Attachment, Body, BodyFormat, Disposition, Message};
use crate::request::{AttachmentRequest, MAX_LIST_ENTRIES, SendMailRequest};

use self::base64::{attachment_data, decode_base64};
use self::content_id::{
    MAX_CONTENT_ID, assign_generated, explicit_content_id, filename_content_id, rewrite_references,
};
use self::content_type::content_type;

/// Bounds on what one request may ask for.
///
/// The defaults suit a mail relay: SES refuses raw messages over 40 MB, and
/// most SMTP servers refuse far less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest `title`, in characters.
    pub max_title_chars: usize,
    /// Most recipients, To and Cc together, after removing duplicates.
    pub max_recipients: usize,
    /// Most attachments.
    pub max_attachments: usize,
    /// Longest attachment file name, in characters.
    pub max_filename_chars: usize,
    /// Largest composed message, in octets, as estimated before composing.
    pub max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_title_chars: 2_000,
            max_recipients: 1_000,
            max_attachments: 100,
            max_filename_chars: 255,
            max_message_bytes: 40_000_000,
        }
    }
}

/// Longest address or username field, all its strings together: room for
/// [`MAX_LIST_ENTRIES`] ordinary entries.
const MAX_LIST_BYTES: usize = 1024 * 1024;

/// Why a request did not become a message: the request breaks a rule, or the
/// user directory could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The request itself is wrong; the caller must change it.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The user directory could not answer.
    #[error("user directory: {0}")]
    Directory(#[from] DirectoryError),
}

/// Turns requests into messages: checks every rule of the API, resolves
/// usernames through a [`UserDirectory`], and fills in the defaults.
pub struct Validator<'d> {
    default_sender: Mailbox,
    directory: &'d dyn UserDirectory,
    limits: Limits,
}

/// A message ready to compose, and what became of the usernames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated<'a> {
    /// The message.
    pub message: Message<'a>,
    /// Usernames that the directory did not know.
    pub username_check: UsernameCheck,
}

/// Usernames that did not resolve, reported as the ESB does
/// (`data.username_check.invalid`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UsernameCheck {
    /// The unknown usernames, in request order.
    pub invalid: Vec<String>,
}

/// The directory is not shown (a `dyn UserDirectory` need not be `Debug`).
impl std::fmt::Debug for Validator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("default_sender", &self.default_sender)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl<'d> Validator<'d> {
    /// A validator that uses `default_sender` when a request names none and
    /// resolves usernames through `directory`.
    pub fn new(default_sender: Mailbox, directory: &'d dyn UserDirectory) -> Self {
        Validator {
            default_sender,
            directory,
            limits: Limits::default(),
        }
    }

    /// Replaces the limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The sender used when a request names none.
    pub fn default_sender(&self) -> &Mailbox {
        &self.default_sender
    }

    /// Checks every rule of the API and builds the message. Nothing is sent or
    /// written; the first broken rule is returned, naming its field.
    pub fn validate<'a>(
        &self,
        request: SendMailRequest<'a>,
    ) -> Result<Validated<'a>, ValidationError> {
        let subject = self.title(request.title)?;
        let format = body_format(request.body_format.as_deref())?;
        let text = body_text(request.content, request.is_content_base64.unwrap_or(false))?;
        let sender = match non_blank(request.sender.as_deref()) {
            Some(sender) => parse_mailbox("sender", sender)?,
            None => self.default_sender.clone(),
        };

        let mut username_check = UsernameCheck::default();
        let to = self.recipients(
            Recipients {
                field: "receiver",
                username_field: "receiver__username",
                addresses: &request.receiver,
                usernames: &request.receiver_username,
                all_unknown_is_error: true,
            },
            &mut username_check,
        )?;
        let cc = self.recipients(
            Recipients {
                field: "cc",
                username_field: "cc__username",
                addresses: &request.cc,
                usernames: &request.cc_username,
                // Cc is optional: unknown Cc users are reported, the mail still goes.
                all_unknown_is_error: false,
            },
            &mut username_check,
        )?;
        let (to, cc) = dedupe(to, cc);
        if to.is_empty() {
            return Err(RequestError::new("receiver", Problem::NoRecipient("receiver")).into());
        }
        let recipients = to.len() + cc.len();
        if recipients > self.limits.max_recipients {
            return Err(RequestError::new(
                "receiver",
                Problem::TooLong {
                    len: recipients,
                    max: self.limits.max_recipients,
                    unit: "recipients",
                },
            )
            .into());
        }

        let mut attachments = self.attachments(request.attachments)?;
        let renamed = assign_generated(&mut attachments);
        let text = match format {
            BodyFormat::Html => rewrite_references(text, &renamed),
            BodyFormat::Text => text,
        };
        let message = Message {
            sender,
            to,
            cc,
            subject,
            body: Body { format, text },
            attachments,
        };
        let estimate = message.estimated_len();
        if estimate > self.limits.max_message_bytes {
            let field = if message.attachments.is_empty() {
                "content"
            } else {
                "attachments"
            };
            return Err(RequestError::new(
                field,
                Problem::TooLong {
                    len: estimate,
                    max: self.limits.max_message_bytes,
                    unit: "octets once encoded",
                },
            )
            .into());
        }
        Ok(Validated {
            message,
            username_check,
        })
    }

    fn title(&self, title: Option<String>) -> Result<String, RequestError> {
        let title = title.ok_or_else(|| RequestError::new("title", Problem::Missing))?;
        if title.trim().is_empty() {
            return Err(RequestError::new("title", Problem::Empty));
        }
        check_header_text("title", &title)?;
        // Parsers drop white space around an unstructured header value, so the
        // subject is the trimmed title.
        let title = if title.trim().len() == title.len() {
            title
        } else {
            title.trim().to_owned()
        };
        let len = title.chars().count();
        if len > self.limits.max_title_chars {
            return Err(RequestError::new(
                "title",
                Problem::TooLong {
                    len,
                    max: self.limits.max_title_chars,
                    unit: "characters",
                },
            ));
        }
        Ok(title)
    }

    fn recipients(
        &self,
        spec: Recipients<'_>,
        check: &mut UsernameCheck,
    ) -> Result<Vec<Mailbox>, ValidationError> {
        // Bounded before splitting, so that no field makes validation hold many
        // times its size in entries (each a few words of memory).
        for (field, texts) in [
            (spec.field, spec.addresses),
            (spec.username_field, spec.usernames),
        ] {
            let len: usize = texts.iter().map(String::len).sum();
            if len > MAX_LIST_BYTES {
                return Err(RequestError::new(
                    field,
                    Problem::TooLong {
                        len,
                        max: MAX_LIST_BYTES,
                        unit: "octets",
                    },
                )
                .into());
            }
        }
        let entries: Vec<&str> = spec
            .addresses
            .iter()
            .flat_map(|field| split_address_list(field))
            .collect();
        let too_many = |field: &'static str, len: usize| {
            RequestError::new(
                field,
                Problem::TooLong {
                    len,
                    max: MAX_LIST_ENTRIES,
                    unit: "entries",
                },
            )
        };
        if entries.len() > MAX_LIST_ENTRIES {
            return Err(too_many(spec.field, entries.len()).into());
        }
        if !entries.is_empty() {
            return Ok(entries
                .into_iter()
                .map(|entry| parse_mailbox(spec.field, entry))
                .collect::<Result<_, _>>()?);
        }

        let count = spec
            .usernames
            .iter()
            .flat_map(|field| split_username_list(field))
            .count();
        if count > MAX_LIST_ENTRIES {
            return Err(too_many(spec.username_field, count).into());
        }
        let mut resolved = Vec::new();
        let mut unknown = Vec::new();
        for username in spec
            .usernames
            .iter()
            .flat_map(|field| split_username_list(field))
        {
            match self.directory.lookup(username)? {
                Some(mailbox) => resolved.push(mailbox),
                None => unknown.push(username.to_owned()),
            }
        }
        if resolved.is_empty() && !unknown.is_empty() && spec.all_unknown_is_error {
            return Err(
                RequestError::new(spec.username_field, Problem::UnknownUsernames(unknown)).into(),
            );
        }
        check.invalid.extend(unknown);
        Ok(resolved)
    }

    fn attachments<'a>(
        &self,
        requests: Vec<AttachmentRequest<'a>>,
    ) -> Result<Vec<Attachment<'a>>, RequestError> {
        if requests.len() > self.limits.max_attachments {
            return Err(RequestError::new(
                "attachments",
                Problem::TooLong {
                    len: requests.len(),
                    max: self.limits.max_attachments,
                    unit: "attachments",
                },
            ));
        }
        let mut attachments: Vec<Attachment<'a>> = Vec::with_capacity(requests.len());
        let mut content_ids: Vec<(String, usize)> = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            let attachment = self.attachment(index, request)?;
            if let Some(id) = &attachment.content_id {
                if let Some((_, other)) = content_ids.iter().find(|(seen, _)| seen == id) {
                    return Err(RequestError::new(
                        AttachmentField(index, "content_id"),
                        Problem::DuplicateContentId {
                            id: id.clone(),
                            other: *other,
                        },
                    ));
                }
                content_ids.push((id.clone(), index));
            }
            attachments.push(attachment);
        }
        Ok(attachments)
    }

    fn attachment<'a>(
        &self,
        index: usize,
        request: AttachmentRequest<'a>,
    ) -> Result<Attachment<'a>, RequestError> {
        let field = |name| AttachmentField(index, name);

        let filename = request
            .filename
            .ok_or_else(|| RequestError::new(field("filename"), Problem::Missing))?;
        if filename.trim().is_empty() {
            return Err(RequestError::new(field("filename"), Problem::Empty));
        }
        check_header_text(field("filename"), &filename)?;
        if filename.chars().any(char::is_control) {
            return Err(RequestError::new(field("filename"), Problem::Control));
        }
        let len = filename.chars().count();
        if len > self.limits.max_filename_chars {
            return Err(RequestError::new(
                field("filename"),
                Problem::TooLong {
                    len,
                    max: self.limits.max_filename_chars,
                    unit: "characters",
                },
            ));
        }

        let content = request
            .content
            .ok_or_else(|| RequestError::new(field("content"), Problem::Missing))?;
        let data = attachment_data(content)
            .map_err(|problem| RequestError::new(field("content"), problem))?;

        let content_type =
            content_type(non_blank(request.content_type.as_deref()), &filename, &data)
                .map_err(|problem| RequestError::new(field("type"), problem))?;

        let disposition = match non_blank(request.disposition.as_deref()) {
            None if content_type.type_() == mime::IMAGE => Disposition::Inline,
            None => Disposition::Attachment,
            Some(value) if value.eq_ignore_ascii_case("inline") => Disposition::Inline,
            Some(value) if value.eq_ignore_ascii_case("attachment") => Disposition::Attachment,
            Some(value) => {
                return Err(RequestError::new(
                    field("disposition"),
                    Problem::NotOneOf {
                        value: value.to_owned(),
                        expected: "inline or attachment",
                    },
                ));
            }
        };

        let content_id = match non_blank(request.content_id.as_deref()) {
            Some(given) => Some(
                explicit_content_id(given)
                    .map_err(|problem| RequestError::new(field("content_id"), problem))?,
            ),
            // A name that cannot be the Content-ID gets a generated one once
            // every given ID is known (`assign_generated`).
            None if disposition == Disposition::Inline => match filename_content_id(&filename) {
                Some(id) if id.len() > MAX_CONTENT_ID => {
                    return Err(RequestError::new(
                        field("content_id"),
                        Problem::TooLong {
                            len: id.len(),
                            max: MAX_CONTENT_ID,
                            unit: "octets as the default Content-ID made from the filename; give a shorter content_id",
                        },
                    ));
                }
                id => id.map(str::to_owned),
            },
            None => None,
        };

        Ok(Attachment {
            filename,
            content_type,
            disposition,
            content_id,
            data,
        })
    }
}

struct Recipients<'r> {
    field: &'static str,
    username_field: &'static str,
    addresses: &'r [String],
    usernames: &'r [String],
    all_unknown_is_error: bool,
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

fn parse_mailbox(field: &'static str, entry: &str) -> Result<Mailbox, RequestError> {
    Mailbox::parse(entry).map_err(|reason| {
        RequestError::new(
            field,
            Problem::Address {
                entry: entry.to_owned(),
                reason,
            },
        )
    })
}

/// A value that becomes a header: no line breaks, no NUL.
fn check_header_text(field: impl Into<String>, value: &str) -> Result<(), RequestError> {
    match header_problem(value) {
        Some(problem) => Err(RequestError::new(field, problem)),
        None => Ok(()),
    }
}

fn header_problem(value: &str) -> Option<Problem> {
    line_fault(value).map(|fault| match fault {
        LineFault::LineBreak => Problem::LineBreak,
        LineFault::Nul => Problem::Nul,
    })
}

/// The header rule for a value written as it is (not as encoded words): no line
/// break, no NUL, and nothing a reader would decode as an encoded word.
fn raw_header_problem(value: &str) -> Option<Problem> {
    header_problem(value).or_else(|| looks_encoded(value).then_some(Problem::EncodedWord))
}

fn body_format(value: Option<&str>) -> Result<BodyFormat, RequestError> {
    match non_blank(value) {
        None => Ok(BodyFormat::Html),
        Some(value) if value.eq_ignore_ascii_case("html") => Ok(BodyFormat::Html),
        Some(value) if value.eq_ignore_ascii_case("text") => Ok(BodyFormat::Text),
        Some(value) => Err(RequestError::new(
            "body_format",
            Problem::NotOneOf {
                value: value.to_owned(),
                expected: "Html or Text",
            },
        )),
    }
}

fn body_text(content: Option<Cow<'_, str>>, base64: bool) -> Result<Cow<'_, str>, RequestError> {
    let content = content.ok_or_else(|| RequestError::new("content", Problem::Missing))?;
    let text = if base64 {
        let bytes =
            decode_base64(&content).map_err(|problem| RequestError::new("content", problem))?;
        Cow::Owned(
            String::from_utf8(bytes).map_err(|_| RequestError::new("content", Problem::NotUtf8))?,
        )
    } else {
        content
    };
    if text.is_empty() {
        return Err(RequestError::new("content", Problem::Empty));
    }
    Ok(text)
}

/// Drops repeated addresses (compared without regard to case, the first kept)
/// and Cc addresses that are already in To.
fn dedupe(to: Vec<Mailbox>, cc: Vec<Mailbox>) -> (Vec<Mailbox>, Vec<Mailbox>) {
    // A handful of recipients (the usual case) are compared in place, without
    // a lower-cased copy of each address.
    if to.len() + cc.len() <= 16 {
        let same = |a: &Mailbox, b: &Mailbox| a.address().eq_ignore_ascii_case(b.address());
        let mut kept_to: Vec<Mailbox> = Vec::with_capacity(to.len());
        for mailbox in to {
            if !kept_to.iter().any(|kept| same(kept, &mailbox)) {
                kept_to.push(mailbox);
            }
        }
        let mut kept_cc: Vec<Mailbox> = Vec::with_capacity(cc.len());
        for mailbox in cc {
            if !kept_to
                .iter()
                .chain(&kept_cc)
                .any(|kept| same(kept, &mailbox))
            {
                kept_cc.push(mailbox);
            }
        }
        return (kept_to, kept_cc);
    }
    let mut seen = HashSet::with_capacity(to.len() + cc.len());
    let to = to
        .into_iter()
        .filter(|mailbox| seen.insert(mailbox.dedupe_key()))
        .collect();
    let cc = cc
        .into_iter()
        .filter(|mailbox| seen.insert(mailbox.dedupe_key()))
        .collect();
    (to, cc)
}

#[cfg(test)]
mod tests;
