//! cmsi-mail against mail-builder and lettre, in the same run, on the three
//! workloads of `cmsi_mail_benches`. For each workload:
//!
//! - `ours_e2e`: request JSON with base64 attachments → validated → bytes;
//! - `ours_compose`: an already validated message → bytes;
//! - `mail_builder`, `lettre`: the same message, already decoded → bytes.
//!
//! After criterion's own report, the contenders are measured once more,
//! interleaved round by round, and a table of medians and ratios against
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

/// Median time per call of each contender, in nanoseconds, measured
/// interleaved: round after round, each contender runs `calls` times in turn,
/// so that a slow spell of the machine (this is a shared 2-core VM) hits all of
/// them alike instead of whichever criterion happened to be measuring.
fn interleaved(contenders: &[&dyn Fn()], rounds: usize, calls: usize) -> Vec<f64> {
    let mut samples = vec![Vec::with_capacity(rounds); contenders.len()];
    for _ in 0..rounds {
        for (contender, samples) in contenders.iter().zip(&mut samples) {
            let started = std::time::Instant::now();
            for _ in 0..calls {
                contender();
            }
            samples.push(started.elapsed().as_nanos() as f64 / calls as f64);
        }
    }
    samples
        .into_iter()
        .map(|mut samples| {
            samples.sort_by(f64::total_cmp);
            samples[samples.len() / 2]
        })
        .collect()
}

/// The times for one workload: ours end to end, ours compose, mail-builder, lettre.
fn measure(workload: &Workload) -> Vec<f64> {
    let directory = StaticDirectory::new();
    let owned = validate(&workload.json, &directory).into_owned();
    let e2e = || {
        let message = validate(black_box(&workload.json), &directory);
        black_box(message.compose(&ComposeOptions::new()).bytes);
    };
    let compose = || {
        black_box(black_box(&owned).compose(&ComposeOptions::new()).bytes);
    };
    let builder = || {
        black_box(mail_builder(black_box(workload)));
    };
    let lettre = || {
        black_box(lettre(black_box(workload)));
    };
    let (rounds, calls) = match workload.name {
        "w1" => (200, 1000),
        "w2" => (60, 4),
        _ => (25, 1),
    };
    interleaved(&[&e2e, &compose, &builder, &lettre], rounds, calls)
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

/// Criterion's median for one benchmark of this run, in nanoseconds.
fn criterion_median(group: &str, id: &str) -> Option<f64> {
    let path = output_dir().join(group).join(id).join("new/estimates.json");
    let estimates: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    estimates["median"]["point_estimate"].as_f64()
}

fn table(title: &str, rows: &[(&str, Option<Vec<f64>>)]) {
    println!("\n## {title} (ratio = time / mail-builder's time)\n");
    println!("| workload | ours end-to-end | ours compose | mail-builder | lettre |");
    println!("|---|---|---|---|---|");
    for (name, times) in rows {
        let Some(times) = times else {
            println!("| {name} | (not measured in this run) | | | |");
            continue;
        };
        let base = times[2];
        let cells: Vec<String> = times
            .iter()
            .map(|ns| format!("{} ({:.2}×)", human(*ns), ns / base))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
}

fn summary(workloads: &[Workload]) {
    let ids = ["ours_e2e", "ours_compose", "mail_builder", "lettre"];
    let sequential: Vec<_> = workloads
        .iter()
        .map(|w| {
            let times: Option<Vec<f64>> =
                ids.iter().map(|id| criterion_median(w.name, id)).collect();
            (w.name, times)
        })
        .collect();
    table(
        "criterion medians, each contender measured in turn",
        &sequential,
    );
    let interleaved: Vec<_> = workloads
        .iter()
        .map(|w| (w.name, Some(measure(w))))
        .collect();
    table("medians measured interleaved, round by round", &interleaved);
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
