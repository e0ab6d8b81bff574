//! The queue against a real PostgreSQL (one cluster for this test binary, a
//! fresh database per test) and a real SMTP server (aiosmtpd), with workers
//! running in the test process. What needs separate processes (a worker
//! killed mid-delivery, several worker processes, migrations from processes
//! starting together) is tested with the `cmsi-mail` binary in its crate.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cmsi_mail::{Composed, Envelope, Transport};
use cmsi_mail_queue::{Error, Queue, QueueSettings, State, Status};
use cmsi_mail_smtp::{SmtpSettings, SmtpTransport};
use cmsi_mail_testkit::envelope_and_bytes;
use cmsi_mail_testkit::oracle::assert_delivered;
use cmsi_mail_testkit::postgres::PostgresServer;
use cmsi_mail_testkit::servers::{SmtpOptions, SmtpServer, free_port};
use serde_json::{Value, json};

/// Short leases, polls and backoffs, so that the tests take seconds.
fn settings(url: String) -> QueueSettings {
    let mut settings = QueueSettings::new(url);
    settings.poll_seconds = Some(0.5);
    settings.lease_seconds = Some(3.0);
    settings.retry_base_seconds = Some(0.2);
    settings.retry_max_seconds = Some(1.0);
    settings.shutdown_grace_seconds = Some(5.0);
    settings
}

async fn queue() -> (Queue, String) {
    let url = PostgresServer::shared().create_database();
    let queue = Queue::connect(&settings(url.clone())).await.unwrap();
    (queue, url)
}

/// The SMTP transport to `port` (the test server's TLS and login), which
/// leaves retrying to the queue.
fn smtp_to_port(port: u16) -> Arc<dyn Transport> {
    let transport = SmtpTransport::new(SmtpSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(port),
        smtp_user: Some("testuser".into()),
        smtp_pwd: Some("testpass".into()),
        smtp_usetls: true,
        ca_file: Some(cmsi_mail_testkit::servers::certificate().cert.clone()),
        timeout_secs: Some(10.0),
        max_attempts: Some(1),
        ..SmtpSettings::default()
    })
    .unwrap();
    Arc::new(transport)
}

fn smtp(server: &SmtpServer) -> Arc<dyn Transport> {
    smtp_to_port(server.port)
}

fn to(receiver: &str) -> (Envelope, Composed) {
    envelope_and_bytes(json!({
        "receiver": receiver,
        "title": "排队的邮件",
        "content": "<p>hello from the queue</p>",
    }))
}

fn data(composed: &Composed) -> Value {
    json!({"message_id": format!("<{}>", composed.message_id), "queued": true})
}

async fn accept(queue: &Queue, receiver: &str) -> (Envelope, Composed) {
    let (envelope, composed) = to(receiver);
    let accepted = queue
        .accept("monitor", None, &envelope, &composed, &data(&composed))
        .await
        .unwrap();
    assert_eq!(accepted.message_id, composed.message_id);
    assert!(!accepted.repeated);
    (envelope, composed)
}

