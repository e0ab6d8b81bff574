//! The SMTP transport against a real server: aiosmtpd with STARTTLS and AUTH,
//! started for each test on 127.0.0.1.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::time::{Duration, Instant};

use cmsi_mail::{Composed, Envelope, Transport, TransportErrorKind};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::oracle::{assert_delivered, python_email_clean};
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer, SmtpTls, free_port};
use serde_json::json;

fn settings(server: &SmtpServer) -> SmtpSettings {
    SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(server.port),
        smtp_user: Some("testuser".into()),
        smtp_pwd: Some("testpass".into()),
        smtp_usetls: true,
        ca_file: Some(server.ca_file().to_path_buf()),
        timeout_secs: Some(5.0),
        ..SmtpSettings::default()
    }
}

fn transport(settings: SmtpSettings) -> SmtpTransport {
    SmtpTransport::new(settings)
        .unwrap()
        .with_backoff(Duration::from_millis(50))
}

fn to(receiver: &str) -> (Envelope, Composed) {
    envelope_and_bytes(json!({
        "receiver": receiver,
        "title": "测试邮件",
        "content": "<p>hello</p>\n.\n..leading dots survive\n",
    }))
}

fn example() -> (Envelope, Composed) {
    envelope_and_bytes(cmsi_mail_testkit::example("send_mail.json"))
}

#[tokio::test]
async fn delivers_over_required_starttls_with_auth() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = example();
    let receipt = transport.send(&envelope, &composed).await.unwrap();

    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    let stored = &stored[0];
    assert_delivered(&stored.bytes, &composed.bytes);
    assert_eq!(stored.mail_from, "noreply@example.com");
    assert_eq!(stored.rcpt_tos, envelope.recipients());
    assert_eq!(
        envelope.recipients(),
        [
            "zhangsan@example.com",
            "lisi@example.com",
            "oncall@example.com"
        ]
    );
    assert_eq!(stored.login.as_deref(), Some("testuser"), "AUTH was used");
    assert!(stored.tls, "the session was encrypted");
    python_email_clean(&stored.bytes);

    assert_eq!(receipt.message_id, composed.message_id);
    assert_eq!(receipt.accepted, envelope.recipients());
    assert!(receipt.rejected.is_empty());
    let id = receipt.transport_id.unwrap();
    assert!(
        id.starts_with("250 ") && id.contains("queued as Q000001"),
        "{id}"
    );
}

#[tokio::test]
async fn delivers_over_implicit_tls() {
    let server = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::Implicit,
        ..SmtpOptions::default()
    });
    let transport = transport(SmtpSettings {
        smtp_usetls: false,
        smtp_usessl: true,
        ..settings(&server)
    });
    let (envelope, composed) = to("a@example.com");
    transport.send(&envelope, &composed).await.unwrap();
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].tls);
    assert_eq!(stored[0].login.as_deref(), Some("testuser"));
    assert_delivered(&stored[0].bytes, &composed.bytes);
}

#[tokio::test]
async fn reuses_the_connection() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    for n in 0..3 {
        let (envelope, composed) = to(&format!("user{n}@example.com"));
        transport.send(&envelope, &composed).await.unwrap();
    }
    assert_eq!(server.messages().len(), 3);
    assert_eq!(server.count("session"), 1, "{:?}", server.events());
}

#[tokio::test]
async fn a_connection_closed_while_idle_is_replaced() {
    let server = SmtpServer::start(SmtpOptions {
        idle_timeout: Some(0.5),
        ..SmtpOptions::default()
    });
    let transport = transport(settings(&server));
    let (envelope, composed) = to("first@example.com");
    transport.send(&envelope, &composed).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (envelope, composed) = to("second@example.com");
    transport.send(&envelope, &composed).await.unwrap();

    let stored = server.messages();
    assert_eq!(stored.len(), 2, "both delivered, once each");
    assert_eq!(stored[1].rcpt_tos, ["second@example.com"]);
    assert_eq!(server.count("session"), 2);
    assert_eq!(server.count("data"), 2);
}

#[tokio::test]
async fn a_server_that_is_down_fails_transiently_within_the_timeout() {
    let port = free_port();
    let transport = transport(SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        timeout_secs: Some(2.0),
        ..SmtpSettings::default()
    });
    let (envelope, composed) = to("a@example.com");
    let started = Instant::now();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), TransportErrorKind::Transient, "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
}

#[tokio::test]
async fn a_wrong_password_is_permanent_and_not_retried() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(SmtpSettings {
        smtp_pwd: Some("wrong".into()),
        ..settings(&server)
    });
    let (envelope, composed) = to("a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(error.to_string().contains("AUTH"), "{error}");
    assert!(error.to_string().contains("535"), "{error}");
    assert_eq!(server.count("session"), 1, "not retried");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_451_is_retried_and_delivers_exactly_one_copy() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("tempfail-once-a@example.com");
    let receipt = transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(receipt.accepted, ["tempfail-once-a@example.com"]);
    assert_eq!(
        server.count("data"),
        2,
        "first refused with 451, then accepted"
    );
    let stored = server.messages();
    assert_eq!(stored.len(), 1, "exactly one copy");
    assert_delivered(&stored[0].bytes, &composed.bytes);
}

