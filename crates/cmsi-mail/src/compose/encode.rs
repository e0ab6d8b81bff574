//! Body encodings: CRLF canonical text, the choice between 7bit,
//! quoted-printable and base64, and base64 in 76-column lines.

use std::borrow::Cow;

use encodify::{base64, qp};
use mail_builder::Writer;

use super::{CHUNK, LINE, MAX_7BIT_LINE};

/// Content-Transfer-Encoding of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Encoding {
    SevenBit,
    QuotedPrintable,
    Base64,
}

impl Encoding {
    pub(super) fn name(self) -> &'static [u8] {
        match self {
            Encoding::SevenBit => b"7bit",
            Encoding::QuotedPrintable => b"quoted-printable",
            Encoding::Base64 => b"base64",
        }
    }
}

/// The body with CRLF line ends and the encoding that suits it.
pub(super) struct PreparedBody<'t> {
    pub(super) text: Cow<'t, [u8]>,
    pub(super) encoding: Encoding,
}

impl<'t> PreparedBody<'t> {
    pub(super) fn new(text: &'t str) -> Self {
        let text = crlf(text);
        let encoding = choose_encoding(&text);
        PreparedBody { text, encoding }
    }

    /// The body as written when it is 7bit; boundaries must not occur in it.
    pub(super) fn literal(&self) -> Option<&[u8]> {
        (self.encoding == Encoding::SevenBit).then_some(&self.text)
    }
}

/// Text line breaks in canonical form: a lone LF or CR becomes CRLF.
fn crlf(text: &str) -> Cow<'_, [u8]> {
    let bytes = text.as_bytes();
    let canonical = match memchr::memchr(b'\r', bytes) {
        // Without CR, any LF is a bare one (text from JSON usually has LF only).
        None => memchr::memchr(b'\n', bytes).is_none(),
        Some(_) => memchr::memchr2_iter(b'\r', b'\n', bytes).all(|at| match bytes.get(at) {
            Some(b'\r') => bytes.get(at + 1) == Some(&b'\n'),
            _ => at > 0 && bytes.get(at - 1) == Some(&b'\r'),
        }),
    };
    if canonical {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut rest = bytes;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
        out.extend_from_slice(rest.get(..at).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        let skip = if rest.get(at..at + 2) == Some(b"\r\n") {
            2
        } else {
            1
        };
        rest = rest.get(at + skip..).unwrap_or_default();
    }
    out.extend_from_slice(rest);
    Cow::Owned(out)
}

/// 7bit when the text allows it, else the shorter of quoted-printable and base64.
fn choose_encoding(text: &[u8]) -> Encoding {
    if text.is_ascii() && memchr::memchr(0, text).is_none() && longest_line(text) <= MAX_7BIT_LINE {
        return Encoding::SevenBit;
    }
    // Counting stops as soon as quoted-printable is known to be longer.
    match qp::BODY.encoded_len_within(text, base64_len(text.len())) {
        Some(_) => Encoding::QuotedPrintable,
        None => Encoding::Base64,
    }
}

fn longest_line(text: &[u8]) -> usize {
    let mut longest = 0;
    let mut start = 0;
    for at in memchr::memchr_iter(b'\n', text) {
        // Line ends are CRLF here; the CR is not part of the line.
        longest = longest.max(at.saturating_sub(start + 1));
        start = at + 1;
    }
    longest.max(text.len() - start)
}

/// Length of `len` bytes as base64 in 76-column lines joined by CRLF.
pub(super) fn base64_len(len: usize) -> usize {
    let symbols = len.div_ceil(3) * 4;
    symbols + symbols.div_ceil(LINE).saturating_sub(1) * 2
}

