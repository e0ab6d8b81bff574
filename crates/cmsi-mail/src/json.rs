//! A JSON reader for serde, made for bodies that are mostly one or two huge
//! strings (base64 attachments): each string is scanned 64 bytes at a time for
//! `"`, `\` and control characters, with no per-byte branches, and borrowed
//! from the input when it has no escapes. The input is UTF-8 already (checked
//! once, by the caller), so strings are never checked again.
//!
//! It reads RFC 8259 JSON as serde_json does (same grammar, same refusal of
//! lone surrogates, a nesting limit of 128), which `tests` checks by comparing
//! the two on many inputs.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};

/// Deepest nesting of arrays and objects, as serde_json allows.
const MAX_DEPTH: usize = 127;

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) struct Error {
    message: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The text is not JSON.
    Syntax,
    /// The text ends too early.
    Eof,
    /// JSON, but not what the type wants (from serde).
    Data,
}

impl Error {
    /// The body is not JSON (or ends too early), as opposed to holding a value
    /// of the wrong type.
    pub(crate) fn is_syntax(&self) -> bool {
        self.kind != Kind::Data
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error {
            message: message.to_string(),
            kind: Kind::Data,
        }
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Reads one JSON value from `input` through serde.
pub(crate) struct Reader<'de> {
    input: &'de str,
    pos: usize,
    depth: usize,
}

/// A string as read: borrowed when it had no escapes.
enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> Reader<'de> {
    pub(crate) fn new(input: &'de str) -> Self {
        Reader {
            input,
            pos: 0,
            depth: 0,
        }
    }

    /// Checks that only white space follows the value.
    pub(crate) fn end(&mut self) -> Result<()> {
        match self.peek_non_space() {
            None => Ok(()),
            Some(_) => Err(self.syntax("trailing characters")),
        }
    }

