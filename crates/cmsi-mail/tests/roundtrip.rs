//! Compose, then read back with parsers we did not write (mail-parser in Rust,
//! Python's `email` with policy.default) and check every byte-level rule.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use cmsi_mail::{
    ComposeOptions, Composed, Mailbox, Message, SendMailRequest, StaticDirectory, Validator,
};
use cmsi_mail_testkit::oracle::{
    assert_wire_format, parse, python_email_clean, python_leaves, python_shape,
};
use cmsi_mail_testkit::{example, message};
use encodify::base64::STANDARD as BASE64;
use mail_parser::MimeHeaders;
use serde_json::{Value, json};

const SEED: u64 = 20_261_129;
const DATE: i64 = 1_764_000_000;

/// Composes deterministically and checks the wire rules.
fn compose(value: &Value) -> (Message<'static>, Composed) {
    let message = message(value.clone());
    let composed = message.compose(&ComposeOptions::deterministic(SEED, DATE));
    assert_wire_format(&composed.bytes);
    assert!(message.estimated_len() >= composed.bytes.len());
    (message, composed)
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

/// Line breaks of any kind as LF, for comparing decoded text.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

#[test]
fn the_seed_example_is_html_with_its_text() {
    let (_, composed) = compose(&example("seed.json"));
    let raw = text(&composed.bytes);
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap();
    let names: Vec<&str> = headers
        .split("\r\n")
        .filter(|line| !line.starts_with(' '))
        .map(|line| line.split(':').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Date",
            "Message-ID",
            "MIME-Version",
            "From",
            "To",
            "Subject",
            "Content-Type",
        ]
    );
    assert!(headers.contains("Content-Type: multipart/alternative;"));
    assert!(headers.contains("MIME-Version: 1.0"));
    assert!(headers.contains("Date: Mon, 24 Nov 2025 16:00:00 +0000"));
    assert!(body.contains(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nWelcome to Blueking\r\n"
    ));
    assert!(body.contains(
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<html>Welcome to Blueking</html>\r\n"
    ));

    let parsed = parse(&composed.bytes);
    assert_eq!(parsed.subject(), Some("This is a Test"));
    assert_eq!(
        parsed
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("admin@bking.com")
    );
    assert_eq!(
        parsed.body_html(0).as_deref(),
        Some("<html>Welcome to Blueking</html>")
    );
    let message_id = parsed.message_id().unwrap();
    assert_eq!(message_id, composed.message_id);
    assert!(message_id.ends_with("@bking.com"), "{message_id}");

    assert_eq!(
        parsed.body_text(0).as_deref().map(str::trim_end),
        Some("Welcome to Blueking")
    );

    let report = python_email_clean(&composed.bytes);
    assert_eq!(
        python_shape(&report),
        "multipart/alternative[text/plain,text/html]"
    );
    assert_eq!(report["subject"], "This is a Test");
    assert_eq!(
        report["to"],
        json!([{"name": "", "address": "admin@bking.com"}])
    );
    assert_eq!(report["cc"], Value::Null);
    assert_eq!(report["bcc"], Value::Null);
    assert_eq!(report["mime_version"], "1.0");
    assert_eq!(
        report["message_id"],
        json!(format!("<{}>", composed.message_id))
    );
}

