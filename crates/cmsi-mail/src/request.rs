//! The `send_mail` request as the API receives it, lenient about the ESB's input
//! forms; nothing here is validated yet (see [`crate::Validator`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::{Problem, RequestError};
use crate::json;

/// A `send_mail` request with the API's field names.
///
/// Every field may be absent. List fields take a string (split later on `,`,
/// `;`, CR, LF and white space) or a JSON array of strings; `is_content_base64`
/// takes a bool or one of the strings `true`, `false`, `1`, `0`; `attachments`
/// takes an array or a string holding one. Unknown fields are ignored.
///
/// The large fields (`content` and each attachment's `content`) borrow from the
/// input when they can, so a 20 MiB attachment is not copied.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct SendMailRequest<'a> {
    /// Caller app; checked by the gateway only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bk_app_code: Option<String>,
    /// Caller app secret; checked by the gateway only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bk_app_secret: Option<String>,
    /// Caller user's login token; checked by the gateway only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bk_token: Option<String>,
    /// Caller username; checked by the gateway only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bk_username: Option<String>,
    /// To addresses.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub receiver: Vec<String>,
    /// To usernames, used only when `receiver` gives no address. Also read
    /// as `receiver_username`, as bk-ci spells it for the bk-cmsi API.
    #[serde(
        rename = "receiver__username",
        alias = "receiver_username",
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub receiver_username: Vec<String>,
    /// Cc addresses.
    #[serde(deserialize_with = "list", skip_serializing_if = "Vec::is_empty")]
    pub cc: Vec<String>,
    /// Cc usernames, used only when `cc` gives no address. Also read as
    /// `cc_username`.
    #[serde(
        rename = "cc__username",
        alias = "cc_username",
        deserialize_with = "list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cc_username: Vec<String>,
    /// `addr` or `Name <addr>`; defaults to the configured sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Body, HTML or plain text, perhaps base64.
    #[serde(
        borrow,
        deserialize_with = "cow_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Cow<'a, str>>,
    /// `Html` (default) or `Text`, any letter case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_format: Option<String>,
    /// Whether `content` is base64 of UTF-8 text.
    #[serde(deserialize_with = "flag", skip_serializing_if = "Option::is_none")]
    pub is_content_base64: Option<bool>,
    /// Files to attach or to show inline.
    #[serde(
        borrow,
        deserialize_with = "attachments",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub attachments: Vec<AttachmentRequest<'a>>,
}

/// One entry of `attachments`, as received.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct AttachmentRequest<'a> {
    /// File name shown to the reader; required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Standard base64 of the file; required.
    #[serde(
        borrow,
        deserialize_with = "cow_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<Cow<'a, str>>,
    /// A suffix (`png`), `image`, or a MIME type (`application/pdf`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `inline` or `attachment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// Content-ID, with or without angle brackets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_id: Option<String>,
}

/// Most entries one list field (`receiver`, `cc`, …) may hold as a JSON array,
/// and most entries of `attachments`: far above what validation lets through
/// (1 000 recipients, 100 attachments by default), they bound the memory a
/// request can make the parser take (`[{},{},…]` would otherwise cost ~40× its
/// size).
pub const MAX_LIST_ENTRIES: usize = 10_000;
/// See [`MAX_LIST_ENTRIES`].
pub const MAX_ATTACHMENT_ENTRIES: usize = 1_000;

/// The secrets (`bk_app_secret`, `bk_token`) are redacted and the large strings
/// shown by their length only.
impl fmt::Debug for SendMailRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendMailRequest")
            .field("bk_app_code", &self.bk_app_code)
            .field(
                "bk_app_secret",
                &self.bk_app_secret.as_ref().map(|_| Redacted),
            )
            .field("bk_token", &self.bk_token.as_ref().map(|_| Redacted))
            .field("bk_username", &self.bk_username)
            .field("receiver", &self.receiver)
            .field("receiver_username", &self.receiver_username)
            .field("cc", &self.cc)
            .field("cc_username", &self.cc_username)
            .field("sender", &self.sender)
            .field("title", &self.title)
            .field("content", &self.content.as_deref().map(Length))
            .field("body_format", &self.body_format)
            .field("is_content_base64", &self.is_content_base64)
            .field("attachments", &self.attachments)
            .finish()
    }
}

