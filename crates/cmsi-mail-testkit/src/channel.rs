//! A channel's server (the `dest_url` of a `[channels.NAME]`) on 127.0.0.1:
//! it records every request it receives and answers as the test asks,
//! including the ways a real one fails (slow, an error status, not JSON, an
//! endless answer, a redirect).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How the server answers.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this JSON.
    Json(Value),
    /// This status, with a small JSON body.
    Status(u16),
    /// 200 with this body as `text/html`.
    Text(&'static str),
    /// This JSON after waiting this long.
    Slow(Duration, Value),
    /// 200 with a JSON string this many bytes long.
    Huge(usize),
    /// 302 to this location.
    Redirect(String),
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request line's method and target, e.g. `POST /weixin?x=1`.
    pub request_line: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "the forwarded body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A running channel server, stopped when dropped.
pub struct ChannelServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    stopped: Arc<AtomicBool>,
}

impl ChannelServer {
    /// Starts a server that answers every request with `reply`.
    pub fn start(reply: Reply) -> ChannelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stopped = Arc::new(AtomicBool::new(false));
        let (log, stop) = (Arc::clone(&received), Arc::clone(&stopped));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (log, reply) = (Arc::clone(&log), reply.clone());
                std::thread::spawn(move || answer(stream, &log, &reply));
            }
        });
        ChannelServer {
            url,
            received,
            stopped,
        }
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// A URL on 127.0.0.1 where nothing listens.
    pub fn closed_url() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        format!(
            "http://{}/down",
            listener.local_addr().expect("local address")
        )
    }
}

impl Drop for ChannelServer {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

fn answer(stream: TcpStream, log: &Mutex<Vec<Received>>, reply: &Reply) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    log.lock().unwrap().push(Received {
        request_line: request_line.trim_end().to_owned(),
        headers,
        body,
    });
    let mut stream = reader.into_inner();
    let respond = |stream: &mut TcpStream, status: &str, kind: &str, body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
    };
    match reply {
        Reply::Json(value) => respond(
            &mut stream,
            "200 OK",
            "application/json",
            value.to_string().as_bytes(),
        ),
        Reply::Status(code) => respond(
            &mut stream,
            &format!("{code} Failed"),
            "application/json",
            br#"{"result": false, "message": "failed"}"#,
        ),
        Reply::Text(text) => respond(&mut stream, "200 OK", "text/html", text.as_bytes()),
        Reply::Slow(delay, value) => {
            std::thread::sleep(*delay);
            respond(
                &mut stream,
                "200 OK",
                "application/json",
                value.to_string().as_bytes(),
            );
        }
        Reply::Huge(bytes) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n\"",
                bytes + 2
            );
            let _ = stream.write_all(head.as_bytes());
            let chunk = vec![b'a'; 64 * 1024];
            let mut left = *bytes;
            while left > 0 {
                let n = left.min(chunk.len());
                if stream.write_all(&chunk[..n]).is_err() {
                    return;
                }
                left -= n;
            }
            let _ = stream.write_all(b"\"");
        }
        Reply::Redirect(location) => {
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
        }
    }
}

/// A channel's server over HTTPS (Python's `http.server` with the test
/// certificate, [`crate::servers::certificate`]): answers every POST with
/// `{"result": true, "message": "over tls"}`.
pub struct HttpsChannel {
    child: Child,
    bodies: BufReader<ChildStdout>,
    /// `https://127.0.0.1:PORT`.
    pub url: String,
}

impl HttpsChannel {
    /// Starts the server.
    pub fn start() -> HttpsChannel {
        let certificate = crate::servers::certificate();
        let mut child = Command::new(crate::stdlib_python())
            .arg(crate::python_script("https_channel.py"))
            .arg(&certificate.cert)
            .arg(&certificate.key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start python3 for the HTTPS channel");
        let mut bodies = BufReader::new(child.stdout.take().expect("stdout"));
        let mut port = String::new();
        bodies
            .read_line(&mut port)
            .expect("the HTTPS channel's port");
        let url = format!("https://127.0.0.1:{}", port.trim());
        HttpsChannel { child, bodies, url }
    }

    /// The next request body the server received (waits for it).
    pub fn next_body(&mut self) -> Value {
        let mut line = String::new();
        self.bodies.read_line(&mut line).expect("a request body");
        serde_json::from_str(&line).expect("the forwarded body is JSON")
    }
}

impl Drop for HttpsChannel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