#[test]
fn the_readme_example_has_the_related_tree() {
    let request = example("send_mail.json");
    let (message, composed) = compose(&request);
    let report = python_email_clean(&composed.bytes);
    assert_eq!(
        python_shape(&report),
        "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png,image/png],application/pdf]"
    );
    let related = &report["tree"]["parts"][0];
    assert_eq!(related["params"]["type"], "multipart/alternative");
    assert_eq!(report["subject"], request["title"]);
    assert_eq!(
        report["to"],
        json!([
            {"name": "张三", "address": "zhangsan@example.com"},
            {"name": "", "address": "lisi@example.com"}
        ])
    );
    assert_eq!(
        report["cc"],
        json!([{"name": "运维, 值班", "address": "oncall@example.com"}])
    );
    assert_eq!(
        report["from"],
        json!([{"name": "蓝鲸监控", "address": "noreply@example.com"}])
    );

    let leaves = python_leaves(&report);
    let plain = leaves[0]["text"].as_str().unwrap();
    for line in [
        "[蓝鲸]",
        "# 2026 年第三季度运营报告",
        "各位好：",
        "[告警趋势]",
        "—— 蓝鲸监控平台",
    ] {
        assert!(plain.lines().any(|l| l == line), "{line:?} in {plain}");
    }
    assert_eq!(
        lf(leaves[1]["text"].as_str().unwrap()),
        lf(request["content"].as_str().unwrap())
    );
    let expected = [
        ("logo.png", "inline", Some("<logo.png>")),
        ("告警趋势.png", "inline", Some("<chart>")),
        ("季度报告（终版）.pdf", "attachment", None),
    ];
    for (index, (filename, disposition, content_id)) in expected.iter().enumerate() {
        let leaf = leaves[index + 2];
        assert_eq!(leaf["filename"], *filename);
        assert_eq!(leaf["disposition"], *disposition);
        assert_eq!(leaf["content_id"].as_str(), *content_id);
        assert_eq!(leaf["transfer_encoding"], "base64");
        assert_eq!(
            leaf["params"]["name"], *filename,
            "RFC 2047 name= of {filename}"
        );
        assert_eq!(
            leaf["base64"], request["attachments"][index]["content"],
            "bytes of {filename}"
        );
    }

    // The same, read by mail-parser.
    let parsed = parse(&composed.bytes);
    assert_eq!(parsed.subject(), request["title"].as_str());
    let attachments: Vec<_> = parsed.attachments().collect();
    assert_eq!(attachments.len(), 3);
    for (part, original) in attachments.iter().zip(message.attachments()) {
        assert_eq!(part.attachment_name(), Some(original.filename()));
        assert_eq!(part.contents(), original.bytes().as_ref());
        assert_eq!(part.content_id(), original.content_id());
    }
    assert_eq!(
        lf(&parsed.body_html(0).unwrap()),
        lf(request["content"].as_str().unwrap())
    );

    // Both filename forms are on the wire.
    let raw = text(&composed.bytes);
    assert!(
        raw.contains("filename*0*=utf-8''%E5%AD%A3"),
        "RFC 2231 filename"
    );
    assert!(raw.contains("name=\"=?utf-8?B?"), "RFC 2047 name");
}

fn simple(changes: Value) -> Value {
    let mut value = json!({"receiver": "a@example.com", "title": "t", "content": "<p>hi</p>"});
    for (key, change) in changes.as_object().unwrap() {
        value[key] = change.clone();
    }
    value
}

#[test]
fn subjects_decode_exactly() {
    let titles = [
        "周报".to_owned(),
        "【告警】主机 10.0.0.1 CPU 使用率 95% 🔥🔥".to_owned(),
        "Mixed English and 中文 and emoji 👍🏽 and ‘quotes’".to_owned(),
        "长".repeat(300),
        "x".repeat(300),
        "word ".repeat(60).trim_end().to_owned(),
        "trailing space ".to_owned(),
        "  surrounding white space is trimmed \t".to_owned(),
        "=?utf-8?B?5ZGo5oql?= looks encoded".to_owned(),
        "tab\there".to_owned(),
        "a\u{7}bell".to_owned(),
        "🎉".repeat(100),
    ];
    for title in titles {
        let (_, composed) = compose(&simple(json!({ "title": title })));
        let title = title.trim();
        let parsed = parse(&composed.bytes);
        assert_eq!(parsed.subject(), Some(title), "mail-parser");
        let report = python_email_clean(&composed.bytes);
        assert_eq!(report["subject"], json!(title), "python");
    }
}