/// The content is shown by its length only.
impl fmt::Debug for AttachmentRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentRequest")
            .field("filename", &self.filename)
            .field("content", &self.content.as_deref().map(Length))
            .field("content_type", &self.content_type)
            .field("disposition", &self.disposition)
            .field("content_id", &self.content_id)
            .finish()
    }
}

/// Stands for a secret in `Debug` output.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Stands for a large text in `Debug` output.
struct Length<'t>(&'t str);

impl fmt::Debug for Length<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl<'a> SendMailRequest<'a> {
    /// Reads a request from JSON. Large strings borrow from `json` where the JSON
    /// holds them without escapes. Errors name the field (`title`,
    /// `attachments[0].content`) or `request` when the body is not a JSON object.
    pub fn from_json(json: &'a [u8]) -> Result<Self, RequestError> {
        // serde would also read a struct from an array of its fields; the API
        // takes objects only.
        if json.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(not_an_object());
        }
        // One SIMD pass over the whole body instead of serde_json checking
        // each string as it goes: the body is mostly one large string.
        let json = simdutf8::basic::from_utf8(json).map_err(|_| {
            RequestError::new(
                "request",
                Problem::Malformed("the body is not valid UTF-8".to_owned()),
            )
        })?;
        // Our reader finds the end of each string a block at a time (a 20 MiB
        // base64 attachment is one string), and does not check UTF-8 again.
        let mut reader = json::Reader::new(json);
        let request = serde_path_to_error::deserialize(&mut reader).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            path_error(path, inner.is_syntax(), inner)
        })?;
        reader
            .end()
            .map_err(|error| path_error(".".to_owned(), true, error))?;
        Ok(request)
    }

    /// Detaches the request from the buffer it was read from.
    pub fn into_owned(self) -> SendMailRequest<'static> {
        SendMailRequest {
            content: self.content.map(|c| Cow::Owned(c.into_owned())),
            attachments: self
                .attachments
                .into_iter()
                .map(AttachmentRequest::into_owned)
                .collect(),
            bk_app_code: self.bk_app_code,
            bk_app_secret: self.bk_app_secret,
            bk_token: self.bk_token,
            bk_username: self.bk_username,
            receiver: self.receiver,
            receiver_username: self.receiver_username,
            cc: self.cc,
            cc_username: self.cc_username,
            sender: self.sender,
            title: self.title,
            body_format: self.body_format,
            is_content_base64: self.is_content_base64,
        }
    }
}

impl SendMailRequest<'static> {
    /// Reads a request from a JSON value, such as the gateway builds from a
    /// form or query string (where every value is a string).
    pub fn from_value(value: serde_json::Value) -> Result<Self, RequestError> {
        if !value.is_object() {
            return Err(not_an_object());
        }
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let broken = inner.is_syntax() || inner.is_eof();
            path_error(path, broken, inner)
        })
    }
}

impl AttachmentRequest<'_> {
    /// Detaches the attachment from the buffer it was read from.
    pub fn into_owned(self) -> AttachmentRequest<'static> {
        AttachmentRequest {
            content: self.content.map(|c| Cow::Owned(c.into_owned())),
            filename: self.filename,
            content_type: self.content_type,
            disposition: self.disposition,
            content_id: self.content_id,
        }
    }
}

fn not_an_object() -> RequestError {
    RequestError::new(
        "request",
        Problem::Malformed("the request must be a JSON object".to_owned()),
    )
}

