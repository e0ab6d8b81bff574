//! Mailboxes: RFC 5321 syntax, IDNA domains, display names; the ESB's way of
//! writing several of them in one field ([`list`]); and the SMTP [`Envelope`]
//! built from them.

mod envelope;
mod list;

pub use envelope::Envelope;
pub use list::{split_address_list, split_username_list};

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest address (RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its
/// angle brackets).
const MAX_ADDRESS: usize = 254;
/// Longest local part (RFC 5321 §4.5.3.1.1).
const MAX_LOCAL_PART: usize = 64;
/// Longest display name we accept, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 256;

/// A validated mailbox: an optional display name and an ASCII `local@domain`.
///
/// Only parsing builds one, so a `Mailbox` always holds a deliverable address: the
/// local part is a dot-atom or quoted string of RFC 5321, the domain a host name
/// (IDN domains are IDNA-encoded) or an address literal, and the display name
/// holds no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Mailbox {
    name: Option<String>,
    address: String,
    at: usize,
}

/// Why a string is not a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing but white space.
    #[error("it is empty")]
    Empty,
    /// No `@` separates local part and domain.
    #[error("there is no '@'")]
    MissingAt,
    /// The local part breaks RFC 5321 syntax.
    #[error("the part before '@' is not valid ({0})")]
    LocalPart(&'static str),
    /// The local part holds `=?`, which a reader may take for the start of an
    /// RFC 2047 encoded word and show as another address.
    #[error(
        "the part before '@' contains \"=?\", which mail readers may decode as an encoded word and show as a different address"
    )]
    EncodedWordLocalPart,
    /// The local part has non-ASCII characters.
    #[error(
        "the part before '@' has non-ASCII characters, which need SMTPUTF8; no transport here offers it"
    )]
    NonAsciiLocalPart,
    /// The domain is not a host name or address literal.
    #[error("the domain is not valid ({0})")]
    Domain(String),
    /// The address is longer than SMTP allows.
    #[error("the address is longer than {MAX_ADDRESS} octets")]
    TooLong,
    /// A `"` without its closing partner.
    #[error("a quoted string is not closed")]
    UnclosedQuote,
    /// A `<` without its closing `>`.
    #[error("'<' is not closed by '>'")]
    UnclosedAngle,
    /// Something follows the closing `>`.
    #[error("there is text after '>'")]
    TrailingText,
    /// CR or LF.
    #[error("it contains a line break")]
    LineBreak,
    /// A NUL character.
    #[error("it contains a NUL character")]
    Nul,
    /// The display name has control characters.
    #[error("the display name has control characters")]
    NameControl,
    /// The display name is too long.
    #[error("the display name is longer than {MAX_NAME_CHARS} characters")]
    NameTooLong,
}

impl Mailbox {
    /// Parses `addr@domain` or `Display Name <addr@domain>`; the name may be a
    /// quoted string (`"Zhang, San" <zs@example.com>`).
    pub fn parse(input: &str) -> Result<Mailbox, AddressError> {
        check_line(input)?;
        let text = input.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        let Some(open) = find_unquoted(text, b'<')? else {
            return Mailbox::from_parts(None, text);
        };
        let (phrase, rest) = text.split_at(open);
        let rest = rest.get(1..).unwrap_or_default();
        let close = rest.rfind('>').ok_or(AddressError::UnclosedAngle)?;
        let (address, after) = rest.split_at(close);
        if !after.get(1..).unwrap_or_default().trim().is_empty() {
            return Err(AddressError::TrailingText);
        }
        let name = parse_phrase(phrase)?;
        Mailbox::from_parts(name.as_deref(), address.trim())
    }

    /// Builds a mailbox from a display name and a bare address.
    pub fn new(name: Option<&str>, address: &str) -> Result<Mailbox, AddressError> {
        check_line(address)?;
        let name = match name {
            Some(name) => {
                check_line(name)?;
                clean_name(name)?
            }
            None => None,
        };
        Mailbox::from_parts(name.as_deref(), address.trim())
    }

