//! The file-drop transport on the real filesystem.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::sync::Arc;

use cmsi_mail::{ComposeOptions, Composed, Envelope, Transport, TransportErrorKind};
use cmsi_mail_file::FileTransport;
use cmsi_mail_testkit::fs::{FullDisk, ReadOnlyDir, file_names};
use cmsi_mail_testkit::message;
use cmsi_mail_testkit::oracle::{assert_wire_format, parse};
use serde_json::{Value, json};

fn sample(n: usize) -> (Envelope, Composed) {
    let message = message(json!({
        "receiver": format!("to{n}@example.com, Other <other@example.com>"),
        "cc": "cc@example.com",
        "title": format!("消息 {n}"),
        "content": "<p>hello</p>",
        "attachments": [{"filename": "报告.txt", "content": "aGVsbG8="}],
    }));
    (message.envelope(), message.compose(&ComposeOptions::new()))
}

#[tokio::test]
async fn drops_the_message_and_its_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let transport = FileTransport::new(dir.path());
    let (envelope, composed) = sample(1);
    let receipt = transport.send(&envelope, &composed).await.unwrap();

    let name = receipt.transport_id.clone().unwrap();
    assert!(name.ends_with(".eml"));
    let stem = name.trim_end_matches(".eml");
    assert_eq!(
        file_names(dir.path()),
        [format!("{stem}.eml"), format!("{stem}.json")]
    );
    let eml = std::fs::read(dir.path().join(&name)).unwrap();
    assert_eq!(eml, composed.bytes);
    assert_wire_format(&eml);
    assert_eq!(parse(&eml).subject(), Some("消息 1"));

    let sidecar: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(format!("{stem}.json"))).unwrap())
            .unwrap();
    assert_eq!(
        sidecar,
        json!({
            "message_id": composed.message_id,
            "sender": "noreply@example.com",
            "recipients": ["to1@example.com", "other@example.com", "cc@example.com"],
        })
    );
    assert_eq!(receipt.message_id, composed.message_id);
    assert_eq!(receipt.accepted, envelope.recipients());
    assert!(receipt.rejected.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_leave_complete_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let transport = Arc::new(FileTransport::new(dir.path()));
    let mut tasks = Vec::new();
    for task in 0..8 {
        let transport = Arc::clone(&transport);
        tasks.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for n in 0..200 {
                let (envelope, composed) = sample(task * 1000 + n);
                let receipt = transport.send(&envelope, &composed).await.unwrap();
                sent.push((receipt.transport_id.unwrap(), composed.bytes));
            }
            sent
        }));
    }
    let mut sent = Vec::new();
    for task in tasks {
        sent.extend(task.await.unwrap());
    }
    assert_eq!(sent.len(), 1600);

    let names = file_names(dir.path());
    let eml: Vec<_> = names.iter().filter(|n| n.ends_with(".eml")).collect();
    let json: Vec<_> = names.iter().filter(|n| n.ends_with(".json")).collect();
    assert_eq!(eml.len(), 1600, "every message is a file");
    assert_eq!(json.len(), 1600, "every message has its envelope");
    assert_eq!(names.len(), 3200, "no temporary files are left: {names:?}");
    // Deliveries that renamed their files while a directory sync ran share
    // the next one.
    let syncs = transport.directory_syncs();
    assert!(
        (1..1600).contains(&syncs),
        "{syncs} directory syncs for 1600 concurrent messages"
    );
    for (name, bytes) in &sent {
        assert_eq!(
            &std::fs::read(dir.path().join(name)).unwrap(),
            bytes,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_read_only_directory_is_an_io_error_and_leaves_nothing() {
    let dir = ReadOnlyDir::new_in(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")));
    let transport = FileTransport::new(dir.path());
    let (envelope, composed) = sample(2);
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Io);
    assert!(
        error
            .to_string()
            .contains(&dir.path().display().to_string()),
        "{error}"
    );
    assert!(file_names(dir.path()).is_empty());
}

#[tokio::test]
async fn a_missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let transport = FileTransport::new(dir.path().join("missing"));
    let (envelope, composed) = sample(3);
    let error = transport.send(&envelope, &composed).await.unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Io);
    assert!(!dir.path().join("missing").exists());
}

#[tokio::test]
async fn a_full_disk_is_an_io_error_and_leaves_no_partial_file() {
    let Some(disk) = FullDisk::new(64) else {
        eprintln!("not root: cannot mount a small tmpfs; full-disk case not run");
        return;
    };
    let transport = FileTransport::new(disk.path());
    // 200 KiB of attachment cannot fit in 64 KiB.
    let big = encodify::base64::STANDARD.encode(vec![7u8; 200 * 1024]);
    let message = message(json!({
        "receiver": "a@example.com", "title": "big", "content": "x",
        "attachments": [{"filename": "big.bin", "content": big}],
    }));
    let composed = message.compose(&ComposeOptions::new());
    let error = transport
        .send(&message.envelope(), &composed)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), TransportErrorKind::Io);
    assert!(
        file_names(disk.path()).is_empty(),
        "nothing left behind: {:?}",
        file_names(disk.path())
    );
    // A small message still fits afterwards: the space was given back.
    let (envelope, composed) = sample(4);
    transport.send(&envelope, &composed).await.unwrap();
    assert_eq!(file_names(disk.path()).len(), 2);
}
