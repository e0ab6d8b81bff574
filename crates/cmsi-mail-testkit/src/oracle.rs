//! Readers of our output that we did not write, and byte-level checks.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// Checks the wire rules every composed message must keep: CRLF line ends only,
/// no line over 998 octets, 7-bit clean, no NUL, and header lines that carry
/// RFC 2047 encoded words within 76 columns. Returns every violation.
pub fn wire_violations(message: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut in_headers = true;
    let mut lines = message.split(|&b| b == b'\n').enumerate().peekable();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let last = lines.peek().is_none();
        let content = match line.strip_suffix(b"\r") {
            Some(content) => content,
            None if last => line,
            None => {
                problems.push(format!("line {number}: bare LF"));
                line
            }
        };
        if content.contains(&b'\r') {
            problems.push(format!("line {number}: bare CR"));
        }
        if content.len() > 998 {
            problems.push(format!("line {number}: {} octets", content.len()));
        }
        if let Some(byte) = content.iter().find(|&&b| b >= 0x80 || b == 0) {
            problems.push(format!("line {number}: byte {byte:#04x} is not 7-bit text"));
        }
        if in_headers {
            if content.is_empty() {
                in_headers = false;
            } else if content.len() > 76 && has_encoded_word(content) {
                problems.push(format!(
                    "line {number}: {} columns with encoded words (RFC 2047 allows 76)",
                    content.len()
                ));
            }
        }
    }
    problems
}

/// Whether `line` holds an RFC 2047 encoded word, `=?charset?B|Q?text?=`
/// (RFC 2231 allows `charset*language`): a `=?` alone is not one.
pub fn has_encoded_word(line: &[u8]) -> bool {
    let token = |b: &u8| b.is_ascii_graphic() && *b != b'?';
    (0..line.len()).any(|start| {
        let Some(rest) = line.get(start..).and_then(|l| l.strip_prefix(b"=?")) else {
            return false;
        };
        let charset = rest.iter().take_while(|b| token(b)).count();
        let Some(rest) = rest.get(charset..).filter(|_| charset > 0) else {
            return false;
        };
        let Some([b'?', encoding, b'?', rest @ ..]) = Some(rest) else {
            return false;
        };
        if !matches!(encoding, b'B' | b'b' | b'Q' | b'q') {
            return false;
        }
        let text = rest.iter().take_while(|b| token(b)).count();
        rest.get(text..).is_some_and(|end| end.starts_with(b"?="))
    })
}

/// Panics, listing the violations, unless [`wire_violations`] finds none.
pub fn assert_wire_format(message: &[u8]) {
    let problems = wire_violations(message);
    assert!(
        problems.is_empty(),
        "wire format violations:\n{}\n--- message ---\n{}",
        problems.join("\n"),
        String::from_utf8_lossy(&message[..message.len().min(4000)])
    );
}

/// Parses with mail-parser (Rust), panicking if it cannot.
pub fn parse(message: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(message)
        .expect("mail-parser could not parse the message")
}

/// What Python's `email` package (policy.default) reads from a message: the
/// decoded headers, the MIME tree with each leaf's decoded content, and the
/// defects it found. See `python/read_mail.py` for the shape.
pub fn python_email(message: &[u8]) -> Value {
    let mut child = Command::new(crate::stdlib_python())
        .arg(crate::python_script("read_mail.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3 for the email oracle");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(message)
        .expect("write to python");
    let output = child.wait_with_output().expect("python email oracle");
    assert!(
        output.status.success(),
        "python email oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("oracle output is JSON")
}

/// [`python_email`], asserting that Python found no defect.
pub fn python_email_clean(message: &[u8]) -> Value {
    let report = python_email(message);
    let defects = report["defects"].as_array().cloned().unwrap_or_default();
    assert!(
        defects.is_empty(),
        "Python's email package found defects: {defects:?}\n--- message ---\n{}",
        String::from_utf8_lossy(&message[..message.len().min(4000)])
    );
    report
}

/// The leaves of a Python report's tree, depth first.
pub fn python_leaves(report: &Value) -> Vec<&Value> {
    fn walk<'v>(node: &'v Value, out: &mut Vec<&'v Value>) {
        match node["parts"].as_array() {
            Some(parts) => parts.iter().for_each(|part| walk(part, out)),
            None => out.push(node),
        }
    }
    let mut out = Vec::new();
    walk(&report["tree"], &mut out);
    out
}

/// The tree's shape as a compact string, e.g.
/// `multipart/mixed[multipart/related[text/html,image/png],application/pdf]`.
pub fn python_shape(report: &Value) -> String {
    fn shape(node: &Value) -> String {
        let own = node["content_type"].as_str().unwrap_or("?").to_owned();
        match node["parts"].as_array() {
            Some(parts) => format!(
                "{own}[{}]",
                parts.iter().map(shape).collect::<Vec<_>>().join(",")
            ),
            None => own,
        }
    }
    shape(&report["tree"])
}

/// Asserts that a server stored exactly the bytes we sent. SMTP needs a line
/// end before the final dot, so a stored copy may carry one CRLF more.
pub fn assert_delivered(stored: &[u8], sent: &[u8]) {
    let same = stored == sent || stored.strip_suffix(b"\r\n") == Some(sent);
    assert!(
        same,
        "delivered bytes differ from the composed ones ({} stored, {} sent)",
        stored.len(),
        sent.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_are_told_from_look_alikes() {
        for word in [
            "=?utf-8?B?5byg5LiJ?=",
            "x =?UTF-8?q?a=20b?= y",
            "=?utf-8*zh?Q??=",
        ] {
            assert!(has_encoded_word(word.as_bytes()), "{word}");
        }
        for text in [
            "de$$=?$$ve@example.com",
            "=?utf-8?X?abc?=",
            "=??B?abc?=",
            "=?utf-8?B?a b?=",
            "=?utf-8?B?abc",
        ] {
            assert!(!has_encoded_word(text.as_bytes()), "{text}");
        }
    }
}
