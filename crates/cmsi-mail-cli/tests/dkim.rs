//! `[dkim]` and `[transport.smtp] auth = "xoauth2"` through the binary: the
//! bytes an SMTP server received and the file transport wrote verify in
//! dkimpy and mail-auth; a key that cannot be read stops the start.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cmsi_mail_testkit::dkim::{DkimKey, dkimpy_verify, ed25519_key, mail_auth_verify, rsa_key};
use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer, SCOPE};
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer};
use cmsi_mail_testkit::workspace_root;

const DOMAIN: &str = "example.com";
const SELECTOR: &str = "mail2026";

fn cmsi_mail(cwd: &Path, args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn dkim_table(key: &DkimKey) -> String {
    format!(
        "[dkim]\ndomain = \"{DOMAIN}\"\nselector = \"{SELECTOR}\"\nkey_file = \"{}\"\n",
        key.pem.display()
    )
}

fn assert_verifies(message: &[u8], key: &DkimKey, what: &str) {
    let (ok, error) = dkimpy_verify(message, &key.record);
    assert!(ok, "dkimpy, {what}: {error:?}");
    assert!(
        mail_auth_verify(message, DOMAIN, SELECTOR, &key.record),
        "mail-auth, {what}"
    );
    let mut changed = message.to_vec();
    let at = changed
        .iter()
        .rposition(|b| b.is_ascii_alphanumeric())
        .unwrap();
    changed[at] = if changed[at] == b'A' { b'B' } else { b'A' };
    assert!(
        !dkimpy_verify(&changed, &key.record).0,
        "dkimpy took a changed body, {what}"
    );
    assert!(
        !mail_auth_verify(&changed, DOMAIN, SELECTOR, &key.record),
        "mail-auth took a changed body, {what}"
    );
}

fn example() -> String {
    workspace_root()
        .join("examples/send_mail.json")
        .display()
        .to_string()
}

/// The requests signed: the README's example (W2-like: HTML, an inline image,
/// an attachment) and a W1-like one written into `dir` (2 KiB of Chinese HTML,
/// a CJK subject, 3 To with CJK names and 2 Cc, no files).
fn requests(dir: &Path) -> [(&'static str, String); 2] {
    let paragraph = "<p>本周共处理告警 128 条，其中严重告警 3 条，均已在 15 分钟内恢复。</p>\n";
    let w1 = serde_json::json!({
        "receiver": "张三 <zhangsan@example.com>, 李四 <lisi@example.com>, wangwu@example.com",
        "cc": "运维值班 <oncall@example.com>, zhaoliu@example.com",
        "title": "【蓝鲸监控】2026 年第 48 周运营周报",
        "content": format!("<h1>运营周报</h1>\n{}", paragraph.repeat(24)),
        "body_format": "Html",
    });
    let path = dir.join("w1.json");
    std::fs::write(&path, w1.to_string()).unwrap();
    [
        ("W2-like", example()),
        ("W1-like", path.display().to_string()),
    ]
}

fn ok(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn mail_sent_over_xoauth2_smtp_is_signed_as_received() {
    let oauth = OAuthServer::start(3600);
    let smtp = SmtpServer::start(SmtpOptions {
        credentials: None,
        xoauth2_token_file: Some(oauth.token_file()),
        ..SmtpOptions::default()
    });
    let cwd = tempfile::tempdir().unwrap();
    std::fs::copy(smtp.ca_file(), cwd.path().join("cert.pem")).unwrap();
    for (name, key) in [("rsa", rsa_key()), ("ed25519", ed25519_key())] {
        let config = format!(
            r#"mail_sender = "noreply@example.com"
[transport]
kind = "smtp"
[transport.smtp]
smtp_host = "127.0.0.1"
smtp_port = {}
smtp_user = "noreply@example.com"
smtp_usetls = true
ca_file = "cert.pem"
auth = "xoauth2"
oauth_token_url = "{}"
oauth_client_id = "{CLIENT_ID}"
oauth_scope = "{SCOPE}"
{}"#,
            smtp.port,
            oauth.url(),
            dkim_table(key)
        );
        let path = cwd.path().join("cmsi-mail.toml");
        std::fs::write(&path, config).unwrap();
        for (what, request) in requests(cwd.path()) {
            let output = cmsi_mail(
                cwd.path(),
                &["send", "--config", path.to_str().unwrap(), &request],
                b"",
                &[("CMSI_MAIL_OAUTH_CLIENT_SECRET", CLIENT_SECRET)],
            );
            ok(&output);
            assert!(!String::from_utf8_lossy(&output.stderr).contains(CLIENT_SECRET));
            let stored = smtp.messages();
            let received = &stored.last().unwrap().bytes;
            assert!(received.starts_with(b"DKIM-Signature: "));
            assert_eq!(
                stored.last().unwrap().login.as_deref(),
                Some("noreply@example.com")
            );
            assert_verifies(received, key, &format!("SMTP, {name}, {what}"));
        }
    }
    assert_eq!(oauth.issued(), 4, "one token per run of the command");
}

#[test]
fn mail_dropped_by_the_file_transport_and_composed_is_signed() {
    let cwd = tempfile::tempdir().unwrap();
    for (name, key) in [("rsa", rsa_key()), ("ed25519", ed25519_key())] {
        let outbox = cwd.path().join(format!("outbox-{name}"));
        let config = format!(
            "mail_sender = \"noreply@example.com\"\n[transport.file]\ndir = \"{}\"\n{}",
            outbox.display(),
            dkim_table(key)
        );
        let path = cwd.path().join("cmsi-mail.toml");
        std::fs::write(&path, config).unwrap();
        for (what, request) in requests(cwd.path()) {
            let before = if outbox.exists() {
                file_names(&outbox)
            } else {
                Vec::new()
            };
            ok(&cmsi_mail(
                cwd.path(),
                &["send", "--config", path.to_str().unwrap(), &request],
                b"",
                &[],
            ));
            let eml = file_names(&outbox)
                .into_iter()
                .find(|n| n.ends_with(".eml") && !before.contains(n))
                .unwrap();
            let written = std::fs::read(outbox.join(eml)).unwrap();
            assert_verifies(&written, key, &format!("file, {name}, {what}"));

            let output = cmsi_mail(
                cwd.path(),
                &["compose", "--config", path.to_str().unwrap(), &request],
                b"",
                &[],
            );
            ok(&output);
            assert_verifies(&output.stdout, key, &format!("compose, {name}, {what}"));
        }
    }
}

#[test]
fn an_unreadable_key_stops_every_command_at_start() {
    let cwd = tempfile::tempdir().unwrap();
    let missing = cwd.path().join("missing.pem");
    let garbage = cwd.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key").unwrap();
    for key_file in [&missing, &garbage] {
        let config = format!(
            "[dkim]\ndomain = \"{DOMAIN}\"\nselector = \"{SELECTOR}\"\nkey_file = \"{}\"\n[apps.monitor]\nsecret = \"s\"\n",
            key_file.display()
        );
        let path = cwd.path().join("cmsi-mail.toml");
        std::fs::write(&path, config).unwrap();
        let config = path.to_str().unwrap();
        for args in [
            vec!["send", "--config", config, &example()],
            vec!["compose", "--config", config, &example()],
            vec!["serve", "--config", config, "--listen", "127.0.0.1:0"],
        ] {
            let output = cmsi_mail(cwd.path(), &args, b"", &[]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&key_file.display().to_string()),
                "{args:?}: {stderr}"
            );
            assert!(
                output.stdout.is_empty(),
                "{args:?}: nothing was sent or written"
            );
        }
    }
    assert!(!cwd.path().join("outbox").exists(), "no mail was dropped");
}

#[test]
fn text_alternative_false_sends_html_only() {
    let cwd = tempfile::tempdir().unwrap();
    let path = cwd.path().join("cmsi-mail.toml");
    for (setting, shape) in [("true", "multipart/alternative"), ("false", "text/html")] {
        std::fs::write(&path, format!("text_alternative = {setting}\n")).unwrap();
        let output = cmsi_mail(
            cwd.path(),
            &["compose", "--config", path.to_str().unwrap()],
            br#"{"receiver": "a@example.com", "title": "t", "content": "<p>hello</p>"}"#,
            &[],
        );
        ok(&output);
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.contains(&format!("\r\nContent-Type: {shape}")),
            "{text}"
        );
    }
}
