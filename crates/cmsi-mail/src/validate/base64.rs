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
