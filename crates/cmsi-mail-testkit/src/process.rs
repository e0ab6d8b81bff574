//! Processes of ours (`cmsi-mail serve`, `worker`, `outbox`) started by a
//! test: each says on stderr when it is ready, and is killed when dropped.

use std::io::{BufRead, BufReader};
use std::ops::Deref;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running process whose stderr is collected.
pub struct Process {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `command` and waits (30 s at most) for a line of stderr that
    /// `ready` picks; returns the process and that line.
    pub fn start(
        mut command: Command,
        ready: impl Fn(&str) -> bool + Send + 'static,
    ) -> (Process, String) {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {command:?}: {error}"));
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_line, started) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if ready(&line) {
                    let _ = ready_line.send(line.clone());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let process = Process {
            child,
            log,
            reader: Some(reader),
        };
        let line = started
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{command:?} did not start: {}", process.log()));
        (process, line)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends `signal` (`-TERM`, `-KILL`, …).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// SIGTERM, then waits (30 s at most) for it to exit; afterwards its log
    /// holds everything it wrote.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server of ours: ready once it printed `cmsi-mail: listening on URL`.
pub struct Listening {
    process: Process,
    /// What it printed after `cmsi-mail: listening on `, e.g.
    /// `http://127.0.0.1:PORT/`.
    pub url: String,
}

impl Listening {
    /// Starts `command` and waits (30 s at most) for its listening line.
    pub fn start(command: Command) -> Listening {
        const READY: &str = "cmsi-mail: listening on ";
        let (process, line) = Process::start(command, |line| line.starts_with(READY));
        let url = line.strip_prefix(READY).unwrap_or_default().to_owned();
        Listening { process, url }
    }

    /// The process, to signal or stop it.
    pub fn process_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}

impl Deref for Listening {
    type Target = Process;

    fn deref(&self) -> &Process {
        &self.process
    }
}
