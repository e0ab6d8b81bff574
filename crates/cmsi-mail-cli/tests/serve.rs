//! `cmsi-mail serve` as operators run it, called by unmodified ESB clients: the
//! official BlueKing Python SDK, curl, and `requests`.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmsi_mail_testkit::fs::file_names;
use cmsi_mail_testkit::oracle::{python_email_clean, python_shape};
use cmsi_mail_testkit::servers::{MotoServer, SmtpOptions, SmtpServer};
use cmsi_mail_testkit::{venv_python, workspace_root};
use serde_json::{Value, json};

const APPS: &str = "[apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n";

/// A running `cmsi-mail serve` on a port of its choosing.
struct Serve {
    child: Child,
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Serve {
    fn start(args: &[&str], envs: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cmsi-mail"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready, url) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix("cmsi-mail: listening on ") {
                    let _ = ready.send(url.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let url = url
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", log.lock().unwrap()));
        Serve { child, url, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    let status = serve.terminate();
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
        let before = peak_rss(serve.child.id());
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
        let grown = peak_rss(serve.child.id()).saturating_sub(before);
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
        // The worst case also measures how busy the machine is; before the
        // fix it was seconds.
        assert!(
            worst < Duration::from_millis(250),
            "{what}: /healthz took {worst:?} during the flood"
        );
    }
}
