//! Base64 in requests: the body's, decoded; an attachment's, checked and kept
//! as it is when canonical (composition re-wraps it without decoding).

use std::borrow::Cow;

use encodify::base64;

use crate::error::Problem;
use crate::message::Data;

fn has_white_space(text: &str) -> bool {
    text.bytes().any(|byte| byte.is_ascii_whitespace())
}

/// Decodes standard base64, tolerating line breaks and other white space.
pub(super) fn decode_base64(text: &str) -> Result<Vec<u8>, Problem> {
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
pub(super) fn attachment_data(content: Cow<'_, str>) -> Result<Data<'_>, Problem> {
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
    // One SIMD pass that writes nothing (padding and the unused bits of the
    // last symbol are checked too); the decoding below runs only to name the
    // fault of text it refuses.
    if let Ok(len) = base64_simd::STANDARD.decoded_length(text)
        && base64_simd::STANDARD.check(text).is_ok()
    {
        return Ok(len);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD check accepts exactly the canonical base64 that decoding accepts.
    #[test]
    fn the_fast_check_agrees_with_decoding() {
        let mut rng = fastrand::Rng::with_seed(5);
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ \n";
        let mut texts: Vec<Vec<u8>> = [
            "",
            "=",
            "==",
            "QQ==",
            "QR==",
            "QUI=",
            "QUJ=",
            "QUJD",
            "QQ=A",
            "Q===",
            "QUJD====",
            "QUJDQQ==QUJD",
            "QQ",
            "QUJ",
            "====",
            "QUJD\n",
            "ëQ==",
        ]
        .iter()
        .map(|text| text.as_bytes().to_vec())
        .collect();
        for _ in 0..20_000 {
            let len = rng.usize(0..40);
            let text: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            texts.push(text);
        }
        for len in [0, 1, 2, 3, 47, 48, 49, 200] {
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            texts.push(base64::STANDARD.encode(&bytes).into_bytes());
        }
        for text in texts {
            let fast = base64_simd::STANDARD
                .decoded_length(&text)
                .ok()
                .filter(|_| base64_simd::STANDARD.check(&text).is_ok());
            let slow = base64::STANDARD.decode(&text).ok().map(|bytes| bytes.len());
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&text));
        }
    }
}
