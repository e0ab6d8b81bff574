//! `cmsi-mail outbox` (and `serve` with `outbox_ui`): the outbox in a real
//! browser (Debian's Chromium through Playwright) and over plain HTTP.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cmsi_mail_testkit::browser::{WatchedServer, chromium, run_playwright};
use cmsi_mail_testkit::process::Listening;
use cmsi_mail_testkit::{example, workspace_root};
use serde_json::{Value, json};

/// `cmsi-mail send --outbox DIR` with `request` on stdin; the written stem.
fn send(dir: &Path, request: &Value) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
        .args(["send", "--outbox"])
        .arg(dir)
        .current_dir(workspace_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    let name = response["data"]["transport_id"].as_str().unwrap();
    name.strip_suffix(".eml").unwrap().to_owned()
}

fn outbox(dir: &Path) -> Listening {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
    command
        .args(["outbox", "--listen", "127.0.0.1:0", "--dir"])
        .arg(dir);
    Listening::start(command)
}

/// The request `cmsi-mail send` composed into `stem`, and its attachments.
fn example_attachments() -> Vec<(String, Vec<u8>)> {
    let message = cmsi_mail_testkit::message(example("send_mail.json"));
    message
        .attachments()
        .iter()
        .map(|a| (a.filename().to_owned(), a.bytes().into_owned()))
        .collect()
}