/// Bytes as base64 in 76-column lines joined by CRLF. The pieces handed to the
/// writer fit the 64 KiB buffer of mail-builder's `IoWriter`, so streaming to a
/// file never holds more than that.
pub(super) fn write_base64<W: Writer>(w: &mut W, bytes: &[u8]) {
    let mut chunks = bytes.chunks(CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        w.append_with(base64::MIME.encoded_len(chunk.len()), |buffer| {
            base64::MIME.encode_append(chunk, buffer);
            // MIME ends every line with CRLF; the last one belongs to the
            // delimiter that follows the part.
            if last {
                buffer.truncate(buffer.len().saturating_sub(2));
            }
        });
    }
}

/// Base64 symbols in 76-column lines joined by CRLF. Canonical base64 text
/// written this way gives the same bytes as decoding it and calling
/// [`write_base64`].
pub(super) fn write_wrapped<W: Writer>(w: &mut W, symbols: &[u8]) {
    let mut pieces = symbols.chunks(CHUNK / 3 * 4).peekable();
    while let Some(piece) = pieces.next() {
        let last = pieces.peek().is_none();
        let len = piece.len() + piece.len().div_ceil(LINE) * 2;
        w.append_with(len, |buffer| {
            buffer.reserve(len);
            // Whole lines as fixed-size arrays: each line and its CRLF are
            // assembled in registers and written with one copy.
            let (lines, partial) = piece.as_chunks::<LINE>();
            for line in lines {
                let mut crlf_line = [b'\n'; LINE + 2];
                crlf_line[..LINE].copy_from_slice(line);
                crlf_line[LINE] = b'\r';
                buffer.extend_from_slice(&crlf_line);
            }
            if !partial.is_empty() {
                buffer.extend_from_slice(partial);
                buffer.extend_from_slice(b"\r\n");
            }
            if last {
                buffer.truncate(buffer.len().saturating_sub(2));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_become_crlf() {
        let cases = [
            ("a\r\nb", "a\r\nb"),
            ("a\nb\n", "a\r\nb\r\n"),
            ("a\rb", "a\r\nb"),
            ("\n\r\n\r", "\r\n\r\n\r\n"),
            ("\r\r\n\n", "\r\n\r\n\r\n"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(crlf(input).as_ref(), expected.as_bytes(), "{input:?}");
        }
        assert!(matches!(crlf("x\r\ny"), Cow::Borrowed(_)));
    }

    #[test]
    fn encoding_follows_the_content() {
        assert_eq!(choose_encoding(b"<p>Hello</p>\r\n"), Encoding::SevenBit);
        let long = "x".repeat(999);
        assert_eq!(choose_encoding(long.as_bytes()), Encoding::QuotedPrintable);
        assert_eq!(
            choose_encoding("Grüße aus Köln, and a longer mostly ASCII sentence".as_bytes()),
            Encoding::QuotedPrintable
        );
        // Short text with a few non-ASCII letters: base64 is shorter here.
        assert_eq!(
            choose_encoding("Grüße aus Köln, Hello world".as_bytes()),
            Encoding::Base64
        );
        assert_eq!(
            choose_encoding("蓝鲸智云欢迎您，这是一封测试邮件".as_bytes()),
            Encoding::Base64
        );
        assert_eq!(choose_encoding(b"nul\0byte"), Encoding::QuotedPrintable);
        assert_eq!(longest_line(b"ab\r\ncdef\r\n"), 4);
        assert_eq!(longest_line(b"abc"), 3);
    }

    #[test]
    fn rewrapping_equals_encoding() {
        let mut rng = fastrand::Rng::with_seed(7);
        for len in [
            0,
            1,
            2,
            3,
            56,
            57,
            58,
            114,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 5,
        ] {
            let bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
            let mut encoded = Vec::new();
            write_base64(&mut encoded, &bytes);
            let text = base64::STANDARD.encode(&bytes);
            let mut rewrapped = Vec::new();
            write_wrapped(&mut rewrapped, text.as_bytes());
            assert_eq!(encoded, rewrapped, "length {len}");
            assert_eq!(encoded.len(), base64_len(len), "length {len}");
            assert!(
                encoded
                    .split(|&b| b == b'\n')
                    .all(|line| line.len() <= LINE + 1)
            );
        }
    }
}
