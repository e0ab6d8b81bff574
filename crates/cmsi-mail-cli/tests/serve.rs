//! `cmsi-mail serve` as operators run it, called by unmodified ESB clients: the
//! official BlueKing Python SDK, curl, and `requests`.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::{python_email_clean, python_shape};
use cmsi_mail_testkit::process::Listening;
use cmsi_mail_testkit::servers::{MotoServer, SmtpOptions, SmtpServer};
use cmsi_mail_testkit::{venv_python, workspace_root};
use serde_json::{Value, json};

const APPS: &str = "[apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n";

/// A running `cmsi-mail serve` on a port of its choosing.
struct Serve;

impl Serve {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Listening {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(workspace_root());
        for (key, value) in envs {
            command.env(key, value);
        }
        Listening::start(command)
    }
}

fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("cmsi-mail.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn run_client(program: &Path, args: &[&str], url: &str) -> Output {
    let output = Command::new(program)
        .args(args)
        .current_dir(workspace_root())
        .env("CMSI_MAIL_URL", url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{} {args:?} failed:\n{}\n{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn reply(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&output.stdout)))
}

fn emls(dir: &Path) -> Vec<Vec<u8>> {
    file_names(dir)
        .iter()
        .filter(|name| name.ends_with(".eml"))
        .map(|name| std::fs::read(dir.join(name)).unwrap())
        .collect()
}

#[test]
fn refuses_to_start_without_an_app() {
    let output = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no app may call this gateway"), "{stderr}");
    assert!(stderr.contains("[apps.monitor]"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        "[apps.monitor]\nsecret_env = \"CMSI_TEST_UNSET_SECRET\"\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config", &path])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CMSI_TEST_UNSET_SECRET"));
}

#[test]
fn the_examples_work_as_the_readme_says() {
    let outbox = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &[
            "--config",
            "examples/cmsi-mail.toml",
            "--outbox",
            &outbox.path().display().to_string(),
        ],
        &[],
    );
    // The official SDK (credentials in the X-Bkapi-Authorization header).
    let sdk = reply(&run_client(
        &venv_python(),
        &["examples/send_mail_sdk.py"],
        &serve.url,
    ));
    assert_eq!(sdk["result"], true, "{sdk}");
    assert_eq!(sdk["code"], "00");
    // curl and requests (credentials in the body).
    let curl = reply(&run_client(
        Path::new("sh"),
        &["examples/send_mail.sh"],
        &serve.url,
    ));
    assert_eq!(curl["result"], true, "{curl}");
    let requests = reply(&run_client(
        &venv_python(),
        &["examples/send_mail.py"],
        &serve.url,
    ));
    assert_eq!(requests["result"], true, "{requests}");

    let messages = emls(outbox.path());
    assert_eq!(messages.len(), 3);
    for message in &messages {
        let report = python_email_clean(message);
        assert_eq!(
            python_shape(&report),
            "multipart/mixed[multipart/related[multipart/alternative[text/plain,text/html],image/png,image/png],application/pdf]"
        );
    }
    let log = serve.log();
    assert!(log.contains("app_code=monitor"), "{log}");
    assert!(!log.contains("s3cret"), "secrets never reach the log");
    assert!(
        !log.contains("季度报告"),
        "mail content never reaches the log"
    );
}

#[test]
fn smtp_end_to_end_through_the_sdk() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(smtp.ca_file(), dir.path().join("cert.pem")).unwrap();
    let path = config(
        dir.path(),
        &format!(
            "mail_sender = \"noreply@example.com\"\n[transport]\nkind = \"smtp\"\n\
             [transport.smtp]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {}\nsmtp_user = \"testuser\"\n\
             smtp_usetls = true\nca_file = \"cert.pem\"\n{APPS}",
            smtp.port
        ),
    );
    let serve = Serve::start(&["--config", &path], &[("CMSI_MAIL_SMTP_PWD", "testpass")]);
    let sdk = reply(&run_client(
        &venv_python(),
        &["examples/send_mail_sdk.py"],
        &serve.url,
    ));
    assert_eq!(sdk["result"], true, "{sdk}");
    let stored = smtp.messages();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].tls);
    assert_eq!(stored[0].login.as_deref(), Some("testuser"));
    python_email_clean(&stored[0].bytes);
}

