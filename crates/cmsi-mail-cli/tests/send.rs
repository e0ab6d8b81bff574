//! `cmsi-mail send` through each transport, against real servers.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::{assert_wire_format, parse, python_email_clean};
use cmsi_mail_testkit::servers::{MotoServer, SmtpOptions, SmtpServer, free_port};
use cmsi_mail_testkit::workspace_root;
use serde_json::Value;

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

fn response(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "stdout is not JSON: {}\nstderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn example() -> String {
    workspace_root()
        .join("examples/send_mail.json")
        .display()
        .to_string()
}

#[test]
fn without_a_config_it_drops_into_the_outbox() {
    let cwd = tempfile::tempdir().unwrap();
    let output = cmsi_mail(cwd.path(), &["send", &example()], b"", &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response = response(&output);
    assert_eq!(response["result"], true);
    assert_eq!(response["code"], "00");
    assert_eq!(response["message"], "OK");

    let outbox = cwd.path().join("outbox");
    let names = file_names(&outbox);
    assert_eq!(names.len(), 2, "{names:?}");
    let eml = std::fs::read(outbox.join(&names[0])).unwrap();
    assert_wire_format(&eml);
    python_email_clean(&eml);
    let id = parse(&eml).message_id().unwrap().to_owned();
    assert_eq!(response["data"]["message_id"], format!("<{id}>"));
    assert_eq!(response["data"]["transport_id"], names[0]);
}

#[test]
fn a_bad_request_exits_2_with_an_esb_error() {
    let cwd = tempfile::tempdir().unwrap();
    let output = cmsi_mail(
        cwd.path(),
        &["send", "-"],
        br#"{"receiver": "a@example.com", "title": "", "content": "c"}"#,
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let response = response(&output);
    assert_eq!(response["result"], false);
    assert_eq!(response["code"], "1306000");
    assert_eq!(response["message"], "title: must not be empty");
    assert_eq!(response["data"]["field"], "title");
    assert!(file_names(&cwd.path().join("outbox")).is_empty());
}

#[test]
fn smtp_with_the_password_from_the_environment() {
    let server = SmtpServer::start(SmtpOptions::default());
    let cwd = tempfile::tempdir().unwrap();
    std::fs::copy(server.ca_file(), cwd.path().join("cert.pem")).unwrap();
    let config = format!(
        r#"
mail_sender = "noreply@example.com"
[transport]
kind = "smtp"
[transport.smtp]
smtp_host = "127.0.0.1"
smtp_port = {}
smtp_user = "testuser"
smtp_usessl = false
smtp_usetls = true
ca_file = "cert.pem"
timeout_secs = 10
[users]
admin = "admin@example.com"
"#,
        server.port
    );
    std::fs::write(cwd.path().join("cmsi-mail.toml"), config).unwrap();
    // Run from elsewhere: ca_file is found relative to the config file.
    let elsewhere = tempfile::tempdir().unwrap();
    let config_path = cwd.path().join("cmsi-mail.toml").display().to_string();
    let output = cmsi_mail(
        elsewhere.path(),
        &["send", "--config", &config_path],
        br#"{"receiver__username": "admin", "title": "via SMTP", "content": "<p>hi</p>"}"#,
        &[("CMSI_MAIL_SMTP_PWD", "testpass")],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let response = response(&output);
    assert!(
        response["data"]["transport_id"]
            .as_str()
            .unwrap()
            .contains("queued as")
    );

    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].login.as_deref(), Some("testuser"));
    assert!(stored[0].tls);
    assert_eq!(stored[0].mail_from, "noreply@example.com");
    assert_eq!(stored[0].rcpt_tos, ["admin@example.com"]);
    let report = python_email_clean(&stored[0].bytes);
    assert_eq!(report["subject"], "via SMTP");
}

#[test]
fn ses_through_the_standard_aws_environment() {
    let moto = MotoServer::start();
    moto.verify_identity("example.com");
    let cwd = tempfile::tempdir().unwrap();
    let config = format!(
        "mail_sender = \"noreply@example.com\"\n[transport]\nkind = \"ses\"\n\
         [transport.ses]\nendpoint_url = \"{}\"\n",
        moto.endpoint()
    );
    std::fs::write(cwd.path().join("c.toml"), config).unwrap();
    let output = cmsi_mail(
        cwd.path(),
        &["send", "--config", "c.toml", &example()],
        b"",
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let sent = moto.raw_messages();
    assert_eq!(sent.len(), 1);
    let raw = sent[0]["raw_data"].as_str().unwrap().as_bytes();
    python_email_clean(raw);
    assert!(response(&output)["data"]["transport_id"].as_str().is_some());
}

#[test]
fn a_delivery_failure_exits_1_with_1306201() {
    let cwd = tempfile::tempdir().unwrap();
    let config = format!(
        "[transport]\nkind = \"smtp\"\n[transport.smtp]\nsmtp_host = \"127.0.0.1\"\n\
         smtp_port = {}\nmax_attempts = 1\ntimeout_secs = 2\n",
        free_port()
    );
    std::fs::write(cwd.path().join("c.toml"), config).unwrap();
    let output = cmsi_mail(
        cwd.path(),
        &["send", "--config", "c.toml", &example()],
        b"",
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let response = response(&output);
    assert_eq!(response["result"], false);
    assert_eq!(response["code"], "1306201");
    assert_eq!(response["data"]["kind"], "transient");
    assert!(
        response["message"].as_str().unwrap().contains("127.0.0.1"),
        "{response}"
    );
}

#[test]
fn flags_override_the_config() {
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("c.toml"),
        "[transport]\nkind = \"smtp\"\n[transport.smtp]\nsmtp_host = \"192.0.2.1\"\n",
    )
    .unwrap();
    let output = cmsi_mail(
        cwd.path(),
        &["send", "--config", "c.toml", "--outbox", "drop", &example()],
        b"",
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(file_names(&cwd.path().join("drop")).len(), 2);

    let output = cmsi_mail(
        cwd.path(),
        &["send", "--transport", "ses", &example()],
        b"",
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("region"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    std::fs::write(
        cwd.path().join("bad.toml"),
        "[transport]\nkind = \"pigeon\"\n",
    )
    .unwrap();
    let output = cmsi_mail(
        cwd.path(),
        &["send", "--config", "bad.toml", &example()],
        b"",
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pigeon"));
}
