//! Writes the benchmark requests as JSON files (for the peak-memory run of
//! `cmsi-mail compose`): `workloads DIR` writes DIR/w1.json, w2.json, w3.json.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    for workload in cmsi_mail_benches::all() {
        std::fs::write(dir.join(format!("{}.json", workload.name)), &workload.json)?;
    }
    Ok(())
}