    fn bytes(&self) -> &'de [u8] {
        self.input.as_bytes()
    }

    fn error_at(&self, kind: Kind, what: &str) -> Error {
        let before = self.bytes().get(..self.pos).unwrap_or_default();
        let line = memchr::memchr_iter(b'\n', before).count() + 1;
        let column = before.len() - memchr::memrchr(b'\n', before).map_or(0, |at| at + 1);
        Error {
            message: format!("{what} at line {line} column {column}"),
            kind,
        }
    }

    /// JSON by its grammar, but a value no Rust string can hold (a lone
    /// surrogate): the field holding it is wrong, and named, as for any
    /// unwanted value. The body is not broken, unless it ends here.
    fn unrepresentable(&self, what: &str) -> Error {
        if self.pos >= self.input.len() {
            return self.error_at(Kind::Eof, "EOF while parsing a string");
        }
        self.error_at(Kind::Data, what)
    }

    fn syntax(&self, what: &str) -> Error {
        if self.pos >= self.input.len() {
            return self.error_at(Kind::Eof, "EOF while parsing a value");
        }
        self.error_at(Kind::Syntax, what)
    }

    fn eof(&self, what: &str) -> Error {
        self.error_at(Kind::Eof, what)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn peek_non_space(&mut self) -> Option<u8> {
        while let Some(byte) = self.peek() {
            if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(byte);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `literal` (`null`, `true`, `false`).
    fn literal(&mut self, literal: &[u8]) -> Result<()> {
        let end = self.pos + literal.len();
        match self.bytes().get(self.pos..end) {
            Some(found) if found == literal => {
                self.pos = end;
                Ok(())
            }
            Some(_) => Err(self.syntax("expected ident")),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.syntax("recursion limit exceeded"));
        }
        self.pos += 1;
        Ok(())
    }

    /// Reads a string; `pos` is at its opening quote.
    fn string(&mut self) -> Result<Text<'de>> {
        self.pos += 1;
        let start = self.pos;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let stop = self.pos + special_at(self.bytes().get(self.pos..).unwrap_or_default());
            self.pos = stop;
            match self.peek() {
                Some(b'"') => {
                    let text = self.input.get(run..stop).unwrap_or_default();
                    self.pos += 1;
                    return Ok(match owned {
                        None => Text::Borrowed(text),
                        Some(mut owned) => {
                            owned.push_str(text);
                            Text::Owned(owned)
                        }
                    });
                }
                Some(b'\\') => {
                    // Room for the rest of a short string at once (a body with
                    // a `\n` per line has many escapes); long ones grow.
                    let rest = self.input.len() - run;
                    let owned =
                        owned.get_or_insert_with(|| String::with_capacity(rest.min(64 * 1024)));
                    owned.push_str(self.input.get(run..stop).unwrap_or_default());
                    self.pos += 1;
                    self.escape(owned)?;
                    run = self.pos;
                }
                Some(_) => {
                    return Err(self.syntax(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    /// Reads the escape after a `\` into `out`.
    fn escape(&mut self, out: &mut String) -> Result<()> {
        let Some(byte) = self.peek() else {
            return Err(self.eof("EOF while parsing a string"));
        };
        self.pos += 1;
        let simple = match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let c = match first {
                    0xD800..=0xDBFF => {
                        if self.bytes().get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return Err(
                                self.unrepresentable("lone leading surrogate in hex escape")
                            );
                        }
                        self.pos += 2;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(
                                self.unrepresentable("lone leading surrogate in hex escape")
                            );
                        }
                        0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                    }
                    0xDC00..=0xDFFF => {
                        return Err(self.unrepresentable("lone trailing surrogate in hex escape"));
                    }
                    other => other,
                };
                char::from_u32(c)
                    .ok_or_else(|| self.unrepresentable("invalid unicode code point"))?
            }
            _ => {
                self.pos -= 1;
                return Err(self.syntax("invalid escape"));
            }
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.bytes().get(self.pos..self.pos + 4) else {
            self.pos = self.input.len();
            return Err(self.eof("EOF while parsing a string"));
        };
        let mut value = 0;
        for &digit in digits {
            let Some(nibble) = char::from(digit).to_digit(16) else {
                return Err(self.syntax("invalid escape"));
            };
            value = value * 16 + nibble;
            self.pos += 1;
        }
        Ok(value)
    }

    /// Skips one value as serde_json ignores an unknown field's: its syntax
    /// checked, but numbers not converted (no range), `\u` escapes not paired
    /// into characters, and any depth (an explicit stack, no recursion), so
    /// that both accept the same requests.
    fn skip_value(&mut self) -> Result<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            let Some(byte) = self.peek_non_space() else {
                return Err(self.eof("EOF while parsing a value"));
            };
            let mut after_value = match byte {
                b'n' => self.literal(b"null").map(|()| true)?,
                b't' => self.literal(b"true").map(|()| true)?,
                b'f' => self.literal(b"false").map(|()| true)?,
                b'-' | b'0'..=b'9' => self.scan_number().map(|_| true)?,
                b'"' => self.skip_string().map(|()| true)?,
                b'[' | b'{' => {
                    self.pos += 1;
                    open.push(byte);
                    false
                }
                _ => return Err(self.syntax("expected value")),
            };
            // After a value, or just inside a bracket: close what ends here.
            loop {
                let Some(&frame) = open.last() else {
                    return Ok(());
                };
                let end = if frame == b'[' { b']' } else { b'}' };
                match self.peek_non_space() {
                    Some(b',') if after_value => {
                        self.pos += 1;
                        break;
                    }
                    Some(close) if close == end => {
                        self.pos += 1;
                        open.pop();
                        after_value = true;
                    }
                    Some(_) if after_value => {
                        return Err(self.syntax(if frame == b'[' {
                            "expected `,` or `]`"
                        } else {
                            "expected `,` or `}`"
                        }));
                    }
                    Some(_) => break,
                    None => return Err(self.eof("EOF while parsing a value")),
                }
            }
            // An object's next member starts with its key.
            if open.last() == Some(&b'{') {
                match self.peek_non_space() {
                    Some(b'"') => self.skip_string()?,
                    Some(_) => return Err(self.syntax("key must be a string")),
                    None => return Err(self.eof("EOF while parsing an object")),
                }
                match self.peek_non_space() {
                    Some(b':') => self.pos += 1,
                    Some(_) => return Err(self.syntax("expected `:`")),
                    None => return Err(self.eof("EOF while parsing an object")),
                }
            }
        }
    }

    /// Skips a string (`pos` at its opening quote), checking its escapes'
    /// syntax only.
    fn skip_string(&mut self) -> Result<()> {
        self.pos += 1;
        loop {
            self.pos += special_at(self.bytes().get(self.pos..).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            self.hex4()?;
                        }
                        Some(_) => return Err(self.syntax("invalid escape")),
                        None => return Err(self.eof("EOF while parsing a string")),
                    }
                }
                Some(_) => {
                    return Err(self.syntax(
                        "control character (\\u0000-\\u001F) found while parsing a string",
                    ));
                }
                None => return Err(self.eof("EOF while parsing a string")),
            }
        }
    }

    /// Reads past a number with JSON's grammar (`pos` at its first byte);
    /// returns where it started and whether it has a fraction or exponent.
    fn scan_number(&mut self) -> Result<(usize, bool)> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            Some(_) => return Err(self.syntax("invalid number")),
            None => return Err(self.eof("EOF while parsing a value")),
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            float = true;
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok((start, float))
    }

    /// Reads a number with JSON's grammar; `pos` is at its first byte.
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let negative = self.peek() == Some(b'-');
        let (start, float) = self.scan_number()?;
        let text = self.input.get(start..self.pos).unwrap_or_default();
        if !float {
            if negative {
                // serde_json reads `-0` as the float, keeping its sign.
                match text.parse::<i64>() {
                    Ok(0) => return visitor.visit_f64(-0.0),
                    Ok(value) => return visitor.visit_i64(value),
                    Err(_) => {}
                }
            } else if let Ok(value) = text.parse::<u64>() {
                return visitor.visit_u64(value);
            }
        }
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => visitor.visit_f64(value),
            // JSON's grammar allows it, so the body is not broken: the field
            // holding it is wrong (and named), as for any unwanted value.
            _ => Err(self.unrepresentable("number out of range")),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<()> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            Some(_) => Err(self.syntax("invalid number")),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }

    /// After a value inside an array or object: `,` or the closing `end`.
    /// Returns whether another element follows.
    fn more(&mut self, end: u8) -> Result<bool> {
        match self.peek_non_space() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(byte) if byte == end => Ok(false),
            Some(_) if end == b']' => Err(self.syntax("expected `,` or `]`")),
            Some(_) => Err(self.syntax("expected `,` or `}`")),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }

    /// Consumes the closing `end` after serde has read what it wanted.
    fn close(&mut self, end: u8) -> Result<()> {
        match self.peek_non_space() {
            Some(byte) if byte == end => {
                self.pos += 1;
                self.depth -= 1;
                Ok(())
            }
            Some(b',') => Err(self.syntax("trailing comma")),
            Some(_) => Err(self.syntax("trailing characters")),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }
}

