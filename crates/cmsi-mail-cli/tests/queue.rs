//! `cmsi-mail worker` and `cmsi-mail queue` as operators run them: real worker
//! processes (killed, stopped, several at once) on a real PostgreSQL, delivering
//! to a real SMTP server. The tests queue mail through the library, as the
//! gateway does.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmsi_mail_queue::{Queue, QueueSettings, State, Status};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::postgres::PostgresServer;
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer, free_port};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_cmsi-mail");

/// A database, an SMTP server and a configuration that points at both.
struct Setup {
    url: String,
    smtp: SmtpServer,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    /// `queue` holds extra `[queue]` lines.
    fn new(queue: &str) -> Setup {
        let url = PostgresServer::shared().create_database();
        let smtp = SmtpServer::start(SmtpOptions::default());
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cmsi-mail.toml");
        std::fs::write(
            &config,
            format!(
                "mail_sender = \"noreply@example.com\"\n\
                 [transport]\nkind = \"smtp\"\n\
                 [transport.smtp]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\n\
                 smtp_user = \"testuser\"\nsmtp_pwd = \"testpass\"\nsmtp_usetls = true\n\
                 ca_file = {ca:?}\nmax_attempts = 1\ntimeout_secs = 10\n\
                 [queue]\nurl = {url:?}\npoll_seconds = 0.5\nlease_seconds = 2\n\
                 retry_base_seconds = 0.2\nretry_max_seconds = 1\n{queue}\n",
                port = smtp.port,
                ca = smtp.ca_file(),
            ),
        )
        .unwrap();
        Setup {
            url,
            smtp,
            dir,
            config,
        }
    }

    async fn queue(&self) -> Queue {
        Queue::connect(&QueueSettings::new(self.url.clone()))
            .await
            .unwrap()
    }

    fn worker(&self, workers: usize) -> Worker {
        Worker::start(&self.config, workers, &[])
    }

