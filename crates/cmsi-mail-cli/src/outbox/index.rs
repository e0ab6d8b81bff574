//! The outbox directory as a list of messages, newest first, with a cache of
//! what each file says, so that a page of a 10 000-message outbox costs one
//! directory read and a few parses.
//!
//! The file transport names each message `STEM.eml` (its envelope `STEM.json`)
//! with a stem that starts with the time, so the names alone give the order:
//! listing reads the directory, never the files. A page parses only the
//! messages it shows; a search reads only the headers (the first
//! [`HEADER_PREFIX`] bytes) of every file. Each result is cached by file name,
//! size and modification time, so each file is read once for as long as it is
//! unchanged.

use std::collections::HashMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_parser::{Address, Message, MessageParser, MimeHeaders as _};
use serde::Serialize;

/// Messages on one page of the list.
pub(crate) const PAGE_SIZE: usize = 50;

/// How much of a file a search reads for its headers. Ours are a few hundred
/// bytes; a longer header block is cut, never an error.
const HEADER_PREFIX: u64 = 64 * 1024;

/// How long after its last change the directory counts as settled: file times
/// are coarse (a few ms), so two changes within one tick look like one, and the
/// version stays "changing" until no such tick can be missed.
const SETTLE: Duration = Duration::from_secs(2);

/// The extension of a message file.
const EML: &str = ".eml";

/// An outbox directory and what is known about its files.
#[derive(Debug)]
pub(crate) struct Outbox {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
}

/// The size and modification time a cached entry was made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    modified: Option<SystemTime>,
}

#[derive(Debug)]
struct Cached {
    stamp: Stamp,
    summary: Arc<Summary>,
}

/// One mailbox of an address header.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Mailbox {
    /// The display name, decoded.
    pub(crate) name: Option<String>,
    /// The address.
    pub(crate) address: Option<String>,
}

/// One row of the list.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// The file stem: what URLs name the message by.
    pub(crate) id: String,
    /// Seconds since the epoch: the Date header, else the file's time.
    pub(crate) date: Option<i64>,
    pub(crate) from: Vec<Mailbox>,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) cc: Vec<Mailbox>,
    /// The decoded subject.
    pub(crate) subject: String,
    /// File size in bytes.
    pub(crate) size: u64,
    /// Attachments a reader would download (inline images not counted); `None`
    /// while only the headers were read.
    pub(crate) attachments: Option<usize>,
    /// Why the file is not a complete message, when it is not.
    pub(crate) unreadable: Option<String>,
    /// Lower-case subject and addresses, for the search box.
    #[serde(skip)]
    haystack: String,
}

/// One page of the list.
#[derive(Debug, Serialize)]
pub(crate) struct Page {
    /// Messages matching the search (all of them without one).
    pub(crate) total: usize,
    /// 1-based page number, clamped to the pages there are.
    pub(crate) page: usize,
    pub(crate) pages: usize,
    pub(crate) page_size: usize,
    pub(crate) items: Vec<Arc<Summary>>,
    /// Files being written (`.tmp-*.part`), not shown.
    pub(crate) in_progress: usize,
    /// Whether the directory does not exist (yet).
    pub(crate) missing: bool,
    /// What `GET api/version` answered when this page was made.
    pub(crate) version: String,
}

/// The names in the directory, newest first.
struct Listing {
    names: Vec<String>,
    in_progress: usize,
    missing: bool,
}

impl Outbox {
    /// The outbox in `dir`, which need not exist yet.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Outbox {
            dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Changes whenever the directory's content may have: its modification
    /// time, or a fresh value while it changed too recently to be sure.
    pub(crate) fn version(&self) -> String {
        let Ok(modified) = std::fs::metadata(&self.dir).and_then(|meta| meta.modified()) else {
            return "missing".to_owned();
        };
        let nanos = |time: SystemTime| {
            time.duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        };
        let now = SystemTime::now();
        if now.duration_since(modified).unwrap_or_default() < SETTLE {
            format!("{}-changing-{}", nanos(modified), nanos(now))
        } else {
            nanos(modified).to_string()
        }
    }

