//! An attachment's MIME type: from its `type` (a suffix, `image`, or a MIME
//! type), else from its file name; `image` tells the type from the first bytes.
//! A text type without a charset gets `charset=utf-8` when its bytes are UTF-8:
//! readers such as mail-parser decode text parts by their charset, and take
//! US-ASCII when there is none.

use crate::error::Problem;
use crate::message::Data;

use super::raw_header_problem;

/// Longest `type` of an attachment.
const MAX_TYPE: usize = 255;

/// The MIME type of an attachment: from `type` (suffix, `image`, or a MIME
/// type), else from the filename's suffix, else `application/octet-stream`;
/// with `charset=utf-8` added to a text type that has none when the bytes are
/// UTF-8.
pub(super) fn content_type(
    given: Option<&str>,
    filename: &str,
    data: &Data<'_>,
) -> Result<mime::Mime, Problem> {
    let found = declared_type(given, filename, data)?;
    if found.type_() != mime::TEXT || found.get_param(mime::CHARSET).is_some() || !is_utf8(data) {
        return Ok(found);
    }
    Ok(format!("{found}; charset=utf-8").parse().unwrap_or(found))
}

/// Whether the attachment's bytes are UTF-8, decoding base64 piece by piece.
fn is_utf8(data: &Data<'_>) -> bool {
    let text = match data {
        Data::Bytes(bytes) => return simdutf8::basic::from_utf8(bytes).is_ok(),
        Data::Base64 { text, .. } => text.as_bytes(),
    };
    // A character split between two pieces is carried over to the next.
    let mut carried: Vec<u8> = Vec::new();
    for piece in text.chunks(64 * 1024) {
        let Ok(decoded) = encodify::base64::STANDARD.decode(piece) else {
            return false;
        };
        let bytes = if carried.is_empty() {
            decoded
        } else {
            let mut joined = std::mem::take(&mut carried);
            joined.extend_from_slice(&decoded);
            joined
        };
        if let Err(error) = simdutf8::compat::from_utf8(&bytes) {
            if error.error_len().is_some() {
                return false;
            }
            carried = bytes
                .get(error.valid_up_to()..)
                .unwrap_or_default()
                .to_vec();
        }
    }
    carried.is_empty()
}

fn declared_type(
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

/// The MIME type of a PNG, JPEG, GIF, WebP or BMP file, judged by its signature.
fn sniff_image(head: &[u8]) -> Option<mime::Mime> {
    let found = if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        mime::IMAGE_PNG
    } else if head.starts_with(b"\xff\xd8\xff") {
        mime::IMAGE_JPEG
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        mime::IMAGE_GIF
    } else if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        "image/webp".parse().ok()?
    } else if head.starts_with(b"BM") {
        mime::IMAGE_BMP
    } else {
        return None;
    };
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_five_signatures() {
        let cases: &[(&[u8], Option<&str>)] = &[
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", Some("image/png")),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", Some("image/jpeg")),
            (b"GIF89a\x01\0", Some("image/gif")),
            (b"GIF87a", Some("image/gif")),
            (b"RIFF\x24\0\0\0WEBPVP8 ", Some("image/webp")),
            (b"BM\x36\0\0\0", Some("image/bmp")),
            (b"RIFF\x24\0\0\0WAVEfmt ", None),
            (b"%PDF-1.7", None),
            (b"", None),
            (b"\x89PN", None),
        ];
        for (head, expected) in cases {
            assert_eq!(
                sniff_image(head).map(|m| m.to_string()).as_deref(),
                *expected,
                "{head:?}"
            );
        }
    }

    #[test]
    fn utf8_text_gets_a_charset() {
        let encode = |bytes: &[u8]| Data::Base64 {
            text: encodify::base64::STANDARD.encode(bytes).into(),
            len: bytes.len(),
        };
        let text = "季度,报告\n".repeat(20_000);
        let cases = [
            (encode(text.as_bytes()), "a.csv", "text/csv; charset=utf-8"),
            (encode(b"plain"), "a.txt", "text/plain; charset=utf-8"),
            (encode(b"\xff\xfe"), "a.txt", "text/plain"),
            (encode(b"\xe5\xad"), "a.txt", "text/plain"),
            (
                Data::Bytes(text.clone().into_bytes()),
                "a.txt",
                "text/plain; charset=utf-8",
            ),
            (encode(text.as_bytes()), "a.pdf", "application/pdf"),
        ];
        for (data, name, expected) in cases {
            let found = content_type(None, name, &data).unwrap();
            assert_eq!(found.to_string(), expected, "{name}");
        }
        // A given charset stays.
        let given = content_type(Some("text/plain; charset=gbk"), "a.txt", &encode(b"x")).unwrap();
        assert_eq!(given.to_string(), "text/plain; charset=gbk");
    }
}
