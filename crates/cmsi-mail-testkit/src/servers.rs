//! Real servers on 127.0.0.1, started per test from the test venv: aiosmtpd
//! (SMTP with STARTTLS or implicit TLS, and AUTH) and moto (SES). Each server
//! exits when its test drops it, or when the test process dies (it watches its
//! stdin).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("no free port on 127.0.0.1")
        .port()
}

/// A running helper process that stops when dropped.
pub(crate) struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Process {
    /// Starts `python script args…` and waits for it to print `READY`.
    pub(crate) fn start(script: &str, args: &[String]) -> Process {
        let mut child = Command::new(crate::venv_python())
            .arg(crate::python_script(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {script}: {error}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read READY");
        assert_eq!(line.trim(), "READY", "{script} did not start");
        let stdin = child.stdin.take();
        Process { child, stdin }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate for `localhost` and 127.0.0.1 that rustls accepts
/// as a server certificate (basicConstraints CA:FALSE), made once per process.
pub struct Certificate {
    _dir: tempfile::TempDir,
    /// PEM certificate; also the CA file for clients.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The process's test certificate.
pub fn certificate() -> &'static Certificate {
    static CERTIFICATE: OnceLock<Certificate> = OnceLock::new();
    CERTIFICATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let status = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed to make the test certificate");
        assert!(status.success(), "openssl req failed");
        Certificate {
            _dir: dir,
            cert,
            key,
        }
    })
}

/// How the SMTP server speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS offered and required before MAIL and AUTH.
    StartTls,
    /// TLS from the first byte (port 465 style).
    Implicit,
    /// Plain text.
    None,
}

/// Settings of an [`SmtpServer`].
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// TLS mode.
    pub tls: SmtpTls,
    /// Login and password required (after TLS), or no AUTH.
    pub credentials: Option<(String, String)>,
    /// Seconds after which the server closes an idle connection.
    pub idle_timeout: Option<f64>,
    /// AUTH XOAUTH2 offered, accepting the bearer token this file holds at
    /// the time (see [`crate::oauth::OAuthServer::token_file`]).
    pub xoauth2_token_file: Option<PathBuf>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            tls: SmtpTls::StartTls,
            credentials: Some(("testuser".into(), "testpass".into())),
            idle_timeout: None,
            xoauth2_token_file: None,
        }
    }
}

/// aiosmtpd on 127.0.0.1 with a store of what it accepted.
pub struct SmtpServer {
    _process: Process,
    store: tempfile::TempDir,
    /// Its port.
    pub port: u16,
}

/// A message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// The bytes as received (dot-unstuffed).
    pub bytes: Vec<u8>,
    /// MAIL FROM.
    pub mail_from: String,
    /// RCPT TO, accepted ones.
    pub rcpt_tos: Vec<String>,
    /// The AUTH login, if the client authenticated.
    pub login: Option<String>,
    /// Whether the session was encrypted.
    pub tls: bool,
}

impl SmtpServer {
    /// Starts a server with `options`.
    pub fn start(options: SmtpOptions) -> SmtpServer {
        SmtpServer::start_on_port(free_port(), options)
    }

    /// Starts a server with `options` on `port` (for a relay that comes back
    /// where clients expect it).
    pub fn start_on_port(port: u16, options: SmtpOptions) -> SmtpServer {
        let store = tempfile::tempdir().expect("tempdir");
        let certificate = certificate();
        let mut args = vec![
            "--port".to_owned(),
            port.to_string(),
            "--store".to_owned(),
            store.path().display().to_string(),
            "--cert".to_owned(),
            certificate.cert.display().to_string(),
            "--key".to_owned(),
            certificate.key.display().to_string(),
            "--tls".to_owned(),
            match options.tls {
                SmtpTls::StartTls => "starttls",
                SmtpTls::Implicit => "implicit",
                SmtpTls::None => "none",
            }
            .to_owned(),
        ];
        if let Some((user, password)) = &options.credentials {
            args.extend(["--user".to_owned(), user.clone()]);
            args.extend(["--password".to_owned(), password.clone()]);
        }
        if let Some(timeout) = options.idle_timeout {
            args.extend(["--idle-timeout".to_owned(), timeout.to_string()]);
        }
        if let Some(file) = &options.xoauth2_token_file {
            args.extend([
                "--xoauth2-token-file".to_owned(),
                file.display().to_string(),
            ]);
        }
        let process = Process::start("smtp_server.py", &args);
        SmtpServer {
            _process: process,
            store,
            port,
        }
    }

    /// The directory of the stored messages (`N.eml`, `N.json`, `events.jsonl`).
    pub fn store_dir(&self) -> &Path {
        self.store.path()
    }

    /// The CA file a client needs to trust this server.
    pub fn ca_file(&self) -> &Path {
        &certificate().cert
    }

    /// Every accepted message, in order.
    pub fn messages(&self) -> Vec<StoredMessage> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.store.path())
            .expect("store")
            .map(|entry| entry.expect("entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let meta: Value = serde_json::from_slice(
                    &std::fs::read(eml.with_extension("json")).expect("json"),
                )
                .expect("meta");
                StoredMessage {
                    bytes: std::fs::read(&eml).expect("eml"),
                    mail_from: meta["mail_from"].as_str().unwrap_or_default().to_owned(),
                    rcpt_tos: meta["rcpt_tos"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    login: meta["login"].as_str().map(str::to_owned),
                    tls: meta["tls"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }

    /// The server's log: `{"event": "session"}` per client connection,
    /// `{"event": "data", ...}` per DATA, `{"event": "dropped-during-data"}`,
    /// and `{"event": "xoauth2", "ok": …}` per AUTH XOAUTH2.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.store.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("event"))
            .collect()
    }

    /// How many events of `kind` the server logged.
    pub fn count(&self, kind: &str) -> usize {
        self.events()
            .iter()
            .filter(|event| event["event"] == kind)
            .count()
    }
}

/// moto's server on 127.0.0.1, for SES.
pub struct MotoServer {
    _process: Process,
    /// Its port.
    pub port: u16,
}

impl MotoServer {
    /// Starts it.
    pub fn start() -> MotoServer {
        let port = free_port();
        let process = Process::start("moto_server.py", &[port.to_string()]);
        MotoServer {
            _process: process,
            port,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a verified SES identity (a domain covers all its addresses),
    /// through boto3 from the test venv.
    pub fn verify_identity(&self, identity: &str) {
        let endpoint = self.endpoint();
        let script = [
            "import boto3".to_owned(),
            format!(
                "client = boto3.client('sesv2', endpoint_url='{endpoint}', region_name='us-east-1', \
                 aws_access_key_id='testing', aws_secret_access_key='testing')"
            ),
            format!("client.create_email_identity(EmailIdentity='{identity}')"),
        ]
        .join("\n");
        let status = Command::new(crate::venv_python())
            .arg("-c")
            .arg(script)
            .status()
            .expect("python");
        assert!(
            status.success(),
            "cannot create the SES identity {identity}"
        );
    }

    /// The raw messages SES accepted (`ses` → `RawMessage` in moto's state).
    pub fn raw_messages(&self) -> Vec<Value> {
        let state = http_json(self.port, "GET", "/moto-api/data.json");
        state["ses"]["RawMessage"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// A bare HTTP/1.0 request to 127.0.0.1, its body read as JSON.
pub fn http_json(port: u16, method: &str, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .expect("request");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("reply");
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP reply");
    let body = &reply[split + 4..];
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).expect("JSON body")
}