    /// The page `page` (1-based) of the messages whose subject or addresses
    /// contain `query` (case-insensitive), newest first.
    pub(crate) fn page(&self, query: &str, page: usize) -> Page {
        let version = self.version();
        let listing = self.listing();
        let query = query.trim().to_lowercase();
        let matching: Vec<&String> = if query.is_empty() {
            listing.names.iter().collect()
        } else {
            listing
                .names
                .iter()
                .filter(|name| self.headers(name).haystack.contains(&query))
                .collect()
        };
        let total = matching.len();
        let pages = total.div_ceil(PAGE_SIZE).max(1);
        let page = page.clamp(1, pages);
        let items = matching
            .into_iter()
            .skip((page - 1) * PAGE_SIZE)
            .take(PAGE_SIZE)
            .map(|name| self.summary(name))
            .collect();
        self.forget_others(&listing.names);
        Page {
            total,
            page,
            pages,
            page_size: PAGE_SIZE,
            items,
            in_progress: listing.in_progress,
            missing: listing.missing,
            version,
        }
    }

    /// The file of message `id`, when `id` names an `.eml` file that is in the
    /// directory: a plain name, no path, no symbolic link.
    pub(crate) fn file(&self, id: &str) -> Option<PathBuf> {
        let name = format!("{id}{EML}");
        if !is_message_name(&name) || name.contains(['/', '\\']) {
            return None;
        }
        let path = self.dir.join(&name);
        let meta = std::fs::symlink_metadata(&path).ok()?;
        meta.is_file().then_some(path)
    }

    /// The summary of `name` from a full parse (cached).
    pub(crate) fn summary(&self, name: &str) -> Arc<Summary> {
        let path = self.dir.join(name);
        let stamp = stamp(&path);
        if let Some(summary) = self.cached(name, stamp, true) {
            return summary;
        }
        let summary = Arc::new(match std::fs::read(&path) {
            Ok(bytes) => Summary::of_message(name, &bytes, stamp),
            Err(error) => {
                Summary::unreadable(name, stamp, format!("cannot read the file: {error}"))
            }
        });
        self.store(name, stamp, &summary);
        summary
    }

    /// The summary of `name` from its headers only, unless a full one is
    /// cached.
    fn headers(&self, name: &str) -> Arc<Summary> {
        let path = self.dir.join(name);
        let stamp = stamp(&path);
        if let Some(summary) = self.cached(name, stamp, false) {
            return summary;
        }
        let mut prefix = Vec::new();
        let read = std::fs::File::open(&path)
            .and_then(|file| file.take(HEADER_PREFIX).read_to_end(&mut prefix));
        let summary = Arc::new(match read {
            Ok(_) => Summary::of_headers(name, &prefix, stamp),
            Err(error) => {
                Summary::unreadable(name, stamp, format!("cannot read the file: {error}"))
            }
        });
        self.store(name, stamp, &summary);
        summary
    }

    fn cached(&self, name: &str, stamp: Stamp, full: bool) -> Option<Arc<Summary>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let cached = cache.get(name)?;
        let usable = cached.stamp == stamp
            && stamp.modified.is_some()
            && (!full
                || cached.summary.attachments.is_some()
                || cached.summary.unreadable.is_some());
        usable.then(|| Arc::clone(&cached.summary))
    }

    fn store(&self, name: &str, stamp: Stamp, summary: &Arc<Summary>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.insert(
            name.to_owned(),
            Cached {
                stamp,
                summary: Arc::clone(summary),
            },
        );
    }

    /// Drops cached entries of files that are gone, once the cache has grown
    /// past the directory (cheap to check, rare to do).
    fn forget_others(&self, names: &[String]) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() > names.len() {
            let present: std::collections::HashSet<&str> =
                names.iter().map(String::as_str).collect();
            cache.retain(|name, _| present.contains(name.as_str()));
        }
    }

    /// The message files, newest first; files being written are counted.
    fn listing(&self) -> Listing {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(_) => {
                return Listing {
                    names: Vec::new(),
                    in_progress: 0,
                    missing: !self.dir.is_dir(),
                };
            }
        };
        let mut names = Vec::new();
        let mut in_progress = 0;
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(".tmp-") && name.ends_with(".part") {
                in_progress += 1;
            } else if is_message_name(&name) {
                names.push(name);
            }
        }
        // Stems begin with the time, so the greatest name is the newest.
        names.sort_unstable_by(|a, b| b.cmp(a));
        Listing {
            names,
            in_progress,
            missing: false,
        }
    }
}

/// `STEM.eml` with a stem that is not hidden.
fn is_message_name(name: &str) -> bool {
    name.len() > EML.len() && name.ends_with(EML) && !name.starts_with('.')
}

