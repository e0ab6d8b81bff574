//! The ESB's address and username fields: several entries in one string.

/// Splits an ESB address field into its entries.
///
/// Entries are separated by `,`, `;`, CR, LF and white space, except inside a
/// quoted string or `<…>`, and except that the words before `<addr>` are its
/// display name: `张三 <zs@example.com>, "Li, Si" <ls@example.com> ww@example.com`
/// gives three entries. Empty entries are dropped.
pub fn split_address_list(input: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    // One list of pending words, reused by every segment.
    let mut pending = Vec::new();
    split_outside(input, |segment| {
        split_segment(segment, &mut entries, &mut pending)
    });
    entries
}

/// Splits a username field on `,`, `;`, CR, LF and white space.
pub fn split_username_list(input: &str) -> impl Iterator<Item = &str> {
    input
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|name| !name.is_empty())
}

/// Calls `segment` with each piece of `input` between `,`, `;`, CR and LF
/// outside quoted strings and angle brackets.
fn split_outside<'a>(input: &'a str, mut segment: impl FnMut(&'a str)) {
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut angle = false;
    for (index, byte) in input.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match byte {
            b'\\' if quoted => escaped = true,
            b'"' if !angle => quoted = !quoted,
            b'<' if !quoted => angle = true,
            b'>' if !quoted => angle = false,
            b',' | b';' | b'\r' | b'\n' if !quoted && !angle => {
                segment(input.get(start..index).unwrap_or_default());
                start = index + 1;
            }
            // A line break always ends an entry, so that an unclosed quote or
            // bracket cannot swallow the rest of the field.
            b'\r' | b'\n' => {
                segment(input.get(start..index).unwrap_or_default());
                start = index + 1;
                quoted = false;
                angle = false;
            }
            _ => {}
        }
    }
    segment(input.get(start..).unwrap_or_default());
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Word,
    Quoted,
    Angle,
}

#[derive(Clone, Copy)]
struct Token {
    start: usize,
    end: usize,
    kind: TokenKind,
}

/// The length of the white-space character at `at`, if there is one
/// (`char::is_whitespace`, decoding only the lead bytes of Unicode spaces).
fn space_at(text: &str, at: usize) -> Option<usize> {
    match text.as_bytes().get(at)? {
        b' ' | b'\t'..=b'\r' => Some(1),
        0xC2 | 0xE1 | 0xE2 | 0xE3 => text
            .get(at..)?
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map(char::len_utf8),
        _ => None,
    }
}

/// The white-space separated tokens of one segment, before gluing; a quoted
/// string or `<…>` is one token even with spaces inside.
struct RawTokens<'s> {
    segment: &'s str,
    at: usize,
}

impl Iterator for RawTokens<'_> {
    type Item = Token;

    fn next(&mut self) -> Option<Token> {
        let bytes = self.segment.as_bytes();
        while let Some(len) = space_at(self.segment, self.at) {
            self.at += len;
        }
        let start = self.at;
        let kind = match bytes.get(start)? {
            b'"' => TokenKind::Quoted,
            b'<' => TokenKind::Angle,
            _ => TokenKind::Word,
        };
        let mut at = start + 1;
        let end = match kind {
            TokenKind::Quoted => {
                let mut escaped = false;
                loop {
                    match bytes.get(at) {
                        None => break bytes.len(),
                        Some(_) if escaped => escaped = false,
                        Some(b'\\') => escaped = true,
                        Some(b'"') => break at + 1,
                        Some(_) => {}
                    }
                    at += 1;
                }
            }
            TokenKind::Angle => memchr::memchr(b'>', bytes.get(at..).unwrap_or_default())
                .map_or(bytes.len(), |found| at + found + 1),
            TokenKind::Word => {
                // The first character is part of the word whatever it is.
                at = start + self.segment.get(start..)?.chars().next()?.len_utf8();
                while let Some(&byte) = bytes.get(at) {
                    if byte == b'"' || byte == b'<' || space_at(self.segment, at).is_some() {
                        break;
                    }
                    at += 1;
                }
                at
            }
        };
        self.at = end;
        Some(Token { start, end, kind })
    }
}

