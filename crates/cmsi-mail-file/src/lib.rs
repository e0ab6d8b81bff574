#![doc = include_str!("../README.md")]

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cmsi_mail::{Composed, Envelope, Receipt, Transport, TransportError, TransportErrorKind};
use serde::Serialize;

/// Writes messages into a directory.
#[derive(Debug, Clone)]
pub struct FileTransport {
    dir: PathBuf,
}

/// The `.json` file written beside each `.eml`.
#[derive(Debug, Serialize)]
struct Sidecar<'a> {
    message_id: &'a str,
    sender: &'a str,
    recipients: &'a [String],
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

impl FileTransport {
    /// A transport writing into `dir`, which must exist.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileTransport { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(
        dir: &Path,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<String, TransportError> {
        let sidecar = serde_json::to_vec_pretty(&Sidecar {
            message_id: &message.message_id,
            sender: envelope.sender(),
            recipients: envelope.recipients(),
        })
        .map_err(|error| io_error(dir, io::Error::other(error)))?;

        // A name sorts by time; the process id, a counter and a random part keep
        // it unique across processes. A clash still cannot overwrite: the rename
        // refuses, and the next name is tried.
        for _ in 0..16 {
            let stem = unique_stem();
            let json = dir.join(format!("{stem}.json"));
            let eml = dir.join(format!("{stem}.eml"));
            match place(dir, &json, &sidecar) {
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(io_error(dir, error)),
                Ok(()) => {}
            }
            if let Err(error) = place(dir, &eml, &message.bytes) {
                let _ = std::fs::remove_file(&json);
                if error.kind() == io::ErrorKind::AlreadyExists {
                    continue;
                }
                return Err(io_error(dir, error));
            }
            if let Err(error) = sync_dir(dir) {
                // Not durable, so not delivered: take both files back rather
                // than report a failure for a message a retry would duplicate.
                let _ = std::fs::remove_file(&eml);
                let _ = std::fs::remove_file(&json);
                return Err(io_error(dir, error));
            }
            return Ok(format!("{stem}.eml"));
        }
        Err(TransportError::new(
            TransportErrorKind::Io,
            format!("no free file name in {}", dir.display()),
        ))
    }
}

fn unique_stem() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}{:06}-{}-{}-{:08x}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..),
    )
}

/// Writes `bytes` to a temporary file in `dir`, syncs it, and moves it to
/// `path` unless something is already there. On any failure the temporary file
/// is removed.
fn place(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = tempfile::Builder::new()
        .prefix(".tmp-")
        .suffix(".part")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist_noclobber(path).map_err(|error| error.error)?;
    Ok(())
}

/// Makes the renames durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

fn io_error(dir: &Path, error: io::Error) -> TransportError {
    TransportError::new(
        TransportErrorKind::Io,
        format!("cannot write into {}: {error}", dir.display()),
    )
    .with_source(error)
}

#[async_trait]
impl Transport for FileTransport {
    async fn send(
        &self,
        envelope: &Envelope,
        message: &Composed,
    ) -> Result<Receipt, TransportError> {
        let dir = self.dir.clone();
        let envelope_owned = envelope.clone();
        // The runtime must not wait on the disk: write on the blocking pool,
        // which needs owned data (one copy of the message, cheap beside fsync).
        let message_owned = message.clone();
        let name = tokio::task::spawn_blocking(move || {
            FileTransport::write(&dir, &envelope_owned, &message_owned)
        })
        .await
        .map_err(|error| {
            TransportError::new(
                TransportErrorKind::Io,
                format!("file writer stopped: {error}"),
            )
        })??;
        Ok(Receipt {
            message_id: message.message_id.clone(),
            accepted: envelope.recipients().to_vec(),
            rejected: Vec::new(),
            transport_id: Some(name),
        })
    }

    /// Ready when a file can be made in the directory (and is removed again).
    async fn ready(&self) -> Result<(), TransportError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || writable(&dir))
            .await
            .map_err(|error| {
                TransportError::new(
                    TransportErrorKind::Io,
                    format!("file check stopped: {error}"),
                )
            })?
    }
}

/// Whether `dir` takes a new file: made as a `.tmp-*.part` file, which readers
/// of the outbox skip, and removed on drop.
fn writable(dir: &Path) -> Result<(), TransportError> {
    tempfile::Builder::new()
        .prefix(".tmp-ready-")
        .suffix(".part")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|error| io_error(dir, error))
}
