//! The signing key: read from PEM (the key file is untrusted input, so every
//! path ends in a `DkimError`, never a panic), used through ring, and the
//! public half as a DNS record publishes it.

use encodify::pem;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};

use super::DkimError;

/// Larger than any PEM key DKIM can use (RSA 4096 is about 3.3 KB), so that a
/// wrong file is refused before it is decoded.
const MAX_PEM_LEN: usize = 64 * 1024;

// The algorithm OIDs of a PKCS#8 PrivateKeyInfo (the OID's DER contents).
const OID_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const OID_ED25519: &[u8] = &[0x2B, 0x65, 0x70];
const OID_EC: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

const EC_REFUSED: &str = "an EC key: DKIM signs with RSA or Ed25519 (RFC 6376, RFC 8463)";

/// A private key DKIM signs with.
pub(super) enum SigningKey {
    /// `rsa-sha256`: RSASSA-PKCS1-v1_5 with SHA-256, 2048 to 4096 bits.
    Rsa(RsaKeyPair, SystemRandom),
    /// `ed25519-sha256` (RFC 8463): Ed25519 over the SHA-256 of the data.
    Ed25519(Ed25519KeyPair),
}

impl SigningKey {
    /// The first private key of a PEM file: PKCS#8 (`PRIVATE KEY`, RSA or
    /// Ed25519) or PKCS#1 (`RSA PRIVATE KEY`).
    pub(super) fn from_pem(pem: &[u8]) -> Result<SigningKey, DkimError> {
        if pem.len() > MAX_PEM_LEN {
            return Err(key_error(format!(
                "{} bytes is not a PEM private key (a DKIM key is a few KB)",
                pem.len()
            )));
        }
        let mut other = None;
        for block in pem::STANDARD.blocks(pem) {
            let block = block.map_err(|error| {
                let at = error
                    .offset()
                    .map(|offset| format!(" at byte {offset}"))
                    .unwrap_or_default();
                key_error(format!("not a readable PEM block{at}"))
            })?;
            match block.label {
                "PRIVATE KEY" => return SigningKey::from_pkcs8(&block.contents),
                "RSA PRIVATE KEY" => return rsa(RsaKeyPair::from_der(&block.contents)),
                "EC PRIVATE KEY" => return Err(key_error(EC_REFUSED.into())),
                "ENCRYPTED PRIVATE KEY" => {
                    return Err(key_error(
                        "an encrypted private key: store it unencrypted \
                         (openssl pkey -in KEY -out dkim.pem), readable only by this service"
                            .into(),
                    ));
                }
                // What may stand beside a key: EC PARAMETERS, a CERTIFICATE.
                label => {
                    other.get_or_insert_with(|| label.to_owned());
                }
            }
        }
        Err(key_error(match other {
            Some(label) => format!("a PEM {label}, not a private key"),
            None => "not a PEM private key (-----BEGIN PRIVATE KEY-----)".into(),
        }))
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, DkimError> {
        match pkcs8_algorithm(der) {
            Some(OID_RSA) => rsa(RsaKeyPair::from_pkcs8(der)),
            Some(OID_ED25519) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(SigningKey::Ed25519)
                .map_err(|rejected| key_error(format!("not a usable Ed25519 key ({rejected})"))),
            Some(OID_EC) => Err(key_error(EC_REFUSED.into())),
            Some(_) => Err(key_error(
                "a PKCS#8 key of another algorithm: DKIM signs with RSA or Ed25519".into(),
            )),
            None => Err(key_error("a PRIVATE KEY block that is not PKCS#8".into())),
        }
    }

    /// `rsa-sha256` or `ed25519-sha256`.
    pub(super) fn algorithm(&self) -> &'static str {
        match self {
            SigningKey::Rsa(..) => "rsa-sha256",
            SigningKey::Ed25519(_) => "ed25519-sha256",
        }
    }

    /// The signature of `data`, the canonical header fields (RFC 6376 §3.7).
    pub(super) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        match self {
            SigningKey::Rsa(key, random) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, random, data, &mut signature)
                    .map_err(|_| DkimError::Sign("the RSA signature failed".into()))?;
                Ok(signature)
            }
            SigningKey::Ed25519(key) => {
                let hash = ring::digest::digest(&ring::digest::SHA256, data);
                Ok(key.sign(hash.as_ref()).as_ref().to_vec())
            }
        }
    }

    /// The TXT record of the public key: `p=` holds an RSA key's
    /// SubjectPublicKeyInfo (what `openssl pkey -pubout` writes) and the bare
    /// 32 bytes of an Ed25519 key (RFC 8463 §4.2).
    pub(super) fn dns_record(&self) -> String {
        let (kind, public) = match self {
            SigningKey::Rsa(key, _) => ("rsa", rsa_spki(key.public().as_ref())),
            SigningKey::Ed25519(key) => ("ed25519", key.public_key().as_ref().to_vec()),
        };
        format!(
            "v=DKIM1; k={kind}; p={}",
            encodify::base64::STANDARD.encode(public)
        )
    }
}

