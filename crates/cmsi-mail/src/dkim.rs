//! DKIM signing (RFC 6376, RFC 8463) of composed messages, feature `dkim`:
//! RSA-SHA256 or Ed25519-SHA256, relaxed/relaxed canonicalisation. The
//! signature is one header prepended to the message after composition, so
//! every transport sends signed bytes; [`crate::Mailer::with_dkim`] signs
//! everything it prepares.
//!
//! The signing is mail-auth's (by the mail-builder authors) on ring, the
//! crypto rustls already brings. 0.13 is its last release with a ring backend:
//! later ones offer aws-lc (a second crypto stack) or RustCrypto's `rsa` 0.9
//! (RUSTSEC-2023-0071). Its ring feature also compiles hickory's DNS resolver,
//! which nothing here calls.

use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner as Signer, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::compose::Composed;

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
    key: Key,
    algorithm: &'static str,
}

enum Key {
    Rsa(Signer<RsaKey<Sha256>, Done>),
    Ed25519(Signer<Ed25519Key, Done>),
}

/// Domain, selector and algorithm; never the key.
impl std::fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let template = match &self.key {
            Key::Rsa(signer) => &signer.template,
            Key::Ed25519(signer) => &signer.template,
        };
        f.debug_struct("DkimSigner")
            .field("domain", &template.d)
            .field("selector", &template.s)
            .field("algorithm", &self.algorithm)
            .field("headers", &template.h)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// A signer from a PEM private key (PKCS#8 RSA or Ed25519, or PKCS#1
    /// RSA), for `d=domain` and `s=selector`, signing `headers` (default:
    /// [`DEFAULT_SIGNED_HEADERS`]). The key is tried on a sample message, so
    /// that a key ring refuses (such as RSA below 2048 bits) fails here rather
    /// than at the first mail.
    pub fn from_pem(
        pem: &[u8],
        domain: &str,
        selector: &str,
        headers: Option<&[String]>,
    ) -> Result<DkimSigner, DkimError> {
        check_tag("domain", domain, |b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
        })?;
        check_tag("selector", selector, |b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'
        })?;
        let headers: Vec<String> = match headers {
            Some(names) => names.to_vec(),
            None => DEFAULT_SIGNED_HEADERS
                .iter()
                .map(|&name| name.to_owned())
                .collect(),
        };
        for name in &headers {
            // RFC 5322 field names: printable ASCII but the colon.
            check_tag("header name", name, |b| b.is_ascii_graphic() && b != b':')?;
        }
        if !headers.iter().any(|name| name.eq_ignore_ascii_case("From")) {
            return Err(DkimError::Setting(
                "the signed headers must include From (RFC 6376 §5.4)".into(),
            ));
        }
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|error| DkimError::Key(format!("not a PEM private key ({error})")))?;
        let (key, algorithm) = match der {
            PrivateKeyDer::Pkcs1(_) => (
                Key::Rsa(rsa(der, domain, selector, &headers)?),
                "rsa-sha256",
            ),
            PrivateKeyDer::Pkcs8(pkcs8) => {
                let bytes = pkcs8.secret_pkcs8_der().to_vec();
                let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes.as_slice()));
                match rsa(der, domain, selector, &headers) {
                    Ok(signer) => (Key::Rsa(signer), "rsa-sha256"),
                    Err(rsa_error) => match Ed25519Key::from_pkcs8_maybe_unchecked_der(&bytes) {
                        Ok(key) => {
                            let signer = Signer::from_key(key)
                                .domain(domain)
                                .selector(selector)
                                .headers(headers.iter().cloned());
                            (Key::Ed25519(relaxed(signer)), "ed25519-sha256")
                        }
                        Err(_) => return Err(rsa_error),
                    },
                }
            }
            _ => {
                return Err(DkimError::Key(
                    "an EC key: DKIM signs with RSA or Ed25519 (RFC 6376, RFC 8463)".into(),
                ));
            }
        };
        let signer = DkimSigner { key, algorithm };
        signer.signature(b"From: <test@example.com>\r\nSubject: key check\r\n\r\nbody\r\n")?;
        Ok(signer)
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// The `DKIM-Signature` header line(s) for `message`, CRLF-terminated.
    pub fn signature(&self, message: &[u8]) -> Result<String, DkimError> {
        let signature = match &self.key {
            Key::Rsa(signer) => signer.sign(message),
            Key::Ed25519(signer) => signer.sign(message),
        };
        signature
            .map(|signature| signature.to_header())
            .map_err(|error| DkimError::Sign(error.to_string()))
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
}

fn rsa(
    der: PrivateKeyDer<'_>,
    domain: &str,
    selector: &str,
    headers: &[String],
) -> Result<Signer<RsaKey<Sha256>, Done>, DkimError> {
    let key = RsaKey::<Sha256>::from_key_der(der).map_err(|error| {
        DkimError::Key(format!(
            "not an RSA key of 2048 to 8192 bits, nor an Ed25519 key ({error})"
        ))
    })?;
    let signer = Signer::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers(headers.iter().cloned());
    Ok(relaxed(signer))
}

fn relaxed<T: mail_auth::common::crypto::SigningKey>(signer: Signer<T, Done>) -> Signer<T, Done> {
    signer
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
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
