//! Every input a fuzzer ever found, replayed through the same property checks as
//! the fuzz targets (`fuzz/regressions/TARGET/`), plus the seed corpora.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = cmsi_mail_testkit::workspace_root().join("fuzz");
    let mut count = 0;
    for dir in ["regressions", "seeds"] {
        let dir = root.join(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && !is_note(&path) {
                let data = std::fs::read(&path).unwrap_or_default();
                eprintln!("{target}: {}", path.display());
                check(&data);
                count += 1;
            }
        }
    }
    count
}

/// `README.md` and hidden files (`.keep`) are not inputs.
fn is_note(path: &Path) -> bool {
    path.file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name == "README.md" || name.starts_with('.'))
}

#[test]
fn request_inputs() {
    assert!(replay("request", cmsi_mail_testkit::fuzz::check_request) > 0);
}

#[test]
fn address_list_inputs() {
    assert!(replay("address_list", cmsi_mail_testkit::fuzz::check_address_list) > 0);
}

#[test]
fn header_inputs() {
    assert!(replay("header", cmsi_mail_testkit::fuzz::check_header) > 0);
}