/// The error of a field at `path`; `broken` when the JSON itself is broken.
fn path_error(path: String, broken: bool, inner: impl fmt::Display) -> RequestError {
    // A field given twice is refused by serde at the level of the object
    // ("duplicate field `content`"): name the field, as the credential scan
    // does. The name is one of ours (serde reports known fields only).
    if path == "." && !broken {
        let message = inner.to_string();
        if let Some((name, _)) = message
            .strip_prefix("duplicate field `")
            .and_then(|rest| rest.split_once('`'))
        {
            return RequestError::new(
                name.to_owned(),
                Problem::Malformed("is given more than once".to_owned()),
            );
        }
    }
    // Broken JSON is a fault of the whole body, wherever the parser stopped.
    if path == "." || broken {
        return RequestError::new(
            "request",
            Problem::Malformed(format!("the body is not valid JSON: {inner}")),
        );
    }
    // serde quotes the value it did not expect: not for a secret.
    if matches!(path.as_str(), "bk_app_secret" | "bk_token") {
        return RequestError::new(path, Problem::Malformed("must be a string".to_owned()));
    }
    RequestError::new(path, Problem::Malformed(inner.to_string()))
}

/// A string that borrows from the input when it can.
fn cow_text<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    struct CowVisitor;

    impl<'de> Visitor<'de> for CowVisitor {
        type Value = Option<Cow<'de, str>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }

        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_owned())))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v)))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(CowVisitor)
}

/// A list field: a string, an array of strings, or `null`.
fn list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;

    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(vec![v])
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            let mut count = 0;
            while let Some(item) = seq.next_element::<Option<String>>()? {
                count += 1;
                if count > MAX_LIST_ENTRIES {
                    return Err(too_many(MAX_LIST_ENTRIES));
                }
                items.extend(item);
            }
            Ok(items)
        }
    }

    deserializer.deserialize_any(ListVisitor)
}

/// A flag: a bool, `0`/`1`, or the strings `true`/`false`/`1`/`0` in any case;
/// `null` and the empty string are absent.
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    struct FlagVisitor;

    impl Visitor<'_> for FlagVisitor {
        type Value = Option<bool>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("true, false, 1 or 0")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            match v {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
            }
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            match v {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let trimmed = v.trim();
            if trimmed.is_empty() {
                Ok(None)
            } else if trimmed.eq_ignore_ascii_case("true") || trimmed == "1" {
                Ok(Some(true))
            } else if trimmed.eq_ignore_ascii_case("false") || trimmed == "0" {
                Ok(Some(false))
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    deserializer.deserialize_any(FlagVisitor)
}

/// `attachments`: an array, a string holding one (as form requests send it),
/// `null` or the empty string.
fn attachments<'de: 'a, 'a, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<AttachmentRequest<'a>>, D::Error> {
    struct AttachmentsVisitor<'a>(std::marker::PhantomData<&'a ()>);

    impl<'de: 'a, 'a> Visitor<'de> for AttachmentsVisitor<'a> {
        type Value = Vec<AttachmentRequest<'a>>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of attachments, or a string holding one")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            attachment_entries(seq)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                return Ok(Vec::new());
            }
            let not_json = |error| E::custom(format_args!("the string is not JSON: {error}"));
            let mut inner = json::Reader::new(v);
            let list =
                serde_path_to_error::deserialize::<_, Option<AttachmentList<'_>>>(&mut inner)
                    .map_err(|error| {
                        let path = error.path().to_string();
                        let inner = error.into_inner();
                        if inner.is_syntax() {
                            not_json(inner)
                        } else {
                            E::custom(format_args!("in the JSON string, at {path}: {inner}"))
                        }
                    })?;
            inner.end().map_err(not_json)?;
            Ok(list.map_or_else(Vec::new, |list| {
                list.0
                    .into_iter()
                    .map(AttachmentRequest::into_owned)
                    .collect()
            }))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }

    deserializer.deserialize_any(AttachmentsVisitor(std::marker::PhantomData))
}

/// The array inside an `attachments` string.
struct AttachmentList<'a>(Vec<AttachmentRequest<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for AttachmentList<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<'a>(std::marker::PhantomData<&'a ()>);

        impl<'de: 'a, 'a> Visitor<'de> for ListVisitor<'a> {
            type Value = AttachmentList<'a>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of attachments")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                attachment_entries(seq).map(AttachmentList)
            }
        }

        deserializer.deserialize_seq(ListVisitor(std::marker::PhantomData))
    }
}

