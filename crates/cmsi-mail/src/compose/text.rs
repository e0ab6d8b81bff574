//! The plain-text alternative of an HTML body: html2text at 78 columns, links
//! kept as numbered references, CJK wrapped by display width. HTML-only mail is
//! penalised by spam filters (SpamAssassin `MIME_HTML_ONLY`) and unreadable in
//! text clients.
//!
//! html2text's cost grows with the square of the nesting depth and is several
//! hundred nanoseconds per octet of table markup, so its input is bounded: at
//! most [`MAX_HTML`] octets (the text of longer HTML ends with a `[…]` line),
//! and elements nested deeper than [`MAX_DEPTH`] lose their tags (their text
//! stays). The output is bounded too ([`max_len`]), so that the size estimate
//! of a message stays a true upper bound.

use std::borrow::Cow;

/// Columns of the text (RFC 5322 §2.1.1 recommends 78).
const WIDTH: usize = 78;
/// Octets of HTML converted; the rest is only in the HTML part.
pub(super) const MAX_HTML: usize = 64 * 1024;
/// Elements nested deeper than this lose their tags before conversion.
pub(super) const MAX_DEPTH: usize = 100;
/// Ends a text whose HTML, or whose conversion, was cut.
const CUT: &str = "\r\n[…]\r\n";

/// The most octets [`text_alternative`] returns for HTML of `html_len` octets.
pub(super) fn max_len(html_len: usize) -> usize {
    2 * html_len.min(MAX_HTML) + 4096
}

/// The text of `html` with CRLF line ends, or `None` when it has none to show
/// (or html2text fails).
pub(super) fn text_alternative(html: &str) -> Option<String> {
    let (input, cut) = bounded(html);
    let text = html2text::config::plain()
        .allow_width_overflow()
        .no_table_borders()
        .string_from_read(input.as_bytes(), WIDTH)
        .ok()?;
    if text.trim().is_empty() {
        return None;
    }
    let limit = max_len(html.len());
    let mut out = String::with_capacity(text.len() + text.len() / 16 + CUT.len());
    let mut cut = cut;
    for line in text.lines() {
        if out.len() + line.len() + 2 > limit - CUT.len() {
            let room = (limit - CUT.len()).saturating_sub(out.len());
            let mut end = room.min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            out.push_str(line.get(..end).unwrap_or_default());
            cut = true;
            break;
        }
        out.push_str(line.trim_end());
        out.push_str("\r\n");
    }
    if cut {
        let kept = out.trim_end().len();
        out.truncate(kept);
        out.push_str(CUT);
    }
    Some(out)
}