#[test]
fn ses_end_to_end() {
    let moto = MotoServer::start();
    moto.verify_identity("example.com");
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[transport]\nkind = \"ses\"\n[transport.ses]\nregion = \"us-east-1\"\n\
             endpoint_url = \"{}\"\n{APPS}",
            moto.endpoint()
        ),
    );
    let serve = Serve::start(
        &["--config", &path],
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let curl = reply(&run_client(
        Path::new("sh"),
        &["examples/send_mail.sh"],
        &serve.url,
    ));
    assert_eq!(curl["result"], true, "{curl}");
    let sent = moto.raw_messages();
    assert_eq!(sent.len(), 1);
    python_email_clean(sent[0]["raw_data"].as_str().unwrap().as_bytes());
}

#[test]
fn sigterm_lets_the_request_in_progress_finish() {
    let smtp = SmtpServer::start(SmtpOptions {
        credentials: None,
        ..SmtpOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(smtp.ca_file(), dir.path().join("cert.pem")).unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[transport]\nkind = \"smtp\"\n[transport.smtp]\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {}\nsmtp_usetls = true\nca_file = \"cert.pem\"\n{APPS}",
            smtp.port
        ),
    );
    let mut serve = Serve::start(&["--config", &path], &[]);
    let url = format!("{}/api/c/compapi/cmsi/send_mail/", serve.url);
    // The server answers this recipient's DATA only after 1.5 s.
    let body = json!({
        "bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
        "receiver": "slow-reader@example.com", "title": "in flight", "content": "x",
    });
    let in_flight = std::thread::spawn(move || {
        let output = Command::new("curl")
            .args([
                "-sS",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
            ])
            .arg(body.to_string())
            .arg(url)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    });
    // Wait until the request reached the SMTP server, then ask to stop.
    for _ in 0..100 {
        if smtp.count("data") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(smtp.count("data"), 1);
    let status = serve.process_mut().terminate();
    let reply = in_flight.join().unwrap();
    assert_eq!(reply["result"], true, "{reply}");
    assert!(status.success(), "{status:?}: {}", serve.log());
    assert_eq!(
        smtp.messages().len(),
        1,
        "the accepted request was delivered"
    );
    assert!(serve.log().contains("cmsi-mail: stopped"));
}

/// Peak resident memory of a process so far (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// POSTs `body` on a plain connection and reads the whole answer.
fn raw_post(addr: &str, content_type: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST /api/c/compapi/cmsi/send_mail/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// Time to the first byte of `GET /healthz` on a fresh connection.
fn healthz_latency(addr: &str) -> Duration {
    use std::io::{Read, Write};
    let started = std::time::Instant::now();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).unwrap();
    started.elapsed()
}

#[test]
fn hostile_bodies_without_credentials_cost_little_memory_and_no_latency() {
    const BODY: usize = 30 * 1024 * 1024;
    const SENDERS: usize = 4;
    let repeat = |head: &str, item: &str, tail: &str| {
        let mut body = String::with_capacity(BODY + 64);
        body.push_str(head);
        while body.len() + item.len() + tail.len() < BODY {
            body.push_str(item);
        }
        body.truncate(body.len() - 1); // the last separator
        body.push_str(tail);
        body.into_bytes()
    };
    let cases = [
        (
            "30 MB of {} attachments",
            "application/json",
            repeat("{\"attachments\":[", "{},", "]}"),
        ),
        (
            "one form key repeated",
            "application/x-www-form-urlencoded",
            repeat("", "a=&", "&"),
        ),
        (
            "30 MB of empty receivers",
            "application/json",
            repeat("{\"receiver\":[", "\"\",", "]}"),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), APPS);
    for (what, content_type, body) in cases {
        let outbox = tempfile::tempdir().unwrap();
        let serve = Serve::start(
            &[
                "--config",
                &path,
                "--outbox",
                &outbox.path().display().to_string(),
            ],
            &[],
        );
        let addr = serve.url.trim_start_matches("http://").to_owned();
        // Settled memory after a first request, before the flood.
        healthz_latency(&addr);
        let before = peak_rss(serve.pid());
        let body = Arc::new(body);
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                let (addr, body) = (addr.clone(), Arc::clone(&body));
                std::thread::spawn(move || raw_post(&addr, content_type, &body))
            })
            .collect();
        let mut latencies = Vec::new();
        while !senders.iter().all(std::thread::JoinHandle::is_finished) {
            latencies.push(healthz_latency(&addr));
            std::thread::sleep(Duration::from_millis(10));
        }
        for sender in senders {
            let answer = sender.join().unwrap();
            assert!(
                answer.contains("cannot be empty"),
                "{what}: refused for its missing credentials: {answer}"
            );
        }
        let grown = peak_rss(serve.pid()).saturating_sub(before);
        let in_flight = (SENDERS * body.len()) as u64;
        latencies.sort();
        let worst = latencies.last().copied().unwrap_or_default();
        let median = latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default();
        println!(
            "{what}: peak RSS grew {:.0} MiB for {:.0} MiB of bodies in flight ({:.2}x); \
             /healthz median {median:?}, worst {worst:?} over {} probes",
            grown as f64 / 1048576.0,
            in_flight as f64 / 1048576.0,
            grown as f64 / in_flight as f64,
            latencies.len()
        );
        assert!(
            median < Duration::from_millis(50),
            "{what}: /healthz took {median:?} (median) during the flood"
        );
        assert!(
            grown < 4 * in_flight,
            "{what}: peak RSS grew by {grown} bytes for {in_flight} bytes of bodies"
        );
        // The worst case also measures how busy the machine is (other test
        // binaries run meanwhile); before the fix it was seconds.
        assert!(
            worst < Duration::from_secs(1),
            "{what}: /healthz took {worst:?} during the flood"
        );
    }
}