/// Offset of the first `"`, `\` or control character in `bytes` (or its
/// length). memchr finds the first quote or backslash; the bytes before it are
/// checked for control characters with a minimum over them, which the compiler
/// turns into vector code. Windows of 64 KiB keep the second look in cache.
fn special_at(bytes: &[u8]) -> usize {
    const WINDOW: usize = 64 * 1024;
    let mut offset = 0;
    for window in bytes.chunks(WINDOW) {
        let end = memchr::memchr2(b'"', b'\\', window).unwrap_or(window.len());
        let before = window.get(..end).unwrap_or_default();
        if before.iter().fold(u8::MAX, |least, &byte| least.min(byte)) < 0x20 {
            return offset + before.iter().position(|&byte| byte < 0x20).unwrap_or(end);
        }
        if end < window.len() {
            return offset + end;
        }
        offset += window.len();
    }
    offset
}

impl<'de> de::Deserializer<'de> for &mut Reader<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.peek_non_space() {
            Some(b'n') => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            Some(b'"') => match self.string()? {
                Text::Borrowed(text) => visitor.visit_borrowed_str(text),
                Text::Owned(text) => visitor.visit_string(text),
            },
            Some(b'-' | b'0'..=b'9') => self.number(visitor),
            Some(b'[') => {
                self.enter()?;
                let value = visitor.visit_seq(Elements {
                    reader: &mut *self,
                    first: true,
                })?;
                self.close(b']')?;
                Ok(value)
            }
            Some(b'{') => {
                self.enter()?;
                let value = visitor.visit_map(Entries {
                    reader: &mut *self,
                    first: true,
                })?;
                self.close(b'}')?;
                Ok(value)
            }
            Some(_) => Err(self.syntax("expected value")),
            None => Err(self.eof("EOF while parsing a value")),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek_non_space() == Some(b'n') {
            self.literal(b"null")?;
            return visitor.visit_none();
        }
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // Unknown fields: checked as serde_json checks what it ignores.
        self.skip_value()?;
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct enum
        identifier
    }
}

struct Elements<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.first {
            self.first = false;
            match self.reader.peek_non_space() {
                Some(b']') => return Ok(None),
                None => return Err(self.reader.eof("EOF while parsing a list")),
                Some(_) => {}
            }
        } else if !self.reader.more(b']')? {
            return Ok(None);
        }
        seed.deserialize(&mut *self.reader).map(Some)
    }
}