/// At most [`MAX_HTML`] octets of `html`, cut before a tag, with the tags of
/// elements nested deeper than [`MAX_DEPTH`] removed; and whether it was cut.
///
/// The nesting is counted by a linear scan, not a parser: elements whose end
/// tag is optional (`p`, `li`, `td`, …) and void elements are not counted,
/// since the parser closes them by itself; comments and the text of `script`
/// and `style` are skipped.
fn bounded(html: &str) -> (Cow<'_, str>, bool) {
    let mut end = html.len();
    let cut = end > MAX_HTML;
    if cut {
        end = MAX_HTML;
        while !html.is_char_boundary(end) {
            end -= 1;
        }
        end = memchr::memrchr(b'<', html.as_bytes().get(..end).unwrap_or_default()).unwrap_or(end);
    }
    let source = html.get(..end).unwrap_or_default();
    let bytes = source.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(offset) = memchr::memchr(b'<', bytes.get(at..).unwrap_or_default()) {
        let open = at + offset;
        let rest = bytes.get(open + 1..).unwrap_or_default();
        if rest.starts_with(b"!--") {
            at = memchr::memmem::find(rest, b"-->")
                .map_or(bytes.len(), |close| open + 1 + close + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest
            .get(name_start..)
            .unwrap_or_default()
            .iter()
            .take_while(|byte| byte.is_ascii_alphanumeric())
            .count();
        let name = rest
            .get(name_start..name_start + name_len)
            .unwrap_or_default();
        if name.first().is_none_or(|byte| !byte.is_ascii_alphabetic()) {
            at = open + 1;
            continue;
        }
        let tag_end = memchr::memchr(b'>', rest).map_or(bytes.len(), |close| open + 1 + close + 1);
        at = tag_end;
        let self_closing = bytes.get(tag_end.saturating_sub(2)) == Some(&b'/');
        if !closing && is_raw_text(name) {
            at = raw_text_end(bytes, tag_end, name);
            continue;
        }
        if is_uncounted(name) || (!closing && self_closing) {
            continue;
        }
        let deep = if closing {
            let deep = depth > MAX_DEPTH;
            depth = depth.saturating_sub(1);
            deep
        } else {
            depth += 1;
            depth > MAX_DEPTH
        };
        if deep {
            let kept = out.get_or_insert_with(|| String::with_capacity(source.len()));
            kept.push_str(source.get(copied..open).unwrap_or_default());
            copied = tag_end;
        }
    }
    match out {
        Some(mut kept) => {
            kept.push_str(source.get(copied..).unwrap_or_default());
            (Cow::Owned(kept), cut)
        }
        None => (Cow::Borrowed(source), cut),
    }
}

/// Elements that hold raw text up to their end tag.
fn is_raw_text(name: &[u8]) -> bool {
    [&b"script"[..], b"style", b"textarea", b"title", b"xmp"]
        .iter()
        .any(|raw| name.eq_ignore_ascii_case(raw))
}

/// Where the raw text of `name`, starting at `from`, ends: at its end tag.
fn raw_text_end(bytes: &[u8], from: usize, name: &[u8]) -> usize {
    let mut at = from;
    while let Some(offset) = memchr::memmem::find(bytes.get(at..).unwrap_or_default(), b"</") {
        let tag = at + offset;
        let candidate = bytes.get(tag + 2..tag + 2 + name.len()).unwrap_or_default();
        if candidate.eq_ignore_ascii_case(name) {
            return tag;
        }
        at = tag + 2;
    }
    bytes.len()
}

/// Void elements, and elements the parser closes by itself when a sibling
/// starts: they never make the tree deeper.
fn is_uncounted(name: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"area",
        b"base",
        b"br",
        b"col",
        b"embed",
        b"hr",
        b"img",
        b"input",
        b"link",
        b"meta",
        b"param",
        b"source",
        b"track",
        b"wbr",
        b"p",
        b"li",
        b"dt",
        b"dd",
        b"td",
        b"th",
        b"tr",
        b"tbody",
        b"thead",
        b"tfoot",
        b"colgroup",
        b"option",
        b"optgroup",
        b"rb",
        b"rp",
        b"rt",
        b"rtc",
        b"html",
        b"head",
        b"body",
    ];
    NAMES.iter().any(|void| name.eq_ignore_ascii_case(void))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_references_and_cjk_is_kept() {
        let html = "<h1>蓝鲸监控周报</h1><p>本周共发生告警 <b>42</b> 次。请登录\
                    <a href=\"https://bk.example.com/alarms\">监控平台</a>查看。</p>\
                    <table><tr><th>主机</th><th>CPU</th></tr><tr><td>web-01</td><td>93%</td></tr></table>";
        let text = text_alternative(html).unwrap();
        assert!(text.contains("蓝鲸监控周报"), "{text}");
        assert!(text.contains("[监控平台][1]"), "{text}");
        assert!(
            text.contains("[1]: https://bk.example.com/alarms"),
            "{text}"
        );
        assert!(text.contains("web-01"), "{text}");
        assert!(!text.contains('<'), "{text}");
        assert!(
            text.split("\r\n")
                .all(|line| !line.contains('\n') && !line.contains('\r'))
        );
    }

    #[test]
    fn nothing_to_show_gives_no_text() {
        assert_eq!(text_alternative("<div><br></div>"), None);
        assert_eq!(text_alternative("<style>p { color: red }</style>"), None);
    }

    #[test]
    fn deep_tags_are_dropped_and_their_text_kept() {
        let html = format!("{}deep text{}", "<div>".repeat(5000), "</div>".repeat(5000));
        let (input, cut) = bounded(&html);
        assert!(!cut);
        assert_eq!(input.matches("<div>").count(), MAX_DEPTH);
        assert_eq!(input.matches("</div>").count(), MAX_DEPTH);
        assert!(text_alternative(&html).unwrap().contains("deep text"));
        // Uncounted and raw-text elements do not count.
        let html = format!(
            "<ul>{}</ul><script>{}</script>",
            "<li>x".repeat(500),
            "<div>".repeat(500)
        );
        assert!(matches!(bounded(&html).0, Cow::Borrowed(_)));
    }

    #[test]
    fn long_html_is_cut_before_a_tag_and_says_so() {
        let html = "<p>word word word</p>".repeat(10_000);
        let (input, cut) = bounded(&html);
        assert!(cut && input.len() <= MAX_HTML && input.ends_with("</p>"));
        let text = text_alternative(&html).unwrap();
        assert!(text.ends_with(CUT), "{}", &text[text.len() - 40..]);
        assert!(text.len() <= max_len(html.len()));
    }

    #[test]
    fn the_output_is_bounded() {
        // Short cells are padded to the width of the longest in their column.
        let html = format!(
            "<table><tr><td>{}<td>x{}</table>",
            "long ".repeat(7),
            "<tr><td>a<td>b".repeat(3000)
        );
        let text = text_alternative(&html).unwrap();
        assert!(text.len() <= max_len(html.len()), "{}", text.len());
        assert!(text.ends_with(CUT));
    }
}