    fn from_parts(name: Option<&str>, address: &str) -> Result<Mailbox, AddressError> {
        if address.is_empty() {
            return Err(AddressError::Empty);
        }
        let at = address.rfind('@').ok_or(AddressError::MissingAt)?;
        let (local, domain) = address.split_at(at);
        let domain = domain.get(1..).unwrap_or_default();
        check_local_part(local)?;
        let mut full = String::with_capacity(address.len() + 8);
        full.push_str(local);
        full.push('@');
        push_ascii_domain(&mut full, domain)?;
        if full.len() > MAX_ADDRESS {
            return Err(AddressError::TooLong);
        }
        Ok(Mailbox {
            name: name.map(str::to_owned),
            address: full,
            at,
        })
    }

    /// The display name, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The address, `local@domain`, ASCII only (IDN domains IDNA-encoded).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.address.get(..self.at).unwrap_or_default()
    }

    /// The domain, ASCII (IDNA-encoded) and lower case, or an address literal.
    pub fn domain(&self) -> &str {
        self.address.get(self.at + 1..).unwrap_or_default()
    }

    /// The key under which two mailboxes count as the same recipient: the
    /// address, compared without regard to letter case.
    pub(crate) fn dedupe_key(&self) -> String {
        self.address.to_ascii_lowercase()
    }
}

/// `"Display Name" <addr@domain>` (the name quoted, `"` and `\\` escaped), or
/// the bare address: a form [`Mailbox::parse`] reads back to the same mailbox.
impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(name) = &self.name else {
            return f.write_str(&self.address);
        };
        f.write_str("\"")?;
        for c in name.chars() {
            if c == '"' || c == '\\' {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        write!(f, "\" <{}>", self.address)
    }
}

impl std::str::FromStr for Mailbox {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mailbox::parse(s)
    }
}

/// What makes text unfit for a header line, whatever header it goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFault {
    /// CR or LF: the start of an injected header.
    LineBreak,
    /// NUL.
    Nul,
}

/// Whether a reader could take part of `text` for an RFC 2047 encoded word:
/// it holds `=?`. Text written into a header as it is (Content-ID, MIME
/// parameters, local parts) must not; text we encode (subjects, display names,
/// file names) is written as encoded words itself when it does (RFC 2047 §5).
pub(crate) fn looks_encoded(text: &str) -> bool {
    memchr::memmem::find(text.as_bytes(), b"=?").is_some()
}

/// Checks that `text` can stand in a header line.
pub(crate) fn line_fault(text: &str) -> Option<LineFault> {
    if text.contains(['\r', '\n']) {
        Some(LineFault::LineBreak)
    } else if text.contains('\0') {
        Some(LineFault::Nul)
    } else {
        None
    }
}

fn check_line(text: &str) -> Result<(), AddressError> {
    match line_fault(text) {
        Some(LineFault::LineBreak) => Err(AddressError::LineBreak),
        Some(LineFault::Nul) => Err(AddressError::Nul),
        None => Ok(()),
    }
}

/// Byte offset of the first `wanted` outside a quoted string.
fn find_unquoted(text: &str, wanted: u8) -> Result<Option<usize>, AddressError> {
    let mut quoted = false;
    let mut escaped = false;
    for (index, &byte) in text.as_bytes().iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && byte == b'\\' {
            escaped = true;
        } else if byte == b'"' {
            quoted = !quoted;
        } else if !quoted && byte == wanted {
            return Ok(Some(index));
        }
    }
    if quoted {
        Err(AddressError::UnclosedQuote)
    } else {
        Ok(None)
    }
}

/// The display name before `<`: quoted parts are unquoted, the rest kept as
/// written (a name keeps its inner spaces).
fn parse_phrase(phrase: &str) -> Result<Option<String>, AddressError> {
    let phrase = phrase.trim();
    if !phrase.contains('"') {
        return clean_name(phrase);
    }
    let mut name = String::with_capacity(phrase.len());
    let mut chars = phrase.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            name.push(c);
            continue;
        }
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some(escaped) => name.push(escaped),
                    None => return Err(AddressError::UnclosedQuote),
                },
                Some(inner) => name.push(inner),
                None => return Err(AddressError::UnclosedQuote),
            }
        }
    }
    clean_name(&name)
}

fn clean_name(name: &str) -> Result<Option<String>, AddressError> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(None);
    }
    if name.chars().any(|c| c.is_control() && c != '\t') {
        return Err(AddressError::NameControl);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(AddressError::NameTooLong);
    }
    Ok(Some(name.to_owned()))
}

/// `atext` of RFC 5322 §3.2.3.
pub(crate) fn is_atext(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&byte)
}

fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::LocalPart("it is empty"));
    }
    if !local.is_ascii() {
        return Err(AddressError::NonAsciiLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::LocalPart("longer than 64 octets"));
    }
    // Python's `email` decodes `=?utf-8?B?5byg5LiJ?=@example.com` and shows
    // `张三@example.com` while the envelope goes elsewhere; quoting does not help
    // (readers decode inside quotes too). No real mailbox needs `=?`.
    if looks_encoded(local) {
        return Err(AddressError::EncodedWordLocalPart);
    }
    let bytes = local.as_bytes();
    if let Some(inner) = bytes
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
    {
        // Quoted-string: qtextSMTP or a quoted-pair (RFC 5321 §4.1.2).
        let mut escaped = false;
        for &byte in inner {
            if escaped {
                if !(32..=126).contains(&byte) {
                    return Err(AddressError::LocalPart("bad quoted pair"));
                }
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' || !(32..=126).contains(&byte) {
                return Err(AddressError::LocalPart("bad character in quoted string"));
            }
        }
        if escaped {
            return Err(AddressError::LocalPart("quoted string ends in '\\'"));
        }
        return Ok(());
    }
    for atom in local.split('.') {
        if atom.is_empty() {
            return Err(AddressError::LocalPart(
                "a dot at the start, the end, or twice in a row",
            ));
        }
        if !atom.bytes().all(is_atext) {
            return Err(AddressError::LocalPart(
                "characters outside letters, digits and !#$%&'*+-/=?^_`{|}~ need quoting",
            ));
        }
    }
    Ok(())
}

/// Appends the domain as it goes on the wire to `out`.
fn push_ascii_domain(out: &mut String, domain: &str) -> Result<(), AddressError> {
    // Plain lower-case ASCII host names (the common case) are checked in place.
    if domain
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && !domain.split('.').any(|label| label.starts_with("xn--"))
    {
        check_host_name(domain, domain)?;
        out.push_str(domain);
        return Ok(());
    }
    out.push_str(&ascii_domain(domain)?);
    Ok(())
}

/// Why a domain holding `=?` is refused.
const ENCODED_WORD_DOMAIN: &str = "it contains \"=?\", which mail readers may decode as an encoded word and show as a different address";

/// The domain as it goes on the wire: a host name in IDNA ASCII form, lower case,
/// or an address literal.
fn ascii_domain(domain: &str) -> Result<String, AddressError> {
    if domain.is_empty() {
        return Err(AddressError::Domain("it is empty".into()));
    }
    // As for local parts: not a host name anyway, but say why it matters.
    if looks_encoded(domain) {
        return Err(AddressError::Domain(ENCODED_WORD_DOMAIN.into()));
    }
    if let Some(literal) = domain.strip_prefix('[') {
        let inner = literal
            .strip_suffix(']')
            .ok_or_else(|| AddressError::Domain("address literal without ']'".into()))?;
        let valid = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner
                .get(5..)
                .is_some_and(|v6| v6.parse::<Ipv6Addr>().is_ok()),
            _ => inner.parse::<Ipv4Addr>().is_ok(),
        };
        return if valid {
            Ok(format!("[{inner}]"))
        } else {
            Err(AddressError::Domain(format!(
                "[{inner}] is not an IPv4 or IPv6 address literal"
            )))
        };
    }
    // Plain ASCII host names (the common case) need no UTS 46 mapping; Punycode
    // labels (`xn--`) still go through it to be checked.
    let plain = domain.is_ascii()
        && !domain.split('.').any(|label| {
            label
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case("xn--"))
        });
    let ascii = if plain {
        domain.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii_strict(domain)
            .map_err(|_| AddressError::Domain(format!("{domain:?} is not a valid host name")))?
    };
    check_host_name(&ascii, domain)?;
    Ok(ascii)
}

