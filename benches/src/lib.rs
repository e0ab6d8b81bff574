//! The benchmark workloads, built from a fixed seed so that every run and every
//! peer composes the same messages.
//!
//! - W1 small: 2 KiB of Chinese HTML, a CJK subject, 3 To and 2 Cc, no files;
//! - W2 typical: 5 KiB of HTML showing two inline PNGs (50 KiB and 200 KiB) by
//!   `cid:`, and a 1 MiB PDF named `季度报告.pdf`;
//! - W3 large: a text body and one 20 MiB binary attachment.
//!
//! [`peers`] has the end-to-end pipelines we compare with, [`measure`] the
//! interleaved timing, [`ours_e2e`] our own pipeline.

// Benchmark fixtures: a peer that cannot build its message is a broken benchmark,
// and megabytes of workload are not worth a Debug.
#![allow(clippy::expect_used, missing_debug_implementations)]

pub mod measure;
pub mod peers;

use encodify::base64::STANDARD as BASE64;
use serde_json::json;

/// A file as the peers get it: already decoded.
pub struct File {
    /// Shown name.
    pub filename: String,
    /// MIME type.
    pub content_type: &'static str,
    /// Content-ID for inline parts.
    pub content_id: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// One workload: the API request, and the same message decoded for the peers.
pub struct Workload {
    /// `w1`, `w2`, `w3`.
    pub name: &'static str,
    /// The `send_mail` request, attachments in base64.
    pub json: Vec<u8>,
    /// Sender (name, address).
    pub from: (String, String),
    /// To (name, address).
    pub to: Vec<(String, String)>,
    /// Cc (name, address).
    pub cc: Vec<(String, String)>,
    /// Subject.
    pub subject: String,
    /// HTML body, or
    pub html: Option<String>,
    /// text body.
    pub text: Option<String>,
    /// Inline parts.
    pub inline: Vec<File>,
    /// Attachments.
    pub attachments: Vec<File>,
}

const PHRASES: &[&str] = &[
    "蓝鲸智云监控平台",
    "本季度平台可用率达到百分之九十九点九八",
    "告警量环比下降",
    "请各位同事查阅附件中的详细数据",
    "运维值班安排如下",
    "如有疑问请联系运维组",
    "服务器资源使用情况",
    "数据库慢查询统计",
];

fn chinese_html(rng: &mut fastrand::Rng, len: usize, images: &[&str]) -> String {
    let mut html = String::from("<html><body>\n<h1>运营周报</h1>\n");
    for id in images {
        html.push_str(&format!("<p><img src=\"cid:{id}\" alt=\"图表\"></p>\n"));
    }
    while html.len() < len {
        html.push_str("<p>");
        for _ in 0..4 {
            html.push_str(rng.choice(PHRASES).copied().unwrap_or_default());
            html.push('，');
        }
        html.push_str("谢谢。</p>\n");
    }
    html.push_str("</body></html>\n");
    html
}

fn bytes(rng: &mut fastrand::Rng, header: &[u8], len: usize) -> Vec<u8> {
    let mut bytes = header.to_vec();
    bytes.extend(std::iter::repeat_with(|| rng.u8(..)).take(len - header.len()));
    bytes
}

fn people(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names
        .iter()
        .map(|(name, address)| ((*name).to_owned(), (*address).to_owned()))
        .collect()
}

fn list(people: &[(String, String)]) -> String {
    people
        .iter()
        .map(|(name, address)| format!("{name} <{address}>"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Workload {
    fn finish(mut self) -> Workload {
        let files: Vec<serde_json::Value> = self
            .inline
            .iter()
            .map(|file| {
                json!({
                    "filename": file.filename,
                    "content": BASE64.encode(&file.bytes),
                    "disposition": "inline",
                    "content_id": file.content_id,
                })
            })
            .chain(self.attachments.iter().map(
                |file| json!({"filename": file.filename, "content": BASE64.encode(&file.bytes)}),
            ))
            .collect();
        let mut request = json!({
            "bk_app_code": "monitor",
            "bk_app_secret": "s3cret",
            "bk_username": "admin",
            "sender": format!("{} <{}>", self.from.0, self.from.1),
            "receiver": list(&self.to),
            "cc": list(&self.cc),
            "title": self.subject,
            "content": self.html.clone().or_else(|| self.text.clone()),
            "body_format": if self.html.is_some() { "Html" } else { "Text" },
        });
        if let (false, Some(object)) = (files.is_empty(), request.as_object_mut()) {
            object.insert("attachments".into(), serde_json::Value::Array(files));
        }
        self.json = serde_json::to_vec(&request).unwrap_or_default();
        self
    }
}

/// W1: small CJK HTML, no files.
pub fn w1() -> Workload {
    let mut rng = fastrand::Rng::with_seed(1);
    Workload {
        name: "w1",
        json: Vec::new(),
        from: ("蓝鲸监控".into(), "noreply@example.com".into()),
        to: people(&[
            ("张三", "zhangsan@example.com"),
            ("李四", "lisi@example.com"),
            ("王五", "wangwu@example.com"),
        ]),
        cc: people(&[
            ("运维值班", "oncall@example.com"),
            ("赵六", "zhaoliu@example.com"),
        ]),
        subject: "【蓝鲸监控】2026 年第 48 周运营周报".into(),
        html: Some(chinese_html(&mut rng, 2048, &[])),
        text: None,
        inline: Vec::new(),
        attachments: Vec::new(),
    }
    .finish()
}

/// W2: HTML with two inline PNGs and a 1 MiB PDF.
pub fn w2() -> Workload {
    let mut rng = fastrand::Rng::with_seed(2);
    let png = b"\x89PNG\r\n\x1a\n";
    Workload {
        name: "w2",
        json: Vec::new(),
        from: ("蓝鲸监控".into(), "noreply@example.com".into()),
        to: people(&[("张三", "zhangsan@example.com")]),
        cc: people(&[("运维值班", "oncall@example.com")]),
        subject: "【蓝鲸监控】第三季度运营报告".into(),
        html: Some(chinese_html(
            &mut rng,
            5 * 1024,
            &["trend.png", "usage.png"],
        )),
        text: None,
        inline: vec![
            File {
                filename: "trend.png".into(),
                content_type: "image/png",
                content_id: Some("trend.png".into()),
                bytes: bytes(&mut rng, png, 50 * 1024),
            },
            File {
                filename: "usage.png".into(),
                content_type: "image/png",
                content_id: Some("usage.png".into()),
                bytes: bytes(&mut rng, png, 200 * 1024),
            },
        ],
        attachments: vec![File {
            filename: "季度报告.pdf".into(),
            content_type: "application/pdf",
            content_id: None,
            bytes: bytes(&mut rng, b"%PDF-1.7\n", 1024 * 1024),
        }],
    }
    .finish()
}

/// W3: a text body and a 20 MiB binary attachment.
pub fn w3() -> Workload {
    let mut rng = fastrand::Rng::with_seed(3);
    Workload {
        name: "w3",
        json: Vec::new(),
        from: ("Backup".into(), "backup@example.com".into()),
        to: people(&[("Ops", "ops@example.com")]),
        cc: Vec::new(),
        subject: "Nightly dump".into(),
        html: None,
        text: Some("The nightly database dump is attached.\n".repeat(20)),
        inline: Vec::new(),
        attachments: vec![File {
            filename: "dump.bin".into(),
            content_type: "application/octet-stream",
            content_id: None,
            bytes: bytes(&mut rng, b"", 20 * 1024 * 1024),
        }],
    }
    .finish()
}

/// mail-builder composing the workload from decoded content.
pub fn mail_builder(w: &Workload) -> Vec<u8> {
    use mail_builder::MessageBuilder;
    fn pairs(people: &[(String, String)]) -> Vec<(&str, &str)> {
        people
            .iter()
            .map(|(n, a)| (n.as_str(), a.as_str()))
            .collect()
    }
    let mut builder = MessageBuilder::new()
        .from((w.from.0.as_str(), w.from.1.as_str()))
        .to(pairs(&w.to))
        .subject(w.subject.as_str());
    if !w.cc.is_empty() {
        builder = builder.cc(pairs(&w.cc));
    }
    if let Some(html) = &w.html {
        builder = builder.html_body(html.as_str());
    }
    if let Some(text) = &w.text {
        builder = builder.text_body(text.as_str());
    }
    for file in &w.inline {
        builder = builder.inline(
            file.content_type,
            file.content_id.as_deref().unwrap_or_default(),
            file.bytes.as_slice(),
        );
    }
    for file in &w.attachments {
        builder = builder.attachment(
            file.content_type,
            file.filename.as_str(),
            file.bytes.as_slice(),
        );
    }
    builder.write_to_vec().unwrap_or_default()
}

/// lettre composing the workload from decoded content.
pub fn lettre(w: &Workload) -> Vec<u8> {
    use lettre::message::header::ContentType;
    use lettre::message::{Attachment, Mailbox as LMailbox, MultiPart, SinglePart};
    let mailbox = |(name, address): &(String, String)| {
        LMailbox::new(Some(name.clone()), address.parse().expect("address"))
    };
    let mut builder = lettre::Message::builder()
        .from(mailbox(&w.from))
        .subject(w.subject.as_str());
    for person in &w.to {
        builder = builder.to(mailbox(person));
    }
    for person in &w.cc {
        builder = builder.cc(mailbox(person));
    }
    let body = match (&w.html, &w.text) {
        (Some(html), _) => SinglePart::html(html.clone()),
        (None, Some(text)) => SinglePart::plain(text.clone()),
        (None, None) => SinglePart::plain(String::new()),
    };
    let file = |file: &File, inline: bool| {
        let content_type = ContentType::parse(file.content_type).expect("content type");
        let attachment = if inline {
            Attachment::new_inline(file.content_id.clone().unwrap_or_default())
        } else {
            Attachment::new(file.filename.clone())
        };
        attachment.body(file.bytes.clone(), content_type)
    };
    let message = if w.inline.is_empty() && w.attachments.is_empty() {
        builder.singlepart(body)
    } else {
        let mut related = MultiPart::related().singlepart(body);
        for inline in &w.inline {
            related = related.singlepart(file(inline, true));
        }
        let mut mixed = MultiPart::mixed().multipart(related);
        for attachment in &w.attachments {
            mixed = mixed.singlepart(file(attachment, false));
        }
        builder.multipart(mixed)
    }
    .expect("lettre message");
    message.formatted()
}

/// Our pipeline end to end, as `Mailer::prepare` runs it: request JSON →
/// validated message → composed bytes. By default like the peers: HTML
/// without the plain-text alternative, which [`Ours::with_text_alternative`]
/// adds as `serve` does by default.
pub struct Ours {
    directory: cmsi_mail::StaticDirectory,
    sender: cmsi_mail::Mailbox,
    options: cmsi_mail::ComposeOptions,
}

impl Default for Ours {
    fn default() -> Self {
        Ours {
            directory: cmsi_mail::StaticDirectory::new(),
            sender: cmsi_mail::Mailbox::parse("noreply@example.com").expect("sender"),
            options: cmsi_mail::ComposeOptions::new().with_text_alternative(false),
        }
    }
}

impl Ours {
    /// With the plain-text alternative of HTML bodies (the default of
    /// `cmsi-mail`), which the peers do not make.
    #[must_use]
    pub fn with_text_alternative(mut self) -> Self {
        self.options = self.options.with_text_alternative(true);
        self
    }

    /// One request, end to end.
    pub fn run(&self, json: &[u8]) -> Vec<u8> {
        let request = cmsi_mail::SendMailRequest::from_json(json).expect("request");
        let message = cmsi_mail::Validator::new(self.sender.clone(), &self.directory)
            .validate(request)
            .expect("valid request")
            .message;
        message.compose(&self.options).bytes
    }
}

/// [`Ours::run`] with a fresh validator.
pub fn ours_e2e(json: &[u8]) -> Vec<u8> {
    Ours::default().run(json)
}

/// All three.
pub fn all() -> Vec<Workload> {
    vec![w1(), w2(), w3()]
}