/// Polls until the message is in `state`; panics with its last status after
/// a generous deadline.
async fn wait_for(queue: &Queue, message_id: &str, state: State) -> Status {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = queue.status("monitor", message_id).await.unwrap();
        if let Some(status) = status.as_ref().filter(|status| status.state == state) {
            return status.clone();
        }
        assert!(
            Instant::now() < deadline,
            "message never became {state}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until `done` holds for the queue's counts.
async fn wait_for_stats(queue: &Queue, what: &str, done: impl Fn(&cmsi_mail_queue::Stats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = queue.stats().await.unwrap();
        if done(&stats) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {stats:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Message-ID of each message the server stored, in order.
fn message_ids(server: &SmtpServer) -> Vec<String> {
    server
        .messages()
        .iter()
        .map(|message| header(&message.bytes, "message-id"))
        .collect()
}

fn header(bytes: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().trim_matches(['<', '>']).to_owned())
        })
        .unwrap_or_default()
}

fn psql_one(url: &str, sql: &str) -> String {
    let database = url.rsplit('/').next().unwrap();
    PostgresServer::shared()
        .psql(database, sql)
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_mail_is_delivered_and_its_status_shows_the_receipt() {
    let server = SmtpServer::start(SmtpOptions::default());
    let (queue, url) = queue().await;
    let (envelope, composed) = envelope_and_bytes(cmsi_mail_testkit::example("send_mail.json"));
    let accepted = queue
        .accept("monitor", None, &envelope, &composed, &data(&composed))
        .await
        .unwrap();
    let queued = queue
        .status("monitor", &accepted.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.state, State::Queued, "nothing delivers yet");
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.recipients, envelope.recipients());
    assert_eq!(queued.size, composed.bytes.len() as u64);

    let workers = queue.start_workers(smtp(&server));
    let sent = wait_for(&queue, &composed.message_id, State::Sent).await;
    workers.shutdown().await;

    assert_eq!(sent.attempts, 1);
    assert_eq!(sent.accepted, envelope.recipients());
    assert!(sent.rejected.is_empty());
    assert!(
        sent.transport_id.as_deref().unwrap().starts_with("250"),
        "{sent:?}"
    );
    assert!(sent.sent_at.is_some() && sent.next_attempt_at.is_none());
    assert!(
        sent.worker.as_deref().unwrap().ends_with("/1")
            || sent.worker.as_deref().unwrap().ends_with("/2")
    );
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_delivered(&stored[0].bytes, &composed.bytes);
    assert_eq!(stored[0].rcpt_tos, envelope.recipients());

    // Looked up with the brackets of the ESB answer; another app sees nothing.
    let bracketed = format!("<{}>", composed.message_id);
    assert_eq!(
        queue.status("monitor", &bracketed).await.unwrap(),
        Some(sent.clone())
    );
    assert_eq!(queue.status("other-app", &bracketed).await.unwrap(), None);
    // The bytes are dropped once sent; the metadata stays.
    assert_eq!(
        psql_one(
            &url,
            "SELECT message IS NULL, message_size > 0 FROM cmsi_mail_message"
        ),
        "t|t"
    );
    let json = serde_json::to_value(&sent).unwrap();
    assert_eq!(json["state"], "sent");
    assert!(json["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_fails_with_the_servers_reply_and_can_be_retried() {
    let server = SmtpServer::start(SmtpOptions::default());
    let (queue, _) = queue().await;
    let workers = queue.start_workers(smtp(&server));
    let (_, refused) = accept(&queue, "permfail-x@example.com").await;
    let (_, fine) = accept(&queue, "fine@example.com").await;

    let failed = wait_for(&queue, &refused.message_id, State::Failed).await;
    assert_eq!(failed.attempts, 1, "a permanent refusal is not tried again");
    let reason = failed.last_error.clone().unwrap();
    assert!(
        reason.contains("554") && reason.contains("Message refused by policy"),
        "{reason}"
    );
    wait_for(&queue, &fine.message_id, State::Sent).await;

    let listed = queue.list(Some(State::Failed), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], failed);
    assert_eq!(queue.list(None, 10).await.unwrap().len(), 2);

    // retry: queued again with every attempt ahead; it fails again, once.
    let retried = queue.retry(&refused.message_id).await.unwrap();
    assert_eq!((retried.state, retried.attempts), (State::Queued, 0));
    let deadline = Instant::now() + Duration::from_secs(60);
    let again = loop {
        let status = queue
            .status("monitor", &refused.message_id)
            .await
            .unwrap()
            .unwrap();
        if status.state == State::Failed && status.updated_at > failed.updated_at {
            break status;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(again.attempts, 1);
    assert_eq!(
        server.count("data"),
        3,
        "two tries of the refused one, one of the other"
    );

    assert!(matches!(
        queue.retry(&fine.message_id).await,
        Err(Error::NotFailed {
            state: State::Sent,
            ..
        })
    ));
    assert!(matches!(
        queue.retry("nobody@nowhere").await,
        Err(Error::NotFound(_))
    ));
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_until_the_attempts_are_used_up() {
    let server = SmtpServer::start(SmtpOptions::default());
    let url = PostgresServer::shared().create_database();
    let mut settings = settings(url);
    settings.max_attempts = Some(3);
    let queue = Queue::connect(&settings).await.unwrap();
    let workers = queue.start_workers(smtp(&server));
    let (_, once) = accept(&queue, "tempfail-once-x@example.com").await;
    let (_, busy) = accept(&queue, "busy-x@example.com").await;

    let sent = wait_for(&queue, &once.message_id, State::Sent).await;
    assert_eq!(sent.attempts, 2);
    assert!(
        sent.last_error.as_deref().unwrap().contains("451"),
        "{sent:?}"
    );
    let failed = wait_for(&queue, &busy.message_id, State::Failed).await;
    assert_eq!(failed.attempts, 3);
    let reason = failed.last_error.unwrap();
    assert!(
        reason.starts_with("gave up after 3 attempts") && reason.contains("450"),
        "{reason}"
    );
    assert_eq!(message_ids(&server), [once.message_id]);
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_down_for_20_seconds_loses_nothing_and_duplicates_nothing() {
    let port = free_port();
    let (queue, _) = queue().await;
    let mut settings = queue.settings().clone();
    settings.max_attempts = Some(100);
    let queue = Queue::connect(&settings).await.unwrap();
    let workers = queue.start_workers(smtp_to_port(port));

    let down = Instant::now();
    let mut accepted = BTreeSet::new();
    for n in 0..100 {
        let (_, composed) = accept(&queue, &format!("user{n}@example.com")).await;
        accepted.insert(composed.message_id);
    }
    let accepting = down.elapsed();
    wait_for_stats(&queue, "tried while down", |stats| {
        stats.sent == 0 && stats.queued + stats.sending == 100
    })
    .await;
    let failures = queue.list(Some(State::Queued), 100).await.unwrap();
    assert!(
        failures.iter().any(|status| status.attempts > 0
            && status
                .last_error
                .as_deref()
                .is_some_and(|error| error.contains("temporary"))),
        "the workers tried while the relay was down: {failures:?}"
    );
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down.elapsed())).await;
    assert_eq!(queue.stats().await.unwrap().sent, 0);

    let server = SmtpServer::start_on_port(port, SmtpOptions::default());
    let back = Instant::now();
    wait_for_stats(&queue, "all sent", |stats| stats.sent == 100).await;
    eprintln!(
        "100 accepted in {accepting:?} while the relay was down; delivered {:?} after it came back",
        back.elapsed()
    );
    workers.shutdown().await;
    let delivered = message_ids(&server);
    assert_eq!(delivered.len(), 100, "no duplicates");
    assert_eq!(
        delivered.into_iter().collect::<BTreeSet<_>>(),
        accepted,
        "none lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_idempotency_key_queues_one_message() {
    let (queue, url) = queue().await;
    let (envelope, first) = to("a@example.com");
    let answer = json!({"message_id": format!("<{}>", first.message_id), "queued": true});
    let accepted = queue
        .accept("monitor", Some("order-42"), &envelope, &first, &answer)
        .await
        .unwrap();
    assert!(!accepted.repeated);
    let (envelope2, second) = to("a@example.com");
    let again = queue
        .accept(
            "monitor",
            Some("order-42"),
            &envelope2,
            &second,
            &data(&second),
        )
        .await
        .unwrap();
    assert!(again.repeated);
    assert_eq!(again.message_id, first.message_id);
    assert_eq!(again.response, answer, "the first answer, as stored");

    // Ten at once with a new key: one is queued, all get its answer.
    let attempts = (0..10).map(|_| {
        let queue = queue.clone();
        tokio::spawn(async move {
            let (envelope, composed) = to("b@example.com");
            queue
                .accept(
                    "monitor",
                    Some("order-43"),
                    &envelope,
                    &composed,
                    &data(&composed),
                )
                .await
                .unwrap()
        })
    });
    let mut answers = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        answers.push(attempt.await.unwrap());
    }
    assert_eq!(answers.iter().filter(|answer| !answer.repeated).count(), 1);
    let ids: BTreeSet<_> = answers
        .iter()
        .map(|answer| answer.message_id.clone())
        .collect();
    assert_eq!(ids.len(), 1);

    // Keys are per app.
    let (envelope3, third) = to("c@example.com");
    let other = queue
        .accept(
            "other-app",
            Some("order-42"),
            &envelope3,
            &third,
            &data(&third),
        )
        .await
        .unwrap();
    assert!(!other.repeated);
    assert_eq!(
        psql_one(&url, "SELECT count(*) FROM cmsi_mail_message"),
        "3"
    );

    // A key past its time is free again, and housekeeping forgets it.
    psql_one(
        &url,
        "UPDATE cmsi_mail_message SET idempotency_expires_at = now() - interval '1 second' WHERE idempotency_key = 'order-42' AND app_code = 'monitor'",
    );
    let (envelope4, fourth) = to("a@example.com");
    let fresh = queue
        .accept(
            "monitor",
            Some("order-42"),
            &envelope4,
            &fourth,
            &data(&fourth),
        )
        .await
        .unwrap();
    assert!(!fresh.repeated);
    assert_eq!(fresh.message_id, fourth.message_id);
    psql_one(
        &url,
        "UPDATE cmsi_mail_message SET idempotency_expires_at = now() - interval '1 second' WHERE idempotency_key = 'order-43'",
    );
    assert_eq!(queue.housekeep().await.unwrap().keys_expired, 1);
    assert_eq!(
        psql_one(
            &url,
            "SELECT count(*) FROM cmsi_mail_message WHERE idempotency_key IS NOT NULL"
        ),
        "2"
    );
    assert_eq!(
        psql_one(&url, "SELECT count(*) FROM cmsi_mail_message"),
        "4",
        "messages stay"
    );

    for bad in ["", "line\nbreak", &"k".repeat(256)] {
        assert!(matches!(
            queue
                .accept("monitor", Some(bad), &envelope, &first, &answer)
                .await,
            Err(Error::IdempotencyKey)
        ));
    }
    assert!(matches!(
        queue
            .accept("monitor", None, &envelope, &first, &answer)
            .await,
        Err(Error::DuplicateMessageId(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pace_holds_across_the_workers_of_two_pools() {
    let server = SmtpServer::start(SmtpOptions {
        tls: cmsi_mail_testkit::servers::SmtpTls::None,
        credentials: None,
        ..SmtpOptions::default()
    });
    let url = PostgresServer::shared().create_database();
    let mut settings = settings(url);
    settings.max_per_second = Some(20.0);
    settings.workers = Some(2);
    // Two pools stand for two machines: the bucket lives in the database.
    let first = Queue::connect(&settings).await.unwrap();
    let second = Queue::connect(&settings).await.unwrap();
    let plain = |port| -> Arc<dyn Transport> {
        Arc::new(
            SmtpTransport::new(SmtpSettings {
                smtp_host: "127.0.0.1".into(),
                smtp_port: Some(port),
                max_attempts: Some(1),
                ..SmtpSettings::default()
            })
            .unwrap(),
        )
    };
    for n in 0..80 {
        accept(&first, &format!("paced{n}@example.com")).await;
    }
    let workers = [
        first.start_workers(plain(server.port)),
        second.start_workers(plain(server.port)),
    ];
    wait_for_stats(&first, "all sent", |stats| stats.sent == 80).await;
    for workers in workers {
        workers.shutdown().await;
    }

    // When each message was stored, and the most stored in any one second.
    let mut times: Vec<SystemTime> = std::fs::read_dir(server.store_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .map(|path| std::fs::metadata(path).unwrap().modified().unwrap())
        .collect();
    times.sort();
    assert_eq!(times.len(), 80);
    let most = (0..times.len())
        .map(|start| {
            times[start..]
                .iter()
                .take_while(|time| {
                    time.duration_since(times[start]).unwrap() < Duration::from_secs(1)
                })
                .count()
        })
        .max()
        .unwrap();
    let span = times[79].duration_since(times[0]).unwrap();
    eprintln!("80 messages in {span:?}; at most {most} in any one second");
    // The pace holds when deliveries start (20 a second, plus a burst of 1);
    // one more is allowed for delivery times that vary between messages.
    assert!(
        most <= 20 + 1 + 1,
        "{most} messages in one second (limit 20, burst 1)"
    );
    assert!(
        span >= Duration::from_secs(3),
        "80 at 20/s cannot take {span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_fails_fast_and_works_again_after_restart() {
    let postgres = PostgresServer::start();
    let url = postgres.create_database();
    let server = SmtpServer::start(SmtpOptions::default());
    let queue = Queue::connect(&settings(url.clone())).await.unwrap();
    let workers = queue.start_workers(smtp(&server));
    let (_, before) = accept(&queue, "before@example.com").await;
    wait_for(&queue, &before.message_id, State::Sent).await;

    postgres.stop();
    let (envelope, composed) = to("during@example.com");
    let started = Instant::now();
    let error = queue
        .accept("monitor", None, &envelope, &composed, &data(&composed))
        .await
        .unwrap_err();
    let took = started.elapsed();
    eprintln!("accept failed after {took:?}: {error}");
    assert!(error.is_unavailable(), "{error:?}");
    assert!(took < Duration::from_secs(10), "answered at all: {took:?}");
    assert!(queue.ping().await.unwrap_err().is_unavailable());
    assert!(
        queue
            .status("monitor", &before.message_id)
            .await
            .unwrap_err()
            .is_unavailable()
    );

    postgres.restart();
    queue.ping().await.unwrap();
    let (_, after) = accept(&queue, "after@example.com").await;
    wait_for(&queue, &after.message_id, State::Sent).await;
    workers.shutdown().await;
    assert_eq!(
        message_ids(&server),
        [before.message_id.clone(), after.message_id.clone()],
        "the message refused while the database was down was never stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_reported_quickly_without_the_password() {
    let url = format!("postgres://mail:s3cret-pass@127.0.0.1:{}/cmsi", free_port());
    let started = Instant::now();
    let error = Queue::connect(&QueueSettings::new(url)).await.unwrap_err();
    let took = started.elapsed();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains("s3cret-pass"), "{text}");
    }
    let bad = Queue::connect(&QueueSettings::new("mysql://x"))
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::Settings(_)), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_what_the_workers_have_not_finished() {
    let server = SmtpServer::start(SmtpOptions::default());
    let url = PostgresServer::shared().create_database();
    let mut settings = settings(url);
    settings.workers = Some(1);
    settings.max_per_second = Some(0.2);
    let queue = Queue::connect(&settings).await.unwrap();
    let (_, first) = accept(&queue, "first@example.com").await;
    let workers = queue.start_workers(smtp(&server));
    wait_for(&queue, &first.message_id, State::Sent).await;
    // The next one waits five seconds for its turn at the pace.
    let (_, waiting) = accept(&queue, "second@example.com").await;
    wait_for(&queue, &waiting.message_id, State::Sending).await;
    let stopping = Instant::now();
    workers.shutdown().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(4),
        "did not wait for the pace"
    );
    let given_back = queue
        .status("monitor", &waiting.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(given_back.state, State::Queued);
    assert_eq!(
        given_back.attempts, 0,
        "an attempt that never started does not count"
    );
    assert!(given_back.next_attempt_at.unwrap() <= given_back.updated_at);

    // A delivery in progress that outlasts the grace is dropped and given back.
    let mut settings = queue.settings().clone();
    settings.max_per_second = None;
    settings.shutdown_grace_seconds = Some(0.3);
    let queue = Queue::connect(&settings).await.unwrap();
    let (_, stalled) = accept(&queue, "stall-x@example.com").await;
    let workers = queue.start_workers(smtp(&server));
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.count("stall") < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.shutdown().await;
    let given_back = queue
        .status("monitor", &stalled.message_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(given_back.state, State::Queued);
    assert_eq!(given_back.attempts, 1, "the attempt had started");
    // The one given back before was delivered by the new workers first.
    assert_eq!(
        message_ids(&server),
        [first.message_id.clone(), waiting.message_id.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_lost_its_lease_abandons_the_delivery_and_leaves_the_row() {
    let server = SmtpServer::start(SmtpOptions::default());
    let url = PostgresServer::shared().create_database();
    // Renewed every half second: the loss is found well within the relay's
    // 2 s wait, however slowly the test's UPDATE lands.
    let mut settings = settings(url.clone());
    settings.lease_seconds = Some(1.5);
    let queue = Queue::connect(&settings).await.unwrap();
    accept(&queue, "stall-y@example.com").await;
    let workers = queue.start_workers(smtp(&server));
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.count("stall") < 1 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Another worker took the row over meanwhile (its lease token is 42, its
    // lease an hour).
    psql_one(
        &url,
        "UPDATE cmsi_mail_message SET lease = 42, locked_by = 'elsewhere/1',
         locked_until = now() + interval '1 hour', next_attempt_at = now() + interval '1 hour'",
    );
    // Its next renewal (a third of the lease) finds the row taken and
    // drops the SMTP transaction, still waiting in its 2 s RCPT: the other
    // worker delivers, this one does not deliver too.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        message_ids(&server),
        Vec::<String>::new(),
        "the worker without its lease delivered"
    );
    workers.shutdown().await;
    assert_eq!(
        psql_one(
            &url,
            "SELECT state, lease, locked_by FROM cmsi_mail_message"
        ),
        "sending|42|elsewhere/1",
        "the first worker records nothing over the new claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_purges_old_finished_rows_only() {
    let server = SmtpServer::start(SmtpOptions::default());
    let (queue, url) = queue().await;
    let workers = queue.start_workers(smtp(&server));
    let (_, sent) = accept(&queue, "old@example.com").await;
    let (_, failed) = accept(&queue, "permfail-old@example.com").await;
    wait_for(&queue, &sent.message_id, State::Sent).await;
    wait_for(&queue, &failed.message_id, State::Failed).await;
    workers.shutdown().await;
    let (_, waiting) = accept(&queue, "waiting@example.com").await;
    psql_one(
        &url,
        "UPDATE cmsi_mail_message SET updated_at = now() - interval '31 days', created_at = now() - interval '31 days'",
    );

    let done = queue.housekeep().await.unwrap();
    assert_eq!(done.purged, 2);
    assert_eq!(
        queue.status("monitor", &sent.message_id).await.unwrap(),
        None
    );
    assert_eq!(
        queue.status("monitor", &failed.message_id).await.unwrap(),
        None
    );
    let stats = queue.stats().await.unwrap();
    assert_eq!(
        (stats.queued, stats.due, stats.sent, stats.failed),
        (1, 1, 0, 0)
    );
    assert!(
        stats.oldest_queued_seconds.unwrap() > 30.0 * 86_400.0,
        "{stats:?}"
    );
    assert!(
        queue
            .status("monitor", &waiting.message_id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_40_mb_message_goes_through() {
    let server = SmtpServer::start(SmtpOptions::default());
    let (queue, _) = queue().await;
    // 28 MB of attachment: about 38 MB once base64-encoded, near SES's 40 MB.
    let content = encodify::base64::STANDARD.encode(vec![0x5a_u8; 28_000_000]);
    let (envelope, composed) = envelope_and_bytes(json!({
        "receiver": "big@example.com",
        "title": "大附件",
        "content": "see attached",
        "attachments": [{"filename": "data.bin", "content": content}],
    }));
    drop(content);
    assert!(
        composed.bytes.len() > 38_000_000,
        "{}",
        composed.bytes.len()
    );
    queue
        .accept("monitor", None, &envelope, &composed, &data(&composed))
        .await
        .unwrap();
    let workers = queue.start_workers(smtp(&server));
    let sent = wait_for(&queue, &composed.message_id, State::Sent).await;
    workers.shutdown().await;
    assert_eq!(sent.size, composed.bytes.len() as u64);
    let stored = server.messages();
    assert_eq!(stored.len(), 1);
    assert_delivered(&stored[0].bytes, &composed.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wake_on_notifications_without_polling() {
    let server = SmtpServer::start(SmtpOptions::default());
    let url = PostgresServer::shared().create_database();
    let mut settings = settings(url);
    // Polling alone would find nothing for ten minutes.
    settings.poll_seconds = Some(600.0);
    let queue = Queue::connect(&settings).await.unwrap();
    let workers = queue.start_workers(smtp(&server));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, composed) = accept(&queue, "woken@example.com").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while queue
        .status("monitor", &composed.message_id)
        .await
        .unwrap()
        .unwrap()
        .state
        != State::Sent
    {
        assert!(Instant::now() < deadline, "no worker woke");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_of_a_worker_whose_lease_ran_out_is_taken_over() {
    let server = SmtpServer::start(SmtpOptions::default());
    let (queue, url) = queue().await;
    let (_, composed) = accept(&queue, "orphan@example.com").await;
    // As a worker that died leaves it: claimed, its lease over.
    psql_one(
        &url,
        "UPDATE cmsi_mail_message SET state = 'sending', attempts = 1, lease = 7, \
         locked_by = 'dead:1/1', locked_until = now() - interval '1 second', \
         next_attempt_at = now() - interval '1 second'",
    );
    let workers = queue.start_workers(smtp(&server));
    let sent = wait_for(&queue, &composed.message_id, State::Sent).await;
    workers.shutdown().await;
    assert_eq!(sent.attempts, 2);
    assert_ne!(sent.worker.as_deref(), Some("dead:1/1"));
    assert_eq!(message_ids(&server), [composed.message_id]);
}

#[test]
fn the_example_configuration_and_the_docs_show_every_queue_key() {
    let root = cmsi_mail_testkit::workspace_root();
    let example = std::fs::read_to_string(root.join("examples/cmsi-mail.toml")).unwrap();
    let table: Vec<&str> = example
        .lines()
        .skip_while(|line| *line != "# [queue]")
        .skip(1)
        .map(|line| line.strip_prefix("# ").unwrap_or(line))
        .collect();
    // Unknown keys are refused, so a misspelt example fails here.
    let settings: QueueSettings = toml::from_str(&table.join("\n")).unwrap();
    let debug = format!("{settings:?}");
    assert!(
        !debug.contains("None"),
        "a key is missing from the example: {debug}"
    );
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    for line in table {
        let key = line.split('=').next().unwrap().trim();
        assert!(
            docs.contains(&format!("| `{key}` |")),
            "docs/configuration.md lacks {key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_while_its_worker_delivers() {
    let server = SmtpServer::start(SmtpOptions::default());
    let url = PostgresServer::shared().create_database();
    let mut settings = settings(url);
    // The server stalls 2 s; the lease is 1 s: only renewals keep the second
    // worker from taking the message over.
    settings.lease_seconds = Some(1.0);
    settings.workers = Some(2);
    let queue = Queue::connect(&settings).await.unwrap();
    let workers = queue.start_workers(smtp(&server));
    let (_, composed) = accept(&queue, "stall-long@example.com").await;
    let sent = wait_for(&queue, &composed.message_id, State::Sent).await;
    workers.shutdown().await;
    assert_eq!(sent.attempts, 1);
    assert_eq!(server.count("stall"), 1, "no second worker started it");
    assert_eq!(message_ids(&server), [composed.message_id]);
}
