//! DKIM signing (RFC 6376, RFC 8463) of composed messages, feature `dkim`:
//! RSA-SHA256 or Ed25519-SHA256, relaxed/relaxed canonicalisation. The
//! signature is one header prepended to the message after composition, so
//! every transport sends signed bytes; [`crate::Mailer::with_dkim`] signs
//! everything it prepares.
//!
//! Our own, on ring (the crypto rustls already brings): the signing crates
//! either bring a second crypto stack (aws-lc), RustCrypto's `rsa` 0.9
//! (RUSTSEC-2023-0071) or, in mail-auth 0.13 on ring, a DNS resolver that a
//! signer never calls. `canonical.rs` is RFC 6376's relaxed canonicalisation,
//! `key.rs` the PEM key; here the signature header is assembled and folded.
//! The tests check every signature with dkimpy and mail-auth's verifier.

mod canonical;
mod key;

use std::time::{SystemTime, UNIX_EPOCH};

use encodify::Fold;
use encodify::base64::STANDARD as BASE64;
use ring::digest;

use crate::compose::Composed;
use key::SigningKey;

/// Header fields signed when the configuration names none: those a reader
/// sees and those that say how to read the body.
pub const DEFAULT_SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// Why a DKIM key could not be used, or a message not signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// The key is not a PEM private key of a kind DKIM signs with.
    #[error("{0}")]
    Key(String),
    /// The domain, the selector or a header name cannot go into a signature.
    #[error("{0}")]
    Setting(String),
    /// Signing failed.
    #[error("DKIM signing failed: {0}")]
    Sign(String),
}

/// Signs composed messages for one domain and selector. Cheap to share
/// behind an `Arc`; the private key is never shown.
pub struct DkimSigner {
    key: SigningKey,
    domain: String,
    selector: String,
    headers: Vec<String>,
}

/// Domain, selector, algorithm and signed headers; never the key.
impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.key.algorithm())
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

/// The column the signature header is folded at (RFC 5322's 78, less room
/// for readers that count the line break).
const WIDTH: usize = 76;

/// A header name longer than this could not share an `h=` line with `h=`
/// and a separator within [`WIDTH`].
const MAX_NAME_LEN: usize = WIDTH - 4;

