//! Validation: a [`SendMailRequest`] becomes a [`Message`] in which every address
//! is parsed and every header value checked.

use std::borrow::Cow;
use std::collections::HashSet;

use encodify::base64;
use serde::Serialize;

use crate::address::{
    LineFault, Mailbox, is_atext, line_fault, looks_encoded, split_address_list,
    split_username_list,
};
use crate::directory::UserDirectory;
use crate::error::{AttachmentField, Error, Problem, RequestError};
use crate::request::{AttachmentRequest, MAX_LIST_ENTRIES, SendMailRequest};
use crate::sniff::sniff_image;
use crate::transport::Envelope;

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

/// Longest `type` of an attachment.
const MAX_TYPE: usize = 255;

/// Longest Content-ID, so that its header line stays far below 998 octets.
const MAX_CONTENT_ID: usize = 900;

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
pub struct Body<'a> {
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
    pub fn validate<'a>(&self, request: SendMailRequest<'a>) -> Result<Validated<'a>, Error> {
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

        let attachments = self.attachments(request.attachments)?;
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
        let title = title.trim().to_owned();
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
    ) -> Result<Vec<Mailbox>, Error> {
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
            None if disposition == Disposition::Inline => {
                let id = default_content_id(&filename);
                if id.len() > MAX_CONTENT_ID {
                    return Err(RequestError::new(
                        field("content_id"),
                        Problem::TooLong {
                            len: id.len(),
                            max: MAX_CONTENT_ID,
                            unit: "octets as the default Content-ID made from the filename; give a shorter content_id",
                        },
                    ));
                }
                Some(id)
            }
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

fn has_white_space(text: &str) -> bool {
    text.bytes().any(|byte| byte.is_ascii_whitespace())
}

/// Decodes standard base64, tolerating line breaks and other white space.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, Problem> {
    let stripped: Cow<'_, str> = if has_white_space(text) {
        Cow::Owned(text.split_ascii_whitespace().collect())
    } else {
        Cow::Borrowed(text)
    };
    base64::STANDARD
        .decode(stripped.as_bytes())
        .map_err(|error| base64_problem(error, stripped.as_bytes()))
}

fn base64_problem(error: encodify::Error, input: &[u8]) -> Problem {
    let detail = match error {
        encodify::Error::InvalidByte { offset, byte } => {
            format!("character {:?} at offset {offset}", char::from(byte))
        }
        encodify::Error::InvalidPadding { offset } if offset < input.len() => {
            format!("misplaced '=' at offset {offset}")
        }
        encodify::Error::Truncated { .. } | encodify::Error::InvalidPadding { .. } => format!(
            "its length without white space ({}) is not a multiple of 4",
            input.len()
        ),
        encodify::Error::NonCanonical { .. } => {
            "the last character has bits set that encode nothing".to_owned()
        }
        other => format!("{other:?}"),
    };
    Problem::Base64(detail)
}

