//! `cmsi-mail worker` and `cmsi-mail queue` as operators run them: real worker
//! processes (killed, stopped, several at once) on a real PostgreSQL, delivering
//! to a real SMTP server. The tests queue mail through the library, as the
//! gateway does.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::time::{Duration, Instant};

use cmsi_mail_queue::{Queue, QueueSettings, State, Status};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::postgres::PostgresServer;
use cmsi_mail_testkit::process::{Listening, Process};
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
                 [apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n\
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

    fn worker(&self, workers: usize) -> Process {
        Worker::start(&self.config, workers, &[])
    }

    /// `cmsi-mail serve` on this configuration: it queues, and its
    /// `[queue] workers` deliver.
    fn serve(&self) -> Listening {
        serve(&self.config)
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

/// `cmsi-mail serve --config FILE` on a port of its choosing.
fn serve(config: &Path) -> Listening {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--config"])
        .arg(config);
    Listening::start(command)
}

const SEND_MAIL: &str = "/api/c/compapi/cmsi/send_mail/";
const MAIL_STATUS: &str = "/api/c/compapi/cmsi/mail_status/";

/// A send_mail request of app `monitor` to `receiver`.
fn request(receiver: &str, title: &str) -> Value {
    json!({
        "bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
        "receiver": receiver, "title": title, "content": "<p>queued</p>",
    })
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(format!("{url}{SEND_MAIL}"))
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls mail_status until the message is in `state` (60 s at most).
async fn status_until(url: &str, message_id: &str, state: &str) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply: Value = client
            .get(format!("{url}{MAIL_STATUS}"))
            .query(&[
                ("bk_app_code", "monitor"),
                ("bk_app_secret", "s3cret"),
                ("bk_username", "admin"),
                ("message_id", message_id),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if reply["data"]["state"] == state {
            return reply;
        }
        assert!(Instant::now() < deadline, "never {state}: {reply}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `cmsi-mail worker` (ready when it says its workers deliver).
struct Worker;

impl Worker {
    fn start(config: &Path, workers: usize, envs: &[(&str, &str)]) -> Process {
        let mut command = Command::new(BIN);
        command
            .arg("worker")
            .arg("--config")
            .arg(config)
            .args(["--workers", &workers.to_string()]);
        for (key, value) in envs {
            command.env(key, value);
        }
        Process::start(command, |line| line.contains("workers delivering")).0
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
    let mut workers: Vec<Process> = (0..3).map(|_| setup.worker(2)).collect();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_queues_and_mail_status_shows_the_receipt() {
    let setup = Setup::new("");
    let serve = setup.serve();
    let client = reqwest::Client::new();
    let reply = post(
        &client,
        &serve.url,
        &request("a@example.com, reject-b@example.com", "排队"),
    )
    .await;
    assert_eq!(reply["result"], true, "{reply}");
    assert_eq!(reply["code"], "00");
    assert_eq!(reply["data"]["queued"], true, "{reply}");
    assert_eq!(
        reply["data"]["recipients"],
        json!(["a@example.com", "reject-b@example.com"])
    );
    let message_id = reply["data"]["message_id"].as_str().unwrap().to_owned();

    let status = status_until(&serve.url, &message_id, "sent").await;
    assert_eq!(status["result"], true);
    assert_eq!(status["data"]["accepted"], json!(["a@example.com"]));
    let rejected = &status["data"]["rejected"][0];
    assert_eq!(rejected["recipient"], "reject-b@example.com");
    assert!(
        rejected["reason"].as_str().unwrap().contains("550"),
        "{status}"
    );
    assert_eq!(setup.smtp.messages().len(), 1);
    assert_eq!(
        message_ids(&setup.smtp),
        [message_id.trim_matches(['<', '>'])]
    );

    // The workers' delivery and the queue's state are in the metrics.
    let metrics = reqwest::get(format!("{}/metrics", serve.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "cmsi_deliveries_total{transport=\"smtp\",outcome=\"sent\"} 1",
        "cmsi_recipients_total{outcome=\"accepted\"} 1",
        "cmsi_recipients_total{outcome=\"refused\"} 1",
        "cmsi_queue_depth{state=\"sent\"} 1",
        "cmsi_queue_depth{state=\"queued\"} 0",
        "cmsi_queue_oldest_age_seconds 0.0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in:\n{metrics}"
        );
    }

    // Another app's, or an unknown, message is not shown; a missing id is named.
    let reply: Value = client
        .get(format!("{}{MAIL_STATUS}", serve.url))
        .query(&[
            ("bk_app_code", "monitor"),
            ("bk_app_secret", "s3cret"),
            ("bk_username", "admin"),
            ("message_id", "<nobody@example.com>"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["result"], false, "{reply}");
    assert_eq!(reply["code"], "1306000");
    let reply: Value = client
        .post(format!("{}{MAIL_STATUS}", serve.url))
        .json(&json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["data"]["field"], "message_id", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_msg_and_the_bk_cmsi_api_queue_through_the_same_path() {
    // The lines after [queue]'s start a table of their own.
    let setup = Setup::new("[users]\nzhangsan = \"zhangsan@example.com\"\n");
    let serve = setup.serve();
    let client = reqwest::Client::new();
    let credentials = json!({"bk_app_code": "monitor", "bk_app_secret": "s3cret"}).to_string();
    let mut queued = Vec::new();
    for (path, body, header) in [
        (
            "/api/c/compapi/cmsi/send_msg/",
            json!({
                "bk_app_code": "monitor", "bk_app_secret": "s3cret", "bk_username": "admin",
                "msg_type": "mail", "receiver__username": "zhangsan",
                "title": "send_msg", "content": "<p>queued</p>",
            }),
            None,
        ),
        (
            "/api/bk-cmsi/prod/v1/send_mail/",
            json!({"receiver": ["zhangsan@example.com"], "title": "v1", "content": "<p>queued</p>"}),
            Some(credentials.as_str()),
        ),
    ] {
        let mut post = client.post(format!("{}{path}", serve.url)).json(&body);
        if let Some(header) = header {
            post = post.header("X-Bkapi-Authorization", header);
        }
        let reply = post.send().await.unwrap();
        assert_eq!(reply.status(), 200, "{path}");
        let reply: Value = reply.json().await.unwrap();
        assert_eq!(reply["result"], true, "{path}: {reply}");
        assert_eq!(reply["data"]["queued"], true, "{path}: {reply}");
        assert_eq!(
            reply["data"]["recipients"],
            json!(["zhangsan@example.com"]),
            "{path}: {reply}"
        );
        queued.push(reply["data"]["message_id"].as_str().unwrap().to_owned());
    }
    for message_id in &queued {
        let status = status_until(&serve.url, message_id, "sent").await;
        assert_eq!(
            status["data"]["accepted"],
            json!(["zhangsan@example.com"]),
            "{status}"
        );
    }
    let delivered: BTreeSet<String> = message_ids(&setup.smtp).into_iter().collect();
    let expected: BTreeSet<String> = queued
        .iter()
        .map(|id| id.trim_matches(['<', '>']).to_owned())
        .collect();
    assert_eq!(delivered, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_failed_in_mail_status_and_queue_list() {
    let setup = Setup::new("");
    let serve = setup.serve();
    let reply = post(
        &reqwest::Client::new(),
        &serve.url,
        &request("reject-x@example.com", "refused"),
    )
    .await;
    let message_id = reply["data"]["message_id"].as_str().unwrap().to_owned();
    let status = status_until(&serve.url, &message_id, "failed").await;
    let error = status["data"]["last_error"].as_str().unwrap();
    assert!(
        error.contains("550") && error.contains("no such user"),
        "{status}"
    );
    let listed = setup.queue_command(&["list", "--state", "failed"]);
    assert!(
        text(&listed).contains(message_id.trim_matches(['<', '>'])),
        "{}",
        text(&listed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_down_for_20_seconds_loses_and_duplicates_nothing_through_the_gateway() {
    // The relay's port is known but nothing listens on it yet.
    let port = free_port();
    // Retries every second at most, and enough of them for the outage.
    let setup = Setup::new("max_attempts = 100");
    let config = std::fs::read_to_string(&setup.config).unwrap().replace(
        &format!("smtp_port = {}", setup.smtp.port),
        &format!("smtp_port = {port}"),
    );
    std::fs::write(&setup.config, config).unwrap();
    let serve = setup.serve();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let replies: Vec<Value> = futures_join(
        (0..100)
            .map(|n| {
                let (client, url) = (client.clone(), serve.url.clone());
                tokio::spawn(async move {
                    post(
                        &client,
                        &url,
                        &request(&format!("user{n}@example.com"), &format!("down {n}")),
                    )
                    .await
                })
            })
            .collect(),
    )
    .await;
    let answered = started.elapsed();
    assert!(
        replies.iter().all(|reply| reply["code"] == "00"),
        "{replies:?}"
    );
    let sent: BTreeSet<String> = replies
        .iter()
        .map(|reply| {
            reply["data"]["message_id"]
                .as_str()
                .unwrap()
                .trim_matches(['<', '>'])
                .to_owned()
        })
        .collect();
    assert_eq!(sent.len(), 100);
    println!("relay down: 100 requests answered 00 in {answered:?}");
    // Answered while the relay is still down (it stays down for 20 s): the
    // callers did not wait for it.
    assert!(
        answered < Duration::from_secs(10),
        "100 requests took {answered:?}: they waited for the relay"
    );

    tokio::time::sleep(Duration::from_secs(20).saturating_sub(started.elapsed())).await;
    let relay = SmtpServer::start_on_port(port, SmtpOptions::default());
    let deadline = Instant::now() + Duration::from_secs(90);
    while relay.messages().len() < 100 {
        assert!(
            Instant::now() < deadline,
            "{} of 100 delivered",
            relay.messages().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = message_ids(&relay);
    assert_eq!(delivered.len(), 100, "no duplicates");
    assert_eq!(
        delivered.into_iter().collect::<BTreeSet<_>>(),
        sent,
        "none lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_queues_one_message_through_the_gateway() {
    let setup = Setup::new("");
    let serve = setup.serve();
    let client = reqwest::Client::new();
    let send = |key: &'static str, title: &'static str| {
        let (client, url) = (client.clone(), serve.url.clone());
        tokio::spawn(async move {
            client
                .post(format!("{url}{SEND_MAIL}"))
                .header("Idempotency-Key", key)
                .json(&request("a@example.com", title))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        })
    };
    let first = send("order-1", "first").await.unwrap();
    let again = send("order-1", "again").await.unwrap();
    assert_eq!(first["data"]["queued"], true, "{first}");
    assert_eq!(again["data"], first["data"], "the first answer, again");
    let concurrent = futures_join(
        (0..10)
            .map(|n| send("order-2", if n == 0 { "a" } else { "b" }))
            .collect(),
    )
    .await;
    let ids: BTreeSet<&str> = concurrent
        .iter()
        .map(|reply| reply["data"]["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{concurrent:?}");
    let bad = send("", "empty key").await.unwrap();
    assert_eq!(bad["code"], "1306000", "{bad}");

    let queue = setup.queue().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while setup.smtp.messages().len() < 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(setup.smtp.messages().len(), 2, "one message per key");
    let stats = queue.stats().await.unwrap();
    assert_eq!(stats.queued + stats.sending + stats.sent + stats.failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_and_three_workers_deliver_2000_requests_each_once() {
    let url = PostgresServer::shared().create_database();
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let config = dir.path().join("cmsi-mail.toml");
    std::fs::write(
        &config,
        format!(
            "mail_sender = \"noreply@example.com\"\n[transport]\nkind = \"file\"\n\
             [transport.file]\ndir = {outbox:?}\n\
             [apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n\
             [queue]\nurl = {url:?}\nworkers = 0\npoll_seconds = 0.5\nlease_seconds = 5\n"
        ),
    )
    .unwrap();
    let gateways = [serve(&config), serve(&config)];
    let _workers: Vec<Process> = (0..3).map(|_| Worker::start(&config, 2, &[])).collect();

    let client = reqwest::Client::new();
    let started = Instant::now();
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let client = client.clone();
            let url = gateways[c % 2].url.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in (c..2000).step_by(32) {
                    let reply =
                        post(&client, &url, &request("a@example.com", &format!("m{n}"))).await;
                    assert_eq!(reply["code"], "00", "{reply}");
                    ids.push(
                        reply["data"]["message_id"]
                            .as_str()
                            .unwrap()
                            .trim_matches(['<', '>'])
                            .to_owned(),
                    );
                }
                ids
            })
        })
        .collect();
    let mut sent = BTreeSet::new();
    for client in clients {
        sent.extend(client.await.unwrap());
    }
    let accepted = started.elapsed();
    assert_eq!(sent.len(), 2000);

    let emls = || -> Vec<PathBuf> {
        std::fs::read_dir(&outbox)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    while emls().len() < 2000 {
        assert!(
            Instant::now() < deadline,
            "{} of 2000 delivered",
            emls().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut delivered = BTreeMap::new();
    for path in emls() {
        let text = std::fs::read_to_string(&path).unwrap();
        let id = text
            .lines()
            .find_map(|line| line.strip_prefix("Message-ID:"))
            .unwrap()
            .trim()
            .trim_matches(['<', '>'])
            .to_owned();
        *delivered.entry(id).or_insert(0) += 1;
    }
    println!("2 gateways, 3 workers: 2000 accepted in {accepted:?}, delivered by {drained:?}");
    assert_eq!(delivered.len(), 2000);
    assert!(
        delivered.values().all(|&count| count == 1),
        "each Message-ID once"
    );
    assert_eq!(delivered.keys().cloned().collect::<BTreeSet<_>>(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_answered_1306201_quickly_and_healthz_stays_up() {
    // A cluster of its own: stopping the shared one would stop other tests.
    let postgres = PostgresServer::start();
    let url = postgres.create_database();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cmsi-mail.toml");
    std::fs::write(
        &config,
        format!(
            "[transport]\nkind = \"file\"\n[transport.file]\ndir = {:?}\n\
             [apps.monitor]\nsecret = \"s3cret\"\nallow_bk_username = true\n\
             [server]\nready_cache_secs = 1\n\
             [queue]\nurl = {url:?}\nworkers = 1\n",
            dir.path().join("outbox")
        ),
    )
    .unwrap();
    let serve = serve(&config);
    let client = reqwest::Client::new();
    assert_eq!(
        post(&client, &serve.url, &request("a@example.com", "up")).await["code"],
        "00"
    );

    postgres.stop();
    let started = Instant::now();
    let reply = post(&client, &serve.url, &request("a@example.com", "down")).await;
    let waited = started.elapsed();
    assert_eq!(reply["code"], "1306201", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("queue"),
        "{reply}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    let health = client
        .get(format!("{}/healthz", serve.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "the process is up");
    // … and not ready: /readyz names the queue (its cache lasts a second).
    let readyz = |client: reqwest::Client, url: String| async move {
        let reply = client.get(format!("{url}/readyz")).send().await.unwrap();
        (
            reply.status().as_u16(),
            reply.json::<Value>().await.unwrap(),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = readyz(client.clone(), serve.url.clone()).await;
        if status == 503 {
            assert_eq!(body["checks"]["queue"]["status"], "failed", "{body}");
            assert_eq!(body["checks"]["transport"]["status"], "ok", "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    postgres.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = post(&client, &serve.url, &request("a@example.com", "again")).await;
        if reply["code"] == "00" {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted again: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while readyz(client.clone(), serve.url.clone()).await.0 != 200 {
        assert!(Instant::now() < deadline, "/readyz never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Awaits every task, in order.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Value>>) -> Vec<Value> {
    let mut replies = Vec::with_capacity(tasks.len());
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    replies
}