#[test]
fn display_names_decode_exactly() {
    let names = [
        "张三",
        "Zhang, San",
        "O'Brien \"The Boss\"",
        "运维（值班）",
        "a very long display name that certainly needs folding across lines ok",
        "Ünïcödé Näme",
        "=?utf-8?B?5ZGo5oql?= looks encoded",
    ];
    for name in names {
        let quoted = format!(
            "\"{}\" <a@example.com>",
            name.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let (_, composed) = compose(&simple(json!({ "receiver": quoted, "sender": quoted })));
        let parsed = parse(&composed.bytes);
        let to = parsed.to().and_then(|a| a.first()).unwrap();
        assert_eq!(to.name(), Some(name), "mail-parser");
        assert_eq!(to.address(), Some("a@example.com"));
        let report = python_email_clean(&composed.bytes);
        assert_eq!(report["to"][0]["name"], name, "python");
        assert_eq!(report["from"][0]["name"], name, "python");
    }
}

#[test]
fn names_that_look_encoded_are_encoded() {
    // A reader would decode `=?…?=` even inside quotes, so such names, and every
    // other name in the same header, are written as encoded words. (Names are
    // kept short here: Python joins the encoded words of one long name with a
    // space, against RFC 2047 §6.2.)
    let (_, composed) = compose(&simple(json!({
        "receiver": "\"=?utf-8?B?5ZGo5oql?=\" <a@example.com>, 张三 <b@example.com>, Bob <c@example.com>",
    })));
    let parsed = parse(&composed.bytes);
    let names: Vec<_> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.name().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(names, ["=?utf-8?B?5ZGo5oql?=", "张三", "Bob"]);
    let report = python_email_clean(&composed.bytes);
    let names: Vec<_> = report["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("=?utf-8?B?5ZGo5oql?="), json!("张三"), json!("Bob")]
    );
}

#[test]
fn a_local_part_that_looks_encoded_is_refused() {
    // Python's email would show `张三@example.com` while the envelope goes to
    // `=?utf-8?B?5byg5LiJ?=@example.com`.
    for (field, value) in [
        ("receiver", "=?utf-8?B?5byg5LiJ?=@example.com"),
        ("receiver", "\"=?utf-8?q?a?=\"@example.com"),
        ("cc", "ok@example.com; x=?y@example.com"),
        ("sender", "=?utf-8?B?5byg5LiJ?=@example.com"),
    ] {
        let request = SendMailRequest::from_value(simple(json!({ field: value }))).unwrap();
        let sender = Mailbox::parse("noreply@example.com").unwrap();
        let error = Validator::new(sender, &StaticDirectory::new())
            .validate(request)
            .unwrap_err();
        let error = error.to_string();
        assert!(
            error.starts_with(&format!("{field}: ")) && error.contains("encoded word"),
            "{value}: {error}"
        );
    }
    // `=` and `?` on their own stay allowed (VERP and SRS addresses use `=`),
    // and every reader shows the address the envelope goes to.
    let addresses = [
        "bounce+user=example.com@lists.example.com",
        "what?=@example.com",
        "a?b=c@example.com",
        "\"x?= y\"@example.com",
    ];
    let (message, composed) = compose(&simple(json!({ "receiver": addresses })));
    assert_eq!(message.envelope().recipients(), addresses);
    let report = python_email_clean(&composed.bytes);
    let shown: Vec<&str> = report["to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap())
        .collect();
    assert_eq!(shown, addresses, "python");
    let parsed = parse(&composed.bytes);
    let shown: Vec<&str> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap())
        .collect();
    assert_eq!(shown, addresses, "mail-parser");
}

#[test]
fn idn_domains_are_idna_encoded() {
    let (_, composed) = compose(&simple(json!({"receiver": "用户 <info@例子.测试>"})));
    let raw = text(&composed.bytes);
    assert!(raw.contains("<info@xn--fsqu00a.xn--0zwm56d>"), "{raw}");
    let report = python_email_clean(&composed.bytes);
    assert_eq!(report["to"][0]["address"], "info@xn--fsqu00a.xn--0zwm56d");
}

#[test]
fn bodies_decode_exactly_whatever_the_encoding() {
    let bodies = [
        ("<p>plain ascii</p>", "7bit"),
        (
            "<p>蓝鲸智云，欢迎您！这是一封中文邮件。</p>\n<p>第二段。</p>",
            "base64",
        ),
        (
            &*format!("<p>{}</p>", "long line ".repeat(200)),
            "quoted-printable",
        ),
        (
            "Grüße aus Köln; a mostly ASCII letter with a few accents, très bien.",
            "quoted-printable",
        ),
        ("line one\nline two\rline three\r\n", "7bit"),
        ("ends without newline", "7bit"),
        ("trailing spaces   \nand tabs\t\t\n", "7bit"),
        (".\n..\nFrom the start\n", "7bit"),
        (
            "--=_looks-like-a-boundary\r\n--=_looks-like-a-boundary--\r\n",
            "7bit",
        ),
        ("nul \0 inside", "quoted-printable"),
    ];
    for format in ["Html", "Text"] {
        for (body, encoding) in bodies {
            let (_, composed) = compose(&simple(json!({ "content": body, "body_format": format })));
            let raw = text(&composed.bytes);
            assert!(
                raw.contains(&format!("Content-Transfer-Encoding: {encoding}\r\n")),
                "{body:?} should be {encoding}"
            );
            let expected = lf(body);
            let parsed = parse(&composed.bytes);
            let decoded = if format == "Html" {
                parsed.body_html(0)
            } else {
                parsed.body_text(0)
            }
            .unwrap();
            assert_eq!(lf(&decoded), expected, "mail-parser, {format} {body:?}");
            let report = python_email_clean(&composed.bytes);
            let leaves = python_leaves(&report);
            assert_eq!(
                leaves.last().unwrap()["text"].as_str().map(lf),
                Some(expected),
                "python, {format} {body:?}"
            );
        }
    }
}

#[test]
fn base64_content_is_decoded_before_composing() {
    let body = "<p>你好</p>";
    let (_, composed) = compose(&simple(json!({
        "content": BASE64.encode(body.as_bytes()),
        "is_content_base64": true,
    })));
    assert_eq!(parse(&composed.bytes).body_html(0).as_deref(), Some(body));
}

fn png() -> String {
    example("send_mail.json")["attachments"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn inline_images_alone_give_a_related_top_level() {
    let (_, composed) = compose(&simple(json!({
        "content": "<img src=\"cid:logo.png\">",
        "attachments": [{"filename": "logo.png", "content": png()}],
    })));
    let report = python_email_clean(&composed.bytes);
    assert_eq!(
        python_shape(&report),
        "multipart/related[text/html,image/png]"
    );
    assert_eq!(report["tree"]["params"]["type"], "text/html");
    let leaves = python_leaves(&report);
    assert_eq!(leaves[1]["content_id"], "<logo.png>");
    assert_eq!(leaves[1]["disposition"], "inline");
}

/// The text/plain part of an HTML message, as Python reads it.
fn text_part(composed: &Composed) -> String {
    let report = python_email_clean(&composed.bytes);
    let leaves = python_leaves(&report);
    let leaf = leaves
        .iter()
        .find(|leaf| leaf["content_type"] == "text/plain")
        .expect("a text/plain part");
    leaf["text"].as_str().unwrap().to_owned()
}

#[test]
fn a_cjk_newsletter_reads_as_text() {
    let html = "<html><head><style>p { color: #333 }</style></head><body>\
        <h1>蓝鲸周刊 第 48 期</h1>\
        <p>本周要点：<b>监控平台</b>发布 3.9 版本，告警收敛规则更易配置。\
        详情请见<a href=\"https://bk.example.com/news/48\">发布说明</a>。</p>\
        <ul><li>新增：按业务拓扑聚合告警</li><li>修复：夜间值班表偶尔不同步</li></ul>\
        <table><tr><th>指标</th><th>本周</th></tr><tr><td>可用率</td><td>99.98%</td></tr></table>\
        <p>退订请点<a href=\"https://bk.example.com/unsubscribe\">这里</a>。</p></body></html>";
    let (_, composed) = compose(&simple(json!({"title": "蓝鲸周刊", "content": html})));
    let text = text_part(&composed);
    for expected in [
        "# 蓝鲸周刊 第 48 期",
        "* 新增：按业务拓扑聚合告警",
        "* 修复：夜间值班表偶尔不同步",
        "[1]: https://bk.example.com/news/48",
        "[2]: https://bk.example.com/unsubscribe",
    ] {
        assert!(
            text.lines().any(|line| line == expected),
            "{expected:?} in\n{text}"
        );
    }
    assert!(
        text.contains("[发布说明][1]") && text.contains("**监控平台**"),
        "{text}"
    );
    assert!(text.contains("可用率") && text.contains("99.98%"), "{text}");
    assert!(!text.contains("color") && !text.contains('<'), "{text}");
    // 78 columns, CJK counted as two.
    for line in text.lines() {
        let width: usize = line.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
        assert!(width <= 78 || !line.contains(' '), "{line:?}");
    }
}

#[test]
fn a_pathological_html_converts_within_its_bounds() {
    // Nesting first, then a huge table: the converted first 64 KiB hold both.
    for nesting in ["<div><span>".repeat(2_000), "<table><tr><td>".repeat(3_000)] {
        let mut html = nesting;
        html.push_str("innermost<table>");
        while html.len() < 1_000_000 {
            html.push_str("<tr><td>告警</td><td>x</td></tr>");
        }
        let (message, composed) = compose(&simple(json!({"content": html})));
        assert!(message.estimated_len() >= composed.bytes.len());
        let text = text_part(&composed);
        assert!(
            text.contains("innermost") && text.contains("告警"),
            "{}",
            &text[..200]
        );
        assert!(text.trim_end().ends_with("[…]"), "the text says it was cut");
        assert!(text.len() < 2 * 64 * 1024 + 4096, "{}", text.len());
    }
}

/// The `cid:` references of an HTML text.
fn cid_references(html: &str) -> Vec<String> {
    html.split("cid:")
        .skip(1)
        .map(|rest| rest.split(['"', '\'', ')']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_cid_names_a_part_whatever_the_filename() {
    let names = ["告警趋势.png", "（全角）图.gif", "my logo.png"];
    let percent = |name: &str| {
        name.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'.' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let html: String = names
        .iter()
        .map(|name| {
            format!(
                "<img src=\"cid:{name}\"><div style=\"background:url('cid:{}')\"></div>",
                percent(name)
            )
        })
        .collect();
    let attachments: Vec<Value> = names
        .iter()
        .map(|name| json!({"filename": name, "content": png()}))
        .collect();
    let (message, composed) = compose(&simple(json!({
        "content": html,
        "attachments": attachments,
    })));
    for attachment in message.attachments() {
        assert!(attachment.content_id().unwrap().is_ascii());
    }

    let report = python_email_clean(&composed.bytes);
    let leaves = python_leaves(&report);
    let ids: Vec<String> = leaves
        .iter()
        .filter_map(|leaf| leaf["content_id"].as_str())
        .map(|id| id.trim_matches(['<', '>']).to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    let html_leaf = leaves
        .iter()
        .find(|leaf| leaf["content_type"] == "text/html")
        .unwrap();
    let references = cid_references(html_leaf["text"].as_str().unwrap());
    assert_eq!(references.len(), 6);
    for reference in &references {
        assert!(
            ids.contains(reference),
            "python: cid:{reference} not in {ids:?}"
        );
    }
    // Each name's two spellings name the same part.
    for pair in references.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }

    let parsed = parse(&composed.bytes);
    let parser_ids: Vec<&str> = parsed
        .attachments()
        .filter_map(|part| part.content_id())
        .collect();
    let html = parsed.body_html(0).unwrap();
    for reference in cid_references(&html) {
        assert!(
            parser_ids.contains(&reference.as_str()),
            "mail-parser: cid:{reference} not in {parser_ids:?}"
        );
    }
    // Given Content-IDs stay as they are, and so do the references to them.
    let (message, _) = compose(&simple(json!({
        "content": "<img src=\"cid:chart\">",
        "attachments": [{"filename": "告警趋势.png", "content": png(), "content_id": "chart"}],
    })));
    assert_eq!(message.attachments()[0].content_id(), Some("chart"));
    assert_eq!(message.body(), "<img src=\"cid:chart\">");
}

#[test]
fn a_text_body_keeps_inline_parts_in_mixed() {
    let (_, composed) = compose(&simple(json!({
        "body_format": "Text",
        "content": "see the logo",
        "attachments": [
            {"filename": "logo.png", "content": png()},
            {"filename": "a.txt", "content": "aGk="},
        ],
    })));
    let report = python_email_clean(&composed.bytes);
    assert_eq!(
        python_shape(&report),
        "multipart/mixed[text/plain,image/png,text/plain]"
    );
    let leaves = python_leaves(&report);
    assert_eq!(leaves[1]["disposition"], "inline");
    assert_eq!(leaves[2]["disposition"], "attachment");
    assert_eq!(leaves[2]["filename"], "a.txt");
}

#[test]
fn attachments_only_give_a_flat_mixed() {
    let (_, composed) = compose(&simple(json!({
        "attachments": [
            {"filename": "a.pdf", "content": "JVBERi0="},
            {"filename": "b.png", "content": png(), "disposition": "attachment"},
        ],
    })));
    let report = python_email_clean(&composed.bytes);
    assert_eq!(
        python_shape(&report),
        "multipart/mixed[multipart/alternative[text/plain,text/html],application/pdf,image/png]"
    );
}

#[test]
fn filenames_survive_both_readers() {
    let names = [
        "季度报告（终版）.pdf".to_owned(),
        "report with spaces.pdf".to_owned(),
        "\"quoted\" name; with=specials.txt".to_owned(),
        "中文 名称 with spaces 【2026】.xlsx".to_owned(),
        format!("{}.pdf", "很长的文件名".repeat(16)),
        format!("{}.txt", "a".repeat(200)),
        "emoji 📎 file.bin".to_owned(),
        "ümlaut.txt".to_owned(),
    ];
    for name in names {
        let (_, composed) = compose(&simple(json!({
            "attachments": [{"filename": name, "content": "aGVsbG8="}],
        })));
        let parsed = parse(&composed.bytes);
        let part = parsed.attachments().next().unwrap();
        assert_eq!(part.attachment_name(), Some(name.as_str()), "mail-parser");
        assert_eq!(part.contents(), b"hello");
        let report = python_email_clean(&composed.bytes);
        let leaf = *python_leaves(&report).last().unwrap();
        assert_eq!(leaf["filename"], json!(name), "python filename");
        assert_eq!(leaf["params"]["name"], json!(name), "python name=");
    }
}

#[test]
fn attachment_types_on_the_wire() {
    let (_, composed) = compose(&simple(json!({
        "attachments": [
            {"filename": "a.bin", "content": png(), "type": "image"},
            {"filename": "b.csv", "content": "YSxi", "type": "text/csv; charset=utf-8"},
            {"filename": "c", "content": "AA=="},
        ],
    })));
    let report = python_email_clean(&composed.bytes);
    let leaves = python_leaves(&report);
    let types: Vec<_> = leaves
        .iter()
        .map(|leaf| leaf["content_type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("text/plain"),
            json!("text/html"),
            json!("image/png"),
            json!("text/csv"),
            json!("application/octet-stream")
        ]
    );
    assert_eq!(leaves[3]["params"]["charset"], "utf-8");
}

#[test]
fn large_attachments_round_trip() {
    let mut rng = fastrand::Rng::with_seed(3);
    let bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..))
        .take(3 << 20)
        .collect();
    let (_, composed) = compose(&simple(json!({
        "attachments": [{"filename": "big.bin", "content": BASE64.encode(&bytes)}],
    })));
    let parsed = parse(&composed.bytes);
    assert_eq!(
        parsed.attachments().next().unwrap().contents(),
        bytes.as_slice()
    );
}

#[test]
fn cc_only_when_present_and_never_bcc() {
    let (_, composed) = compose(&simple(json!({})));
    let raw = text(&composed.bytes);
    assert!(!raw.contains("\r\nCc:"));
    assert!(!raw.to_ascii_lowercase().contains("\r\nbcc:"));
    let (_, composed) = compose(&simple(json!({"cc": "c@example.com, d@example.com"})));
    let parsed = parse(&composed.bytes);
    let cc: Vec<_> = parsed
        .cc()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(cc, ["c@example.com", "d@example.com"]);
}

#[test]
fn a_line_break_in_the_title_never_reaches_the_headers() {
    // mail-builder has written a CRLF inside a subject straight into the header
    // block; validation must stop it first.
    for title in [
        "Hi\r\nBcc: victim@example.com",
        "Hi\nBcc: victim@example.com",
        "Hi\rX: y",
    ] {
        let request = SendMailRequest::from_value(simple(json!({ "title": title }))).unwrap();
        let directory = StaticDirectory::new();
        let result =
            Validator::new(Mailbox::parse("a@example.com").unwrap(), &directory).validate(request);
        let error = result.expect_err("a title with a line break must be refused");
        assert_eq!(error.to_string(), "title: must not contain a line break");
    }
}

#[test]
fn deterministic_mode_repeats_itself() {
    let request = example("send_mail.json");
    let message = message(request.clone());
    let first = message.compose(&ComposeOptions::deterministic(1, DATE));
    let again = message.compose(&ComposeOptions::deterministic(1, DATE));
    let other = message.compose(&ComposeOptions::deterministic(2, DATE));
    assert_eq!(first, again);
    assert_ne!(first.bytes, other.bytes);
    assert_ne!(first.message_id, other.message_id);
    // Without a seed, every message differs.
    let random_a = message.compose(&ComposeOptions::new());
    let random_b = message.compose(&ComposeOptions::new());
    assert_ne!(random_a.message_id, random_b.message_id);
}

#[test]
fn the_rewrap_fast_path_equals_the_plain_path() {
    // Single-line canonical base64 takes the fast path (re-wrapped, never
    // decoded); the same bytes wrapped at 76 columns with LF, as Python's
    // base64.encodebytes writes them, are decoded and encoded again.
    let mut rng = fastrand::Rng::with_seed(11);
    for len in [0usize, 1, 2, 3, 57, 1000, 58_368, 200_001] {
        let bytes: Vec<u8> = std::iter::repeat_with(|| rng.u8(..)).take(len).collect();
        let single = BASE64.encode(&bytes);
        let wrapped: String = single
            .as_bytes()
            .chunks(76)
            .map(|line| format!("{}\n", text(line)))
            .collect();
        let request = |content: &str| {
            simple(json!({
                "attachments": [
                    {"filename": "a.png", "content": png()},
                    {"filename": "data.bin", "content": content},
                ],
            }))
        };
        let (_, fast) = compose(&request(&single));
        let (_, plain) = compose(&request(&wrapped));
        assert_eq!(fast.bytes, plain.bytes, "length {len}");
    }
}

#[test]
fn streaming_gives_the_same_bytes() {
    let message = message(example("send_mail.json"));
    let options = ComposeOptions::deterministic(5, DATE);
    let mut streamed = Vec::new();
    let id = message.write_to(&options, &mut streamed).unwrap();
    let composed = message.compose(&options);
    assert_eq!(streamed, composed.bytes);
    assert_eq!(id, composed.message_id);
    assert!(message.estimated_len() >= composed.bytes.len());
}

#[test]
fn write_errors_are_reported() {
    struct Full;
    impl std::io::Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let message = message(example("seed.json"));
    let error = message.write_to(&ComposeOptions::new(), Full).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::StorageFull);
}

#[test]
fn the_size_estimate_is_an_upper_bound_for_hostile_shapes() {
    let names: Vec<String> = (0..10)
        .map(|n| format!("\"{}\" <u{n}@example.com>", "长".repeat(256)))
        .collect();
    let cases = [
        simple(json!({"content": "\n".repeat(100_000)})),
        simple(json!({"content": "\r".repeat(100_000), "body_format": "Text"})),
        simple(json!({"receiver": names.join(", "), "title": "题".repeat(2000)})),
        simple(json!({"attachments": [{
            "filename": format!("{}.pdf", "报".repeat(250)),
            "content": "aGk=",
            "type": format!("application/pdf; x=\"{}\"", "y".repeat(200)),
            "content_id": "c".repeat(800),
            "disposition": "inline",
        }]})),
    ];
    for case in cases {
        let (message, composed) = compose(&case);
        assert!(
            message.estimated_len() >= composed.bytes.len(),
            "{} < {}",
            message.estimated_len(),
            composed.bytes.len()
        );
    }
}
