//! A real browser for the tests of pages we serve: Debian's Chromium driven by
//! Playwright from the test venv, and a watched HTTP server that records every
//! request it gets (to prove that a page did not load something).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// The command that installs what these tests need.
pub const INSTALL_CHROMIUM: &str = "apt-get install -y chromium";

/// The Chromium binary: `CMSI_MAIL_TEST_CHROMIUM`, else Debian's. Panics with
/// the install command when there is none: these tests never skip.
pub fn chromium() -> PathBuf {
    let candidates = match std::env::var_os("CMSI_MAIL_TEST_CHROMIUM") {
        Some(path) => vec![PathBuf::from(path)],
        None => vec![
            PathBuf::from("/usr/bin/chromium"),
            PathBuf::from("/usr/bin/chromium-browser"),
        ],
    };
    if let Some(found) = candidates.iter().find(|path| path.is_file()) {
        return found.clone();
    }
    panic!(
        "Chromium is missing: install it with `{INSTALL_CHROMIUM}` (scripts/test-env does \
         this when run as root on Debian), or point CMSI_MAIL_TEST_CHROMIUM at a Chromium binary"
    );
}

/// Runs the testkit's Playwright script `script` with `args` in the test venv
/// and returns the JSON it prints.
pub fn run_playwright(script: &str, args: &[String]) -> Value {
    // Playwright has actions without a timeout of their own (evaluate): the
    // whole script gets one, so that a browser that hangs fails the test.
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(240);
    let python = crate::venv_python();
    let mut child = Command::new(&python)
        .arg(crate::python_script(script))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", python.display()));
    // Read both pipes meanwhile, so that a full pipe never stalls the script.
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{script} did not finish within {LIMIT:?}:\n{}",
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let output = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'playwright'") {
        panic!("Playwright is missing from the test venv: run `scripts/test-env`");
    }
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{script} printed no JSON ({error}):\n{}\n{stderr}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// An HTTP server on 127.0.0.1 that answers every GET with a 1×1 PNG and
/// records the request paths; it runs until the test process ends.
pub struct WatchedServer {
    /// Its port.
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

/// A 1×1 transparent PNG.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0b, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x60, 0x00, 0x02, 0x00,
    0x00, 0x05, 0x00, 0x01, 0x7a, 0x5e, 0xab, 0x3f, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
    0xae, 0x42, 0x60, 0x82,
];

impl WatchedServer {
    /// Starts it on a free port.
    pub fn start() -> WatchedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let mut reader = BufReader::new(&mut stream);
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("?").to_owned();
                // Every connection counts, even one that never sends a line.
                seen.lock().unwrap().push(path);
                let mut header = String::new();
                while reader
                    .read_line(&mut header)
                    .map(|n| n > 2)
                    .unwrap_or(false)
                {
                    header.clear();
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    PIXEL.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(PIXEL);
            }
        });
        WatchedServer { port, requests }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The paths requested so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}