/// Where test artifacts go: never the source tree.
fn artifact(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("outbox");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_browser_shows_the_example_as_a_mail_client_would() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let watched = WatchedServer::start();

    let request = example("send_mail.json");
    let example_id = send(dir.path(), &request);
    let tracked = format!(
        "<html><head><meta http-equiv=\"refresh\" content=\"0; url={refresh}\">\
         <link rel=\"stylesheet\" href=\"{css}\"></head><body>\
         <p>这封邮件带有追踪像素。</p><img src=\"{pixel}\" alt=\"pixel\">\
         <div style=\"background: url({background})\">背景</div></body></html>",
        refresh = watched.url("/refresh"),
        css = watched.url("/style.css"),
        pixel = watched.url("/pixel.png"),
        background = watched.url("/background.png"),
    );
    let tracked_id = send(
        dir.path(),
        &json!({"receiver": "lisi@example.com", "title": "追踪像素 tracking pixel", "content": tracked}),
    );
    // A file cut in half (a disk that filled up, a copy that stopped) and one
    // still being written by the file transport.
    let example_bytes = std::fs::read(dir.path().join(format!("{example_id}.eml"))).unwrap();
    let truncated_id = "9999999999999999-truncated";
    std::fs::write(
        dir.path().join(format!("{truncated_id}.eml")),
        &example_bytes[..example_bytes.len() / 2],
    )
    .unwrap();
    std::fs::write(dir.path().join(".tmp-Ab12Cd.part"), &example_bytes[..100]).unwrap();

    // Copied in while the page is open: it must show up without a reload.
    let newest_id = "9999999999999999-zz-arrived-later";

    let viewer = outbox(dir.path());
    let downloads = tempfile::tempdir().unwrap();
    let screenshot = artifact("outbox-viewer.png");
    let _ = std::fs::remove_file(&screenshot);
    let seen = run_playwright(
        "outbox_browser.py",
        &[
            "--url".into(),
            viewer.url.clone(),
            "--chromium".into(),
            chromium.display().to_string(),
            "--downloads".into(),
            downloads.path().display().to_string(),
            "--screenshot".into(),
            screenshot.display().to_string(),
            "--screenshot-id".into(),
            example_id.clone(),
            "--control".into(),
            watched.url("/control.png"),
            "--search".into(),
            "追踪".into(),
            "--new-mail".into(),
            dir.path()
                .join(format!("{example_id}.eml"))
                .display()
                .to_string(),
            dir.path()
                .join(format!("{newest_id}.eml"))
                .display()
                .to_string(),
        ],
    );
    eprintln!("screenshot: {}", screenshot.display());

    // The list: newest first, the half-written file not shown but counted, the
    // truncated one marked, the subject decoded.
    let rows: Vec<(&str, bool)> = seen["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["id"].as_str().unwrap(),
                row["unreadable"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (truncated_id, true),
            (tracked_id.as_str(), false),
            (example_id.as_str(), false)
        ],
        "{seen:#}"
    );
    assert_eq!(seen["rows"][2]["subject"], request["title"]);
    assert!(
        seen["rows"][0]["subject"]
            .as_str()
            .unwrap()
            .contains("unreadable"),
        "{seen:#}"
    );
    assert!(
        seen["status"]
            .as_str()
            .unwrap()
            .contains("1 file(s) being written"),
        "{seen:#}"
    );

    // The example: both inline images loaded from their cid: parts.
    let shown = &seen["messages"][example_id.as_str()];
    assert_eq!(shown["subject"], request["title"]);
    let images = shown["images"].as_array().unwrap();
    assert_eq!(images.len(), 2, "{shown:#}");
    for image in images {
        assert!(
            image["naturalWidth"].as_u64().unwrap() > 0,
            "not loaded: {image}"
        );
    }
    assert!(
        shown["meta"]
            .as_str()
            .unwrap()
            .contains("zhangsan@example.com")
    );
    assert!(shown["blocked_notice"].is_null(), "{shown:#}");

    // Every attachment downloads under its decoded name, with its own bytes.
    let mut downloaded: Vec<(String, Vec<u8>)> = shown["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["suggested_filename"].as_str().unwrap().to_owned(),
                std::fs::read(a["path"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let mut expected = example_attachments();
    downloaded.sort();
    expected.sort();
    assert_eq!(downloaded, expected);
    assert!(
        downloaded
            .iter()
            .any(|(name, _)| name == "季度报告（终版）.pdf")
    );

    // The tracking mail: the page says it blocked something, and the watched
    // server never heard from the message — though it did hear the browser.
    let tracking = &seen["messages"][tracked_id.as_str()];
    let notice = tracking["blocked_notice"].as_str().unwrap_or_default();
    assert!(notice.contains("Remote content blocked"), "{tracking:#}");
    assert!(notice.contains("/pixel.png"), "{tracking:#}");
    let requests = watched.requests();
    assert!(
        requests.contains(&"/control.png".to_owned()),
        "{requests:?}"
    );
    let from_the_message: Vec<&String> = requests
        .iter()
        .filter(|path| !["/control.png", "/favicon.ico"].contains(&path.as_str()))
        .collect();
    assert!(
        from_the_message.is_empty(),
        "requested: {from_the_message:?}"
    );

    // The truncated file opens as far as it goes and says what is wrong.
    let cut = &seen["messages"][truncated_id];
    assert!(
        cut["unreadable_notice"]
            .as_str()
            .unwrap_or_default()
            .contains("not a complete message"),
        "{cut:#}"
    );
    assert_eq!(seen["console_errors"], json!([]), "{seen:#}");

    // The search box keeps the matching subject only; new mail appears.
    assert_eq!(seen["search_rows"], json!([tracked_id]), "{seen:#}");
    assert_eq!(seen["new_mail_appeared"], true, "{seen:#}");

    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot");
    drop(viewer);
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).send().await.unwrap()
}

#[tokio::test]
async fn message_ids_name_only_message_files_of_the_directory() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("outbox");
    std::fs::create_dir(&dir).unwrap();
    let id = send(&dir, &example("send_mail.json"));
    std::fs::write(parent.path().join("secret.eml"), "Subject: secret\r\n\r\nx").unwrap();
    let viewer = outbox(&dir);
    let base = viewer.url.trim_end_matches('/');

    let ok = get(&format!("{base}/api/messages/{id}")).await;
    assert_eq!(ok.status(), 200);
    for bad in [
        "..%2Fsecret",
        "%2E%2E%2Fsecret",
        "..%5Csecret",
        &format!("{id}.json"),
        &format!("{id}%2F..%2F..%2Fsecret"),
        "nothing",
    ] {
        for tail in ["", "/raw", "/html", "/parts/0"] {
            let response = get(&format!("{base}/api/messages/{bad}{tail}")).await;
            assert_eq!(response.status(), 404, "{bad}{tail}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("secret"), "{bad}{tail}: {body}");
        }
    }
}

#[tokio::test]
async fn parts_carry_their_type_name_and_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let id = send(dir.path(), &example("send_mail.json"));
    let viewer = outbox(dir.path());
    let base = viewer.url.trim_end_matches('/');
    let view: Value = get(&format!("{base}/api/messages/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let pdf = view["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|part| part["content_type"] == "application/pdf")
        .unwrap();
    assert_eq!(pdf["name"], "季度报告（终版）.pdf");
    assert_eq!(pdf["inline"], false);
    let response = get(&format!("{base}/api/messages/{id}/parts/{}", pdf["index"])).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains(
            "filename*=UTF-8''%E5%AD%A3%E5%BA%A6%E6%8A%A5%E5%91%8A%EF%BC%88%E7%BB%88%E7%89%88%EF%BC%89.pdf"
        ),
        "{disposition}"
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );

    let html = get(&format!("{base}/api/messages/{id}/html")).await;
    let policy = html.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.starts_with("default-src 'none'; img-src http://127.0.0.1:"),
        "{policy}"
    );
    assert!(
        policy.contains(&format!("/api/messages/{id}/parts/ data:;")),
        "{policy}"
    );
    let body = html.text().await.unwrap();
    assert!(!body.contains("cid:logo.png"), "{body}");
    assert!(body.contains("src=\"parts/"), "{body}");
}

