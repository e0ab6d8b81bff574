//! The "relaxed" canonicalisation of RFC 6376: header fields (§3.4.2) and the
//! body (§3.4.4), and the choice of the header instances a signature covers
//! (§5.4.2). A message with bare LF line ends is read as if they were CRLF.

use memchr::memchr;

/// One header field: its name (as written, before the colon) and its raw
/// value (after the colon, folds kept, without the line break that ends it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field<'a> {
    pub(super) name: &'a [u8],
    pub(super) value: &'a [u8],
}

fn is_wsp(byte: u8) -> bool {
    byte == b' ' || byte == b'\t'
}

fn trim_wsp_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    bytes.get(..end).unwrap_or_default()
}

/// The message's header fields, top to bottom, and its body (what follows the
/// first empty line; empty when there is none). A line that is neither a
/// field nor a continuation (no colon) is no field.
pub(super) fn split(message: &[u8]) -> (Vec<Field<'_>>, &[u8]) {
    let mut fields = Vec::new();
    // The field being read: where its name starts, its colon, its end.
    let mut open: Option<(usize, usize, usize)> = None;
    let mut offset = 0;
    let mut body: &[u8] = &[];
    while offset < message.len() {
        let (line_end, next) = match memchr(b'\n', message.get(offset..).unwrap_or_default()) {
            Some(at) => (offset + at, offset + at + 1),
            None => (message.len(), message.len()),
        };
        let line = message.get(offset..line_end).unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let content_end = offset + line.len();
        match line.first() {
            None => {
                body = message.get(next..).unwrap_or_default();
                break;
            }
            Some(&first) if is_wsp(first) => {
                if let Some((_, _, end)) = &mut open {
                    *end = content_end;
                }
            }
            Some(_) => {
                fields.extend(open.take().and_then(|field| field_at(message, field)));
                open = memchr(b':', line).map(|colon| (offset, offset + colon, content_end));
            }
        }
        offset = next;
    }
    fields.extend(open.and_then(|field| field_at(message, field)));
    (fields, body)
}

fn field_at(message: &[u8], (start, colon, end): (usize, usize, usize)) -> Option<Field<'_>> {
    Some(Field {
        name: message.get(start..colon)?,
        value: message.get(colon + 1..end)?,
    })
}

/// Whether `field` is named `name` (ASCII case-insensitive; white space
/// before the colon is not part of the name).
pub(super) fn is_named(field: &Field<'_>, name: &str) -> bool {
    trim_wsp_end(field.name).eq_ignore_ascii_case(name.as_bytes())
}

