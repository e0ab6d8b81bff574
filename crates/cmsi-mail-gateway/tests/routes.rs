//! The routes beside `send_mail` over real HTTP on 127.0.0.1: the ESB's
//! `send_msg` and `get_msg_type`, the bk-cmsi API, `dest_url` channels
//! forwarding to a real server, and tenants. Each shares `send_mail`'s path:
//! the same authentication, limits, validation and transport.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cmsi_mail::{Mailbox, Mailer, StaticDirectory, Transport};
use cmsi_mail_file::FileTransport;
use cmsi_mail_gateway::{
    AppConfig, AppRegistry, Apps, ChannelConfig, Channels, Gateway, ServerConfig, serve,
};
use cmsi_mail_testkit::channel::{ChannelServer, Reply};
use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::{parse, python_email_clean};
use serde_json::{Value, json};

const SEND_MSG: &str = "/api/c/compapi/cmsi/send_msg/";
const GET_MSG_TYPE: &str = "/api/c/compapi/v2/cmsi/get_msg_type/";
const V1_SEND_MAIL: &str = "/api/bk-cmsi/prod/v1/send_mail/";

struct Server {
    url: String,
    outbox: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// What a test configures beside the defaults.
#[derive(Default)]
struct Setup {
    channels: Channels,
    server: ServerConfig,
    /// Deliver into a directory that does not exist (every send fails).
    broken_transport: bool,
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
        "acme-portal".into(),
        AppConfig {
            secret: Some("acme-secret".into()),
            tenants: Some(vec!["acme".into()]),
            ..AppConfig::default()
        },
    );
    AppRegistry::new(&apps, |_| None).unwrap()
}

fn directory(toml: &str) -> Arc<StaticDirectory> {
    Arc::new(StaticDirectory::from_toml(toml).unwrap())
}

async fn start(setup: Setup) -> Server {
    let outbox = tempfile::tempdir().unwrap();
    let dir = if setup.broken_transport {
        outbox.path().join("missing")
    } else {
        outbox.path().to_path_buf()
    };
    // One transport for the top level and the tenant, as `cmsi-mail serve` does.
    let shared: Arc<dyn Transport> = Arc::new(FileTransport::new(dir));
    let top = Mailer::new(
        Box::new(Arc::clone(&shared)) as Box<dyn Transport>,
        Mailbox::parse("noreply@example.com").unwrap(),
    )
    .with_directory(directory(
        "[users]\nadmin = \"admin@example.com\"\nalice = \"alice@top.example\"\nbob = \"bob@top.example\"\n",
    ));
    let acme = Mailer::new(
        Box::new(Arc::clone(&shared)) as Box<dyn Transport>,
        Mailbox::parse("Acme <noreply@acme.example>").unwrap(),
    )
    .with_directory(directory("[users]\nalice = \"alice@acme.example\"\n"));
    let gateway = Gateway::new(top, apps(), &setup.server)
        .unwrap()
        .with_channels(&setup.channels)
        .unwrap()
        .with_tenant("acme", acme);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::new(gateway), async {
        let _ = stopped.await;
    }));
    Server {
        url,
        outbox,
        stop: Some(stop),
        task,
    }
}

impl Server {
    fn emls(&self) -> Vec<Vec<u8>> {
        emls(self.outbox.path())
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
    }

    /// POSTs JSON with extra headers; the status and the reply.
    async fn post(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}{path}", self.url))
            .json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = request.send().await.unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let reply = request.send().await.unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    }
}

fn emls(dir: &Path) -> Vec<Vec<u8>> {
    let mut names = file_names(dir);
    names.retain(|name| name.ends_with(".eml"));
    names
        .iter()
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect()
}

/// The credentials an ESB client puts in the body.
fn credentials() -> Value {
    json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin"})
}

/// `fields` with the body credentials.
fn with_credentials(fields: Value) -> Value {
    let mut body = credentials();
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    body
}

/// The header the official SDK and bk-cmsi clients send.
fn authorization(code: &str, secret: &str) -> String {
    json!({"bk_app_code": code, "bk_app_secret": secret}).to_string()
}

fn channel(url: &str) -> ChannelConfig {
    ChannelConfig {
        dest_url: url.to_owned(),
        ..ChannelConfig::default()
    }
}