    /// `cmsi-mail queue ARGS --config FILE`.
    fn queue_command(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg("queue")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// A running `cmsi-mail worker`, killed when dropped.
struct Worker {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Worker {
    fn start(config: &Path, workers: usize, envs: &[(&str, &str)]) -> Worker {
        let mut command = Command::new(BIN);
        command
            .arg("worker")
            .arg("--config")
            .arg(config)
            .args(["--workers", &workers.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready, started) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("workers delivering") {
                    let _ = ready.send(());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let worker = Worker { child, log };
        assert!(
            started.recv_timeout(Duration::from_secs(30)).is_ok(),
            "the worker did not start: {}",
            worker.log()
        );
        worker
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits (generously) for it to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not stop: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn accept(queue: &Queue, receiver: &str) -> String {
    let (envelope, composed) = envelope_and_bytes(json!({
        "receiver": receiver,
        "title": "排队",
        "content": "<p>queued</p>",
    }));
    let data = json!({"message_id": format!("<{}>", composed.message_id), "queued": true});
    queue
        .accept("monitor", None, &envelope, &composed, &data)
        .await
        .unwrap();
    composed.message_id
}

async fn wait_for(queue: &Queue, message_id: &str, state: State) -> Status {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = queue.status("monitor", message_id).await.unwrap();
        if let Some(status) = status.as_ref().filter(|status| status.state == state) {
            return status.clone();
        }
        assert!(Instant::now() < deadline, "never {state}: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message_ids(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .map(|message| {
            String::from_utf8_lossy(&message.bytes)
                .lines()
                .find_map(|line| line.strip_prefix("Message-ID:"))
                .unwrap_or_default()
                .trim()
                .trim_matches(['<', '>'])
                .to_owned()
        })
        .collect()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_delivery_is_replaced_after_its_lease() {
    let setup = Setup::new("");
    let queue = setup.queue().await;
    let first = setup.worker(1);
    // The server takes 2 s to answer RCPT: the worker is killed in the middle.
    let message_id = accept(&queue, "stall-once@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.smtp.count("stall") < 1 {
        assert!(Instant::now() < deadline, "{}", first.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let claimed = queue.status("monitor", &message_id).await.unwrap().unwrap();
    assert_eq!(claimed.state, State::Sending);
    assert!(
        claimed
            .worker
            .unwrap()
            .contains(&format!(":{}/", first.pid()))
    );
    first.signal("-KILL");

    let second = setup.worker(1);
    let sent = wait_for(&queue, &message_id, State::Sent).await;
    assert_eq!(sent.attempts, 2, "the killed attempt counts");
    assert!(
        sent.worker
            .as_deref()
            .unwrap()
            .contains(&format!(":{}/", second.pid())),
        "{sent:?}"
    );
    assert!(second.log().contains("taking over"), "{}", second.log());
    assert_eq!(setup.smtp.count("stall"), 2);
    assert_eq!(
        message_ids(&setup.smtp),
        [message_id],
        "the sink has it, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_worker_processes_deliver_each_message_exactly_once() {
    let setup = Setup::new("");
    let queue = setup.queue().await;
    let mut workers: Vec<Worker> = (0..3).map(|_| setup.worker(2)).collect();
    let accepting: Vec<_> = (0..4)
        .map(|client| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..75 {
                    ids.push(accept(&queue, &format!("c{client}-{n}@example.com")).await);
                }
                ids
            })
        })
        .collect();
    let mut accepted = BTreeSet::new();
    for client in accepting {
        accepted.extend(client.await.unwrap());
    }
    assert_eq!(accepted.len(), 300);
    let deadline = Instant::now() + Duration::from_secs(120);
    while queue.stats().await.unwrap().sent < 300 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            queue.stats().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for worker in &mut workers {
        let status = worker.terminate();
        assert!(status.success(), "{}", worker.log());
        assert!(worker.log().contains("cmsi-mail: stopped"));
    }

    let delivered = message_ids(&setup.smtp);
    assert_eq!(delivered.len(), 300, "each once");
    assert_eq!(delivered.into_iter().collect::<BTreeSet<_>>(), accepted);
    let mut by_process = BTreeMap::new();
    for status in queue.list(Some(State::Sent), 300).await.unwrap() {
        let worker = status.worker.unwrap();
        let process = worker.rsplit_once('/').unwrap().0.to_owned();
        *by_process.entry(process).or_insert(0) += 1;
    }
    eprintln!("messages delivered by each process: {by_process:?}");
    assert!(by_process.len() >= 2, "{by_process:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_shows_in_queue_list_and_is_retried_on_request() {
    let setup = Setup::new("");
    let queue = setup.queue().await;
    let _worker = setup.worker(1);
    let refused = accept(&queue, "permfail-list@example.com").await;
    wait_for(&queue, &refused, State::Failed).await;

    let listed = setup.queue_command(&["list", "--state", "failed"]);
    assert!(listed.status.success(), "{}", text(&listed));
    let line = String::from_utf8(listed.stdout).unwrap();
    assert!(line.contains(&refused) && line.contains("failed"), "{line}");
    assert!(
        line.contains("(554): 5.7.1 Message refused by policy"),
        "{line}"
    );
    let json = setup.queue_command(&["list", "--state", "failed", "--json"]);
    let rows: Vec<Value> = String::from_utf8(json.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["message_id"], refused.as_str());
    assert_eq!(rows[0]["state"], "failed");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(
        setup
            .queue_command(&["list", "--state", "sent"])
            .stdout
            .is_empty()
    );

    let stats = setup.queue_command(&["stats", "--json"]);
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        (stats["failed"].as_u64(), stats["queued"].as_u64()),
        (Some(1), Some(0))
    );
    let stats = setup.queue_command(&["stats"]);
    assert!(
        text(&stats).contains("failed          1"),
        "{}",
        text(&stats)
    );

    let retried = setup.queue_command(&["retry", &format!("<{refused}>")]);
    assert!(retried.status.success(), "{}", text(&retried));
    assert!(text(&retried).contains("queued again"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while setup.smtp.count("data") < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for(&queue, &refused, State::Failed).await;

    let unknown = setup.queue_command(&["retry", "nothing@nowhere"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        text(&unknown).contains("no message with Message-ID"),
        "{}",
        text(&unknown)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_an_unfinished_delivery_back() {
    let setup = Setup::new("shutdown_grace_seconds = 0.3");
    let queue = setup.queue().await;
    let mut worker = setup.worker(1);
    let message_id = accept(&queue, "stall-term@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.smtp.count("stall") < 1 {
        assert!(Instant::now() < deadline, "{}", worker.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = worker.terminate();
    assert!(status.success(), "{}", worker.log());
    assert!(worker.log().contains("given back"), "{}", worker.log());
    let given_back = queue.status("monitor", &message_id).await.unwrap().unwrap();
    assert_eq!(given_back.state, State::Queued);
    assert!(message_ids(&setup.smtp).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_starting_at_once_migrate_the_empty_database_once() {
    for _ in 0..3 {
        let setup = Setup::new("");
        let children: Vec<Child> = (0..3)
            .map(|_| {
                Command::new(BIN)
                    .args(["queue", "stats", "--json", "--config"])
                    .arg(&setup.config)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", text(&output));
        }
        let database = setup.url.rsplit('/').next().unwrap();
        let applied = PostgresServer::shared().psql(
            database,
            "SELECT version, success FROM _sqlx_migrations ORDER BY version",
        );
        assert_eq!(applied.trim(), "1|t");
        let tables = PostgresServer::shared().psql(
            database,
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'cmsi_mail_%'",
        );
        assert_eq!(tables.trim(), "2");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_url_comes_from_the_environment_and_its_password_stays_out_of_logs() {
    let setup = Setup::new("");
    let with_password = setup
        .url
        .replace("postgres://postgres@", "postgres://postgres:pg-s3cret@");
    // The file's URL points nowhere; the environment's wins.
    let config = setup.dir.path().join("elsewhere.toml");
    std::fs::write(
        &config,
        std::fs::read_to_string(&setup.config).unwrap().replace(
            &setup.url,
            &format!("postgres://x:y@127.0.0.1:{}/none", free_port()),
        ),
    )
    .unwrap();
    let mut worker = Worker::start(&config, 1, &[("CMSI_MAIL_QUEUE_URL", &with_password)]);
    let queue = setup.queue().await;
    let message_id = accept(&queue, "env@example.com").await;
    wait_for(&queue, &message_id, State::Sent).await;
    assert!(worker.terminate().success());
    let log = worker.log();
    assert!(log.contains("postgres:***@127.0.0.1"), "{log}");
    assert!(!log.contains("pg-s3cret"), "{log}");

    // Without any config, the environment is enough.
    let stats = Command::new(BIN)
        .args(["queue", "stats", "--json"])
        .env("CMSI_MAIL_QUEUE_URL", &with_password)
        .output()
        .unwrap();
    assert!(stats.status.success(), "{}", text(&stats));
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["sent"], 1);

    // Unreachable: the error names the host, never the password.
    let unreachable = format!("postgres://mail:pg-s3cret@127.0.0.1:{}/none", free_port());
    let failed = Command::new(BIN)
        .args(["queue", "stats"])
        .env("CMSI_MAIL_QUEUE_URL", &unreachable)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let message = text(&failed);
    assert!(
        message.contains("unreachable") && message.contains("mail:***@127.0.0.1"),
        "{message}"
    );
    assert!(!message.contains("pg-s3cret"), "{message}");

    // Neither: one line saying what to add.
    let missing = Command::new(BIN)
        .args(["queue", "stats"])
        .env_remove("CMSI_MAIL_QUEUE_URL")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing).contains("CMSI_MAIL_QUEUE_URL"),
        "{}",
        text(&missing)
    );
}
