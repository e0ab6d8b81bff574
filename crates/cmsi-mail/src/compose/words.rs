//! RFC 2047 encoded words that every reader decodes, around encodify's
//! encoders: a "B" word that is not the last of its text carries a multiple of
//! 3 bytes, so it ends without `=` padding. GMime 3.2 (Evolution, mu) stops
//! decoding a subject at the first padded word; RFC 2047 allows either.

use encodify::rfc2047::{self, MAX_WORD_LEN, WordEncoder};
use mail_builder::Writer;

/// `=?utf-8?X?` and `?=`.
const OVERHEAD: usize = "=?utf-8?B?".len() + "?=".len();

/// Which encoding the words use.
#[derive(Debug, Clone, Copy)]
pub(super) enum Words {
    /// "Q" (this variant) or "B", whichever is shorter for the whole text.
    Shorter(WordEncoder),
    /// "B"; "Q" (this variant) only for a piece that cannot end a padding-free
    /// "B" word.
    Base64(WordEncoder),
}

/// Writes `text` as UTF-8 encoded words starting at `column`, separated by a
/// space, or by a fold (CRLF SPACE) before a word that would pass `width`
/// columns; returns the column after the last word. No word splits a
/// character (RFC 2047 §5).
pub(super) fn write_words<W: Writer>(
    w: &mut W,
    text: &str,
    column: usize,
    width: usize,
    words: Words,
) -> usize {
    let q = match words {
        Words::Shorter(q) if q.payload_len(text) <= rfc2047::B.payload_len(text) => {
            return write_q_words(w, text, column, width, q);
        }
        Words::Shorter(q) | Words::Base64(q) => q,
    };
    let mut column = column;
    let mut gap: &[u8] = b"";
    let mut rest = text;
    // Room for a payload on a line of its own.
    let fresh = (width.saturating_sub(1).min(MAX_WORD_LEN)).saturating_sub(OVERHEAD);
    while !rest.is_empty() {
        let room = width
            .saturating_sub(column + gap.len())
            .min(MAX_WORD_LEN)
            .saturating_sub(OVERHEAD);
        let taken = padding_free_prefix(rest, room / 4 * 3);
        let (taken, letter, payload) = if taken > 0 {
            let chunk = rest.get(..taken).unwrap_or_default();
            (taken, b'B', encodify::base64::STANDARD.encode(chunk))
        } else if padding_free_prefix(rest, fresh / 4 * 3) > 0 {
            // It fits a fresh line.
            (0, b'B', String::new())
        } else {
            // No padding-free piece fits even a fresh line (text such as "A股…"
            // whose running length misses every multiple of 3): the first
            // character goes as a "Q" word, and the rest starts afresh.
            let first = rest.chars().next().map_or(0, char::len_utf8);
            let mut payload = String::with_capacity(12);
            q.encode_payload(
                rest.get(..first).unwrap_or_default(),
                usize::MAX,
                &mut payload,
            );
            (first, b'Q', payload)
        };
        let fits = taken > 0 && payload.len() <= room;
        if !fits {
            if column <= 1 && gap.is_empty() {
                // Not even a fresh line holds it: cannot happen at 76 columns.
                break;
            }
            w.write(b"\r\n ");
            (column, gap) = (1, b"");
            continue;
        }
        w.write(gap);
        w.write(b"=?utf-8?");
        w.write(&[letter, b'?']);
        w.write(payload.as_bytes());
        w.write(b"?=");
        column += gap.len() + OVERHEAD + payload.len();
        gap = b" ";
        rest = rest.get(taken..).unwrap_or_default();
    }
    column
}

/// "Q" words have no padding: encodify folds them itself.
fn write_q_words<W: Writer>(
    w: &mut W,
    text: &str,
    column: usize,
    width: usize,
    q: WordEncoder,
) -> usize {
    let mut column = column;
    let mut out = String::with_capacity(text.len() * 3);
    let fold = encodify::Fold::new(width, b"\r\n ", 1);
    q.encode_words("utf-8", text, &mut column, fold, &mut out);
    w.write(out.as_bytes());
    column
}

/// Length of the longest prefix of `text` that fits `max` bytes, ends on a
/// character boundary and, unless it is all of `text`, is a multiple of 3
/// bytes long; 0 when there is none.
fn padding_free_prefix(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut len = max / 3 * 3;
    while len > 0 && !text.is_char_boundary(len) {
        len -= 3;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, column: usize) -> String {
        let mut out = Vec::new();
        write_words(&mut out, text, column, 76, Words::Shorter(rfc2047::Q_TEXT));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn non_final_base64_words_carry_whole_groups() {
        for text in [
            "蓝鲸智云告警：服务器 CPU 使用率超过 90%，请及时处理。这是一个很长的主题，用来测试折行",
            "🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀🚀",
            "a😀b😀c😀d😀e😀f😀g😀h😀i😀j😀k😀l😀m😀n😀o😀p😀q😀r😀s😀",
        ] {
            let out = words(text, 9);
            let mut decoded = String::new();
            let all: Vec<&str> = out
                .split([' ', '\r', '\n'])
                .filter(|w| !w.is_empty())
                .collect();
            for (index, word) in all.iter().enumerate() {
                let payload = word
                    .strip_prefix("=?utf-8?")
                    .unwrap()
                    .strip_suffix("?=")
                    .unwrap();
                if let Some(b) = payload.strip_prefix("B?")
                    && index + 1 < all.len()
                {
                    assert!(!b.ends_with('='), "{word} in {out}");
                }
                decoded.push_str(&rfc2047::decode_text(
                    word.as_bytes(),
                    rfc2047::utf8_charset,
                ));
            }
            assert_eq!(decoded, text);
            assert!(out.split("\r\n").all(|line| line.len() <= 76), "{out}");
        }
    }

    #[test]
    fn a_misaligned_start_goes_as_one_q_word() {
        // The running length of "A" and then CJK never is a multiple of 3.
        let text = format!("A股{}", "行情".repeat(20));
        let out = words(&text, 9);
        assert!(out.starts_with("=?utf-8?Q?A?= =?utf-8?B?"), "{out}");
        let unfolded = out.replace("\r\n", "");
        let decoded = rfc2047::decode_text(unfolded.as_bytes(), rfc2047::utf8_charset);
        assert_eq!(decoded, text);
    }

    #[test]
    fn prefixes_end_on_whole_groups() {
        assert_eq!(padding_free_prefix("abc", 10), 3);
        assert_eq!(padding_free_prefix("告警趋势", 10), 9);
        assert_eq!(padding_free_prefix("a告警", 6), 0);
        assert_eq!(padding_free_prefix("😀😀😀😀", 13), 12);
        assert_eq!(padding_free_prefix("😀😀😀😀", 11), 0);
    }
}