#[tokio::test]
async fn send_msg_mail_is_send_mail_with_usernames_only() {
    let server = start(Setup::default()).await;
    let message = with_credentials(json!({
        "msg_type": "mail",
        "receiver__username": "admin, ghost",
        // send_msg has no address fields: the ESB drops them, and so do we.
        "receiver": "elsewhere@example.org",
        "cc": "copy@example.org",
        "title": "磁盘告警",
        "content": "<p>90%</p>",
    }));
    for path in [
        "/api/c/compapi/cmsi/send_msg/",
        "/api/c/compapi/cmsi/send_msg",
        "/api/c/compapi/v2/cmsi/send_msg/",
        "/api/c/compapi/v2/cmsi/send_msg",
    ] {
        let (status, reply) = server.post(path, &[], &message).await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"], true, "{path}: {reply}");
        assert_eq!(reply["code"], "00");
        assert_eq!(reply["data"]["accepted"], json!(["admin@example.com"]));
        assert_eq!(reply["data"]["username_check"]["invalid"], json!(["ghost"]));
    }

    // A form body, and a GET with the query string, as the ESB takes them.
    let form = reqwest::Client::new()
        .post(format!("{}{SEND_MSG}", server.url))
        .form(&[
            ("bk_app_code", "monitor"),
            ("bk_app_secret", "s3cret"),
            ("bk_token", "token"),
            ("msg_type", "mail"),
            ("receiver__username", "alice;bob"),
            ("title", "表单"),
            ("content", "hello"),
            ("body_format", "Text"),
        ])
        .send()
        .await
        .unwrap();
    let reply: Value = form.json().await.unwrap();
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(
        reply["data"]["accepted"],
        json!(["alice@top.example", "bob@top.example"])
    );
    let query = reqwest::Client::new()
        .get(format!("{}{SEND_MSG}", server.url))
        .query(&[
            ("bk_app_code", "monitor"),
            ("bk_app_secret", "s3cret"),
            ("bk_username", "admin"),
            ("msg_type", "mail"),
            ("receiver__username", "admin"),
            ("title", "GET"),
            ("content", "hello"),
        ])
        .send()
        .await
        .unwrap();
    let reply: Value = query.json().await.unwrap();
    assert_eq!(reply["result"], true, "{reply}");

    let emls = server.emls();
    assert_eq!(emls.len(), 6);
    for eml in &emls {
        python_email_clean(eml);
        let parsed = parse(eml);
        let to: Vec<_> = parsed
            .to()
            .unwrap()
            .iter()
            .map(|a| a.address().unwrap().to_owned())
            .collect();
        assert!(!to.iter().any(|a| a.contains("example.org")), "{to:?}");
        assert!(parsed.cc().is_none(), "cc is dropped");
    }
    server.stop().await;
}