fn key_error(message: String) -> DkimError {
    DkimError::Key(message)
}

fn rsa(key: Result<RsaKeyPair, ring::error::KeyRejected>) -> Result<SigningKey, DkimError> {
    key.map(|key| SigningKey::Rsa(key, SystemRandom::new()))
        .map_err(|rejected| {
            key_error(format!(
                "not a usable RSA key ({rejected}): DKIM signs with RSA keys of 2048 to 4096 bits"
            ))
        })
}

/// The algorithm OID of a PKCS#8 PrivateKeyInfo:
/// `SEQUENCE { INTEGER version, SEQUENCE { OID algorithm, … }, … }`.
fn pkcs8_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (info, _) = der_element(der, 0x30)?;
    let (_version, rest) = der_element(info, 0x02)?;
    let (algorithm, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    Some(oid)
}

/// The contents of the DER element at the start of `input` when its tag is
/// `tag`, and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&first, rest) = input.split_first()?;
    if first != tag {
        return None;
    }
    let (&length, mut rest) = rest.split_first()?;
    let length = if length < 0x80 {
        usize::from(length)
    } else {
        // Long form: the next 1 to 4 bytes hold the length, big-endian.
        let count = usize::from(length & 0x7F);
        if count == 0 || count > 4 {
            return None;
        }
        let (bytes, tail) = rest.split_at_checked(count)?;
        rest = tail;
        bytes
            .iter()
            .fold(0usize, |length, &byte| (length << 8) | usize::from(byte))
    };
    rest.split_at_checked(length)
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo:
/// `SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { key } }`.
fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    let mut algorithm = vec![0x06, 0x09];
    algorithm.extend_from_slice(OID_RSA);
    algorithm.extend_from_slice(&[0x05, 0x00]);
    let mut bits = vec![0x00];
    bits.extend_from_slice(rsa_public_key);
    let mut inner = der(0x30, &algorithm);
    inner.extend_from_slice(&der(0x03, &bits));
    der(0x30, &inner)
}

/// One DER element: `tag`, the length of `contents`, `contents`.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match u8::try_from(contents.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let length = contents.len().to_be_bytes();
            let skip = length.iter().take_while(|&&byte| byte == 0).count();
            let significant = length.get(skip..).unwrap_or_default();
            // At most 8 bytes of usize, so the count fits the low 7 bits.
            out.push(0x80 | significant.len() as u8);
            out.extend_from_slice(significant);
        }
    }
    out.extend_from_slice(contents);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 526, 70_000] {
            let contents = vec![7u8; len];
            let encoded = der(0x04, &contents);
            let (read, rest) = der_element(&encoded, 0x04).unwrap();
            assert_eq!(read, contents.as_slice(), "{len}");
            assert!(rest.is_empty());
        }
        // Truncated, wrong tag, indefinite and overlong lengths.
        for input in [
            &[0x30, 0x05, 0x00][..],
            &[0x31, 0x00],
            &[0x30, 0x80],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x82, 0x01],
            &[],
        ] {
            assert!(der_element(input, 0x30).is_none(), "{input:?}");
        }
    }

    #[test]
    fn the_pkcs8_algorithm_is_read_without_trusting_the_input() {
        // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING {} }
        let ed25519 = [
            0x30, 0x0C, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, 0x70, 0x04, 0x00,
        ];
        assert_eq!(pkcs8_algorithm(&ed25519), Some(OID_ED25519));
        for end in 0..ed25519.len() {
            assert_eq!(pkcs8_algorithm(ed25519.get(..end).unwrap()), None, "{end}");
        }
    }

    #[test]
    fn unusable_pem_is_refused_with_a_reason() {
        let cases: [(&[u8], &str); 6] = [
            (b"", "not a PEM private key"),
            (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PUBLIC KEY"),
            (
                b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
                "an EC key",
            ),
            (
                b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
                "encrypted",
            ),
            (b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n", "PEM block"),
            (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PKCS#8"),
        ];
        for (pem, reason) in cases {
            match SigningKey::from_pem(pem) {
                Err(DkimError::Key(message)) => assert!(message.contains(reason), "{message}"),
                Err(other) => panic!("{other:?}"),
                Ok(_) => panic!("accepted {pem:?}"),
            }
        }
        let large = vec![b'A'; MAX_PEM_LEN + 1];
        assert!(SigningKey::from_pem(&large).is_err());
    }
}