#[tokio::test]
async fn a_5xx_is_permanent_and_not_retried() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("permfail-a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(error.to_string().contains("554"), "{error}");
    assert_eq!(server.count("data"), 1, "not retried");
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn a_refused_recipient_among_accepted_ones_shows_in_the_receipt() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("a@example.com, reject-b@example.com, c@example.com");
    let receipt = transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(receipt.accepted, ["a@example.com", "c@example.com"]);
    assert_eq!(receipt.rejected.len(), 1);
    assert_eq!(receipt.rejected[0].recipient, "reject-b@example.com");
    assert!(
        receipt.rejected[0].reason.contains("550"),
        "{:?}",
        receipt.rejected
    );
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].rcpt_tos, ["a@example.com", "c@example.com"]);
}

#[tokio::test]
async fn a_greylisted_recipient_is_tried_again_on_its_own() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("a@example.com, busy-once-b@example.com, busy-c@example.com");
    let receipt = transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(
        receipt.accepted,
        ["a@example.com", "busy-once-b@example.com"]
    );
    assert_eq!(receipt.rejected.len(), 1, "{:?}", receipt.rejected);
    assert_eq!(receipt.rejected[0].recipient, "busy-c@example.com");
    assert!(receipt.rejected[0].temporary);
    let stored = server.messages();
    assert_eq!(
        stored.len(),
        2,
        "one transaction each, nobody gets two copies"
    );
    assert_eq!(stored[0].rcpt_tos, ["a@example.com"]);
    assert_eq!(stored[1].rcpt_tos, ["busy-once-b@example.com"]);
    assert_delivered(&stored[1].bytes, &composed.bytes);
}

#[tokio::test]
async fn every_recipient_refused_is_an_error() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("reject-a@example.com, reject-b@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent);
    assert!(
        error.to_string().contains("reject-b@example.com"),
        "{error}"
    );

    // Only 4xx refusals: transient, retried, then reported.
    let (envelope, composed) = to("busy-a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Transient);
    assert!(error.to_string().contains("after 3 attempts"), "{error}");
    assert_eq!(server.count("data"), 0);
    // The connection survived the refusals and RSET.
    let (envelope, composed) = to("ok@example.com");
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(server.count("session"), 1);
}

#[tokio::test]
async fn a_connection_dropped_during_data_is_retried_once_delivered() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    // Large enough that the reset reaches the client while it is still writing.
    let big = encodify::base64::STANDARD.encode(vec![0x5a; 8 << 20]);
    let (envelope, composed) = envelope_and_bytes(json!({
        "receiver": "drop-data-once-a@example.com",
        "title": "big",
        "content": "x",
        "attachments": [{"filename": "big.bin", "content": big}],
    }));
    let receipt = transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(receipt.accepted, ["drop-data-once-a@example.com"]);
    assert_eq!(server.count("dropped-during-data"), 1);
    let stored = server.messages();
    assert_eq!(stored.len(), 1, "delivered exactly once");
    assert_delivered(&stored[0].bytes, &composed.bytes);
}

#[tokio::test]
async fn a_connection_lost_after_the_final_dot_is_reported_not_resent() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(settings(&server));
    let (envelope, composed) = to("drop-after-dot-a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Transient, "{error}");
    assert!(error.to_string().contains("not sent again"), "{error}");
    assert_eq!(server.count("data"), 1, "never sent twice");
}

#[tokio::test]
async fn starttls_is_required_when_asked_for() {
    let server = SmtpServer::start(SmtpOptions {
        tls: SmtpTls::None,
        credentials: None,
        idle_timeout: None,
        xoauth2_token_file: None,
    });
    let transport = transport(SmtpSettings {
        smtp_user: None,
        smtp_pwd: None,
        ..settings(&server)
    });
    let (envelope, composed) = to("a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(
        error.to_string().contains("does not offer STARTTLS"),
        "{error}"
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    let server = SmtpServer::start(SmtpOptions::default());
    let transport = transport(SmtpSettings {
        ca_file: None,
        ..settings(&server)
    });
    let (envelope, composed) = to("a@example.com");
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Configuration, "{error}");
    assert_eq!(server.count("data"), 0);
}

#[test]
fn contradictory_settings_are_refused_up_front() {
    let base = SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        ..SmtpSettings::default()
    };
    let cases = [
        (
            SmtpSettings {
                smtp_usessl: true,
                smtp_usetls: true,
                ..base.clone()
            },
            "exclude each other",
        ),
        (
            SmtpSettings {
                smtp_user: Some("u".into()),
                ..base.clone()
            },
            "smtp_pwd is not",
        ),
        (
            SmtpSettings {
                smtp_usetls: true,
                ca_file: Some("/does/not/exist.pem".into()),
                ..base.clone()
            },
            "/does/not/exist.pem",
        ),
        (
            SmtpSettings {
                smtp_host: " ".into(),
                ..base.clone()
            },
            "smtp_host",
        ),
    ];
    for (settings, expected) in cases {
        let error = SmtpTransport::new(settings).err().unwrap();
        assert_eq!(error.kind(), TransportErrorKind::Configuration);
        assert!(error.to_string().contains(expected), "{error}");
    }
}
