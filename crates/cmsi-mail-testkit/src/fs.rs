//! Directories that refuse writes, for testing what a transport leaves behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .status()
        .map(|status| status.success())
        .unwrap_or(false)
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|output| output.stdout.trim_ascii() == b"0")
        .unwrap_or(false)
}

/// A directory nobody can create files in, not even root (root ignores mode
/// bits, so for root the directory is made immutable with `chattr +i`).
/// Writable again when dropped.
pub struct ReadOnlyDir {
    dir: tempfile::TempDir,
    immutable: bool,
}

impl ReadOnlyDir {
    /// Creates the directory inside `base`, which must be on a file system
    /// that knows `chattr +i` (ext4, xfs, btrfs; not tmpfs): pass
    /// `env!("CARGO_TARGET_TMPDIR")`, which Cargo makes wherever its output goes.
    pub fn new_in(base: &Path) -> Self {
        let dir = tempfile::tempdir_in(base).expect("tempdir");
        let path = dir.path().to_str().expect("utf-8 path").to_owned();
        let immutable = is_root();
        let locked = if immutable {
            run("chattr", &["+i", &path])
        } else {
            run("chmod", &["555", &path])
        };
        assert!(
            locked,
            "cannot make {path} read-only (chattr +i / chmod 555): is it on tmpfs?"
        );
        ReadOnlyDir { dir, immutable }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let path = self.dir.path().to_string_lossy().into_owned();
        if self.immutable {
            run("chattr", &["-i", &path]);
        } else {
            run("chmod", &["755", &path]);
        }
    }
}

/// A directory on a tiny tmpfs, to see what happens when the disk is full.
/// Needs root (to mount); `None` otherwise.
pub struct FullDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl FullDisk {
    /// A tmpfs of `kib` KiB, or `None` when this process may not mount.
    pub fn new(kib: usize) -> Option<Self> {
        if !is_root() {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().to_path_buf();
        let target = mount.to_str().expect("utf-8 path");
        let size = format!("size={kib}k");
        if !run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", target]) {
            return None;
        }
        Some(FullDisk { mount, _dir: dir })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.mount
    }
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        run("umount", &[&self.mount.to_string_lossy()]);
    }
}

/// The names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}