#[tokio::test]
async fn other_host_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = outbox(dir.path());
    let port = viewer
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    for (host, status) in [
        (format!("localhost:{port}"), 200),
        (format!("attacker.example:{port}"), 421),
    ] {
        let response = client
            .get(format!("{}api/messages", viewer.url))
            .header("host", host.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{host}");
    }
}

#[tokio::test]
async fn new_mail_shows_up_while_the_page_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let viewer = outbox(dir.path());
    let base = viewer.url.trim_end_matches('/');
    let version = |value: Value| value["version"].as_str().unwrap().to_owned();
    let before = version(
        get(&format!("{base}/api/version"))
            .await
            .json()
            .await
            .unwrap(),
    );
    let list: Value = get(&format!("{base}/api/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["page"]["total"], 0);

    let id = send(dir.path(), &example("send_mail.json"));
    let after = version(
        get(&format!("{base}/api/version"))
            .await
            .json()
            .await
            .unwrap(),
    );
    assert_ne!(before, after);
    let list: Value = get(&format!("{base}/api/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["page"]["total"], 1);
    assert_eq!(list["page"]["items"][0]["id"], id.as_str());
    assert_eq!(list["page"]["items"][0]["attachments"], 1);
}

#[tokio::test]
async fn a_missing_directory_is_shown_as_empty() {
    let parent = tempfile::tempdir().unwrap();
    let viewer = outbox(&parent.path().join("not-yet"));
    let list: Value = get(&format!("{}api/messages", viewer.url))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["page"]["missing"], true);
    assert_eq!(list["page"]["total"], 0);
}

fn serve(dir: &Path, outbox_ui: bool) -> Listening {
    let config = dir.join("cmsi-mail.toml");
    std::fs::write(
        &config,
        format!(
            "[transport]\nkind = \"file\"\n[transport.file]\ndir = \"outbox\"\n\
             [server]\noutbox_ui = {outbox_ui}\n\
             [apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n"
        ),
    )
    .unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config);
    Listening::start(command)
}

#[tokio::test]
async fn serve_shows_the_outbox_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), true);
    assert!(server.log().contains("/outbox/"), "{}", server.log());
    let base = server.url.trim_end_matches('/');

    // Mail sent through the gateway shows up in the viewer beside it.
    let reply: Value = reqwest::Client::new()
        .post(format!("{base}/api/c/compapi/cmsi/send_mail/"))
        .json(&example("send_mail.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["result"], true, "{reply}");
    let page = get(&format!("{base}/outbox/")).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("app.js"));
    let list: Value = get(&format!("{base}/outbox/api/messages"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["page"]["total"], 1);
    assert_eq!(
        list["page"]["items"][0]["subject"],
        example("send_mail.json")["title"]
    );
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/outbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/outbox/");
    // The API is untouched.
    assert_eq!(get(&format!("{base}/healthz")).await.status(), 200);
    assert_eq!(get(&format!("{base}/nothing")).await.status(), 404);

    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), false);
    let base = server.url.trim_end_matches('/');
    assert_eq!(get(&format!("{base}/outbox/")).await.status(), 404);
    assert_eq!(
        get(&format!("{base}/outbox/api/messages")).await.status(),
        404
    );
}