struct Entries<'r, 'de> {
    reader: &'r mut Reader<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.first {
            self.first = false;
            if self.reader.peek_non_space() == Some(b'}') {
                return Ok(None);
            }
        } else if !self.reader.more(b'}')? {
            return Ok(None);
        }
        match self.reader.peek_non_space() {
            Some(b'"') => {}
            Some(_) => return Err(self.reader.syntax("key must be a string")),
            None => return Err(self.reader.eof("EOF while parsing an object")),
        }
        let key = match self.reader.string()? {
            Text::Borrowed(key) => seed.deserialize(de::value::BorrowedStrDeserializer::new(key)),
            Text::Owned(key) => seed.deserialize(key.into_deserializer()),
        }?;
        match self.reader.peek_non_space() {
            Some(b':') => {
                self.reader.pos += 1;
                Ok(Some(key))
            }
            Some(_) => Err(self.reader.syntax("expected `:`")),
            None => Err(self.reader.eof("EOF while parsing an object")),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        seed.deserialize(&mut *self.reader)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;

    use super::*;

    fn ours(input: &str) -> std::result::Result<serde_json::Value, Error> {
        let mut reader = Reader::new(input);
        let value = serde_json::Value::deserialize(&mut reader)?;
        reader.end()?;
        Ok(value)
    }

    fn theirs(input: &str) -> std::result::Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(input)
    }

    fn same(input: &str) {
        match (ours(input), theirs(input)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{input:?}"),
            (Err(_), Err(_)) => {}
            (a, b) => panic!("{input:?}: ours {a:?}, serde_json {b:?}"),
        }
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for input in [
            "{}",
            "[]",
            " { \"a\" : [1, -2, 3.5, 1e3, -0, 0.0, 1E+2, 2e-1, true, false, null] } ",
            r#"{"s": "plain", "e": "a\"b\\c\/d\b\f\n\r\t", "u": "\u00e9\u4e2d\ud83d\ude00"}"#,
            r#"["\ud800"]"#,
            r#"["\udc00"]"#,
            r#"["\ud800\u0041"]"#,
            r#"["\x"]"#,
            r#"["\u12G4"]"#,
            "[\"tab\tinside\"]",
            "[\"nl\ninside\"]",
            "[1,]",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\" 1}",
            "{1: 2}",
            "[01]",
            "[-]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[+1]",
            "[1e999]",
            "[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]",
            "[nul]",
            "[truex]",
            "{\"a\":1} x",
            "[",
            "[\"abc",
            "[\"abc\\",
            "{\"a\"",
            "{\"a\":",
            "",
            "   ",
            "\u{a0}[]",
            "[\"日本語 and 😀\"]",
        ] {
            same(input);
        }
    }

    #[test]
    fn nesting_is_bounded() {
        same(&format!("{}{}", "[".repeat(128), "]".repeat(128)));
        same(&format!("{}{}", "[".repeat(129), "]".repeat(129)));
        let deep = format!("{}1{}", "{\"a\":[".repeat(100_000), "]}".repeat(100_000));
        assert!(ours(&deep).is_err());
    }

    #[test]
    fn long_strings_are_borrowed_and_scanned_to_the_end() {
        for len in [0usize, 1, 63, 64, 65, 127, 128, 1000] {
            for at in [0, len / 2, len.saturating_sub(1)] {
                let text = "x".repeat(len);
                let json = format!("\"{text}\"");
                let mut reader = Reader::new(&json);
                let read: &str = Deserialize::deserialize(&mut reader).unwrap();
                assert_eq!(read, text);
                if len > 0 {
                    for special in ["\\n", "\u{1}", "\u{1f}"] {
                        let mut bad = text.clone();
                        bad.replace_range(at..=at, special);
                        same(&format!("[\"{bad}\"]"));
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn agrees_with_serde_json_on_json_like_text(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"),
                    Just("\""), Just("\\"), Just("\\u"), Just("d83d"), Just("de00"), Just("00e9"),
                    Just("n"), Just("t"), Just("1"), Just("0"), Just("-"), Just("."), Just("e"),
                    Just("+"), Just(" "), Just("\n"), Just("\u{1}"), Just("null"), Just("true"),
                    Just("\"k\""), Just("é"), Just("x"),
                ],
                0..24,
            )
        ) {
            same(&pieces.concat());
        }

        #[test]
        fn agrees_with_serde_json_on_values(value in json_value()) {
            let text = value.to_string();
            prop_assert_eq!(&ours(&text).unwrap(), &value);
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            prop_assert_eq!(ours(&pretty).unwrap(), theirs(&pretty).unwrap());
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            // Floats that both read exactly (serde_json's default parser is
            // not correctly rounded in the last place; ours is).
            (-1_000_000_000i64..1_000_000_000)
                .prop_map(|n| serde_json::Value::from(n as f64 / 64.0)),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }
}
