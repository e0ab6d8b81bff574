#![doc = include_str!("../README.md")]

mod group;

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use cmsi_mail::{Composed, Envelope, Receipt, Transport, TransportError, TransportErrorKind};
use serde::Serialize;

use self::group::GroupSync;

/// Makes the renames in a directory durable.
type DirSync = Arc<dyn Fn(&Path) -> io::Result<()> + Send + Sync>;

/// Writes messages into a directory.
///
/// Clones share one group of directory syncs (see the crate documentation).
#[derive(Clone)]
pub struct FileTransport {
    dir: PathBuf,
    group: Arc<GroupSync>,
    sync_dir: DirSync,
}

impl std::fmt::Debug for FileTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTransport")
            .field("dir", &self.dir)
            .field("directory_syncs", &self.group.syncs())
            .finish_non_exhaustive()
    }
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
        FileTransport {
            dir: dir.into(),
            group: Arc::new(GroupSync::default()),
            sync_dir: Arc::new(sync_dir),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many times the directory has been synced so far: fewer than the
    /// messages written when deliveries run concurrently.
    pub fn directory_syncs(&self) -> u64 {
        self.group.syncs()
    }

    /// Replaces the directory sync, for tests that make it fail or slow.
    #[cfg(test)]
    fn with_dir_sync(
        mut self,
        sync: impl Fn(&Path) -> io::Result<()> + Send + Sync + 'static,
    ) -> Self {
        self.sync_dir = Arc::new(sync);
        self
    }

    /// Writes the message and its envelope, durably; blocks on the disk.
    fn write(&self, envelope: &Envelope, message: &Composed) -> Result<String, TransportError> {
        let dir = self.dir.as_path();
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
            // Both files are written and synced before either is renamed, and
            // one directory sync covers both renames (and other deliveries').
            let (json_file, eml_file) =
                temporaries(dir, &sidecar, &message.bytes).map_err(|error| io_error(dir, error))?;
            match json_file.persist_noclobber(&json) {
                Err(error) if error.error.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(error) => return Err(io_error(dir, error.error)),
                Ok(_) => {}
            }
            if let Err(error) = eml_file.persist_noclobber(&eml) {
                let _ = std::fs::remove_file(&json);
                if error.error.kind() == io::ErrorKind::AlreadyExists {
                    continue;
                }
                return Err(io_error(dir, error.error));
            }
            if let Err(error) = self.group.join(|| (self.sync_dir)(dir)) {
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

/// Writes the envelope and the message to temporary files in `dir` and syncs
/// both; they are removed on drop unless persisted.
fn temporaries(
    dir: &Path,
    envelope: &[u8],
    message: &[u8],
) -> io::Result<(tempfile::NamedTempFile, tempfile::NamedTempFile)> {
    let create = || {
        tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".part")
            .tempfile_in(dir)
    };
    let mut json = create()?;
    json.write_all(envelope)?;
    let mut eml = create()?;
    eml.write_all(message)?;
    // Both files go to disk before the first sync waits, so that one journal
    // commit can carry both (ext4 otherwise commits once per file).
    start_writeback(json.as_file());
    start_writeback(eml.as_file());
    json.as_file().sync_all()?;
    eml.as_file().sync_all()?;
    Ok((json, eml))
}

/// Starts writing `file`'s data to disk without waiting: on Linux,
/// `POSIX_FADV_DONTNEED` submits the dirty pages for writing (as
/// `sync_file_range` would). Advice only: a failure changes nothing.
fn start_writeback(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
    #[cfg(not(target_os = "linux"))]
    let _ = file;
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
        // The runtime must not wait on the disk. On a multi-threaded runtime
        // this worker hands its other tasks to another thread and writes the
        // message where it lies; a current-thread runtime cannot do that, and
        // the blocking pool needs owned data: a copy of the message.
        let name = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.write(envelope, message))?
            }
            _ => {
                let transport = self.clone();
                let envelope = envelope.clone();
                let message = message.clone();
                tokio::task::spawn_blocking(move || transport.write(&envelope, &message))
                    .await
                    .map_err(|error| {
                        TransportError::new(
                            TransportErrorKind::Io,
                            format!("file writer stopped: {error}"),
                        )
                    })??
            }
        };
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};

    use super::*;

    fn sample(n: usize) -> (Envelope, Composed) {
        let json = format!(
            r#"{{"receiver": "to{n}@example.com", "title": "t{n}", "content": "<p>hi</p>"}}"#
        );
        let request = SendMailRequest::from_json(json.as_bytes()).unwrap();
        let directory = StaticDirectory::new();
        let sender = Mailbox::parse("noreply@example.com").unwrap();
        let message = Validator::new(sender, &directory)
            .validate(request)
            .unwrap()
            .message;
        (message.envelope(), message.compose(&ComposeOptions::new()))
    }

    fn until(done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends `n` messages at once; their results in order.
    async fn send_together(
        transport: &FileTransport,
        n: usize,
    ) -> Vec<Result<Receipt, TransportError>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let transport = transport.clone();
                tokio::spawn(async move {
                    let (envelope, composed) = sample(i);
                    transport.send(&envelope, &composed).await
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sends_share_directory_syncs() {
        let dir = tempfile::tempdir().unwrap();
        let transport = FileTransport::new(dir.path());
        let group = Arc::clone(&transport.group);
        // The first sync lasts until the seven other messages are renamed and
        // wait: they then share the second.
        let transport = transport.with_dir_sync(move |dir| {
            if group.syncs() == 0 {
                until(|| group.waiting() >= 7);
            }
            sync_dir(dir)
        });
        let results = send_together(&transport, 8).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(
            transport.directory_syncs(),
            2,
            "8 messages, 2 directory syncs"
        );
        assert_eq!(names(dir.path()).len(), 16);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_directory_sync_fails_its_whole_group_and_leaves_no_files() {
        let dir = tempfile::tempdir().unwrap();
        let transport = FileTransport::new(dir.path());
        let group = Arc::clone(&transport.group);
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        // Round 1 (one message) waits for round 2 (three messages) to form,
        // and succeeds; round 2's sync fails.
        let transport = transport.with_dir_sync(move |dir| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                until(|| group.waiting() >= 3);
                sync_dir(dir)
            } else {
                Err(io::Error::other("injected directory sync failure"))
            }
        });
        let results = send_together(&transport, 4).await;
        let sent: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!((sent.len(), failed.len()), (1, 3), "{results:?}");
        for error in &failed {
            assert_eq!(error.kind(), TransportErrorKind::Io);
            assert!(error.to_string().contains("injected"), "{error}");
        }
        let stem = sent[0]
            .transport_id
            .as_deref()
            .unwrap()
            .trim_end_matches(".eml");
        assert_eq!(
            names(dir.path()),
            [format!("{stem}.eml"), format!("{stem}.json")],
            "only the message of the good round is left"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
