//! AUTH XOAUTH2 against aiosmtpd (which accepts only the token last issued)
//! and a local OAuth2 token endpoint that counts its requests: the token is
//! fetched once, cached, refreshed before it expires, and fetched anew once
//! when the server answers 535.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::time::Duration;

use cmsi_mail::{Composed, Envelope, Transport, TransportErrorKind};
use cmsi_mail_smtp::{SmtpAuth, SmtpSettings, SmtpTransport};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::oauth::{CLIENT_ID, CLIENT_SECRET, OAuthServer, SCOPE};
use cmsi_mail_testkit::oracle::assert_delivered;
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer};
use serde_json::json;

const USER: &str = "noreply@example.com";

fn servers(expires_in: u64) -> (OAuthServer, SmtpServer) {
    let oauth = OAuthServer::start(expires_in);
    let smtp = SmtpServer::start(SmtpOptions {
        credentials: None,
        xoauth2_token_file: Some(oauth.token_file()),
        ..SmtpOptions::default()
    });
    (oauth, smtp)
}

/// Client-credentials settings; no pooled connections, so that every message
/// logs in anew.
fn settings(oauth: &OAuthServer, smtp: &SmtpServer) -> SmtpSettings {
    SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(smtp.port),
        smtp_user: Some(USER.into()),
        smtp_usetls: true,
        ca_file: Some(smtp.ca_file().to_path_buf()),
        timeout_secs: Some(5.0),
        pool_size: Some(0),
        auth: Some(SmtpAuth::Xoauth2),
        oauth_token_url: Some(oauth.url()),
        oauth_client_id: Some(CLIENT_ID.into()),
        oauth_client_secret: Some(CLIENT_SECRET.into()),
        oauth_scope: Some(SCOPE.into()),
        ..SmtpSettings::default()
    }
}

fn message() -> (Envelope, Composed) {
    envelope_and_bytes(json!({"receiver": "to@example.com", "title": "t", "content": "<p>x</p>"}))
}

#[tokio::test]
async fn the_token_is_fetched_once_and_refreshed_before_it_expires() {
    let (oauth, smtp) = servers(3);
    let transport = SmtpTransport::new(settings(&oauth, &smtp)).unwrap();
    let (envelope, composed) = message();
    for _ in 0..3 {
        transport.send(&envelope, &composed).await.unwrap();
    }
    assert_eq!(oauth.issued(), 1, "one token for three logins");
    let stored = smtp.messages();
    assert_eq!(stored.len(), 3);
    assert_delivered(&stored[0].bytes, &composed.bytes);
    assert_eq!(stored[0].login.as_deref(), Some(USER));
    assert!(stored[0].tls);

    // A 3 s token is refreshed 0.3 s before it expires.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(oauth.issued(), 2, "refreshed before it expired");
    let refused = smtp
        .events()
        .iter()
        .filter(|e| e["event"] == "xoauth2" && e["ok"] == false)
        .count();
    assert_eq!(refused, 0, "no login was refused");
}

#[tokio::test]
async fn a_refused_token_is_fetched_anew_once() {
    let (oauth, smtp) = servers(3600);
    let transport = SmtpTransport::new(settings(&oauth, &smtp)).unwrap();
    let (envelope, composed) = message();
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(oauth.issued(), 1);

    // The server stops taking the cached token: 535, then a new token.
    oauth.revoke();
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(oauth.issued(), 2);
    let logins: Vec<bool> = smtp
        .events()
        .iter()
        .filter(|e| e["event"] == "xoauth2")
        .map(|e| e["ok"] == true)
        .collect();
    assert_eq!(logins, [true, false, true]);
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test]
async fn a_fixed_token_is_used_as_it_is_and_a_refusal_is_permanent() {
    let (oauth, smtp) = servers(3600);
    std::fs::write(oauth.token_file(), "operator-token").unwrap();
    let fixed = |token: &str| SmtpSettings {
        oauth_token_url: None,
        oauth_client_id: None,
        oauth_client_secret: None,
        oauth_scope: None,
        oauth_token: Some(token.into()),
        ..settings(&oauth, &smtp)
    };
    let (envelope, composed) = message();
    let transport = SmtpTransport::new(fixed("operator-token")).unwrap();
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(smtp.messages().len(), 1);

    let transport = SmtpTransport::new(fixed("stale-token")).unwrap();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(error.to_string().contains("535"), "{error}");
    assert_eq!(oauth.issued(), 0, "a fixed token is never fetched");
    assert!(!format!("{transport:?}").contains("stale-token"));
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_configuration_error_that_names_no_secret() {
    let (oauth, smtp) = servers(3600);
    let transport = SmtpTransport::new(SmtpSettings {
        oauth_client_secret: Some("wrong-secret-value".into()),
        ..settings(&oauth, &smtp)
    })
    .unwrap();
    let (envelope, composed) = message();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Configuration, "{error}");
    let text = format!("{error} {error:?} {transport:?}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(
        !text.contains("wrong-secret-value") && !text.contains(CLIENT_SECRET),
        "{text}"
    );
    assert!(smtp.messages().is_empty());
}

#[test]
fn settings_that_contradict_each_other_are_refused() {
    let base = SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_user: Some(USER.into()),
        auth: Some(SmtpAuth::Xoauth2),
        oauth_token_url: Some("https://login.example.com/token".into()),
        oauth_client_id: Some(CLIENT_ID.into()),
        oauth_client_secret: Some(CLIENT_SECRET.into()),
        ..SmtpSettings::default()
    };
    let cases = [
        (
            "needs smtp_user",
            SmtpSettings {
                smtp_user: None,
                ..base.clone()
            },
        ),
        (
            "smtp_pwd is not used",
            SmtpSettings {
                smtp_pwd: Some("x".into()),
                ..base.clone()
            },
        ),
        (
            "exclude each other",
            SmtpSettings {
                oauth_token: Some("t".into()),
                ..base.clone()
            },
        ),
        (
            "needs oauth_client_id",
            SmtpSettings {
                oauth_client_id: None,
                ..base.clone()
            },
        ),
        (
            "must be https",
            SmtpSettings {
                oauth_token_url: Some("http://login.example.com/token".into()),
                ..base.clone()
            },
        ),
        (
            "needs a token",
            SmtpSettings {
                oauth_token_url: None,
                ..base.clone()
            },
        ),
        (
            "needs auth = \"xoauth2\"",
            SmtpSettings {
                auth: None,
                smtp_pwd: Some("x".into()),
                ..base.clone()
            },
        ),
    ];
    for (expected, settings) in cases {
        let shown = format!("{settings:?}");
        assert!(!shown.contains(CLIENT_SECRET), "{shown}");
        let error = SmtpTransport::new(settings).unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Configuration);
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!error.to_string().contains(CLIENT_SECRET));
    }
}
