//! Golden files: requests composed in deterministic mode must give exactly the
//! bytes stored beside them. After an intended change of output, run with
//! `CMSI_MAIL_BLESS=1` to rewrite the `.eml` files, and read the diff.
// Test code throughout: clippy.toml allows unwrap, expect, panic and indexing here.
#![cfg(test)]

use std::path::{Path, PathBuf};

use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};
use cmsi_mail_testkit::oracle::{assert_wire_format, python_email_clean};

fn inputs() -> Vec<PathBuf> {
    let root = cmsi_mail_testkit::workspace_root();
    let mut inputs = vec![
        root.join("examples/seed.json"),
        root.join("examples/send_mail.json"),
    ];
    let mut own: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    own.sort();
    inputs.extend(own);
    inputs
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn compose(input: &Path) -> Vec<u8> {
    let root = cmsi_mail_testkit::workspace_root();
    let users = std::fs::read_to_string(root.join("examples/users.toml")).unwrap();
    let directory = StaticDirectory::from_toml(&users).unwrap();
    let json = std::fs::read(input).unwrap();
    let request = SendMailRequest::from_json(&json).unwrap();
    let validated = Validator::new(Mailbox::parse("cmsi-mail@localhost").unwrap(), &directory)
        .validate(request)
        .unwrap();
    validated
        .message
        .compose(&ComposeOptions::deterministic(42, 1_764_374_400))
        .bytes
}

#[test]
fn composed_bytes_match_the_golden_files() {
    let bless = std::env::var_os("CMSI_MAIL_BLESS").is_some();
    let mut mismatches = Vec::new();
    for input in inputs() {
        let name = input.file_stem().unwrap().to_string_lossy().into_owned();
        let golden = golden_dir().join(format!("{name}.eml"));
        let bytes = compose(&input);
        assert_wire_format(&bytes);
        python_email_clean(&bytes);
        if bless {
            std::fs::write(&golden, &bytes).unwrap();
            continue;
        }
        let expected = std::fs::read(&golden).unwrap_or_else(|_| {
            panic!(
                "{} is missing: run with CMSI_MAIL_BLESS=1",
                golden.display()
            )
        });
        if expected != bytes {
            mismatches.push(name);
        }
    }
    assert!(
        mismatches.is_empty(),
        "output differs from the golden files for {mismatches:?}; if the change is \
         intended, run with CMSI_MAIL_BLESS=1 and review the diff"
    );
}
