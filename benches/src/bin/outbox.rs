//! How fast `cmsi-mail outbox` serves a large outbox: writes N messages (the
//! README's example, 3 KB each, with varied subjects and receivers) into a
//! fresh directory, then times HTTP requests against the release binary.
//!
//! `outbox [N] [ROUNDS]` (default 10 000 and 5), run from the workspace root
//! after `cargo build --release -p cmsi-mail-cli` (`scripts/bench` does both).
//! "Cold" is the first request to a freshly started viewer (its cache empty,
//! the files in the OS page cache); each round starts a new viewer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};

fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let binary = root.join("target/release/cmsi-mail");
    assert!(
        binary.exists(),
        "{} is missing: cargo build --release -p cmsi-mail-cli",
        binary.display()
    );
    // A fresh directory each run: ext4 directories that once held many files
    // stay slower to read.
    let dir = root.join("target/bench-outbox");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let started = Instant::now();
    let bytes = fill(&root, &dir, count);
    println!(
        "wrote {count} messages ({:.1} MB) in {:.1} s",
        bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let mut cold_first = Vec::new();
    let mut warm_first = Vec::new();
    let mut cold_last = Vec::new();
    let mut cold_search = Vec::new();
    let mut warm_search = Vec::new();
    let mut version = Vec::new();
    let mut message = Vec::new();
    let last_page = count.div_ceil(50);
    for _ in 0..rounds {
        let viewer = Viewer::start(&binary, &dir);
        cold_first.push(viewer.time("/api/messages?page=1"));
        for _ in 0..20 {
            warm_first.push(viewer.time("/api/messages?page=1"));
        }
        cold_last.push(viewer.time(&format!("/api/messages?page={last_page}")));
        // Matches one message in ten: every file's headers are read once.
        cold_search.push(viewer.time("/api/messages?q=%23%230"));
        for _ in 0..5 {
            warm_search.push(viewer.time("/api/messages?q=%23%230"));
        }
        for _ in 0..20 {
            version.push(viewer.time("/api/version"));
        }
        let body = viewer.get("/api/messages?page=1");
        let id = body
            .split("\"id\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        for _ in 0..5 {
            message.push(viewer.time(&format!("/api/messages/{id}")));
        }
    }
    println!();
    println!("## `cmsi-mail outbox` with {count} messages ({rounds} rounds, medians)");
    println!();
    println!("| request | median | max |");
    println!("|---|---|---|");
    for (name, times) in [
        ("first page, cold (fresh viewer)", &mut cold_first),
        ("first page, warm", &mut warm_first),
        (
            "last page, first visit (its 50 messages parsed)",
            &mut cold_last,
        ),
        (
            "search, cold (headers of every file read)",
            &mut cold_search,
        ),
        ("search, warm", &mut warm_search),
        ("version poll", &mut version),
        ("one message view", &mut message),
    ] {
        times.sort();
        let median = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!("| {name} | {} | {} |", ms(median), ms(max));
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1e3)
}

/// Writes `count` messages as the file transport lays them out (`STEM.eml`
/// and `STEM.json`, stems that sort by time) without its fsyncs, which would
/// take minutes here. Returns the bytes written.
fn fill(root: &Path, dir: &Path, count: usize) -> usize {
    let example: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("examples/send_mail.json")).unwrap())
            .unwrap();
    let directory = StaticDirectory::new();
    let sender = Mailbox::parse("noreply@example.com").unwrap();
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        - count as u128 * 1000;
    let mut total = 0;
    for i in 0..count {
        let mut request = example.clone();
        request["title"] = format!("【蓝鲸监控】第 {i} 号报告 ##{}", i % 10).into();
        request["receiver"] = format!("用户{i} <user{i}@example.com>, lisi@example.com").into();
        let request = SendMailRequest::from_value(request).unwrap();
        let message = Validator::new(sender.clone(), &directory)
            .validate(request)
            .unwrap()
            .message;
        let composed = message.compose(&ComposeOptions::new());
        let micros = start + i as u128 * 1000;
        let stem = format!(
            "{}{:06}-bench-{i}-{:08x}",
            micros / 1_000_000,
            micros % 1_000_000,
            fastrand::u32(..)
        );
        let envelope = message.envelope();
        let sidecar = serde_json::json!({
            "message_id": composed.message_id,
            "sender": envelope.sender(),
            "recipients": envelope.recipients(),
        });
        std::fs::write(dir.join(format!("{stem}.json")), sidecar.to_string()).unwrap();
        std::fs::write(dir.join(format!("{stem}.eml")), &composed.bytes).unwrap();
        total += composed.bytes.len();
    }
    total
}

/// A running `cmsi-mail outbox`.
struct Viewer {
    child: Child,
    address: String,
}

impl Viewer {
    fn start(binary: &Path, dir: &Path) -> Viewer {
        let mut child = Command::new(binary)
            .args(["outbox", "--listen", "127.0.0.1:0", "--dir"])
            .arg(dir)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines.next().expect("the viewer stopped").unwrap();
            if let Some(url) = line.strip_prefix("cmsi-mail: listening on http://") {
                break url.trim_end_matches('/').to_owned();
            }
        };
        // Keep reading its stderr so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Viewer { child, address }
    }

    fn get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{path}: {response}");
        response
    }

    fn time(&self, path: &str) -> Duration {
        let started = Instant::now();
        std::hint::black_box(self.get(path));
        started.elapsed()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