/// Calls `token` with each token of `segment`; `"john doe"@example.com`, a
/// quoted string glued to a word, is one word.
fn tokens(segment: &str, mut token: impl FnMut(Token)) {
    let mut last: Option<Token> = None;
    for next in (RawTokens { segment, at: 0 }) {
        match &mut last {
            Some(glued)
                if glued.end == next.start
                    && glued.kind != TokenKind::Angle
                    && next.kind != TokenKind::Angle =>
            {
                glued.end = next.end;
                glued.kind = TokenKind::Word;
            }
            _ => {
                if let Some(done) = last.replace(next) {
                    token(done);
                }
            }
        }
    }
    if let Some(done) = last {
        token(done);
    }
}

fn split_segment<'a>(segment: &'a str, entries: &mut Vec<&'a str>, pending: &mut Vec<Token>) {
    let slice = |start: usize, end: usize| segment.get(start..end).unwrap_or_default();
    pending.clear();
    tokens(segment, |token| {
        let text = slice(token.start, token.end);
        match token.kind {
            TokenKind::Angle => {
                let start = pending.first().map_or(token.start, |first| first.start);
                entries.push(slice(start, token.end));
                pending.clear();
            }
            TokenKind::Word if text.contains('@') => {
                entries.extend(pending.drain(..).map(|t| slice(t.start, t.end)));
                entries.push(text);
            }
            _ => pending.push(token),
        }
    });
    entries.extend(pending.drain(..).map(|t| slice(t.start, t.end)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The splitter as it was before it stopped allocating per segment: the
    /// reference the current one must agree with.
    mod reference {
        pub(super) fn split_address_list(input: &str) -> Vec<&str> {
            let mut entries = Vec::new();
            for segment in split_outside(input) {
                split_segment(segment, &mut entries);
            }
            entries
        }

        /// Splits on `,`, `;`, CR and LF outside quoted strings and angle brackets.
        fn split_outside(input: &str) -> Vec<&str> {
            let mut segments = Vec::new();
            let mut start = 0;
            let mut quoted = false;
            let mut escaped = false;
            let mut angle = false;
            for (index, byte) in input.bytes().enumerate() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match byte {
                    b'\\' if quoted => escaped = true,
                    b'"' if !angle => quoted = !quoted,
                    b'<' if !quoted => angle = true,
                    b'>' if !quoted => angle = false,
                    b',' | b';' | b'\r' | b'\n' if !quoted && !angle => {
                        segments.push(input.get(start..index).unwrap_or_default());
                        start = index + 1;
                    }
                    // A line break always ends an entry, so that an unclosed quote or
                    // bracket cannot swallow the rest of the field.
                    b'\r' | b'\n' => {
                        segments.push(input.get(start..index).unwrap_or_default());
                        start = index + 1;
                        quoted = false;
                        angle = false;
                    }
                    _ => {}
                }
            }
            segments.push(input.get(start..).unwrap_or_default());
            segments
        }

        #[derive(Clone, Copy, PartialEq, Eq)]
        enum TokenKind {
            Word,
            Quoted,
            Angle,
        }

        #[derive(Clone, Copy)]
        struct Token {
            start: usize,
            end: usize,
            kind: TokenKind,
        }

        /// Reads the white-space separated tokens of one segment; a quoted string or
        /// `<…>` is one token even with spaces inside.
        fn tokens(segment: &str) -> Vec<Token> {
            let mut tokens: Vec<Token> = Vec::new();
            let mut chars = segment.char_indices().peekable();
            while let Some(&(start, c)) = chars.peek() {
                if c.is_whitespace() {
                    chars.next();
                    continue;
                }
                let kind = match c {
                    '"' => TokenKind::Quoted,
                    '<' => TokenKind::Angle,
                    _ => TokenKind::Word,
                };
                chars.next();
                let mut end = segment.len();
                let mut escaped = false;
                while let Some(&(index, c)) = chars.peek() {
                    match kind {
                        TokenKind::Quoted => {
                            chars.next();
                            if escaped {
                                escaped = false;
                            } else if c == '\\' {
                                escaped = true;
                            } else if c == '"' {
                                end = index + 1;
                                break;
                            }
                        }
                        TokenKind::Angle => {
                            chars.next();
                            if c == '>' {
                                end = index + 1;
                                break;
                            }
                        }
                        TokenKind::Word => {
                            if c.is_whitespace() || c == '"' || c == '<' {
                                end = index;
                                break;
                            }
                            chars.next();
                        }
                    }
                }
                let token = Token { start, end, kind };
                // `"john doe"@example.com`: a quoted string glued to a word is one word.
                match tokens.last_mut() {
                    Some(last)
                        if last.end == token.start
                            && last.kind != TokenKind::Angle
                            && token.kind != TokenKind::Angle =>
                    {
                        last.end = token.end;
                        last.kind = TokenKind::Word;
                    }
                    _ => tokens.push(token),
                }
            }
            tokens
        }

        fn split_segment<'a>(segment: &'a str, entries: &mut Vec<&'a str>) {
            let slice = |start: usize, end: usize| segment.get(start..end).unwrap_or_default();
            let mut pending: Vec<Token> = Vec::new();
            for token in tokens(segment) {
                let text = slice(token.start, token.end);
                match token.kind {
                    TokenKind::Angle => {
                        let start = pending.first().map_or(token.start, |first| first.start);
                        entries.push(slice(start, token.end));
                        pending.clear();
                    }
                    TokenKind::Word if text.contains('@') => {
                        entries.extend(pending.drain(..).map(|t| slice(t.start, t.end)));
                        entries.push(text);
                    }
                    _ => pending.push(token),
                }
            }
            entries.extend(pending.drain(..).map(|t| slice(t.start, t.end)));
        }
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_reference(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "b@x.com", "张三", " ", "  ", "\u{3000}", "\u{a0}", "\t", ",", ";", "\r", "\n",
                    "\"", "\\", "<", ">", "@", "Li, Si", "<c@y.org>", "\"q\"", "é",
                ]),
                0..16,
            )
        ) {
            let input = pieces.concat();
            proptest::prop_assert_eq!(split_address_list(&input), reference::split_address_list(&input));
        }
    }

    #[test]
    fn splits_the_esb_forms() {
        let cases: &[(&str, &[&str])] = &[
            ("a@x.com", &["a@x.com"]),
            (
                "a@x.com,b@x.com;c@x.com",
                &["a@x.com", "b@x.com", "c@x.com"],
            ),
            (
                " a@x.com \r\n b@x.com\tc@x.com  ",
                &["a@x.com", "b@x.com", "c@x.com"],
            ),
            (",,;;", &[]),
            ("张三 <zs@x.com>", &["张三 <zs@x.com>"]),
            (
                "Zhang  San <zs@x.com>, ls@x.com",
                &["Zhang  San <zs@x.com>", "ls@x.com"],
            ),
            (
                "\"Li, Si\" <ls@x.com>; ww@x.com",
                &["\"Li, Si\" <ls@x.com>", "ww@x.com"],
            ),
            (
                "a@x.com Name <b@x.com> c@x.com",
                &["a@x.com", "Name <b@x.com>", "c@x.com"],
            ),
            (
                "\"john doe\"@x.com <j@x.com>",
                &["\"john doe\"@x.com", "<j@x.com>"],
            ),
            ("Name<a@x.com>", &["Name<a@x.com>"]),
            ("justaname", &["justaname"]),
            ("\"unclosed, a@x.com", &["\"unclosed, a@x.com"]),
            ("\"unclosed\na@x.com", &["\"unclosed", "a@x.com"]),
        ];
        for (input, expected) in cases {
            assert_eq!(&split_address_list(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn splits_usernames() {
        let names: Vec<_> =
            split_username_list("admin, zhangsan;lisi\r\nwangwu\u{3000}zhao").collect();
        assert_eq!(names, ["admin", "zhangsan", "lisi", "wangwu", "zhao"]);
    }
}