/// `curl -s URL` as the README's "Operating it" does, with its status.
fn curl(url: &str) -> (u16, String) {
    let output = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", url])
        .output()
        .unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

#[test]
fn the_operating_section_of_the_readme_works() {
    let outbox = tempfile::tempdir().unwrap();
    let serve = Serve::start(
        &[
            "--config",
            "examples/cmsi-mail.toml",
            "--outbox",
            &outbox.path().display().to_string(),
        ],
        &[],
    );
    let sent = reply(&run_client(
        Path::new("sh"),
        &["examples/send_mail.sh"],
        &serve.url,
    ));
    assert_eq!(sent["code"], "00", "{sent}");

    let (status, ready) = curl(&format!("{}/readyz", serve.url));
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        serde_json::from_str::<Value>(&ready).unwrap()["status"],
        "ready"
    );
    let (status, page) = curl(&format!("{}/metrics", serve.url));
    assert_eq!(status, 200);
    let metrics = cmsi_mail_testkit::metrics::Metrics::parse(&page);
    let labels = [("app", "monitor"), ("route", "send_mail"), ("code", "00")];
    assert_eq!(metrics.sum("cmsi_requests_total", &labels), 1.0, "{page}");
    let labels = [("transport", "file"), ("outcome", "sent")];
    assert_eq!(metrics.sum("cmsi_deliveries_total", &labels), 1.0, "{page}");

    // Every metric the README names is on the page, but the queue's, which
    // come with the queue.
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let section = readme
        .split("## Operating it")
        .nth(1)
        .expect("README has an \"Operating it\" section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut named = std::collections::BTreeSet::new();
    for (at, _) in section.match_indices("cmsi_") {
        let name: String = section[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        named.insert(name.trim_end_matches('_').to_owned());
    }
    assert!(named.len() >= 9, "{named:?}");
    for name in named {
        if name.starts_with("cmsi_queue_") {
            continue;
        }
        assert!(
            metrics.samples.iter().any(|sample| sample.name == name
                || sample
                    .name
                    .strip_prefix(name.as_str())
                    .is_some_and(|rest| { ["_bucket", "_count", "_sum"].contains(&rest) })),
            "the README names {name}, which is not on the page:\n{page}"
        );
    }
}

#[test]
fn a_malformed_quota_stops_the_start_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        (
            "[apps.monitor]\nsecret = \"s3cret\"\nrate = \"10/x\"\n",
            [
                "line 3, column 8: apps.monitor.rate: ",
                "\"10/x\" is not a rate: write N/s, N/m or N/h",
            ],
        ),
        (
            "[server]\nrate = \"fast\"\n[apps.monitor]\nsecret = \"s3cret\"\n",
            ["line 2, column 8: server.rate: ", "\"fast\" is not a rate"],
        ),
        (
            "[apps.monitor]\nsecret = \"s3cret\"\nburst = 5\n",
            ["[apps.monitor]", "burst is set but rate is not"],
        ),
    ] {
        let path = config(dir.path(), text);
        let output = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config", &path])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        for expected in expected {
            assert!(stderr.contains(expected), "{expected} not in:\n{stderr}");
        }
    }
}