impl DkimSigner {
    /// A signer from a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1
    /// RSA), for `d=domain` and `s=selector`, signing `headers` (default:
    /// [`DEFAULT_SIGNED_HEADERS`]). The key is tried on a sample message, so
    /// that a key that cannot sign fails here rather than at the first mail.
    pub fn from_pem(
        pem: &[u8],
        domain: &str,
        selector: &str,
        headers: Option<&[String]>,
    ) -> Result<DkimSigner, DkimError> {
        check_dns_name("domain", domain, domain.len())?;
        // The key is published at SELECTOR._domainkey.DOMAIN.
        let published = selector.len() + "._domainkey.".len() + domain.len();
        check_dns_name("selector", selector, published)?;
        let mut names: Vec<String> = Vec::new();
        let wanted = headers.map_or_else(
            || {
                DEFAULT_SIGNED_HEADERS
                    .iter()
                    .map(|&n| n.to_owned())
                    .collect()
            },
            <[String]>::to_vec,
        );
        for name in wanted {
            // RFC 5322 field names: printable ASCII but the colon.
            check_tag("header name", &name, |b| b.is_ascii_graphic() && b != b':')?;
            if name.len() > MAX_NAME_LEN {
                return Err(DkimError::Setting(format!(
                    "header name {name:?} is longer than {MAX_NAME_LEN} characters"
                )));
            }
            // Each name once: a second mention would sign nothing more.
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                names.push(name);
            }
        }
        if !names.iter().any(|name| name.eq_ignore_ascii_case("From")) {
            return Err(DkimError::Setting(
                "the signed headers must include From (RFC 6376 §5.4)".into(),
            ));
        }
        let signer = DkimSigner {
            key: SigningKey::from_pem(pem)?,
            domain: domain.to_owned(),
            selector: selector.to_owned(),
            headers: names,
        };
        signer.signature(b"From: <test@example.com>\r\nSubject: key check\r\n\r\nbody\r\n")?;
        Ok(signer)
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        self.key.algorithm()
    }

    /// The DNS TXT record that publishes the public key, at
    /// `SELECTOR._domainkey.DOMAIN`: `v=DKIM1; k=rsa; p=…` or
    /// `v=DKIM1; k=ed25519; p=…`.
    pub fn dns_record(&self) -> String {
        self.key.dns_record()
    }

    /// The `DKIM-Signature` header line(s) for `message`, CRLF-terminated,
    /// with the current time as `t=`.
    pub fn signature(&self, message: &[u8]) -> Result<String, DkimError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_secs());
        self.signature_at(message, now)
    }

    /// `composed` with its signature prepended.
    pub fn sign(&self, composed: Composed) -> Result<Composed, DkimError> {
        let header = self.signature(&composed.bytes)?;
        let mut bytes = Vec::with_capacity(header.len() + composed.bytes.len());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(&composed.bytes);
        Ok(Composed {
            message_id: composed.message_id,
            bytes,
        })
    }

    /// The signature of `message` at `timestamp` (seconds since 1970; none
    /// written when 0): RFC 6376 §5.
    fn signature_at(&self, message: &[u8], timestamp: u64) -> Result<String, DkimError> {
        let (fields, body) = canonical::split(message);
        let (signed, listed) = canonical::select(&fields, &self.headers);

        let mut header = Folded::new("DKIM-Signature:");
        header.piece(" v=1;");
        header.piece(&format!(" a={};", self.key.algorithm()));
        header.piece(" c=relaxed/relaxed;");
        header.piece(&format!(" d={};", self.domain));
        header.piece(&format!(" s={};", self.selector));
        if timestamp > 0 {
            header.piece(&format!(" t={timestamp};"));
        }
        let last = listed.len().saturating_sub(1);
        for (index, name) in listed.iter().enumerate() {
            let lead = if index == 0 { " h=" } else { "" };
            let end = if index == last { ';' } else { ':' };
            header.piece(&format!("{lead}{name}{end}"));
        }
        header.value_tag(" bh=");
        header.base64(body_hash(body).as_ref());
        header.piece(";");
        header.value_tag(" b=");

        // The data signed (§3.7): the signed fields, then this header with
        // an empty b= and no line break, all in relaxed form.
        let mut data = Vec::with_capacity(1024);
        for field in signed {
            canonical::relaxed_header(field.name, field.value, &mut data);
            data.extend_from_slice(b"\r\n");
        }
        let unsigned = header
            .text
            .strip_prefix("DKIM-Signature:")
            .unwrap_or_default();
        canonical::relaxed_header(b"DKIM-Signature", unsigned.as_bytes(), &mut data);

        header.base64(&self.key.sign(&data)?);
        header.text.push_str("\r\n");
        Ok(header.text)
    }
}

/// The SHA-256 of the relaxed body, hashed in blocks rather than word by word.
fn body_hash(body: &[u8]) -> digest::Digest {
    const BLOCK: usize = 16 * 1024;
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buffer = Vec::with_capacity(BLOCK);
    canonical::relaxed_body(body, |piece| {
        if buffer.len() + piece.len() > BLOCK {
            context.update(&buffer);
            buffer.clear();
        }
        if piece.len() > BLOCK {
            context.update(piece);
        } else {
            buffer.extend_from_slice(piece);
        }
    });
    context.update(&buffer);
    context.finish()
}

/// A header field being written with folds (CRLF TAB) before [`WIDTH`]
/// columns would be passed.
struct Folded {
    text: String,
    column: usize,
}

impl Folded {
    fn new(start: &str) -> Folded {
        Folded {
            text: start.to_owned(),
            column: start.len(),
        }
    }

    fn fold(&mut self) {
        self.text.push_str("\r\n\t");
        self.column = 1;
    }

    /// Writes `piece` on this line if it fits, else on the next, where its
    /// leading space (between tags) is the fold's. A piece longer than a line
    /// (a long domain) stands on a line of its own.
    fn piece(&mut self, piece: &str) {
        if self.column + piece.len() > WIDTH && self.column > 1 {
            self.fold();
        }
        let piece = match self.column {
            1 => piece.strip_prefix(' ').unwrap_or(piece),
            _ => piece,
        };
        self.text.push_str(piece);
        self.column += piece.len();
    }