fn stamp(path: &Path) -> Stamp {
    match std::fs::metadata(path) {
        Ok(meta) => Stamp {
            size: meta.len(),
            modified: meta.modified().ok(),
        },
        Err(_) => Stamp {
            size: 0,
            modified: None,
        },
    }
}

/// The stem of `STEM.eml`.
fn stem(name: &str) -> &str {
    name.strip_suffix(EML).unwrap_or(name)
}

fn file_time(stamp: Stamp) -> Option<i64> {
    let since = stamp.modified?.duration_since(UNIX_EPOCH).ok()?;
    i64::try_from(since.as_secs()).ok()
}

/// The mailboxes of an address header, groups flattened.
pub(crate) fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .map(|address| {
            address
                .iter()
                .map(|addr| Mailbox {
                    name: addr.name().map(str::to_owned),
                    address: addr.address().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Why a parsed file is not a complete message, if it is not. mail-parser
/// recovers what it can and marks a part whose end it did not find (a cut file
/// ends inside a part) or whose encoding is broken.
pub(crate) fn damage(message: &Message<'_>) -> Option<String> {
    if message.parts.iter().any(|part| part.is_encoding_problem) {
        return Some(
            "the message is cut short or damaged: a part does not end where it should \
             (a truncated file?)"
                .to_owned(),
        );
    }
    None
}

/// Whether a part is shown in the body rather than offered for download: an
/// `inline` disposition, or a Content-ID without any disposition.
pub(crate) fn is_inline(part: &mail_parser::MessagePart<'_>) -> bool {
    match part.content_disposition() {
        Some(disposition) => disposition.is_inline(),
        None => part.content_id().is_some(),
    }
}

impl Summary {
    fn unreadable(name: &str, stamp: Stamp, reason: String) -> Summary {
        Summary {
            id: stem(name).to_owned(),
            date: file_time(stamp),
            from: Vec::new(),
            to: Vec::new(),
            cc: Vec::new(),
            subject: String::new(),
            size: stamp.size,
            attachments: None,
            unreadable: Some(reason),
            haystack: String::new(),
        }
    }

    fn of_message(name: &str, bytes: &[u8], stamp: Stamp) -> Summary {
        if bytes.is_empty() {
            return Summary::unreadable(name, stamp, "the file is empty".to_owned());
        }
        let Some(message) = MessageParser::new().parse(bytes) else {
            return Summary::unreadable(name, stamp, "no mail headers in this file".to_owned());
        };
        let mut summary = Summary::of_parsed(name, &message, stamp);
        summary.attachments = Some(
            message
                .attachments()
                .filter(|part| !is_inline(part))
                .count(),
        );
        summary.unreadable = damage(&message);
        summary
    }

    fn of_headers(name: &str, prefix: &[u8], stamp: Stamp) -> Summary {
        if prefix.is_empty() {
            return Summary::unreadable(name, stamp, "the file is empty".to_owned());
        }
        match MessageParser::new().parse_headers(prefix) {
            Some(message) => Summary::of_parsed(name, &message, stamp),
            None => Summary::unreadable(name, stamp, "no mail headers in this file".to_owned()),
        }
    }

    fn of_parsed(name: &str, message: &Message<'_>, stamp: Stamp) -> Summary {
        let from = mailboxes(message.from());
        let to = mailboxes(message.to());
        let cc = mailboxes(message.cc());
        let subject = message.subject().unwrap_or_default().to_owned();
        let mut haystack = subject.to_lowercase();
        for mailbox in from.iter().chain(&to).chain(&cc) {
            for part in [&mailbox.name, &mailbox.address].into_iter().flatten() {
                haystack.push('\n');
                haystack.push_str(&part.to_lowercase());
            }
        }
        Summary {
            id: stem(name).to_owned(),
            date: message
                .date()
                .map(mail_parser::DateTime::to_timestamp)
                .or_else(|| file_time(stamp)),
            from,
            to,
            cc,
            subject,
            size: stamp.size,
            attachments: None,
            unreadable: None,
            haystack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = "From: =?utf-8?b?6JOd6bK4?= <a@example.com>\r\n\
        To: b@example.com\r\nSubject: =?utf-8?b?5a2j5bqm5oql5ZGK?=\r\n\
        Date: Sat, 01 Jan 2000 00:00:00 +0000\r\n\r\nhello\r\n";

    fn outbox(files: &[(&str, &[u8])]) -> (tempfile::TempDir, Outbox) {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let outbox = Outbox::new(dir.path().to_path_buf());
        (dir, outbox)
    }

    #[test]
    fn lists_newest_first_and_skips_files_in_progress() {
        let (_dir, outbox) = outbox(&[
            ("100-a.eml", MESSAGE.as_bytes()),
            ("200-b.eml", MESSAGE.as_bytes()),
            ("200-b.json", b"{}"),
            (".tmp-x.part", b"From: half"),
            ("notes.txt", b"x"),
        ]);
        let page = outbox.page("", 1);
        let ids: Vec<&str> = page.items.iter().map(|item| item.id.as_str()).collect();
        assert_eq!(ids, ["200-b", "100-a"]);
        assert_eq!(page.in_progress, 1);
        assert_eq!(page.items[0].subject, "季度报告");
        assert_eq!(page.items[0].from[0].name.as_deref(), Some("蓝鲸"));
        assert_eq!(page.items[0].date, Some(946_684_800));
        assert_eq!(page.items[0].attachments, Some(0));
    }

    #[test]
    fn pages_and_searches() {
        let files: Vec<(String, Vec<u8>)> = (0..120)
            .map(|i| {
                let subject = if i % 3 == 0 { "alpha" } else { "beta" };
                (
                    format!("{i:04}.eml"),
                    format!("From: x@example.com\r\nSubject: {subject} {i}\r\n\r\nbody\r\n")
                        .into_bytes(),
                )
            })
            .collect();
        let borrowed: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
            .collect();
        let (_dir, outbox) = outbox(&borrowed);
        let third = outbox.page("", 3);
        assert_eq!((third.total, third.pages, third.items.len()), (120, 3, 20));
        assert_eq!(third.items[0].id, "0019");
        let alpha = outbox.page("ALPHA", 1);
        assert_eq!(alpha.total, 40);
        assert!(
            alpha
                .items
                .iter()
                .all(|item| item.subject.starts_with("alpha"))
        );
        assert_eq!(outbox.page("nothing like it", 1).total, 0);
    }

    #[test]
    fn a_changed_file_is_read_again() {
        let (dir, outbox) = outbox(&[("1.eml", MESSAGE.as_bytes())]);
        assert_eq!(outbox.page("", 1).items[0].subject, "季度报告");
        let changed = MESSAGE.replace("=?utf-8?b?5a2j5bqm5oql5ZGK?=", "changed subject");
        std::fs::write(dir.path().join("1.eml"), changed).unwrap();
        assert_eq!(outbox.page("", 1).items[0].subject, "changed subject");
    }

    #[test]
    fn broken_files_are_listed_as_unreadable() {
        let multipart = "From: a@example.com\r\nSubject: cut\r\n\
            Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
            Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x";
        let (_dir, outbox) = outbox(&[
            ("1.eml", b""),
            ("2.eml", b"\x00\x01\x02"),
            ("3.eml", multipart.as_bytes()),
            ("4.eml", MESSAGE.as_bytes()),
        ]);
        let page = outbox.page("", 1);
        let unreadable: Vec<(&str, bool)> = page
            .items
            .iter()
            .map(|item| (item.id.as_str(), item.unreadable.is_some()))
            .collect();
        assert_eq!(
            unreadable,
            [("4", false), ("3", true), ("2", true), ("1", true)]
        );
    }

    #[test]
    fn only_message_files_of_the_directory_can_be_opened() {
        let (dir, outbox) = outbox(&[("1.eml", MESSAGE.as_bytes()), ("2.json", b"{}")]);
        std::fs::write(dir.path().join("../outside.eml"), MESSAGE).ok();
        assert!(outbox.file("1").is_some());
        for id in [
            "2",
            "../outside",
            "..",
            "/etc/passwd",
            ".tmp-x",
            "",
            "1.eml",
            "a\\b",
        ] {
            assert!(outbox.file(id).is_none(), "{id:?} opened");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link.eml")).unwrap();
            assert!(outbox.file("link").is_none(), "a symbolic link opened");
        }
    }

    #[test]
    fn a_missing_directory_is_an_empty_outbox() {
        let outbox = Outbox::new(PathBuf::from("/nonexistent/cmsi-mail-outbox"));
        let page = outbox.page("", 1);
        assert!(page.missing);
        assert_eq!(page.total, 0);
        assert_eq!(outbox.version(), "missing");
    }
}
