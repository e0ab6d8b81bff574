//! The SES transport against moto's server on 127.0.0.1.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
use cmsi_mail::{Composed, Envelope, Transport, TransportErrorKind};
use cmsi_mail_ses::{MAX_RAW_MESSAGE_BYTES, SesTransport, https_client};
use cmsi_mail_testkit::oracle::{assert_delivered, python_email_clean};
use cmsi_mail_testkit::servers::MotoServer;

fn client(moto: &MotoServer) -> aws_sdk_sesv2::Client {
    client_at(&moto.endpoint(), true)
}

/// A client for `endpoint` with static test credentials, or none at all.
fn client_at(endpoint: &str, credentials: bool) -> aws_sdk_sesv2::Client {
    let mut config = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .http_client(https_client());
    if credentials {
        config =
            config.credentials_provider(Credentials::new("testing", "testing", None, None, "test"));
    }
    aws_sdk_sesv2::Client::from_conf(config.build())
}

async fn verify(client: &aws_sdk_sesv2::Client, identity: &str) {
    client
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await
        .unwrap();
}

fn example() -> (Envelope, Composed) {
    cmsi_mail_testkit::envelope_and_bytes(cmsi_mail_testkit::example("send_mail.json"))
}

#[tokio::test]
async fn sends_our_bytes_as_raw_content() {
    let moto = MotoServer::start();
    let client = client(&moto);
    verify(&client, "example.com").await;
    let transport = SesTransport::new(client);
    let (envelope, composed) = example();
    let receipt = transport.send(&envelope, &composed).await.unwrap();

    assert_eq!(receipt.message_id, composed.message_id);
    assert_eq!(receipt.accepted, envelope.recipients());
    assert!(
        receipt
            .transport_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
    );

    let sent = moto.raw_messages();
    assert_eq!(sent.len(), 1, "{sent:?}");
    let raw = sent[0]["raw_data"].as_str().unwrap().as_bytes();
    assert_delivered(raw, &composed.bytes);
    assert_eq!(sent[0]["source"], "noreply@example.com");
    let destinations: Vec<&str> = sent[0]["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    for recipient in envelope.recipients() {
        assert!(
            destinations.contains(&recipient.as_str()),
            "{destinations:?}"
        );
    }
    python_email_clean(raw);
}

#[tokio::test]
async fn an_unverified_sender_is_permanent() {
    let moto = MotoServer::start();
    let transport = SesTransport::new(client(&moto));
    let (envelope, composed) = example();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent, "{error}");
    assert!(error.to_string().contains("MessageRejected"), "{error}");
    assert!(error.to_string().contains("noreply@example.com"), "{error}");
    assert!(moto.raw_messages().is_empty());
}

#[tokio::test]
async fn an_oversize_message_is_refused_before_any_call() {
    let moto = MotoServer::start();
    let client = client(&moto);
    verify(&client, "example.com").await;
    let transport = SesTransport::new(client);
    let (envelope, _) = example();
    let oversize = Composed {
        message_id: "big@example.com".into(),
        bytes: vec![b'a'; MAX_RAW_MESSAGE_BYTES + 1],
    };
    let error = transport.send(&envelope, &oversize).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent);
    assert!(
        error.to_string().contains("at most 40000000 bytes"),
        "{error}"
    );
    assert!(moto.raw_messages().is_empty());
}

#[tokio::test]
async fn more_than_50_recipients_are_refused_before_any_call() {
    let moto = MotoServer::start();
    let client = client(&moto);
    verify(&client, "example.com").await;
    let transport = SesTransport::new(client);
    let receivers: Vec<String> = (0..51).map(|n| format!("r{n}@example.com")).collect();
    let (envelope, composed) = cmsi_mail_testkit::envelope_and_bytes(serde_json::json!({
        "receiver": receivers.join(","), "title": "many", "content": "x",
    }));
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Permanent);
    assert!(error.to_string().contains("at most 50"), "{error}");
    assert!(moto.raw_messages().is_empty());
}

#[tokio::test]
async fn an_unreachable_endpoint_is_transient() {
    let port = cmsi_mail_testkit::servers::free_port();
    let transport = SesTransport::new(client_at(&format!("http://127.0.0.1:{port}"), true));
    let (envelope, composed) = example();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Transient, "{error}");
    assert!(
        error.to_string().contains("could not be reached"),
        "{error}"
    );
}

#[tokio::test]
async fn missing_credentials_are_a_configuration_error() {
    let transport = SesTransport::new(client_at("http://127.0.0.1:9", false));
    let (envelope, composed) = example();
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Configuration, "{error}");
    assert!(error.to_string().contains("credentials"), "{error}");
}

#[tokio::test]
async fn ready_when_ses_answers_and_nothing_is_sent() {
    let moto = MotoServer::start();
    let transport = SesTransport::new(client(&moto));
    transport.ready().await.unwrap();
    assert!(moto.raw_messages().is_empty());
}

#[tokio::test]
async fn not_ready_when_the_endpoint_cannot_be_reached_or_signed_for() {
    let closed = format!(
        "http://127.0.0.1:{}",
        cmsi_mail_testkit::servers::free_port()
    );
    let error = SesTransport::new(client_at(&closed, true))
        .ready()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Transient, "{error}");
    assert!(error.message().contains("could not be reached"), "{error}");

    let moto = MotoServer::start();
    let error = SesTransport::new(client_at(&moto.endpoint(), false))
        .ready()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Configuration, "{error}");
}