/// Attachment content: canonical base64 is kept as text (the fast path writes
/// it re-wrapped, never decoded); base64 with line breaks or other white space
/// is decoded.
fn attachment_data(content: Cow<'_, str>) -> Result<Data<'_>, Problem> {
    // Validating first costs nothing extra in the common case and spares a
    // byte-by-byte search for white space in a large attachment.
    match validate_base64(content.as_bytes()) {
        Ok(len) => Ok(Data::Base64 { text: content, len }),
        Err(_) if has_white_space(&content) => decode_base64(&content).map(Data::Bytes),
        Err(problem) => Err(problem),
    }
}

/// Checks that `text` is canonical standard base64 and returns its decoded length,
/// decoding in pieces small enough to stay in cache and never keeping the bytes.
fn validate_base64(text: &[u8]) -> Result<usize, Problem> {
    const PIECE: usize = 64 * 1024;
    let mut scratch = Vec::with_capacity(PIECE / 4 * 3);
    let mut len = 0;
    let pieces = text.len().div_ceil(PIECE);
    for (index, piece) in text.chunks(PIECE).enumerate() {
        scratch.clear();
        let decoded = base64::STANDARD
            .decode_append(piece, &mut scratch)
            .map_err(|error| base64_problem(error.shifted_by(index * PIECE), text))?;
        // Each piece decodes on its own, so padding that ends a piece would
        // pass: only the last piece may end in `=`.
        if index + 1 < pieces && decoded != piece.len() / 4 * 3 {
            let at = memchr::memchr(b'=', piece).unwrap_or(0) + index * PIECE;
            return Err(Problem::Base64(format!("misplaced '=' at offset {at}")));
        }
        len += decoded;
    }
    Ok(len)
}

trait ShiftOffset {
    fn shifted_by(self, by: usize) -> Self;
}

impl ShiftOffset for encodify::Error {
    fn shifted_by(self, by: usize) -> Self {
        match self {
            encodify::Error::InvalidByte { offset, byte } => encodify::Error::InvalidByte {
                offset: offset + by,
                byte,
            },
            encodify::Error::InvalidPadding { offset } => encodify::Error::InvalidPadding {
                offset: offset + by,
            },
            other => other,
        }
    }
}

/// The MIME type of an attachment: from `type` (suffix, `image`, or a MIME
/// type), else from the filename's suffix, else `application/octet-stream`.
fn content_type(
    given: Option<&str>,
    filename: &str,
    data: &Data<'_>,
) -> Result<mime::Mime, Problem> {
    let by_name = || suffix_type(filename.rsplit_once('.').map(|(_, suffix)| suffix));
    let Some(given) = given else {
        return Ok(by_name());
    };
    // RFC 6838 caps type and subtype at 127 characters each; parameters come
    // on top. Longer values would also break the 998-octet line limit.
    if given.len() > MAX_TYPE {
        return Err(Problem::TooLong {
            len: given.len(),
            max: MAX_TYPE,
            unit: "characters",
        });
    }
    // Printable ASCII only: mime accepts other bytes in quoted parameters, and
    // they would break 7-bit output.
    if !given.bytes().all(|byte| (0x20..0x7f).contains(&byte)) {
        return Err(Problem::Type(given.to_owned()));
    }
    // Parameters are written as given.
    if let Some(problem) = raw_header_problem(given) {
        return Err(problem);
    }
    if given.eq_ignore_ascii_case("image") {
        let sniffed = sniff_image(&data.prefix(16));
        return Ok(sniffed.unwrap_or_else(|| {
            let named = by_name();
            if named.type_() == mime::IMAGE {
                named
            } else {
                mime::APPLICATION_OCTET_STREAM
            }
        }));
    }
    if given.contains('/') {
        let parsed: mime::Mime = given.parse().map_err(|_| Problem::Type(given.to_owned()))?;
        if parsed.type_() == mime::MULTIPART || parsed.type_() == mime::MESSAGE {
            // RFC 2046 forbids base64 for these; attachments are always base64.
            return Err(Problem::NotOneOf {
                value: given.to_owned(),
                expected: "a leaf type (multipart/* and message/* cannot be attached)",
            });
        }
        return Ok(parsed);
    }
    let suffix = given.trim_start_matches('.');
    if suffix.is_empty()
        || !suffix
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'+' | b'_'))
    {
        return Err(Problem::Type(given.to_owned()));
    }
    Ok(suffix_type(Some(suffix)))
}

fn suffix_type(suffix: Option<&str>) -> mime::Mime {
    let guessed = suffix.and_then(|suffix| mime_guess::from_ext(suffix).first());
    match guessed {
        // An .eml file is message/rfc822, which may not be base64 (RFC 2046
        // §5.2.1); it travels as an opaque file and keeps its name.
        Some(found) if found.type_() == mime::MULTIPART || found.type_() == mime::MESSAGE => {
            mime::APPLICATION_OCTET_STREAM
        }
        Some(found) => found,
        None => mime::APPLICATION_OCTET_STREAM,
    }
}

/// What a default Content-ID holds unescaped: RFC 5322 `atext` and `.` and
/// `@`, but not `%`, which escapes everything else.
fn is_content_id_char(byte: u8) -> bool {
    (is_atext(byte) && byte != b'%') || byte == b'.' || byte == b'@'
}

fn explicit_content_id(given: &str) -> Result<String, Problem> {
    let id = given
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(given);
    if let Some(problem) = raw_header_problem(id) {
        return Err(problem);
    }
    if id.is_empty()
        || !id
            .bytes()
            .all(|byte| is_content_id_char(byte) || byte == b'%')
    {
        return Err(Problem::ContentId(given.to_owned()));
    }
    if id.len() > MAX_CONTENT_ID {
        return Err(Problem::TooLong {
            len: id.len(),
            max: MAX_CONTENT_ID,
            unit: "octets",
        });
    }
    Ok(id.to_owned())
}

/// `<filename>` as the API documents it; bytes a msg-id cannot hold (spaces,
/// non-ASCII) are percent-encoded, which is also how such a name appears in a
/// `cid:` URL (RFC 2392).
fn default_content_id(filename: &str) -> String {
    let mut id = String::with_capacity(filename.len());
    for byte in filename.bytes() {
        // `?` is escaped too, so that no `=?` (an encoded-word look-alike) is left.
        if is_content_id_char(byte) && byte != b'?' {
            id.push(char::from(byte));
        } else {
            id.push_str(encodify::hex::PERCENT.encode_byte(byte));
        }
    }
    id
}

/// Drops repeated addresses (compared without regard to case, the first kept)
/// and Cc addresses that are already in To.
fn dedupe(to: Vec<Mailbox>, cc: Vec<Mailbox>) -> (Vec<Mailbox>, Vec<Mailbox>) {
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

#[cfg(test)]
mod tests;