#[tokio::test]
async fn send_msg_refusals_name_the_field_and_the_type() {
    let server = start(Setup {
        channels: BTreeMap::from([("rtx".to_owned(), channel(&ChannelServer::closed_url()))]),
        ..Setup::default()
    })
    .await;
    let mail =
        json!({"msg_type": "mail", "receiver__username": "admin", "title": "t", "content": "c"});
    let without = |key: &str| {
        let mut body = with_credentials(mail.clone());
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let changed = |key: &str, value: Value| {
        let mut body = with_credentials(mail.clone());
        body[key] = value;
        body
    };
    let cases = [
        (without("msg_type"), "msg_type", "msg_type: is required"),
        (
            changed("msg_type", json!(" ")),
            "msg_type",
            "msg_type: must not be empty",
        ),
        (
            changed("msg_type", json!("fax")),
            "msg_type",
            "msg_type: \"fax\" is not a message type: use one of weixin, mail, sms, voice, rtx",
        ),
        (
            changed("msg_type", json!("MAIL")),
            "msg_type",
            "msg_type: \"MAIL\" is not a message type: use one of weixin, mail, sms, voice, rtx",
        ),
        (
            changed("msg_type", json!("weixin")),
            "msg_type",
            "msg_type: \"weixin\" is not configured on this server: it sends mail, rtx",
        ),
        (
            changed("msg_type", json!(["mail"])),
            "msg_type",
            "msg_type: invalid type: sequence, expected a string",
        ),
        (
            without("receiver__username"),
            "receiver__username",
            "receiver__username: is required",
        ),
        (
            changed("receiver__username", json!(" ,; ")),
            "receiver__username",
            "receiver__username: is required",
        ),
        (without("title"), "title", "title: is required"),
        (
            changed("receiver__username", json!("ghost")),
            "receiver__username",
            "receiver__username: none of the usernames is known: ghost",
        ),
    ];
    for (body, field, message) in cases {
        let (status, reply) = server.post(SEND_MSG, &[], &body).await;
        assert_eq!(status, 200);
        assert_eq!(reply["result"], false, "{body}");
        assert_eq!(reply["code"], "1306000");
        let text = reply["message"].as_str().unwrap();
        if message.contains("invalid type") {
            // serde adds where in the body the type is wrong.
            assert!(text.starts_with(message), "{text} for {body}");
        } else {
            assert_eq!(text, message, "{body}");
        }
        assert_eq!(reply["data"]["field"], field);
    }
    // A channel's message is checked before it is forwarded.
    let mut rtx = changed("msg_type", json!("rtx"));
    rtx.as_object_mut().unwrap().remove("content");
    let (_, reply) = server.post(SEND_MSG, &[], &rtx).await;
    assert_eq!(reply["message"], "content: is required");
    assert!(server.emls().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_shared_path_authenticates_and_bounds_every_route() {
    let server = start(Setup {
        server: ServerConfig {
            max_body_bytes: Some(64 * 1024),
            ..ServerConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let message =
        json!({"msg_type": "mail", "receiver__username": "admin", "title": "t", "content": "c"});
    for path in [SEND_MSG, GET_MSG_TYPE] {
        let (status, reply) = server.post(path, &[], &message).await;
        assert_eq!(status, 200);
        assert_eq!(reply["code"], "1306000");
        assert_eq!(
            reply["message"], "APP Code [bk_app_code] cannot be empty",
            "{path}"
        );

        let mut wrong = with_credentials(message.clone());
        wrong["bk_app_secret"] = json!("wrong");
        let (_, reply) = server.post(path, &[], &wrong).await;
        assert_eq!(
            reply["message"],
            "APP Code [monitor] and APP Secret [bk_app_secret] do not match a registered app"
        );
        // The ESB routes want a user as well as the app.
        let (_, reply) = server
            .post(
                path,
                &[("X-Bkapi-Authorization", &authorization("monitor", "s3cret"))],
                &message,
            )
            .await;
        assert_eq!(
            reply["message"],
            "User authentication failed: provide bk_token or bk_username"
        );
    }
    // bk-cmsi: app credentials alone, and failures by status.
    let v1 = json!({"receiver": ["a@example.com"], "title": "t", "content": "c"});
    let (status, reply) = server.post(V1_SEND_MAIL, &[], &v1).await;
    assert_eq!(status, 401);
    assert_eq!(reply["error"]["code"], "1306000");
    assert_eq!(
        reply["error"]["message"],
        "APP Code [bk_app_code] cannot be empty"
    );
    let (status, reply) = server
        .post(
            V1_SEND_MAIL,
            &[("X-Bkapi-Authorization", &authorization("monitor", "nope"))],
            &v1,
        )
        .await;
    assert_eq!(status, 401, "{reply}");
    let (status, reply) = server.get("/v1/channels/", &[]).await;
    assert_eq!(status, 401, "{reply}");

    // The body limit holds on every route, before any parse.
    let big = "x".repeat(100 * 1024);
    for path in [SEND_MSG, V1_SEND_MAIL, "/v1/send_msg/"] {
        let (status, reply) = server
            .post(
                path,
                &[],
                &with_credentials(json!({"msg_type": "mail", "content": big})),
            )
            .await;
        assert_eq!(status, 413, "{path}: {reply}");
        assert_eq!(reply["result"], false);
    }
    // Methods the routes do not take.
    let reply = reqwest::Client::new()
        .get(format!("{}{V1_SEND_MAIL}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 405);
    assert!(server.emls().is_empty());
    server.stop().await;
}

fn decoded_icon(item: &Value) -> Vec<u8> {
    let icon = item["icon"].as_str().unwrap();
    assert!(
        !icon.starts_with("data:"),
        "a bare base64 string, as the ESB sends"
    );
    let python = cmsi_mail_testkit::stdlib_python();
    let output = std::process::Command::new(python)
        .args(["-c", "import base64, sys; sys.stdout.buffer.write(base64.b64decode(sys.argv[1], validate=True))", icon])
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

#[tokio::test]
async fn get_msg_type_lists_the_esb_types_in_its_order() {
    let sink = ChannelServer::start(Reply::Json(json!({"result": true})));
    let server = start(Setup {
        channels: BTreeMap::from([
            ("weixin".to_owned(), channel(&sink.url)),
            ("rtx".to_owned(), channel(&sink.url)),
        ]),
        ..Setup::default()
    })
    .await;
    let query = "?bk_app_code=monitor&bk_app_secret=s3cret&bk_username=admin";
    let (status, reply) = server.get(&format!("{GET_MSG_TYPE}{query}"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"], true);
    assert_eq!(reply["code"], "00");
    let items = reply["data"].as_array().unwrap();
    let listed: Vec<_> = items
        .iter()
        .map(|item| {
            (
                item["type"].as_str().unwrap(),
                item["label"].as_str().unwrap(),
                item["is_active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("weixin", "weixin", true),
            ("mail", "mail", true),
            ("sms", "sms", false),
            ("voice", "voice", false),
            ("rtx", "rtx", true),
        ]
    );
    for item in items {
        let keys: Vec<_> = item.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["icon", "is_active", "label", "type"]);
        let icon = decoded_icon(item);
        assert_eq!(&icon[..4], b"\0\0\x01\0", "an .ico file");
    }
    assert_ne!(items[2]["icon"], items[1]["icon"]);

    for (language, labels) in [
        ("zh-cn", ["微信", "邮件", "短信", "语音"]),
        ("zh-hans", ["微信", "邮件", "短信", "语音"]),
        ("en", ["weixin", "mail", "sms", "voice"]),
        ("en-US", ["weixin", "mail", "sms", "voice"]),
    ] {
        let header = authorization("monitor", "s3cret").replace('}', ",\"bk_username\":\"admin\"}");
        let (_, reply) = server
            .get(
                GET_MSG_TYPE,
                &[
                    ("Blueking-Language", language),
                    ("X-Bkapi-Authorization", &header),
                ],
            )
            .await;
        let shown: Vec<_> = reply["data"].as_array().unwrap()[..4]
            .iter()
            .map(|item| item["label"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(shown, labels, "{language}");
    }
    // bk-cmsi's channels: the same list, with every name its clients read.
    for path in [
        "/api/bk-cmsi/prod/v1/channels/",
        "/api/bk-cmsi/prod/v1/channels",
        "/v1/channels/",
        "/v1/channels",
    ] {
        let (status, reply) = server
            .get(
                path,
                &[("X-Bkapi-Authorization", &authorization("monitor", "s3cret"))],
            )
            .await;
        assert_eq!(status, 200, "{path}: {reply}");
        let first = &reply["data"][0];
        assert_eq!(first["type"], "weixin");
        for key in ["name", "label"] {
            assert_eq!(first[key], "weixin");
        }
        for key in ["is_active", "enabled", "enable"] {
            assert_eq!(first[key], true);
            assert_eq!(reply["data"][2][key], false, "sms");
        }
    }
    assert!(sink.received().is_empty(), "listing forwards nothing");
    server.stop().await;
}

#[tokio::test]
async fn weixin_goes_to_its_dest_url_as_the_esb_forwards_it() {
    let sink = ChannelServer::start(Reply::Json(
        json!({"result": true, "code": 0, "message": "sent", "data": {"queued": 2}, "extra": 1}),
    ));
    let server = start(Setup {
        channels: BTreeMap::from([(
            "weixin".to_owned(),
            channel(&format!("{}/weixin?token=t", sink.url)),
        )]),
        ..Setup::default()
    })
    .await;
    let body = with_credentials(json!({
        "msg_type": "weixin",
        "receiver__username": "alice,bob",
        "receiver": "dropped@example.com",
        "title": " 告警 ",
        "content": "CPU 90%",
        "date": "2024-05-01 10:00",
        "remark": "from monitor",
        "wx_qy_agentid": 1000002,
        "bk_token": "t0ken",
    }));
    let (status, reply) = server
        .post(
            SEND_MSG,
            &[("Blueking-Language", "zh-cn"), ("X-Bk-Tenant-Id", "system")],
            &body,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(reply["code"], "00");
    assert_eq!(reply["message"], "sent");
    assert_eq!(
        reply["data"],
        json!({"queued": 2, "username_check": {"invalid": []}})
    );

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.request_line, "POST /weixin?token=t HTTP/1.1");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("x-bkapi-request-id"),
        reply["request_id"].as_str()
    );
    assert_eq!(request.header("blueking-language"), Some("zh-cn"));
    assert_eq!(request.header("x-bk-tenant-id"), Some("system"));
    assert_eq!(
        request.json(),
        json!({
            "receiver__username": ["alice", "bob"],
            "sender": "",
            "cc__username": [],
            "title": "告警",
            "content": "CPU 90%",
            "body_format": "",
            "attachments": [],
            "date": "2024-05-01 10:00",
            "remark": "from monitor",
            "wx_qy_agentid": "1000002",
            "wx_qy_corpsecret": "",
            "is_content_base64": false,
            "data": {
                "heading": "告警", "message": "CPU 90%", "date": "2024-05-01 10:00",
                "remark": "from monitor", "is_message_base64": false,
            },
        })
    );
    let raw = String::from_utf8_lossy(&request.body);
    for secret in ["s3cret", "t0ken", "bk_app_code", "dropped@example.com"] {
        assert!(!raw.contains(secret), "{secret} forwarded: {raw}");
    }

    // voice gets the ESB's auto_read_message; the server's refusal is relayed.
    let refusing = ChannelServer::start(Reply::Json(
        json!({"result": false, "code": 3, "message": "no phone"}),
    ));
    let server2 = start(Setup {
        channels: BTreeMap::from([("voice".to_owned(), channel(&refusing.url))]),
        ..Setup::default()
    })
    .await;
    let mut voice = body.clone();
    voice["msg_type"] = json!("voice");
    let (status, reply) = server2.post(SEND_MSG, &[], &voice).await;
    assert_eq!(status, 200);
    assert_eq!(
        (&reply["result"], &reply["code"], &reply["message"]),
        (&json!(false), &json!("3"), &json!("no phone"))
    );
    let forwarded = refusing.received()[0].json();
    assert_eq!(forwarded["auto_read_message"], "CPU 90%");
    assert!(forwarded.get("data").is_none());
    // Through bk-cmsi, the same refusal is a 502 with the error object.
    let (status, reply) = server2
        .post(
            "/v1/send_msg/",
            &[("X-Bkapi-Authorization", &authorization("monitor", "s3cret"))],
            &voice,
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(reply["error"]["message"], "no phone");
    assert!(server.emls().is_empty() && server2.emls().is_empty());
    server.stop().await;
    server2.stop().await;
}

#[tokio::test]
async fn a_channel_server_that_fails_gives_a_clear_1306201() {
    let other = ChannelServer::start(Reply::Json(json!({"result": true})));
    let sinks = [
        (
            "sms",
            Reply::Status(500),
            "Status Code: 500, Error Message: third-party system interface response status code is not 200",
        ),
        (
            "voice",
            Reply::Text("<html>hi</html>"),
            "interface response is not the JSON format",
        ),
        (
            "list",
            Reply::Json(json!([1, 2])),
            "interface response is not a JSON object",
        ),
        (
            "slow",
            Reply::Slow(Duration::from_secs(4), json!({"result": true})),
            "Third-party system interface response time exceeds 1 seconds",
        ),
        (
            "huge",
            Reply::Huge(5 * 1024 * 1024),
            "interface response is larger than 1048576 bytes",
        ),
        (
            "moved",
            Reply::Redirect(format!("{}/elsewhere", other.url)),
            "Status Code: 302, Error Message: third-party system interface response status code is not 200",
        ),
    ];
    let servers: Vec<_> = sinks
        .iter()
        .map(|(_, reply, _)| ChannelServer::start(reply.clone()))
        .collect();
    let mut channels: Channels = sinks
        .iter()
        .zip(&servers)
        .map(|((name, _, _), sink)| {
            let mut config = channel(&sink.url);
            config.timeout_secs = Some(1);
            (name.to_string(), config)
        })
        .collect();
    channels.insert("down".to_owned(), channel(&ChannelServer::closed_url()));
    let server = start(Setup {
        channels,
        ..Setup::default()
    })
    .await;
    let message = |msg_type: &str| {
        with_credentials(
            json!({"msg_type": msg_type, "receiver__username": "alice", "title": "t", "content": "c"}),
        )
    };
    let interface = |name: &str| match name {
        "sms" => "send_sms".to_owned(),
        "voice" => "send_voice_msg".to_owned(),
        other => format!("send_{other}"),
    };
    for (name, _, error) in &sinks {
        let started = std::time::Instant::now();
        let (status, reply) = server.post(SEND_MSG, &[], &message(name)).await;
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{name}: answered at all"
        );
        assert_eq!(status, 200);
        assert_eq!(reply["result"], false, "{name}: {reply}");
        assert_eq!(reply["code"], "1306201");
        assert_eq!(reply["data"]["kind"], "channel");
        assert_eq!(
            reply["message"],
            format!(
                "Component request third-party system [CMSI] interface [{}] error: {error}, please try again later or contact component developer to handle this",
                interface(name)
            ),
        );
    }
    let (_, reply) = server.post(SEND_MSG, &[], &message("down")).await;
    assert_eq!(reply["code"], "1306201");
    let text = reply["message"].as_str().unwrap();
    assert!(
        text.contains("error: cannot reach the third-party system: Connection refused"),
        "{text}"
    );
    assert!(
        !text.contains("127.0.0.1"),
        "the URL is never shown: {text}"
    );
    // Each server got the request once; the redirect was not followed.
    for sink in &servers {
        assert_eq!(sink.received().len(), 1);
    }
    assert!(other.received().is_empty(), "redirects are not followed");
    // bk-cmsi answers the same failure with 502.
    let (status, reply) = server
        .post(
            "/v1/send_msg/",
            &[("X-Bkapi-Authorization", &authorization("monitor", "s3cret"))],
            &message("sms"),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(reply["error"]["code"], "1306201");
    server.stop().await;
}

#[tokio::test]
async fn bk_cmsi_send_mail_takes_lists_and_answers_with_a_summary() {
    let server = start(Setup::default()).await;
    let header = authorization("monitor", "s3cret");
    let paths = [
        "/api/bk-cmsi/prod/v1/send_mail/",
        "/api/bk-cmsi/prod/v1/send_mail",
        "/v1/send_mail/",
        "/v1/send_mail",
    ];
    for path in paths {
        // bk-user: an address list and app credentials only.
        let (status, reply) = server
            .post(
                path,
                &[("X-Bkapi-Authorization", &header)],
                &json!({"sender": "ops@example.com", "title": "t", "content": "c",
                        "receiver": ["a@example.com", "b@example.com"]}),
            )
            .await;
        assert_eq!(status, 200, "{path}: {reply}");
        assert_eq!(reply["result"], true);
        assert_eq!(reply["code"], "00");
        assert_eq!(
            reply["data"]["summary"],
            json!({"total": 2, "succeeded": 2, "failed": 0})
        );
        assert_eq!(reply["data"]["message"], "");
        assert_eq!(reply["data"]["details"], json!({}));
        assert!(reply.get("error").is_none());
    }
    // bk-ci: receiver_username with one underscore, "HTML", a string flag.
    let (status, reply) = server
        .post(
            V1_SEND_MAIL,
            &[("X-Bkapi-Authorization", &header)],
            &json!({"receiver_username": ["alice", "ghost"], "cc_username": ["bob"], "title": "t",
                    "content": "<b>c</b>", "body_format": "HTML", "is_content_base64": "false"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["data"]["summary"],
        json!({"total": 3, "succeeded": 2, "failed": 1})
    );
    assert_eq!(
        reply["data"]["details"]["invalid_usernames"],
        json!(["ghost"])
    );
    // A bad request is a 400 naming the field.
    let (status, reply) = server
        .post(
            V1_SEND_MAIL,
            &[("X-Bkapi-Authorization", &header)],
            &json!({"receiver": ["a@example.com"], "content": "c"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["result"], false);
    assert_eq!(
        reply["error"],
        json!({"code": "1306000", "message": "title: is required"})
    );
    assert_eq!(reply["data"]["field"], "title");
    // bk-sops' send_msg, and bk-monitor's path without v1.
    for path in [
        "/api/bk-cmsi/prod/v1/send_msg/",
        "/api/bk-cmsi/prod/send_msg",
    ] {
        let (status, reply) = server
            .post(
                path,
                &[("X-Bkapi-Authorization", &header)],
                &json!({"msg_type": "mail", "receiver__username": "admin", "title": "t", "content": "c"}),
            )
            .await;
        assert_eq!(status, 200, "{path}: {reply}");
        assert_eq!(reply["data"]["summary"]["succeeded"], 1);
    }
    let emls = server.emls();
    assert_eq!(emls.len(), 7);
    for eml in &emls {
        python_email_clean(eml);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_failed_delivery_is_a_502_on_bk_cmsi() {
    let server = start(Setup {
        broken_transport: true,
        ..Setup::default()
    })
    .await;
    let (status, reply) = server
        .post(
            V1_SEND_MAIL,
            &[("X-Bkapi-Authorization", &authorization("monitor", "s3cret"))],
            &json!({"receiver": "a@example.com", "title": "t", "content": "c"}),
        )
        .await;
    assert_eq!(status, 502);
    assert_eq!(reply["error"]["code"], "1306201");
    assert_eq!(reply["data"]["kind"], "io");
    // The ESB route answers the same failure with 200, as the ESB does.
    let (status, reply) = server
        .post(SEND_MSG, &[], &with_credentials(json!({"msg_type": "mail", "receiver__username": "admin", "title": "t", "content": "c"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(reply["code"], "1306201");
    server.stop().await;
}

fn sender_and_to(eml: &[u8]) -> (String, Vec<String>) {
    let parsed = parse(eml);
    let from = parsed
        .from()
        .unwrap()
        .first()
        .unwrap()
        .address()
        .unwrap()
        .to_owned();
    let to = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap().to_owned())
        .collect();
    (from, to)
}

#[tokio::test]
async fn a_tenant_header_picks_the_tenants_sender_and_users() {
    let server = start(Setup::default()).await;
    let acme = authorization("acme-portal", "acme-secret");
    let monitor = authorization("monitor", "s3cret");
    let message = json!({"receiver__username": ["alice"], "title": "t", "content": "c"});
    let send = |header: String, tenant: Option<&'static str>| {
        let server = &server;
        let message = message.clone();
        async move {
            let mut headers = vec![("X-Bkapi-Authorization", header.as_str())];
            if let Some(tenant) = tenant {
                headers.push(("X-Bk-Tenant-Id", tenant));
            }
            server.post(V1_SEND_MAIL, &headers, &message).await
        }
    };
    let (status, reply) = send(acme.clone(), Some("acme")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["accepted"], json!(["alice@acme.example"]));
    let (status, reply) = send(monitor.clone(), Some("acme")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data"]["accepted"], json!(["alice@acme.example"]));
    // No header, or a tenant id nothing is configured for: the top level.
    for tenant in [None, Some("system"), Some("default")] {
        let (status, reply) = send(monitor.clone(), tenant).await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(
            reply["data"]["accepted"],
            json!(["alice@top.example"]),
            "{tenant:?}"
        );
    }
    let mut senders: Vec<_> = server.emls().iter().map(|eml| sender_and_to(eml)).collect();
    senders.sort();
    assert_eq!(
        senders,
        [
            (
                "noreply@acme.example".to_owned(),
                vec!["alice@acme.example".to_owned()]
            ),
            (
                "noreply@acme.example".to_owned(),
                vec!["alice@acme.example".to_owned()]
            ),
            (
                "noreply@example.com".to_owned(),
                vec!["alice@top.example".to_owned()]
            ),
            (
                "noreply@example.com".to_owned(),
                vec!["alice@top.example".to_owned()]
            ),
            (
                "noreply@example.com".to_owned(),
                vec!["alice@top.example".to_owned()]
            ),
        ]
    );

    // An app limited to acme may not send for another tenant, nor without one.
    for (tenant, shown) in [
        (Some("globex"), "globex"),
        (None, "(none)"),
        (Some("system"), "system"),
    ] {
        let (status, reply) = send(acme.clone(), tenant).await;
        assert_eq!(status, 403, "{reply}");
        assert_eq!(reply["code"], "1306000");
        assert_eq!(
            reply["error"]["message"],
            format!(
                "app [acme-portal] may not send for tenant [{shown}] (X-Bk-Tenant-Id): it may send for acme"
            )
        );
    }
    // The ESB routes honour the header too (bk-sops sends it), with the ESB's 200.
    let body = json!({"bk_app_code": "acme-portal", "bk_app_secret": "acme-secret", "bk_token": "t",
                      "msg_type": "mail", "receiver__username": "alice", "title": "t", "content": "c"});
    let (status, reply) = server
        .post(SEND_MSG, &[("X-Bk-Tenant-Id", "globex")], &body)
        .await;
    assert_eq!(
        (status, &reply["code"]),
        (200, &json!("1306000")),
        "{reply}"
    );
    let (_, reply) = server
        .post(SEND_MSG, &[("X-Bk-Tenant-Id", "acme")], &body)
        .await;
    assert_eq!(
        reply["data"]["accepted"],
        json!(["alice@acme.example"]),
        "{reply}"
    );
    assert_eq!(server.emls().len(), 6);
    server.stop().await;
}

#[test]
fn channel_settings_that_cannot_work_are_refused() {
    let build = |name: &str, config: ChannelConfig| {
        let mailer = Mailer::new(
            Box::new(FileTransport::new("unused")) as Box<dyn Transport>,
            Mailbox::parse("noreply@example.com").unwrap(),
        );
        Gateway::new(mailer, apps(), &ServerConfig::default())
            .unwrap()
            .with_channels(&BTreeMap::from([(name.to_owned(), config)]))
            .map(|_| ())
            .map_err(|error| error.to_string())
    };
    assert_eq!(
        build("mail", channel("http://127.0.0.1/")),
        Err(
            "[channels.mail]: mail is sent by the transport, not forwarded: remove this table"
                .into()
        )
    );
    assert!(
        build("we chat", channel("http://127.0.0.1/"))
            .unwrap_err()
            .contains("letters, digits")
    );
    assert_eq!(
        build("weixin", channel("ftp://example.com/")),
        Err("[channels.weixin]: dest_url must start with http:// or https://".into())
    );
    assert_eq!(
        build("weixin", channel("not a url")),
        Err("[channels.weixin]: dest_url is not a URL".into())
    );
    let mut zero = channel("http://127.0.0.1/");
    zero.timeout_secs = Some(0);
    assert!(build("weixin", zero).unwrap_err().contains("timeout_secs"));
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let mut with_ca = channel("https://127.0.0.1/");
    with_ca.ca_file = Some(not_pem);
    assert!(
        build("weixin", with_ca)
            .unwrap_err()
            .contains("holds no certificate")
    );
    assert_eq!(
        build("weixin", channel("https://notify.example.com/x?token=1")),
        Ok(())
    );
    // The URL's path and query (which may hold a token) are never shown.
    let shown = format!("{:?}", channel("https://notify.example.com/x?token=secret"));
    assert!(
        !shown.contains("secret") && shown.contains("notify.example.com"),
        "{shown}"
    );
}

#[tokio::test]
async fn an_https_dest_url_is_verified_against_the_ca_file() {
    let mut tls = cmsi_mail_testkit::channel::HttpsChannel::start();
    let mut trusted = channel(&format!("{}/weixin", tls.url));
    trusted.ca_file = Some(cmsi_mail_testkit::servers::certificate().cert.clone());
    let server = start(Setup {
        channels: BTreeMap::from([
            ("weixin".to_owned(), trusted),
            // The same server, trusted by the system's CAs only.
            ("sms".to_owned(), channel(&format!("{}/sms", tls.url))),
        ]),
        ..Setup::default()
    })
    .await;
    let message = |msg_type: &str| {
        with_credentials(
            json!({"msg_type": msg_type, "receiver__username": "alice", "title": "t", "content": "c"}),
        )
    };
    let (_, reply) = server.post(SEND_MSG, &[], &message("weixin")).await;
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(reply["message"], "over tls");
    assert_eq!(tls.next_body()["data"]["heading"], "t");
    let (_, reply) = server.post(SEND_MSG, &[], &message("sms")).await;
    assert_eq!(reply["code"], "1306201", "{reply}");
    let text = reply["message"].as_str().unwrap();
    assert!(text.contains("invalid peer certificate"), "{text}");
    server.stop().await;
}
