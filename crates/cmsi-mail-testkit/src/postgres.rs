//! A real PostgreSQL for the queue's tests, started by the test itself in a
//! temporary directory on a free port of 127.0.0.1 (never a server that happens
//! to run on the machine).
//!
//! [`PostgresServer::shared`] starts one cluster per test binary and each test
//! takes a fresh database from it with [`PostgresServer::create_database`];
//! a test that stops the server takes one of its own with
//! [`PostgresServer::start`]. A watchdog child stops the cluster and removes
//! its directory when the server is dropped or the test process ends, however
//! it ends: it waits for its stdin, which only this process holds, to close.
//!
//! `initdb` refuses to run as root: as root every server command runs as the
//! `postgres` user through `runuser`.

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::servers::free_port;

/// What to run when the server binaries are missing.
const INSTALL: &str = "apt-get install -y postgresql";

/// Stops the cluster and removes its directory once stdin closes. Signals
/// are ignored so that a Ctrl-C of the test run still cleans up.
const WATCHDOG: &str = r#"trap '' INT TERM HUP PIPE
cat >/dev/null
if [ "$3" = runuser ]; then
  runuser -u postgres -- "$2" -D "$1/data" -m immediate -s stop >/dev/null 2>&1
else
  "$2" -D "$1/data" -m immediate -s stop >/dev/null 2>&1
fi
rm -rf "$1""#;

/// A PostgreSQL cluster of the test's own.
pub struct PostgresServer {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// Its port on 127.0.0.1.
    pub port: u16,
    databases: AtomicU32,
    watchdog: Option<(Child, ChildStdin)>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("dir", &self.dir)
            .field("port", &self.port)
            .finish()
    }
}

impl PostgresServer {
    /// The cluster of this test binary, started on first use and stopped when
    /// the process exits.
    pub fn shared() -> &'static PostgresServer {
        static SHARED: OnceLock<PostgresServer> = OnceLock::new();
        SHARED.get_or_init(PostgresServer::start)
    }

    /// A new cluster, stopped and removed when dropped.
    pub fn start() -> PostgresServer {
        let bin = server_bindir();
        let as_postgres = crate::fs::is_root();
        // The postgres user must reach the directory, whatever TMPDIR says; a
        // short path also keeps the socket's path within its length limit.
        let parent = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("cmsi-pg-")
            .tempdir_in(parent)
            .expect("tempdir")
            .keep();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:", &dir.display().to_string()])
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "cannot give {} to the postgres user (is there one? `{INSTALL}` creates it)",
                dir.display()
            );
        }
        let watchdog = spawn_watchdog(&dir, &bin, as_postgres);
        let mut server = PostgresServer {
            dir,
            bin,
            as_postgres,
            port: 0,
            databases: AtomicU32::new(0),
            watchdog: Some(watchdog),
        };
        let data = server.data();
        server.run_checked(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        // A port can be taken between choosing and binding: try a few.
        for _ in 0..5 {
            server.port = free_port();
            if server.pg_ctl_start() {
                return server;
            }
        }
        panic!("PostgreSQL did not start; its log:\n{}", server.log());
    }

    /// A new, empty database; its URL.
    pub fn create_database(&self) -> String {
        let name = format!(
            "test_{}",
            self.databases.fetch_add(1, Ordering::Relaxed) + 1
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` in `database` with `psql` and gives its output: unaligned,
    /// tuples only, one row a line, columns separated by `|`. Panics when it fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            output.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8 from psql")
    }

    /// Stops the server (fast shutdown: sessions are ended). The data stays.
    pub fn stop(&self) {
        let data = self.data();
        self.run_checked("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-s", "stop"]);
    }

    /// Starts a stopped server again on the same port.
    pub fn restart(&self) {
        assert!(
            self.pg_ctl_start(),
            "PostgreSQL did not start again on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn pg_ctl_start(&self) -> bool {
        // fsync off: the tests stop the server only cleanly, and a test run
        // must not wait on the disk.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let data = self.data();
        let log = self.dir.join("log").display().to_string();
        self.command("pg_ctl")
            .args(["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60"])
            .args(["-s", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        // The postgres user may not be able to enter the test's directory.
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }

    fn run_checked(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.watchdog.take() {
            drop(stdin);
            let _ = child.wait();
        }
    }
}

fn spawn_watchdog(dir: &Path, bin: &Path, as_postgres: bool) -> (Child, ChildStdin) {
    let mut child = Command::new("sh")
        .args(["-c", WATCHDOG, "pg-watchdog"])
        .arg(dir)
        .arg(bin.join("pg_ctl"))
        .arg(if as_postgres { "runuser" } else { "direct" })
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh");
    let stdin = child.stdin.take().expect("watchdog stdin");
    (child, stdin)
}

/// The directory of `initdb`, `pg_ctl` and `psql`: `pg_config --bindir`, else
/// wherever `initdb` is on PATH, else Debian's newest `/usr/lib/postgresql/N/bin`.
fn server_bindir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let from_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    debian.sort();
    from_pg_config
        .into_iter()
        .chain(from_path)
        .chain(debian.into_iter().rev().map(|(_, bin)| bin))
        .find(|dir| {
            ["initdb", "pg_ctl", "psql"]
                .iter()
                .all(|name| dir.join(name).is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed: \
                 run `{INSTALL}` (scripts/test-env does it on Debian when run as root)"
            )
        })
}