    /// Writes `tag` (` bh=`, ` b=`) where at least one symbol of its value
    /// fits after it, so that no fold comes between a tag and its value.
    fn value_tag(&mut self, tag: &str) {
        if self.column + tag.len() + 1 > WIDTH {
            self.fold();
        }
        self.piece(tag);
    }

    /// Writes `bytes` in base64, folded anywhere (RFC 6376 §3.5 allows FWS
    /// in `b=` and `bh=`).
    fn base64(&mut self, bytes: &[u8]) {
        BASE64.encode_folded_append(bytes, &mut self.text, &mut self.column, Fold::DKIM);
    }
}

/// A domain or selector: dot-separated labels of letters, digits, `-` (and
/// `_` in a selector, as in `mail_2026`), each of 1 to 63 characters, within
/// DNS's 253 in all (`full_len`: the name the key is published at).
fn check_dns_name(what: &str, name: &str, full_len: usize) -> Result<(), DkimError> {
    let underscore = what == "selector";
    check_tag(what, name, |b| {
        b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || (underscore && b == b'_')
    })?;
    if full_len > 253
        || name
            .split('.')
            .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err(DkimError::Setting(format!(
            "{what} {name:?} is not a DNS name (labels of 1 to 63 characters, 253 in all)"
        )));
    }
    Ok(())
}

/// A tag value of the signature: non-empty, only the bytes `allowed` takes.
fn check_tag(what: &str, value: &str, allowed: impl Fn(u8) -> bool) -> Result<(), DkimError> {
    if value.is_empty() || !value.bytes().all(allowed) {
        return Err(DkimError::Setting(format!(
            "{what} {value:?} cannot go into a DKIM signature"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<&str> {
        text.split("\r\n").collect()
    }

    #[test]
    fn pieces_fold_before_the_width_and_lose_their_leading_space() {
        let mut header = Folded::new("DKIM-Signature:");
        header.piece(" v=1;");
        header.piece(&format!(" d={};", "a".repeat(55)));
        header.piece(&format!(" s={};", "b".repeat(20)));
        header.piece(" t=1;");
        assert_eq!(
            lines(&header.text),
            [
                "DKIM-Signature: v=1;",
                &format!("\td={};", "a".repeat(55)),
                &format!("\ts={}; t=1;", "b".repeat(20)),
            ]
        );
        // A piece longer than a line stands alone on its line.
        let long = format!(" d={};", "c".repeat(90));
        header.piece(&long);
        header.piece(" x=1;");
        let text = header.text.clone();
        let got = lines(&text);
        assert_eq!(got[3], format!("\t{}", &long[1..]));
        assert_eq!(got[4], "\tx=1;");
    }

    #[test]
    fn a_value_tag_keeps_a_symbol_of_its_value_on_its_line() {
        for start in 60..=WIDTH {
            let mut header = Folded::new(&"x".repeat(start));
            header.value_tag(" b=");
            header.base64(&[0xAB; 200]);
            for line in lines(&header.text) {
                assert!(line.len() <= WIDTH.max(start), "{start}: {line:?}");
                assert!(!line.ends_with("b="), "{start}: {line:?}");
            }
            let unfolded: String = header.text.replace("\r\n\t", "");
            let value = unfolded.rsplit("b=").next().unwrap();
            assert_eq!(value, BASE64.encode([0xAB; 200]), "{start}");
        }
    }

    #[test]
    fn names_and_dns_names_are_checked() {
        assert!(check_dns_name("domain", "mail.example.com", 16).is_ok());
        assert!(check_dns_name("selector", "mail_2026", 30).is_ok());
        for (what, name) in [
            ("domain", "a..b"),
            ("domain", ".example.com"),
            ("domain", "mail_2026.example.com"),
            ("selector", "a b"),
            ("selector", ""),
        ] {
            assert!(check_dns_name(what, name, name.len()).is_err(), "{name}");
        }
        let label = "a".repeat(64);
        assert!(check_dns_name("domain", &label, 64).is_err());
        assert!(check_dns_name("domain", "example.com", 254).is_err());
    }
}