fn attachment_entries<'de: 'a, 'a, A: SeqAccess<'de>>(
    mut seq: A,
) -> Result<Vec<AttachmentRequest<'a>>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
    while let Some(item) = seq.next_element::<AttachmentRequest<'a>>()? {
        if items.len() == MAX_ATTACHMENT_ENTRIES {
            return Err(too_many(MAX_ATTACHMENT_ENTRIES));
        }
        items.push(item);
    }
    Ok(items)
}

fn too_many<E: de::Error>(max: usize) -> E {
    E::custom(format_args!("more than {max} entries"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_example() {
        let json = br#"{
            "bk_app_code": "esb_test",
            "bk_app_secret": "xxx",
            "bk_token": "xxx",
            "receiver": "admin@bking.com",
            "sender": "admin@bking.com",
            "title": "This is a Test",
            "content": "<html>Welcome to Blueking</html>",
            "unknown_field": {"nested": [1, 2]}
        }"#;
        let request = SendMailRequest::from_json(json).unwrap();
        assert_eq!(request.receiver, ["admin@bking.com"]);
        assert_eq!(request.title.as_deref(), Some("This is a Test"));
        assert!(matches!(request.content, Some(Cow::Borrowed(_))));
        assert_eq!(request.bk_app_code.as_deref(), Some("esb_test"));
    }

    #[test]
    fn accepts_the_esb_input_forms() {
        let json = br#"{
            "receiver": ["a@x.com", "b@x.com", null],
            "cc__username": "zhangsan,lisi",
            "is_content_base64": "TRUE",
            "attachments": "[{\"filename\": \"a.txt\", \"content\": \"aGk=\"}]"
        }"#;
        let request = SendMailRequest::from_json(json).unwrap();
        assert_eq!(request.receiver, ["a@x.com", "b@x.com"]);
        assert_eq!(request.cc_username, ["zhangsan,lisi"]);
        assert_eq!(request.is_content_base64, Some(true));
        assert_eq!(request.attachments.len(), 1);
        assert_eq!(
            request
                .attachments
                .first()
                .and_then(|a| a.content.as_deref()),
            Some("aGk=")
        );

        for (value, expected) in [
            ("true", Some(true)),
            ("false", Some(false)),
            ("1", Some(true)),
            ("0", Some(false)),
            ("\"False\"", Some(false)),
            ("\" 1 \"", Some(true)),
            ("\"\"", None),
            ("null", None),
        ] {
            let json = format!(r#"{{"is_content_base64": {value}}}"#);
            let request = SendMailRequest::from_json(json.as_bytes()).unwrap();
            assert_eq!(request.is_content_base64, expected, "{value}");
        }
    }

    #[test]
    fn reads_the_single_underscore_username_fields() {
        let json = br#"{"receiver_username": ["alice", "bob"], "cc_username": "carol"}"#;
        let request = SendMailRequest::from_json(json).unwrap();
        assert_eq!(request.receiver_username, ["alice", "bob"]);
        assert_eq!(request.cc_username, ["carol"]);
        let both = br#"{"receiver_username": "a", "receiver__username": "b"}"#;
        assert!(SendMailRequest::from_json(both).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&[u8], &str)] = &[
            (br#"{"title": 5}"#, "title"),
            (br#"{"is_content_base64": "yes"}"#, "is_content_base64"),
            (br#"{"is_content_base64": 2}"#, "is_content_base64"),
            (br#"{"receiver": {"a": 1}}"#, "receiver"),
            (br#"{"attachments": "not json"}"#, "attachments"),
            (
                br#"{"attachments": [{"filename": 1}]}"#,
                "attachments[0].filename",
            ),
            (br#"{"attachments": "[{\"content\": 5}]"}"#, "attachments"),
            (
                br#"{"content": null, "title": "t", "content": "c"}"#,
                "content",
            ),
            (
                br#"{"attachments": [{"content": "", "content": ""}]}"#,
                "attachments[0]",
            ),
            (br#"{"attachments": [1e400]}"#, "attachments[0]"),
            (br#"{"title": -1e400}"#, "title"),
            (br#"{"title": "\ud800"}"#, "title"),
            (br#"{"content": "a\udc00b"}"#, "content"),
            (br#"{"title": "\ud800"#, "request"),
            (br#"[1, 2]"#, "request"),
            (br#"{"title": "x"} trailing"#, "request"),
            (br#"{"title": "#, "request"),
            (br#"{"title": "abc"#, "request"),
            (b"\xff", "request"),
        ];
        for (json, field) in cases {
            let error = SendMailRequest::from_json(json).unwrap_err();
            assert_eq!(
                error.field(),
                *field,
                "{}: {error}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn errors_are_one_line_and_quote_no_input() {
        let cases: &[&[u8]] = &[
            br#"{"bk_app_secret": "s3cret" "title": "t"}"#,
            br#"{"bk_app_secret": "s3cret", "title": 5}"#,
            br#"{"bk_app_secret": "s3cret"} s3cret"#,
            br#"{"attachments": "[{\"s3cret\": }]"}"#,
        ];
        for json in cases {
            let error = SendMailRequest::from_json(json).unwrap_err().to_string();
            assert!(!error.contains('\n'), "{error}");
            assert!(!error.contains("s3cret"), "{error}");
        }
    }

    #[test]
    fn element_counts_are_bounded_while_parsing() {
        let entries = |entry: &str, n: usize| vec![entry; n].join(",");
        let cases = [
            (
                format!(
                    r#"{{"attachments": [{}]}}"#,
                    entries("{}", MAX_ATTACHMENT_ENTRIES + 1)
                ),
                "attachments",
            ),
            (
                format!(
                    r#"{{"attachments": "[{}]"}}"#,
                    entries("{}", MAX_ATTACHMENT_ENTRIES + 1)
                ),
                "attachments",
            ),
            (
                format!(
                    r#"{{"receiver": [{}]}}"#,
                    entries(r#""""#, MAX_LIST_ENTRIES + 1)
                ),
                "receiver",
            ),
            (
                format!(
                    r#"{{"cc__username": [{}]}}"#,
                    entries("null", MAX_LIST_ENTRIES + 1)
                ),
                "cc__username",
            ),
        ];
        for (json, field) in cases {
            let error = SendMailRequest::from_json(json.as_bytes()).unwrap_err();
            assert_eq!(error.field(), field, "{error}");
            assert!(error.to_string().contains("more than"), "{error}");
        }
        let at_the_limit = format!(
            r#"{{"attachments": [{}]}}"#,
            entries("{}", MAX_ATTACHMENT_ENTRIES)
        );
        let request = SendMailRequest::from_json(at_the_limit.as_bytes()).unwrap();
        assert_eq!(request.attachments.len(), MAX_ATTACHMENT_ENTRIES);
    }

    #[test]
    fn debug_shows_no_secret_and_no_content() {
        let json = br#"{"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_token": "t0ken",
            "title": "t", "content": "confidential body",
            "attachments": [{"filename": "a.txt", "content": "c2VjcmV0"}]}"#;
        let shown = format!("{:?}", SendMailRequest::from_json(json).unwrap());
        for hidden in ["s3cret", "t0ken", "confidential", "c2VjcmV0"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(
            shown.contains("monitor") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(shown.contains("<17 bytes>"), "{shown}");
    }

    #[test]
    fn serializes_back_with_api_names() {
        let request = SendMailRequest {
            receiver_username: vec!["admin".into()],
            title: Some("t".into()),
            ..SendMailRequest::default()
        };
        let json = serde_json::to_string(&request).unwrap();
        assert_eq!(json, r#"{"receiver__username":["admin"],"title":"t"}"#);
        let back = SendMailRequest::from_json(json.as_bytes()).unwrap();
        assert_eq!(back, request);
    }
}
