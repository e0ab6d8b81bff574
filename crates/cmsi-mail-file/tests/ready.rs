//! `Transport::ready` of the file transport: a directory that takes files.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use cmsi_mail::{Transport, TransportErrorKind};
use cmsi_mail_file::FileTransport;

#[tokio::test]
async fn ready_when_the_directory_takes_a_file_and_none_is_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    FileTransport::new(dir.path()).ready().await.unwrap();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn not_ready_without_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    for missing in [dir.path().join("gone"), {
        // A file where the directory should be.
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        file
    }] {
        let error = FileTransport::new(&missing).ready().await.unwrap_err();
        assert_eq!(error.kind(), TransportErrorKind::Io, "{error}");
        assert!(error.message().contains("cannot write into"), "{error}");
    }
}
