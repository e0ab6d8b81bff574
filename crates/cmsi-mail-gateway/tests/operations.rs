//! What an operator sees and sets, over real HTTP on 127.0.0.1: `/metrics`
//! read by the Prometheus client's parser, per-app and server quotas, and
//! `/readyz` against a real SMTP server that stops and starts again.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmsi_mail::{Mailbox, Mailer, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_gateway::{AppConfig, AppRegistry, Apps, Gateway, ServerConfig, serve};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::metrics::Metrics;
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer, SmtpTls, free_port};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATH: &str = "/api/c/compapi/cmsi/send_mail/";

struct Server {
    addr: SocketAddr,
    outbox: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// A gateway for `monitor` (secret `s3cret`) and `other` (`0ther`), both
    /// allowed to name their user by `bk_username`; `monitor` gets `rate`.
    async fn start(
        transport: Box<dyn Transport>,
        label: &'static str,
        rate: Option<(&str, u32)>,
        server: ServerConfig,
    ) -> Server {
        let outbox = tempfile::tempdir().unwrap();
        let mut apps = Apps::new();
        apps.insert(
            "monitor".into(),
            AppConfig {
                secret: Some("s3cret".into()),
                allow_bk_username: true,
                rate: rate.map(|(rate, _)| rate.parse().unwrap()),
                burst: rate.map(|(_, burst)| NonZeroU32::new(burst).unwrap()),
                ..AppConfig::default()
            },
        );
        apps.insert(
            "other".into(),
            AppConfig {
                secret: Some("0ther".into()),
                allow_bk_username: true,
                ..AppConfig::default()
            },
        );
        let apps = AppRegistry::new(&apps, |_| None).unwrap();
        let mailer = Mailer::new(transport, Mailbox::parse("noreply@example.com").unwrap());
        let gateway = Gateway::new(mailer, apps, &server)
            .unwrap()
            .with_transport_label(label);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, Arc::new(gateway), async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            outbox,
            stop: Some(stop),
            task,
        }
    }

    /// With the file transport writing into its outbox.
    async fn file(rate: Option<(&str, u32)>, server: ServerConfig) -> Server {
        let outbox = tempfile::tempdir().unwrap();
        let transport = Box::new(FileTransport::new(outbox.path()));
        let mut started = Server::start(transport, "file", rate, server).await;
        started.outbox = outbox;
        started
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn eml_count(&self) -> usize {
        file_names(self.outbox.path())
            .iter()
            .filter(|name| name.ends_with(".eml"))
            .count()
    }

    async fn metrics(&self) -> (String, Metrics) {
        metrics_at(&self.url("/metrics")).await
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn metrics_at(url: &str) -> (String, Metrics) {
    let reply = reqwest::get(url).await.unwrap();
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let page = reply.text().await.unwrap();
    let parsed = Metrics::parse(&page);
    (page, parsed)
}

/// A request of `app` with its credentials in the body.
fn request(app: &str, secret: &str, changes: Value) -> Value {
    let mut body = json!({
        "bk_app_code": app, "bk_app_secret": secret, "bk_username": "admin",
        "receiver": "a@example.com", "title": "Quarterly numbers", "content": "c",
    });
    for (key, value) in changes.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

async fn post(server: &Server, body: &Value) -> (u16, Value) {
    let reply = reqwest::Client::new()
        .post(server.url(PATH))
        .json(body)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// An HTTP/1.1 request with the credentials in `X-Bkapi-Authorization`,
/// written whole (or, with `body: None`, the headers only, announcing a body
/// of 100 bytes that never comes).
fn header_request(addr: SocketAddr, app: &str, secret: &str, body: Option<&Value>) -> Vec<u8> {
    let credentials =
        json!({"bk_app_code": app, "bk_app_secret": secret, "bk_username": "admin"}).to_string();
    let text = body.map(Value::to_string).unwrap_or_default();
    let length = if body.is_some() { text.len() } else { 100 };
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Bkapi-Authorization: {credentials}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n{text}"
    )
    .into_bytes()
}

/// A reply read from `stream`: status, `Retry-After` if any, JSON body. Fails
/// the test if none comes within 30 s.
async fn read_reply(stream: &mut TcpStream) -> (u16, Option<u64>, Value) {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(30);
    let (head, body) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let read = tokio::time::timeout(left, stream.read(&mut buffer))
            .await
            .expect("no reply within 30 s")
            .unwrap_or(0);
        bytes.extend_from_slice(&buffer[..read]);
        if let Some(split) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..split]).to_string();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("content-length");
            if bytes.len() >= split + 4 + length {
                break (head, bytes[split + 4..split + 4 + length].to_vec());
            }
        }
        assert!(
            read > 0,
            "connection closed before a whole reply: {bytes:?}"
        );
    };
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let retry_after = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("retry-after")
            .then(|| value.trim().parse().unwrap())
    });
    (status, retry_after, serde_json::from_slice(&body).unwrap())
}