/// The rules of an ASCII host name; `domain` is what the request said.
fn check_host_name(ascii: &str, domain: &str) -> Result<(), AddressError> {
    if ascii.is_empty() || ascii.len() > 253 || ascii.ends_with('.') {
        return Err(AddressError::Domain(format!(
            "{domain:?} is not a valid host name"
        )));
    }
    for label in ascii.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        {
            return Err(AddressError::Domain(format!(
                "{domain:?} is not a valid host name"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mailboxes() {
        let mailbox = Mailbox::parse("  张 三 <ZS@Example.COM> ").unwrap();
        assert_eq!(mailbox.name(), Some("张 三"));
        assert_eq!(mailbox.address(), "ZS@example.com");
        assert_eq!(mailbox.local_part(), "ZS");
        assert_eq!(mailbox.domain(), "example.com");

        let mailbox = Mailbox::parse(r#""Li, \"Si\"" <ls@x.com>"#).unwrap();
        assert_eq!(mailbox.name(), Some("Li, \"Si\""));

        let mailbox = Mailbox::parse("<a@x.com>").unwrap();
        assert_eq!(mailbox.name(), None);

        let mailbox = Mailbox::parse("user@例子.测试").unwrap();
        assert_eq!(mailbox.domain(), "xn--fsqu00a.xn--0zwm56d");

        let mailbox = Mailbox::parse("\"john doe\"@x.com").unwrap();
        assert_eq!(mailbox.local_part(), "\"john doe\"");

        assert_eq!(
            Mailbox::parse("a@[127.0.0.1]").unwrap().domain(),
            "[127.0.0.1]"
        );
        assert_eq!(
            Mailbox::parse("a@[IPv6:::1]").unwrap().domain(),
            "[IPv6:::1]"
        );
        assert_eq!(
            Mailbox::parse("root@localhost").unwrap().domain(),
            "localhost"
        );
        assert_eq!(
            Mailbox::parse("a@Mail.Example.COM").unwrap().domain(),
            "mail.example.com"
        );
        assert_eq!(
            Mailbox::parse("a@XN--fsqu00a.xn--0zwm56d")
                .unwrap()
                .domain(),
            "xn--fsqu00a.xn--0zwm56d"
        );
    }

    #[test]
    fn rejects_bad_mailboxes() {
        let cases: &[(&str, AddressError)] = &[
            ("", AddressError::Empty),
            ("   ", AddressError::Empty),
            ("nobody", AddressError::MissingAt),
            ("@x.com", AddressError::LocalPart("it is empty")),
            (
                "a..b@x.com",
                AddressError::LocalPart("a dot at the start, the end, or twice in a row"),
            ),
            ("张三@x.com", AddressError::NonAsciiLocalPart),
            ("Name <a@x.com", AddressError::UnclosedAngle),
            ("Name <a@x.com> tail", AddressError::TrailingText),
            ("\"Name <a@x.com>", AddressError::UnclosedQuote),
            ("a@x.com\r\nBcc: b@y.com", AddressError::LineBreak),
            ("a\0@x.com", AddressError::Nul),
            ("Na\u{7}me <a@x.com>", AddressError::NameControl),
            (
                "=?utf-8?B?5byg5LiJ?=@example.com",
                AddressError::EncodedWordLocalPart,
            ),
            (
                "\"=?utf-8?q?a?=\"@x.com",
                AddressError::EncodedWordLocalPart,
            ),
            ("de$$=?$$ve@x.com", AddressError::EncodedWordLocalPart),
            (
                "a@=?utf-8?q?x?=.example.com",
                AddressError::Domain(ENCODED_WORD_DOMAIN.into()),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Mailbox::parse(input).as_ref(), Err(expected), "{input:?}");
        }
        for domain in [
            "a@x..com",
            "a@-x.com",
            "a@x_y.com",
            "a@x.com.",
            "a@[1.2.3]",
            "a@",
        ] {
            assert!(
                matches!(Mailbox::parse(domain), Err(AddressError::Domain(_))),
                "{domain:?}: {:?}",
                Mailbox::parse(domain)
            );
        }
        let long_local = format!("{}@x.com", "a".repeat(65));
        assert!(matches!(
            Mailbox::parse(&long_local),
            Err(AddressError::LocalPart(_))
        ));
        let long = format!("a@{}.com", vec!["b".repeat(60); 5].join("."));
        assert!(Mailbox::parse(&long).is_err());
    }

    #[test]
    fn display_reads_back() {
        for input in [
            "a@x.com",
            "张三 <zs@x.com>",
            r#""Li, \"Si\" \\ back" <ls@x.com>"#,
            "\"john doe\"@x.com",
        ] {
            let mailbox = Mailbox::parse(input).unwrap();
            assert_eq!(Mailbox::parse(&mailbox.to_string()), Ok(mailbox), "{input}");
        }
    }
}
