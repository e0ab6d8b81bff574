//! cmsi-mail against mail-builder and lettre, in the same run, on the three
//! workloads of `cmsi_mail_benches`. For each workload:
//!
//! - `ours_e2e`: request JSON with base64 attachments → validated → bytes;
//! - `ours_compose`: an already validated message → bytes;
//! - `mail_builder`, `lettre`: the same message, already decoded → bytes.
//!
//! After criterion's own report, a table of medians and ratios against
//! mail-builder is printed. Run: `cargo bench -p cmsi-mail-benches`.
// Benchmark code: a failed unwrap is a broken benchmark.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use cmsi_mail::{ComposeOptions, Mailbox, Message, SendMailRequest, StaticDirectory, Validator};
use cmsi_mail_benches::{Workload, all, lettre, mail_builder};
use criterion::Criterion;

fn validate<'a>(json: &'a [u8], directory: &StaticDirectory) -> Message<'a> {
    let request = SendMailRequest::from_json(json).unwrap();
    Validator::new(Mailbox::parse("noreply@example.com").unwrap(), directory)
        .validate(request)
        .unwrap()
        .message
}

const CONTENDERS: [&str; 4] = ["ours_e2e", "ours_compose", "mail_builder", "lettre"];

fn output_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("criterion")
}

fn bench(c: &mut Criterion, workload: &Workload) {
    let directory = StaticDirectory::new();
    let owned = validate(&workload.json, &directory).into_owned();
    // Sanity: every contender makes a message of about the same size.
    let sizes = [
        owned.compose(&ComposeOptions::new()).bytes.len(),
        mail_builder(workload).len(),
        lettre(workload).len(),
    ];
    println!(
        "{}: message sizes ours/mail-builder/lettre: {sizes:?}",
        workload.name
    );

    let mut group = c.benchmark_group(workload.name);
    if workload.name == "w3" {
        group
            .sample_size(20)
            .measurement_time(Duration::from_secs(8));
    }
    group.bench_function("ours_e2e", |b| {
        b.iter(|| {
            let message = validate(black_box(&workload.json), &directory);
            message.compose(&ComposeOptions::new()).bytes
        });
    });
    group.bench_function("ours_compose", |b| {
        b.iter(|| black_box(&owned).compose(&ComposeOptions::new()).bytes);
    });
    group.bench_function("mail_builder", |b| {
        b.iter(|| mail_builder(black_box(workload)))
    });
    group.bench_function("lettre", |b| b.iter(|| lettre(black_box(workload))));
    group.finish();
}

/// Median time of one benchmark, in nanoseconds, from criterion's estimates.
fn median(group: &str, id: &str) -> Option<f64> {
    let path = output_dir().join(group).join(id).join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

fn summary(workloads: &[Workload]) {
    println!("\n## cmsi-mail vs peers (median; ratio = time / mail-builder's time)\n");
    println!("| workload | ours end-to-end | ours compose | mail-builder | lettre |");
    println!("|---|---|---|---|---|");
    for workload in workloads {
        let times: Vec<Option<f64>> = CONTENDERS
            .iter()
            .map(|id| median(workload.name, id))
            .collect();
        let Some(base) = times[2] else {
            println!("| {} | (not measured in this run) | | | |", workload.name);
            continue;
        };
        let cells: Vec<String> = times
            .iter()
            .map(|time| match time {
                Some(ns) => format!("{} ({:.2}×)", human(*ns), ns / base),
                None => "-".to_owned(),
            })
            .collect();
        println!("| {} | {} |", workload.name, cells.join(" | "));
    }
}

fn main() {
    let workloads = all();
    let mut criterion = Criterion::default()
        .output_directory(&output_dir())
        .configure_from_args();
    for workload in &workloads {
        bench(&mut criterion, workload);
    }
    criterion.final_summary();
    summary(&workloads);
}
