//! Helpers shared by the tests of every cmsi-mail crate: oracles that read our
//! output with parsers we did not write, and real servers on 127.0.0.1.
//!
//! Test code: a helper that cannot do its job panics with a message that says
//! what to install or run. Its types are handles to servers and directories,
//! not values worth printing.
#![allow(
    missing_debug_implementations,
    clippy::panic,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::indexing_slicing
)]

pub mod browser;
pub mod channel;
#[cfg(feature = "dkim")]
pub mod dkim;
pub mod fs;
pub mod fuzz;
pub mod metrics;
pub mod oauth;
pub mod oracle;
pub mod postgres;
pub mod process;
pub mod servers;

use std::path::PathBuf;

/// The workspace root (where `Cargo.toml`, `.venv` and `scripts/` are).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// The Python of the test venv (`.venv`, made by `scripts/test`), which has
/// aiosmtpd, moto and the BlueKing SDK; `CMSI_MAIL_TEST_PYTHON` overrides it.
pub fn venv_python() -> PathBuf {
    if let Some(python) = std::env::var_os("CMSI_MAIL_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let python = workspace_root().join(".venv/bin/python");
    if !python.exists() {
        panic!(
            "{} is missing: run `scripts/test`, which creates the test venv \
             (aiosmtpd, moto, bkapi-component-open) before running cargo test",
            python.display()
        );
    }
    python
}

/// A Python for scripts that need only the standard library: the venv's when
/// it exists, else `python3`.
pub fn stdlib_python() -> PathBuf {
    if let Some(python) = std::env::var_os("CMSI_MAIL_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let python = workspace_root().join(".venv/bin/python");
    if python.exists() {
        python
    } else {
        PathBuf::from("python3")
    }
}

/// A path under the testkit's `python/` folder.
pub fn python_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(name)
}

/// A request from `examples/`, e.g. `example("send_mail.json")`.
pub fn example(name: &str) -> serde_json::Value {
    let path = workspace_root().join("examples").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Validates `request` as the tests' standard mailer would: sender
/// `noreply@example.com`, users from `examples/users.toml`. Panics when invalid.
pub fn message(request: serde_json::Value) -> cmsi_mail::Message<'static> {
    let users = std::fs::read_to_string(workspace_root().join("examples/users.toml"))
        .expect("examples/users.toml");
    let directory = cmsi_mail::StaticDirectory::from_toml(&users).expect("users");
    let request = cmsi_mail::SendMailRequest::from_value(request).expect("a request object");
    let sender = cmsi_mail::Mailbox::parse("noreply@example.com").expect("sender");
    cmsi_mail::Validator::new(sender, &directory)
        .validate(request)
        .unwrap_or_else(|error| panic!("invalid request: {error}"))
        .message
}

/// [`message`], composed with fresh options: its envelope and bytes.
pub fn envelope_and_bytes(
    request: serde_json::Value,
) -> (cmsi_mail::Envelope, cmsi_mail::Composed) {
    let message = message(request);
    (
        message.envelope(),
        message.compose(&cmsi_mail::ComposeOptions::new()),
    )
}