/// The fields a signature over `names` covers, in the order they are hashed,
/// and its `h=` list: for each name, every instance from the bottom up
/// (§5.4.2), or the name once when there is none, which signs its absence.
pub(super) fn select<'a, 'm>(
    fields: &[Field<'m>],
    names: &'a [String],
) -> (Vec<Field<'m>>, Vec<&'a str>) {
    let mut chosen = Vec::new();
    let mut listed = Vec::new();
    for name in names {
        let before = chosen.len();
        chosen.extend(fields.iter().rev().filter(|f| is_named(f, name)).copied());
        let count = (chosen.len() - before).max(1);
        listed.extend(std::iter::repeat_n(name.as_str(), count));
    }
    (chosen, listed)
}

/// Appends the relaxed form of a header field (§3.4.2): the name in lower
/// case, a colon, the value unfolded with its white-space runs made one space
/// and none at its ends. No line break: the caller adds CRLF where one goes.
pub(super) fn relaxed_header(name: &[u8], value: &[u8], out: &mut Vec<u8>) {
    out.extend(trim_wsp_end(name).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let mut space = false;
    let mut started = false;
    let mut bytes = value.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match byte {
            // Unfolding removes the line breaks of the folds.
            b'\n' => {}
            b'\r' if bytes.peek() == Some(&b'\n') => {}
            byte if is_wsp(byte) => space = true,
            byte => {
                if space && started {
                    out.push(b' ');
                }
                out.push(byte);
                space = false;
                started = true;
            }
        }
    }
}

/// Hands the relaxed form of `body` (§3.4.4) to `sink`, piece by piece: each
/// line with its white-space runs made one space and none at its end, ended
/// by CRLF; the empty lines at the end left out (so an empty body stays
/// empty).
pub(super) fn relaxed_body(body: &[u8], mut sink: impl FnMut(&[u8])) {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    let mut empty_lines = 0usize;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = trim_wsp_end(line);
        if line.is_empty() {
            empty_lines += 1;
            continue;
        }
        for _ in 0..empty_lines {
            sink(b"\r\n");
        }
        empty_lines = 0;
        let mut rest = line;
        while let Some(at) = rest.iter().position(|&b| is_wsp(b)) {
            let (word, tail) = rest.split_at_checked(at).unwrap_or((rest, &[]));
            if !word.is_empty() {
                sink(word);
            }
            sink(b" ");
            let run = tail.iter().take_while(|&&b| is_wsp(b)).count();
            rest = tail.get(run..).unwrap_or_default();
        }
        sink(rest);
        sink(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        relaxed_body(input, |piece| out.extend_from_slice(piece));
        out
    }

    fn headers(message: &[u8], names: &[&str]) -> (Vec<u8>, Vec<String>) {
        let names: Vec<String> = names.iter().map(|&n| n.to_owned()).collect();
        let (fields, _) = split(message);
        let (chosen, listed) = select(&fields, &names);
        let mut out = Vec::new();
        for field in chosen {
            relaxed_header(field.name, field.value, &mut out);
            out.extend_from_slice(b"\r\n");
        }
        (out, listed.into_iter().map(str::to_owned).collect())
    }

    /// RFC 6376 §3.4.5, relaxed/relaxed.
    #[test]
    fn the_rfc_6376_example() {
        let message = b"A: X\r\nB : Y\t\r\n\tZ  \r\n\r\n C \r\nD \t E\r\n\r\n\r\n";
        let (canonical, listed) = headers(message, &["A", "B"]);
        assert_eq!(canonical, b"a:X\r\nb:Y Z\r\n");
        assert_eq!(listed, ["A", "B"]);
        let (_, rest) = split(message);
        assert_eq!(body(rest), b" C\r\nD E\r\n");
    }

    #[test]
    fn bodies() {
        let cases: [(&[u8], &[u8]); 10] = [
            (b"", b""),
            (b"\r\n", b""),
            (b"\r\n\r\n \t\r\n", b""),
            (b"text", b"text\r\n"),
            (b"text\r\n\r\n\r\n", b"text\r\n"),
            (b"a\r\n\r\n  \r\nb\r\n\r\n", b"a\r\n\r\n\r\nb\r\n"),
            (b"\t\t lead  and  trail \t \r\n", b" lead and trail\r\n"),
            (b"bare\nline\n\n", b"bare\r\nline\r\n"),
            (b"cr\ralone\r\n", b"cr\ralone\r\n"),
            (
                "中文\u{3000}全角 \r\n".as_bytes(),
                "中文\u{3000}全角\r\n".as_bytes(),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                body(input),
                expected,
                "{}",
                String::from_utf8_lossy(input).escape_debug()
            );
        }
    }

    #[test]
    fn header_fields() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"Subject:  two  spaces  \r\n", b"subject:two spaces"),
            (b"SUBJECT\t :\tx\r\n", b"subject:x"),
            (
                b"Subject: =?utf-8?B?5ZGK?=\r\n =?utf-8?B?6K2m?=\r\n",
                b"subject:=?utf-8?B?5ZGK?= =?utf-8?B?6K2m?=",
            ),
            (b"Subject:\r\n\tfolded\r\n", b"subject:folded"),
            (b"Subject:\r\n", b"subject:"),
        ];
        for (input, expected) in cases {
            let (fields, _) = split(input);
            assert_eq!(fields.len(), 1);
            let mut out = Vec::new();
            relaxed_header(fields[0].name, fields[0].value, &mut out);
            assert_eq!(out, expected, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn repeated_fields_are_taken_from_the_bottom_up() {
        let message = b"Received: first\r\nTo: a@example.com\r\nReceived: second\r\n\
                        Received: third\r\nFrom: f@example.com\r\n\r\nbody\r\n";
        let (canonical, listed) = headers(message, &["From", "Received", "Cc", "To"]);
        assert_eq!(
            canonical,
            b"from:f@example.com\r\nreceived:third\r\nreceived:second\r\n\
              received:first\r\nto:a@example.com\r\n"
        );
        // Cc is absent: listed once, so that adding one breaks the signature.
        assert_eq!(
            listed,
            ["From", "Received", "Received", "Received", "Cc", "To"]
        );
    }

    #[test]
    fn the_header_block_ends_at_the_first_empty_line() {
        let (fields, body) = split(b"From: a\r\nnot a field\r\n x\r\nTo: b\r\n\r\nTo: c\r\n");
        let names: Vec<&[u8]> = fields.iter().map(|f| f.name).collect();
        assert_eq!(names, [&b"From"[..], b"To"]);
        assert_eq!(body, b"To: c\r\n");
        // No empty line: all header, no body; a last line without CRLF counts.
        let (fields, body) = split(b"From: a\r\nTo: b");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].value, b" b");
        assert!(body.is_empty());
        assert_eq!(split(b"").0.len(), 0);
    }
}
