//! `cmsi-mail serve` called as BlueKing's other callers call it: the official
//! SDK's `get_msg_type` and `send_msg`, curl and `requests` with the
//! credentials in the body, a `weixin` channel forwarding to a real server,
//! and the bk-cmsi API with tenants, all configured from the TOML file.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::path::Path;
use std::process::{Command, Output};

use cmsi_mail_testkit::channel::{ChannelServer, Reply};
use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::python_email_clean;
use cmsi_mail_testkit::process::Listening;
use cmsi_mail_testkit::{venv_python, workspace_root};
use serde_json::{Value, json};

fn serve(args: &[&str]) -> Listening {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .current_dir(workspace_root());
    Listening::start(command)
}

fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("cmsi-mail.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn succeeded(output: Output, what: &str) -> Value {
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
        panic!(
            "{what}: not JSON: {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// POSTs `body` as JSON with `requests`, with extra headers; the status and
/// the reply.
fn requests_post(url: &str, headers: &Value, body: &Value) -> (u16, Value) {
    let script = "import json, sys, requests\n\
        r = requests.post(sys.argv[1], headers=json.loads(sys.argv[2]), json=json.loads(sys.argv[3]), timeout=60)\n\
        print(json.dumps({'status': r.status_code, 'body': r.json()}))";
    let output = Command::new(venv_python())
        .args(["-c", script, url, &headers.to_string(), &body.to_string()])
        .output()
        .unwrap();
    let reply = succeeded(output, "requests");
    (
        reply["status"].as_u64().unwrap() as u16,
        reply["body"].clone(),
    )
}

/// curl with a form body: `key=value` pairs, URL-encoded by curl.
fn curl_form(url: &str, pairs: &[&str]) -> Value {
    let mut command = Command::new("curl");
    command.arg("-sS");
    for pair in pairs {
        command.args(["--data-urlencode", pair]);
    }
    succeeded(command.arg(url).output().unwrap(), "curl")
}

fn emls(dir: &Path) -> Vec<Value> {
    file_names(dir)
        .iter()
        .filter(|name| name.ends_with(".eml"))
        .map(|name| python_email_clean(&std::fs::read(dir.join(name)).unwrap()))
        .collect()
}

fn addresses(report: &Value, header: &str) -> Vec<String> {
    report[header]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["address"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_sdk_lists_the_types_and_sends_on_each_active_one() {
    let outbox = tempfile::tempdir().unwrap();
    let server = serve(&[
        "--config",
        "examples/cmsi-mail.toml",
        "--outbox",
        &outbox.path().display().to_string(),
    ]);
    let output = Command::new(venv_python())
        .arg("examples/send_msg_sdk.py")
        .current_dir(workspace_root())
        .env("CMSI_MAIL_URL", &server.url)
        .output()
        .unwrap();
    let reply = succeeded(output, "examples/send_msg_sdk.py");
    let types = &reply["types"];
    assert_eq!(types["result"], true, "{types}");
    assert_eq!(types["code"], "00");
    let listed: Vec<_> = types["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["type"].clone(),
                item["label"].clone(),
                item["is_active"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (json!("weixin"), json!("微信"), json!(false)),
            (json!("mail"), json!("邮件"), json!(true)),
            (json!("sms"), json!("短信"), json!(false)),
            (json!("voice"), json!("语音"), json!(false)),
        ]
    );
    let sent = reply["sent"].as_object().unwrap();
    assert_eq!(sent.keys().collect::<Vec<_>>(), ["mail"]);
    assert_eq!(sent["mail"]["result"], true, "{reply}");
    assert_eq!(
        sent["mail"]["data"]["accepted"],
        json!(["admin@example.com", "zhangsan@example.com"])
    );
    let reports = emls(outbox.path());
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["subject"], "【告警】磁盘使用率 91%");
    assert_eq!(
        addresses(&reports[0], "to"),
        ["admin@example.com", "zhangsan@example.com"]
    );

    // Without a weixin channel, weixin is refused, naming the type.
    let refused = curl_form(
        &format!("{}/api/c/compapi/cmsi/send_msg/", server.url),
        &[
            "bk_app_code=monitor",
            "bk_app_secret=s3cret",
            "bk_username=admin",
            "msg_type=weixin",
            "receiver__username=admin",
            "title=t",
            "content=c",
        ],
    );
    assert_eq!(refused["result"], false);
    assert_eq!(refused["code"], "1306000");
    assert_eq!(
        refused["message"],
        "msg_type: \"weixin\" is not configured on this server: it sends mail"
    );
    let log = server.log();
    for route in ["get_msg_type", "send_msg"] {
        assert!(log.contains(&format!("route=\"{route}\"")), "{log}");
    }
    assert!(!log.contains("s3cret"), "secrets never reach the log");
    assert!(!log.contains("磁盘"), "mail content never reaches the log");
}

#[test]
fn body_credentials_forms_and_a_weixin_channel() {
    let sink = ChannelServer::start(Reply::Json(json!({"result": true, "message": "queued"})));
    let outbox = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[users]\nadmin = \"admin@example.com\"\n\
             [apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n\
             [channels.weixin]\ndest_url = \"{}/cgi/weixin\"\ntimeout_secs = 5\n",
            sink.url
        ),
    );
    let server = serve(&[
        "--config",
        &path,
        "--outbox",
        &outbox.path().display().to_string(),
    ]);
    let send_msg = format!("{}/api/c/compapi/v2/cmsi/send_msg/", server.url);

    // curl, a form body, credentials in it: forwarded as the ESB's JSON.
    let reply = curl_form(
        &send_msg,
        &[
            "bk_app_code=monitor",
            "bk_app_secret=s3cret",
            "bk_username=admin",
            "msg_type=weixin",
            "receiver__username=admin,zhangsan",
            "title=磁盘告警",
            "content=使用率 91%",
            "remark=来自 bk-monitor",
        ],
    );
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(reply["message"], "queued");
    let received = sink.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].request_line.starts_with("POST /cgi/weixin "));
    let forwarded = received[0].json();
    assert_eq!(
        forwarded["receiver__username"],
        json!(["admin", "zhangsan"])
    );
    assert_eq!(
        forwarded["data"],
        json!({"heading": "磁盘告警", "message": "使用率 91%", "date": "",
               "remark": "来自 bk-monitor", "is_message_base64": false})
    );
    assert!(forwarded.get("bk_app_secret").is_none() && forwarded.get("bk_app_code").is_none());

    // requests, JSON, credentials in the body: mail through the transport.
    let (status, reply) = requests_post(
        &send_msg,
        &json!({}),
        &json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
                "msg_type": "mail", "receiver__username": "admin", "title": "t", "content": "c"}),
    );
    assert_eq!((status, &reply["result"]), (200, &json!(true)), "{reply}");
    // A type with neither a channel nor the transport.
    let (_, reply) = requests_post(
        &send_msg,
        &json!({}),
        &json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
                "msg_type": "sms", "receiver__username": "admin", "title": "t", "content": "c"}),
    );
    assert_eq!(
        reply["message"],
        "msg_type: \"sms\" is not configured on this server: it sends mail, weixin"
    );
    assert_eq!(emls(outbox.path()).len(), 1);
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn bk_cmsi_with_tenants_from_the_configuration() {
    let outbox = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("acme-users.toml"),
        "[users]\nalice = { email = \"alice@acme.example\", name = \"Alice Acme\" }\n",
    )
    .unwrap();
    let path = config(
        dir.path(),
        "mail_sender = \"noreply@example.com\"\n\
         [users]\nalice = \"alice@top.example\"\n\
         [tenants.acme]\nmail_sender = \"Acme <noreply@acme.example>\"\nusers_file = \"acme-users.toml\"\n\
         [tenants.globex.users]\nalice = \"alice@globex.example\"\n\
         [apps.monitor]\nsecret = \"s3cret\"\n\
         [apps.acme-portal]\nsecret = \"acme-secret\"\ntenants = [\"acme\"]\n",
    );
    let server = serve(&[
        "--config",
        &path,
        "--outbox",
        &outbox.path().display().to_string(),
    ]);
    let url = format!("{}/api/bk-cmsi/prod/v1/send_mail/", server.url);
    // As bk-user sends it: app credentials only, a one-element list.
    let headers = |app: &str, secret: &str, tenant: &str| {
        json!({
            "X-Bkapi-Authorization": json!({"bk_app_code": app, "bk_app_secret": secret}).to_string(),
            "X-Bk-Tenant-Id": tenant,
            "X-Request-Id": "bk-user-request",
        })
    };
    let body = json!({"title": "验证码", "content": "123456", "receiver__username": ["alice"]});
    for (app, secret, tenant, to) in [
        ("acme-portal", "acme-secret", "acme", "alice@acme.example"),
        ("monitor", "s3cret", "globex", "alice@globex.example"),
        ("monitor", "s3cret", "system", "alice@top.example"),
    ] {
        let (status, reply) = requests_post(&url, &headers(app, secret, tenant), &body);
        assert_eq!(status, 200, "{tenant}: {reply}");
        assert_eq!(reply["data"]["accepted"], json!([to]));
        assert_eq!(reply["data"]["summary"]["succeeded"], 1);
    }
    let mut sent: Vec<_> = emls(outbox.path())
        .iter()
        .map(|report| {
            (
                addresses(report, "from").join(","),
                addresses(report, "to").join(","),
            )
        })
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            (
                "noreply@acme.example".to_owned(),
                "alice@acme.example".to_owned()
            ),
            (
                "noreply@example.com".to_owned(),
                "alice@globex.example".to_owned()
            ),
            (
                "noreply@example.com".to_owned(),
                "alice@top.example".to_owned()
            ),
        ]
    );
    // An app limited to acme is refused for globex: a 403 clients see as failure.
    let (status, reply) = requests_post(
        &url,
        &headers("acme-portal", "acme-secret", "globex"),
        &body,
    );
    assert_eq!(status, 403);
    assert_eq!(reply["error"]["code"], "1306000");
    assert_eq!(emls(outbox.path()).len(), 3);

    // The channel list, as bk-itsm reads it.
    let script = "import json, sys, requests\n\
        r = requests.get(sys.argv[1], headers={'X-Bkapi-Authorization': json.dumps({'bk_app_code': 'monitor', 'bk_app_secret': 's3cret'})}, timeout=60)\n\
        r.raise_for_status()\n\
        print(json.dumps([c['type'] for c in r.json().get('data', []) if c['is_active']]))";
    let output = Command::new(venv_python())
        .args([
            "-c",
            script,
            &format!("{}/api/bk-cmsi/prod/v1/channels", server.url),
        ])
        .output()
        .unwrap();
    assert_eq!(succeeded(output, "channels"), json!(["mail"]));
}

#[test]
fn tenants_and_channels_that_cannot_work_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    for (text, error) in [
        (
            "[apps.portal]\nsecret = \"s\"\ntenants = [\"acme\"]\n",
            "[apps.portal] tenants: there is no [tenants.acme]",
        ),
        (
            "[apps.portal]\nsecret = \"s\"\ntenants = []\n",
            "[apps.portal]: tenants is empty: the app could send for none; remove it to allow any",
        ),
        (
            "[apps.monitor]\nsecret = \"s\"\n[channels.weixin]\ndest_url = \"ftp://x\"\n",
            "[channels.weixin]: dest_url must start with http:// or https://",
        ),
        (
            "[apps.monitor]\nsecret = \"s\"\n[tenants.acme]\nusers_file = \"missing.toml\"\n",
            "[tenants.acme] users_file",
        ),
        (
            "[apps.monitor]\nsecret = \"s\"\n[tenants.acme]\nmail_sender = \"nobody\"\n",
            "[tenants.acme] mail_sender \"nobody\"",
        ),
    ] {
        let path = config(dir.path(), text);
        let output = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config", &path])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(error), "{text}: {stderr}");
    }
}
