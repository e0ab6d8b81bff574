//! A server process of ours (`cmsi-mail serve`, `cmsi-mail outbox`) started
//! by a test: it prints `cmsi-mail: listening on URL` on stderr when ready.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running server that is killed when dropped.
pub struct Listening {
    child: Child,
    /// What it printed after `cmsi-mail: listening on `, e.g.
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Listening {
    /// Starts `command` and waits (30 s at most) for its listening line.
    pub fn start(mut command: Command) -> Listening {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let stderr = child.stderr.take().expect("stderr");
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
            .unwrap_or_else(|_| panic!("{command:?} did not start: {:?}", log.lock().unwrap()));
        Listening { child, url, log }
    }

    /// Everything it printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