fn plain_smtp() -> SmtpOptions {
    SmtpOptions {
        tls: SmtpTls::None,
        credentials: Some(("testuser".into(), "testpass".into())),
        ..SmtpOptions::default()
    }
}

fn smtp_transport(port: u16) -> Box<dyn Transport> {
    let transport = SmtpTransport::new(SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        smtp_user: Some("testuser".into()),
        smtp_pwd: Some("testpass".into()),
        ..SmtpSettings::default()
    })
    .unwrap()
    .with_backoff(Duration::from_millis(10));
    Box::new(transport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_mix_of_requests() {
    let smtp = SmtpServer::start(plain_smtp());
    let server = Server::start(
        smtp_transport(smtp.port),
        "smtp",
        None,
        ServerConfig::default(),
    )
    .await;
    let mix = [
        // Sent: 1, 2, and 1 of 2 recipients (the relay refuses reject-*).
        (json!({}), "00"),
        (json!({"receiver": "a@example.com, b@example.com"}), "00"),
        (
            json!({"receiver": "c@example.com, reject-d@example.com"}),
            "00",
        ),
        // Bad input.
        (json!({"receiver": "nobody"}), "1306000"),
        (json!({"body_format": "Markdown"}), "1306000"),
        // The relay refuses every recipient: a permanent failure.
        (json!({"receiver": "reject-e@example.com"}), "1306201"),
    ];
    for (changes, code) in mix {
        let (status, reply) = post(&server, &request("monitor", "s3cret", changes)).await;
        assert_eq!(
            (status, reply["code"].as_str().unwrap()),
            (200, code),
            "{reply}"
        );
    }
    // Failed authentication: a wrong secret, and an app code nobody set up.
    for (app, secret) in [("monitor", "wrong"), ("evil-app", "s3cret")] {
        let (_, reply) = post(&server, &request(app, secret, json!({}))).await;
        assert_eq!(reply["code"], "1306000", "{reply}");
    }
    assert_eq!(smtp.messages().len(), 3);

    let (page, metrics) = server.metrics().await;
    let requests = |app: &str, code: &str| {
        metrics.sum(
            "cmsi_requests_total",
            &[("app", app), ("route", "send_mail"), ("code", code)],
        )
    };
    assert_eq!(requests("monitor", "00"), 3.0, "{page}");
    assert_eq!(requests("monitor", "1306000"), 2.0, "{page}");
    assert_eq!(requests("monitor", "1306201"), 1.0, "{page}");
    assert_eq!(requests("-", "1306000"), 2.0, "{page}");
    assert_eq!(metrics.sum("cmsi_requests_total", &[]), 8.0, "{page}");
    // An app code nobody configured makes no label value of its own.
    assert_eq!(
        metrics.label_values("cmsi_requests_total", "app"),
        ["-".to_owned(), "monitor".to_owned()].into()
    );
    let deliveries = |outcome: &str| {
        metrics.sum(
            "cmsi_deliveries_total",
            &[("transport", "smtp"), ("outcome", outcome)],
        )
    };
    assert_eq!(deliveries("sent"), 3.0, "{page}");
    assert_eq!(deliveries("permanent"), 1.0, "{page}");
    assert_eq!(metrics.sum("cmsi_deliveries_total", &[]), 4.0, "{page}");
    let recipients = |outcome: &str| metrics.sum("cmsi_recipients_total", &[("outcome", outcome)]);
    assert_eq!(recipients("accepted"), 4.0, "{page}");
    assert_eq!(recipients("refused"), 1.0, "{page}");
    assert_eq!(
        metrics.sum(
            "cmsi_request_duration_seconds_count",
            &[("route", "send_mail")]
        ),
        8.0,
        "{page}"
    );
    assert_eq!(
        metrics.sum(
            "cmsi_request_duration_seconds_bucket",
            &[("route", "send_mail"), ("le", "+Inf")]
        ),
        8.0,
        "{page}"
    );
    assert_eq!(
        metrics.sum(
            "cmsi_delivery_duration_seconds_count",
            &[("transport", "smtp")]
        ),
        4.0,
        "{page}"
    );
    assert_eq!(metrics.sum("cmsi_rate_limited_total", &[]), 0.0);
    assert_eq!(metrics.sum("cmsi_inflight_requests", &[]), 0.0, "{page}");
    assert_eq!(metrics.sum("cmsi_body_bytes_inflight", &[]), 0.0, "{page}");
    assert_eq!(metrics.types["cmsi_requests"], "counter");
    assert_eq!(metrics.types["cmsi_request_duration_seconds"], "histogram");
    assert_eq!(metrics.types["cmsi_inflight_requests"], "gauge");
    assert_eq!(metrics.types["cmsi_body_bytes_inflight"], "gauge");
    // No address, subject or secret anywhere on the page.
    for private in ["example.com", "Quarterly", "s3cret", "testpass", "evil-app"] {
        assert!(!page.contains(private), "{private} on the page:\n{page}");
    }
    server.stop().await;
}

#[tokio::test]
async fn requests_in_progress_and_their_body_bytes_are_gauges() {
    let server = Server::file(
        None,
        ServerConfig {
            body_timeout_secs: Some(60),
            ..ServerConfig::default()
        },
    )
    .await;
    // Two requests announce 100 bytes each and send none: both are in flight
    // and hold their share of the body budget until they are answered.
    let mut waiting = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(&header_request(server.addr, "monitor", "s3cret", None))
            .await
            .unwrap();
        waiting.push(stream);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = server.metrics().await;
        if metrics.sum("cmsi_inflight_requests", &[]) == 2.0 || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(metrics.sum("cmsi_inflight_requests", &[]), 2.0);
    assert_eq!(metrics.sum("cmsi_body_bytes_inflight", &[]), 200.0);
    // A client that goes away leaves no request behind in the gauges.
    drop(waiting);
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, metrics) = server.metrics().await;
        if metrics.sum("cmsi_inflight_requests", &[]) == 0.0 || Instant::now() > deadline {
            break metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(metrics.sum("cmsi_inflight_requests", &[]), 0.0);
    assert_eq!(metrics.sum("cmsi_body_bytes_inflight", &[]), 0.0);
    server.stop().await;
}

#[tokio::test]
async fn metrics_listen_moves_metrics_to_a_listener_of_their_own() {
    let port = free_port();
    let server = Server::file(
        None,
        ServerConfig {
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], port))),
            ..ServerConfig::default()
        },
    )
    .await;
    let (status, reply) = post(&server, &request("monitor", "s3cret", json!({}))).await;
    assert_eq!((status, &reply["code"]), (200, &json!("00")), "{reply}");
    let main = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(main.status(), 404);
    let elsewhere = format!("http://127.0.0.1:{port}");
    let (_, metrics) = metrics_at(&format!("{elsewhere}/metrics")).await;
    assert_eq!(
        metrics.sum(
            "cmsi_deliveries_total",
            &[("transport", "file"), ("outcome", "sent")]
        ),
        1.0
    );
    // Only /metrics there: not the API.
    let api = reqwest::Client::new()
        .post(format!("{elsewhere}{PATH}"))
        .json(&request("monitor", "s3cret", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(server.eml_count(), 1);
    server.stop().await;
    // Both listeners are closed on shutdown.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_apps_quota_is_refused_and_others_are_not() {
    let server = Server::file(Some(("5/s", 5)), ServerConfig::default()).await;
    let body = json!({"receiver": "a@example.com", "title": "t", "content": "c"});
    // 20 connections first, then the 20 requests written at once.
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let written = header_request(server.addr, "monitor", "s3cret", Some(&body));
    for stream in &mut streams {
        stream.write_all(&written).await.unwrap();
    }
    let mut replies = Vec::new();
    for mut stream in streams {
        replies.push(tokio::spawn(async move { read_reply(&mut stream).await }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for reply in replies {
        let (status, retry_after, reply) = reply.await.unwrap();
        match status {
            200 => {
                assert_eq!(reply["code"], "00", "{reply}");
                assert_eq!(retry_after, None);
                accepted += 1;
            }
            429 => {
                assert_eq!(reply["code"], "1306429", "{reply}");
                assert_eq!(reply["result"], false);
                assert_eq!(reply["data"]["quota"], "app");
                let retry_after = retry_after.expect("Retry-After");
                assert!(retry_after >= 1, "{retry_after}");
                assert_eq!(reply["data"]["retry_after"], retry_after);
                assert!(
                    reply["message"]
                        .as_str()
                        .unwrap()
                        .contains("app [monitor] is over its quota of 5/s (burst 5)"),
                    "{reply}"
                );
                refused += 1;
            }
            other => panic!("HTTP {other}: {reply}"),
        }
    }
    assert_eq!((accepted, refused), (5, 15));
    assert_eq!(server.eml_count(), 5);

    // Another app has a quota of its own (here none) and is not held up.
    let (status, reply) = post(&server, &request("other", "0ther", json!({}))).await;
    assert_eq!((status, &reply["code"]), (200, &json!("00")), "{reply}");
    // A second later the bucket has refilled.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, reply) = post(&server, &request("monitor", "s3cret", json!({}))).await;
    assert_eq!((status, &reply["code"]), (200, &json!("00")), "{reply}");

    let (page, metrics) = server.metrics().await;
    let requests =
        |app: &str, code: &str| metrics.sum("cmsi_requests_total", &[("app", app), ("code", code)]);
    assert_eq!(requests("monitor", "1306429"), 15.0, "{page}");
    assert_eq!(requests("monitor", "00"), 6.0, "{page}");
    assert_eq!(requests("other", "00"), 1.0, "{page}");
    assert_eq!(
        metrics.sum(
            "cmsi_rate_limited_total",
            &[("app", "monitor"), ("quota", "app")]
        ),
        15.0,
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_quota_refuses_before_the_body_is_read_or_parsed() {
    let server = Server::file(
        Some(("1/h", 1)),
        ServerConfig {
            body_timeout_secs: Some(60),
            ..ServerConfig::default()
        },
    )
    .await;
    // A failed authentication takes no token.
    let (_, reply) = post(&server, &request("monitor", "wrong", json!({}))).await;
    assert_eq!(reply["code"], "1306000", "{reply}");
    let (_, reply) = post(&server, &request("monitor", "s3cret", json!({}))).await;
    assert_eq!(reply["code"], "00", "{reply}");

    // Credentials in the header, a body announced and never sent: the answer
    // is the quota's, not a body timeout (60 s) — the body was never read.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(&header_request(server.addr, "monitor", "s3cret", None))
        .await
        .unwrap();
    let (status, retry_after, reply) = read_reply(&mut stream).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["code"], "1306429", "{reply}");
    let retry_after = retry_after.expect("Retry-After");
    assert!((3590..=3600).contains(&retry_after), "{retry_after}");

    // Credentials in the body: refused before the request is parsed, so a
    // request that would be a bad one gets the quota's answer too.
    let (status, reply) = post(
        &server,
        &request("monitor", "s3cret", json!({"receiver": "nobody"})),
    )
    .await;
    assert_eq!(
        (status, &reply["code"]),
        (429, &json!("1306429")),
        "{reply}"
    );
    // The app's quota is one for every route: send_msg and the bk-cmsi API
    // are refused as well.
    let client = reqwest::Client::new();
    let send_msg = request(
        "monitor",
        "s3cret",
        json!({"msg_type": "mail", "receiver__username": "admin"}),
    );
    let v1 = json!({"receiver": ["a@example.com"], "title": "t", "content": "c"});
    for (path, body, header) in [
        ("/api/c/compapi/v2/cmsi/send_msg/", &send_msg, None),
        (
            "/api/bk-cmsi/prod/v1/send_mail/",
            &v1,
            Some(json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret"}).to_string()),
        ),
    ] {
        let mut post = client.post(server.url(path)).json(body);
        if let Some(header) = header {
            post = post.header("X-Bkapi-Authorization", header);
        }
        let reply = post.send().await.unwrap();
        assert_eq!(reply.status(), 429, "{path}");
        assert!(reply.headers().contains_key("retry-after"), "{path}");
        let reply: Value = reply.json().await.unwrap();
        let code = reply
            .get("error")
            .map_or(&reply["code"], |error| &error["code"]);
        assert_eq!(code, "1306429", "{path}: {reply}");
    }
    assert_eq!(server.eml_count(), 1);
    server.stop().await;
}

#[tokio::test]
async fn the_server_quota_holds_for_all_apps_and_an_apps_own_refusals_spend_none_of_it() {
    let server = Server::file(
        Some(("1/h", 1)),
        ServerConfig {
            rate: Some("1/h".parse().unwrap()),
            burst: NonZeroU32::new(2),
            ..ServerConfig::default()
        },
    )
    .await;
    let send = |app: &'static str, secret: &'static str| {
        let body = request(app, secret, json!({}));
        let server = &server;
        async move { post(server, &body).await }
    };
    let (status, reply) = send("monitor", "s3cret").await;
    assert_eq!((status, &reply["code"]), (200, &json!("00")), "{reply}");
    // Over monitor's own quota: refused without spending the server's.
    let (status, reply) = send("monitor", "s3cret").await;
    assert_eq!(
        (status, &reply["data"]["quota"]),
        (429, &json!("app")),
        "{reply}"
    );
    let (status, reply) = send("other", "0ther").await;
    assert_eq!((status, &reply["code"]), (200, &json!("00")), "{reply}");
    // The server's burst of 2 is spent.
    let (status, reply) = send("other", "0ther").await;
    assert_eq!(
        (status, &reply["data"]["quota"]),
        (429, &json!("server")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("the server is over its quota of 1/h (burst 2)"),
        "{reply}"
    );
    let (_, metrics) = server.metrics().await;
    assert_eq!(
        metrics.sum(
            "cmsi_rate_limited_total",
            &[("app", "other"), ("quota", "server")]
        ),
        1.0
    );
    assert_eq!(
        metrics.sum(
            "cmsi_rate_limited_total",
            &[("app", "monitor"), ("quota", "app")]
        ),
        1.0
    );
    server.stop().await;
}

async fn readyz(server: &Server) -> (u16, Value) {
    let reply = reqwest::get(server.url("/readyz")).await.unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// Probes `/readyz` until it answers `status`, for at most 30 s.
async fn readyz_until(server: &Server, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (now, body) = readyz(server).await;
        if now == status {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {now} after 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_smtp_server_down_and_up_again() {
    let smtp = SmtpServer::start(plain_smtp());
    let port = smtp.port;
    let server = Server::start(
        smtp_transport(port),
        "smtp",
        None,
        ServerConfig {
            ready_cache_secs: Some(1),
            ..ServerConfig::default()
        },
    )
    .await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["transport"]["status"], "ok");

    drop(smtp);
    let body = readyz_until(&server, 503).await;
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["checks"]["transport"]["status"], "failed");
    assert_eq!(body["checks"]["transport"]["kind"], "transient", "{body}");
    assert!(!body.to_string().contains("testpass"), "{body}");
    // The process is up all the same.
    let health = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);

    let _smtp = SmtpServer::start_on_port(port, plain_smtp());
    let body = readyz_until(&server, 200).await;
    assert_eq!(body["status"], "ready");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_share_one_check_and_its_answer_is_cached() {
    let smtp = SmtpServer::start(plain_smtp());
    let server = Server::start(
        smtp_transport(smtp.port),
        "smtp",
        None,
        ServerConfig {
            ready_cache_secs: Some(3600),
            ..ServerConfig::default()
        },
    )
    .await;
    let server = Arc::new(server);
    let probes: Vec<_> = (0..20)
        .map(|_| {
            let server = Arc::clone(&server);
            tokio::spawn(async move { readyz(&server).await.0 })
        })
        .collect();
    for probe in probes {
        assert_eq!(probe.await.unwrap(), 200);
    }
    // 20 probes at once, one connection to the relay.
    assert_eq!(smtp.count("session"), 1);
    // Within the cache time the answer stands, even when the relay is gone.
    drop(smtp);
    assert_eq!(readyz(&server).await.0, 200);
    Arc::into_inner(server).unwrap().stop().await;
}

#[tokio::test]
async fn readiness_names_the_failed_check() {
    let gone = tempfile::tempdir().unwrap();
    let dir = gone.path().join("outbox");
    let server = Server::start(
        Box::new(FileTransport::new(&dir)),
        "file",
        None,
        ServerConfig::default(),
    )
    .await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["transport"]["kind"], "io", "{body}");
    assert!(
        body["checks"]["transport"]["message"]
            .as_str()
            .unwrap()
            .contains("cannot write into"),
        "{body}"
    );
    server.stop().await;
}
