//! The gateway over real HTTP on 127.0.0.1, delivering into a real directory.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmsi_mail::{Mailbox, Mailer, StaticDirectory, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_gateway::{AppConfig, AppRegistry, Apps, Gateway, ServerConfig, serve};
use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::{assert_wire_format, parse, python_email_clean};
use serde_json::{Value, json};

struct Server {
    url: String,
    outbox: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn eml_count(&self) -> usize {
        file_names(self.outbox.path())
            .iter()
            .filter(|name| name.ends_with(".eml"))
            .count()
    }

    fn emls(&self) -> Vec<Vec<u8>> {
        file_names(self.outbox.path())
            .iter()
            .filter(|name| name.ends_with(".eml"))
            .map(|name| std::fs::read(self.outbox.path().join(name)).unwrap())
            .collect()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

fn apps() -> AppRegistry {
    let mut apps = Apps::new();
    apps.insert(
        "monitor".into(),
        AppConfig {
            secret: Some("s3cret".into()),
            allow_bk_username: true,
            ..AppConfig::default()
        },
    );
    apps.insert(
        "strict".into(),
        AppConfig {
            secret: Some("strict-secret".into()),
            ..AppConfig::default()
        },
    );
    AppRegistry::new(&apps, |_| None).unwrap()
}

async fn start_with(
    transport: Box<dyn Transport>,
    outbox: tempfile::TempDir,
    server: ServerConfig,
) -> Server {
    let directory = StaticDirectory::from_toml("[users]\nadmin = \"admin@example.com\"\n").unwrap();
    let mailer = Mailer::new(transport, Mailbox::parse("noreply@example.com").unwrap())
        .with_directory(Arc::new(directory));
    let gateway = Arc::new(Gateway::new(mailer, apps(), &server).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, gateway, async {
        let _ = stopped.await;
    }));
    Server {
        url,
        outbox,
        stop: Some(stop),
        task,
    }
}

async fn start() -> Server {
    let outbox = tempfile::tempdir().unwrap();
    let transport = Box::new(FileTransport::new(outbox.path()));
    start_with(transport, outbox, ServerConfig::default()).await
}

const PATH: &str = "/api/c/compapi/cmsi/send_mail/";

/// The seed's example body, with the app's credentials.
fn seed() -> Value {
    json!({
        "bk_app_code": "monitor",
        "bk_app_secret": "s3cret",
        "bk_token": "xxx",
        "receiver": "admin@bking.com",
        "sender": "admin@bking.com",
        "title": "This is a Test",
        "content": "<html>Welcome to Blueking</html>",
    })
}

/// POSTs `body` with the credentials header, and reads the reply.
async fn post_with_header(server: &Server, header: &str, body: &Value) -> Value {
    reqwest::Client::new()
        .post(format!("{}{PATH}", server.url))
        .header("X-Bkapi-Authorization", header)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_json(
    server: &Server,
    path: &str,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let reply = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let headers = reply.headers().clone();
    (status, reply.json().await.unwrap(), headers)
}

#[tokio::test]
async fn the_seed_example_with_body_credentials_is_sent() {
    let server = start().await;
    let (status, body, headers) = post_json(&server, PATH, &seed()).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], true, "{body}");
    assert_eq!(body["code"], "00");
    assert_eq!(body["message"], "OK");
    let request_id = body["request_id"].as_str().unwrap();
    assert_eq!(request_id.len(), 32);
    assert_eq!(headers["x-request-id"], request_id);

    let emls = server.emls();
    assert_eq!(emls.len(), 1);
    assert_wire_format(&emls[0]);
    let parsed = parse(&emls[0]);
    assert_eq!(parsed.subject(), Some("This is a Test"));
    assert_eq!(
        body["data"]["message_id"],
        format!("<{}>", parsed.message_id().unwrap())
    );
    python_email_clean(&emls[0]);
    server.stop().await;
}

