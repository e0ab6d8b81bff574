//! `Transport::ready` of the SMTP transport against aiosmtpd (STARTTLS and
//! AUTH): it connects, greets and authenticates once, and then reuses the
//! connection it keeps.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use cmsi_mail::{Transport, TransportErrorKind};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer, free_port};
use serde_json::json;

fn settings(port: u16, password: &str) -> SmtpSettings {
    SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        smtp_user: Some("testuser".into()),
        smtp_pwd: Some(password.into()),
        smtp_usetls: true,
        ca_file: Some(cmsi_mail_testkit::servers::certificate().cert.clone()),
        timeout_secs: Some(5.0),
        ..SmtpSettings::default()
    }
}

#[tokio::test]
async fn ready_connects_once_and_the_delivery_reuses_the_connection() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = SmtpTransport::new(settings(server.port, "testpass")).unwrap();
    transport.ready().await.unwrap();
    transport.ready().await.unwrap();
    let (envelope, composed) = envelope_and_bytes(json!({
        "receiver": "a@example.com", "title": "t", "content": "c",
    }));
    transport.send(&envelope, &composed).await.unwrap();
    // One session: the checks' connection (NOOP the second time) carried the mail.
    assert_eq!(server.count("session"), 1);
    assert_eq!(server.messages().len(), 1);
    transport.close().await;
}

#[tokio::test]
async fn not_ready_when_the_server_is_gone_or_refuses_the_login() {
    let transport = SmtpTransport::new(settings(free_port(), "testpass")).unwrap();
    let error = transport.ready().await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Transient, "{error}");

    let server = SmtpServer::start(SmtpOptions::default());
    let transport = SmtpTransport::new(settings(server.port, "wrong")).unwrap();
    let error = transport.ready().await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(!error.to_string().contains("wrong"), "{error}");
}