/// The soft and hard open-file limits of process `pid`.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn serve_raises_its_open_file_limit_or_says_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let path = config(dir.path(), APPS);
    // The default max_connections (1024) and 256 spare files want 1280.
    for (limits, raised) in [
        ("ulimit -Sn 300 && ulimit -Hn 2000", true),
        ("ulimit -Sn 400 && ulimit -Hn 400", false),
    ] {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "{limits} && exec \"$0\" serve --listen 127.0.0.1:0 --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_cmsi-mail"))
            .arg(&path)
            .current_dir(dir.path());
        let serve = Listening::start(command);
        let (soft, hard) = open_file_limits(serve.pid());
        let log = serve.log();
        let warned = log.contains("cmsi-mail: warning: the open-file limit is");
        if raised {
            assert_eq!((soft, hard), (1280, 2000), "{log}");
            assert!(!warned, "{log}");
        } else {
            assert_eq!((soft, hard), (400, 400), "{log}");
            assert!(warned, "{log}");
            assert!(log.contains("max_connections (1024) + 256"), "{log}");
        }
    }
}

/// POSTs `body` to `url` with curl; the status and the answer.
fn curl_post(url: &str, body: &Value) -> (u16, Value) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: application/json",
        ])
        .arg("--data-binary")
        .arg(body.to_string())
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (answer, status) = text.rsplit_once('\n').unwrap();
    (
        status.parse().unwrap(),
        serde_json::from_str(answer).unwrap(),
    )
}

#[test]
fn a_request_waits_for_a_delivery_slot_at_most_the_request_deadline() {
    let smtp = SmtpServer::start(SmtpOptions {
        credentials: None,
        ..SmtpOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(smtp.ca_file(), dir.path().join("cert.pem")).unwrap();
    let path = config(
        dir.path(),
        &format!(
            "[transport]\nkind = \"smtp\"\n[transport.smtp]\nsmtp_host = \"127.0.0.1\"\n\
             smtp_port = {}\nsmtp_usetls = true\nca_file = \"cert.pem\"\n\
             [server]\nmax_concurrent_deliveries = 1\nrequest_timeout_secs = 1\n{APPS}",
            smtp.port
        ),
    );
    let serve = Serve::start(&["--config", &path], &[]);
    let url = format!("{}/api/c/compapi/cmsi/send_mail/", serve.url);
    let request = |receiver: &str| {
        json!({
            "bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
            "receiver": receiver, "title": "slot", "content": "x",
        })
    };
    // The one slot is held by a delivery with two recipients whose RCPTs the
    // relay answers after 2 s each.
    let slow = {
        let (url, body) = (
            url.clone(),
            request("stall-a@example.com, stall-b@example.com"),
        );
        std::thread::spawn(move || curl_post(&url, &body))
    };
    for _ in 0..250 {
        if smtp.count("stall") > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(smtp.count("stall"), 1);
    let started = std::time::Instant::now();
    let (status, reply) = curl_post(&url, &request("b@example.com"));
    let waited = started.elapsed();
    assert_eq!(status, 503, "{reply}");
    assert_eq!(reply["code"], "1306201", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("max_concurrent_deliveries"),
        "{reply}"
    );
    // Told after the deadline (1 s), not when the slot came free (4 s).
    assert!(waited < Duration::from_millis(3500), "{waited:?}");
    // The slow one was delivered, and the slot is free again.
    let (status, reply) = slow.join().unwrap();
    assert_eq!((status, &reply["result"]), (200, &json!(true)), "{reply}");
    let (status, reply) = curl_post(&url, &request("c@example.com"));
    assert_eq!((status, &reply["result"]), (200, &json!(true)), "{reply}");
    assert_eq!(smtp.messages().len(), 2);
}