#[tokio::test]
async fn every_path_variant_and_get_with_a_query_string() {
    let server = start().await;
    for path in cmsi_mail_gateway::SEND_MAIL_PATHS {
        let (status, body, _) = post_json(&server, path, &seed()).await;
        assert_eq!(
            (status, &body["result"]),
            (200, &json!(true)),
            "{path}: {body}"
        );
    }
    let reply = reqwest::Client::new()
        .get(format!("{}/api/c/compapi/v2/cmsi/send_mail/", server.url))
        .query(&[
            ("bk_app_code", "monitor"),
            ("bk_app_secret", "s3cret"),
            ("bk_username", "admin"),
            ("receiver__username", "admin"),
            ("title", "来自 GET 的邮件"),
            ("content", "hello"),
            ("body_format", "Text"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], true, "{body}");
    assert_eq!(server.eml_count(), 5);
    server.stop().await;
}

#[tokio::test]
async fn a_form_request_like_the_old_sdk_sends() {
    let server = start().await;
    let attachments = json!([{"filename": "报告.txt", "content": "aGVsbG8="}]).to_string();
    let reply = reqwest::Client::new()
        .post(format!("{}{PATH}", server.url))
        .form(&[
            ("bk_app_code", "monitor"),
            ("bk_app_secret", "s3cret"),
            ("bk_token", "token"),
            ("receiver", "a@example.com,b@example.com"),
            ("cc", "c@example.com"),
            ("title", "表单"),
            ("content", "PGI+aGk8L2I+"),
            ("is_content_base64", "True"),
            ("attachments", attachments.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], true, "{body}");
    assert_eq!(
        body["data"]["accepted"],
        json!(["a@example.com", "b@example.com", "c@example.com"])
    );
    let emls = server.emls();
    let parsed = parse(&emls[0]);
    assert_eq!(parsed.body_html(0).as_deref(), Some("<b>hi</b>"));
    let attachment = parsed.attachments().next().unwrap();
    assert_eq!(attachment.contents(), b"hello");
    server.stop().await;
}

#[tokio::test]
async fn header_credentials_win_over_the_body() {
    let server = start().await;
    let mut wrong_in_body = seed();
    wrong_in_body["bk_app_secret"] = json!("wrong");
    let header =
        json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin"});
    let body = post_with_header(&server, &header.to_string(), &wrong_in_body).await;
    assert_eq!(body["result"], true, "{body}");

    let wrong_header =
        json!({"bk_app_code": "monitor", "bk_app_secret": "nope", "bk_username": "admin"});
    let body = post_with_header(&server, &wrong_header.to_string(), &seed()).await;
    assert_eq!(body["result"], false, "{body}");
    assert_eq!(server.eml_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn every_authentication_failure_has_its_own_message() {
    let server = start().await;
    let with = |changes: Value| {
        let mut body = seed();
        for (key, value) in changes.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        body
    };
    let cases = [
        (
            with(json!({"bk_app_code": null})),
            "APP Code [bk_app_code] cannot be empty",
        ),
        (
            with(json!({"bk_app_code": ""})),
            "APP Code [bk_app_code] cannot be empty",
        ),
        (
            with(json!({"bk_app_code": " "})),
            "APP Code [ ] and APP Secret [bk_app_secret] do not match a registered app",
        ),
        (
            with(json!({"bk_app_code": "monitor "})),
            "APP Code [monitor ] and APP Secret [bk_app_secret] do not match a registered app",
        ),
        (
            with(json!({"bk_app_secret": null})),
            "APP Secret [bk_app_secret] cannot be empty",
        ),
        (
            with(json!({"bk_app_secret": "wrong"})),
            "APP Code [monitor] and APP Secret [bk_app_secret] do not match a registered app",
        ),
        (
            with(json!({"bk_app_code": "nobody"})),
            "APP Code [nobody] and APP Secret [bk_app_secret] do not match a registered app",
        ),
        (
            with(json!({"bk_token": null})),
            "User authentication failed: provide bk_token or bk_username",
        ),
        (
            with(
                json!({"bk_app_code": "strict", "bk_app_secret": "strict-secret", "bk_token": null, "bk_username": "admin"}),
            ),
            "User authentication failed: app [strict] may not name its user by bk_username alone; provide bk_token",
        ),
    ];
    for (body, message) in cases {
        let (status, reply, _) = post_json(&server, PATH, &body).await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"], false, "{body}");
        assert_eq!(reply["code"], "1306000");
        assert_eq!(reply["message"], message, "{body}");
        assert!(reply["request_id"].is_string());
    }

    for (header, message) in [
        (
            json!({"access_token": "opaque"}).to_string(),
            "access_token is not supported by this gateway: authenticate with bk_app_code and bk_app_secret",
        ),
        (
            "not json".to_owned(),
            "X-Bkapi-Authorization is not a JSON object of credentials",
        ),
    ] {
        let reply = post_with_header(&server, &header, &seed()).await;
        assert_eq!(reply["result"], false);
        assert!(
            reply["message"].as_str().unwrap().starts_with(message),
            "{reply}"
        );
    }
    // A strict app with bk_token passes.
    let (_, reply, _) = post_json(
        &server,
        PATH,
        &with(json!({"bk_app_code": "strict", "bk_app_secret": "strict-secret"})),
    )
    .await;
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(server.eml_count(), 1, "nothing sent for a refused caller");
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_are_answered_in_the_esb_envelope() {
    let server = start().await;
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("{}{PATH}", server.url))
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], false);
    assert_eq!(body["code"], "1306000");
    assert!(
        body["message"].as_str().unwrap().starts_with("request: "),
        "{body}"
    );

    let mut bad = seed();
    bad["receiver"] = json!("not-an-address");
    let (_, body, _) = post_json(&server, PATH, &bad).await;
    assert_eq!(
        body["message"],
        "receiver: \"not-an-address\" is not a valid address: there is no '@'"
    );
    assert_eq!(body["data"]["field"], "receiver");

    let mut unknown = seed();
    unknown.as_object_mut().unwrap().remove("receiver");
    unknown["receiver__username"] = json!("admin,ghost");
    let (_, body, _) = post_json(&server, PATH, &unknown).await;
    assert_eq!(body["result"], true);
    assert_eq!(body["data"]["username_check"]["invalid"], json!(["ghost"]));

    let reply = client
        .get(format!("{}/api/c/compapi/cmsi/send_sms/", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 404);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], false);
    let reply = client
        .put(format!("{}{PATH}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], false);

    let health: Value = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(server.eml_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_body_gets_413() {
    let outbox = tempfile::tempdir().unwrap();
    let transport = Box::new(FileTransport::new(outbox.path()));
    let server = start_with(
        transport,
        outbox,
        ServerConfig {
            max_body_bytes: Some(64 * 1024),
            ..ServerConfig::default()
        },
    )
    .await;
    let mut big = seed();
    big["content"] = json!("x".repeat(100 * 1024));
    let reply = reqwest::Client::new()
        .post(format!("{}{PATH}", server.url))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["result"], false);
    assert_eq!(body["code"], "1306000");
    assert!(
        body["message"].as_str().unwrap().contains("65536"),
        "{body}"
    );

    // Chunked, without Content-Length: the limit still holds.
    let chunks = futures_stream(vec![
        b"{\"content\": \"".to_vec(),
        vec![b'y'; 80 * 1024],
        b"\"}".to_vec(),
    ]);
    let reply = reqwest::Client::new()
        .post(format!("{}{PATH}", server.url))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);
    assert_eq!(server.eml_count(), 0);
    server.stop().await;
}

fn futures_stream(
    chunks: Vec<Vec<u8>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Chunks(std::vec::IntoIter<Vec<u8>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next().map(Ok))
        }
    }
    Chunks(chunks.into_iter())
}

#[tokio::test]
async fn a_transport_failure_is_1306201() {
    let outbox = tempfile::tempdir().unwrap();
    let missing = outbox.path().join("missing");
    let transport = Box::new(FileTransport::new(&missing));
    let server = start_with(transport, outbox, ServerConfig::default()).await;
    let (status, body, _) = post_json(&server, PATH, &seed()).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], false);
    assert_eq!(body["code"], "1306201");
    assert_eq!(body["data"]["kind"], "io");
    assert!(
        body["message"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_500_requests_from_50_clients() {
    let server = start().await;
    let url = format!("{}{PATH}", server.url);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..50 {
        let client = client.clone();
        let url = url.clone();
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for n in 0..10 {
                let mut body = seed();
                body["title"] = json!(format!("burst {c}-{n}"));
                let sent = Instant::now();
                let reply: Value = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                latencies.push(sent.elapsed());
                assert_eq!(reply["result"], true, "{reply}");
            }
            latencies
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for client in clients {
        latencies.extend(client.await.unwrap());
    }
    let total = started.elapsed();
    latencies.sort();
    assert_eq!(latencies.len(), 500);
    let p50 = latencies[249];
    let p99 = latencies[494];
    println!(
        "burst: 500 requests, 50 clients, {:.2} s total; latency p50 {:.1} ms, p99 {:.1} ms",
        total.as_secs_f64(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    assert_eq!(server.eml_count(), 500, "exactly 500 complete messages");
    let names = file_names(server.outbox.path());
    assert_eq!(
        names.len(),
        1000,
        "an envelope per message, no temporary files"
    );
    for eml in server.emls() {
        assert!(parse(&eml).subject().unwrap().starts_with("burst "));
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_progress_finish() {
    // A transport that takes its time, so that the request is in progress when
    // the shutdown starts.
    struct Slow(FileTransport);
    #[async_trait::async_trait]
    impl Transport for Slow {
        async fn send(
            &self,
            envelope: &cmsi_mail::Envelope,
            message: &cmsi_mail::Composed,
        ) -> Result<cmsi_mail::Receipt, cmsi_mail::TransportError> {
            tokio::time::sleep(Duration::from_millis(700)).await;
            self.0.send(envelope, message).await
        }
    }
    let outbox = tempfile::tempdir().unwrap();
    let transport = Box::new(Slow(FileTransport::new(outbox.path())));
    let server = start_with(transport, outbox, ServerConfig::default()).await;
    let url = format!("{}{PATH}", server.url);
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(&url)
            .json(&seed())
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Server {
        url,
        outbox,
        stop,
        task,
    } = server;
    let _ = stop.unwrap().send(());
    let reply = in_flight.await.unwrap();
    assert_eq!(reply["result"], true, "{reply}");
    task.await.unwrap().unwrap();
    assert_eq!(
        file_names(outbox.path())
            .iter()
            .filter(|n| n.ends_with(".eml"))
            .count(),
        1
    );
    // And it no longer accepts.
    assert!(
        reqwest::Client::new()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_in_progress_are_bounded() {
    // A transport that records how many sends overlap.
    struct Counting {
        inner: FileTransport,
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }
    #[async_trait::async_trait]
    impl Transport for Counting {
        async fn send(
            &self,
            envelope: &cmsi_mail::Envelope,
            message: &cmsi_mail::Composed,
        ) -> Result<cmsi_mail::Receipt, cmsi_mail::TransportError> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let result = self.inner.send(envelope, message).await;
            self.now.fetch_sub(1, SeqCst);
            result
        }
    }
    let outbox = tempfile::tempdir().unwrap();
    let counting = Arc::new(Counting {
        inner: FileTransport::new(outbox.path()),
        now: 0.into(),
        most: 0.into(),
    });
    let server = start_with(
        Box::new(Arc::clone(&counting)),
        outbox,
        ServerConfig {
            max_concurrent_deliveries: Some(3),
            ..ServerConfig::default()
        },
    )
    .await;
    let url = format!("{}{PATH}", server.url);
    let client = reqwest::Client::new();
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                client
                    .post(&url)
                    .json(&seed())
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap()["result"], true);
    }
    let most = counting.most.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(most, 3, "the bound is reached and never passed");
    assert_eq!(server.eml_count(), 12);
    server.stop().await;
}

#[tokio::test]
async fn unknown_usernames_are_reported_when_delivery_fails_too() {
    let outbox = tempfile::tempdir().unwrap();
    let missing = outbox.path().join("missing");
    let server = start_with(
        Box::new(FileTransport::new(&missing)),
        outbox,
        ServerConfig::default(),
    )
    .await;
    let mut body = seed();
    body.as_object_mut().unwrap().remove("receiver");
    body["receiver__username"] = json!("admin,ghost");
    let (_, reply, _) = post_json(&server, PATH, &body).await;
    assert_eq!(reply["code"], "1306201");
    assert_eq!(reply["data"]["username_check"]["invalid"], json!(["ghost"]));
    server.stop().await;
}
