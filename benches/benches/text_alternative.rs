//! What the plain-text alternative of an HTML body costs.
//!
//! 1. W1 composed with and without the text part, against mail-builder's
//!    HTML-only composition of the same message (the goal: with the
//!    text part, at most 2× mail-builder). The contenders run interleaved, in
//!    a random order each round, and the medians of per-round ratios are
//!    reported (see `/work/shared/notes/test-infra.md`: a contender that runs
//!    right after another freed its buffers pays page faults).
//! 2. Hostile 1 MB HTML (a table of tens of thousands of cells, alone or
//!    after 2 000 nested blocks or tables): the conversion must stay within its time
//!    budget, whatever the HTML; the bench exits non-zero when it does not.
//!
//! Run: `cargo bench -p cmsi-mail-benches --bench text_alternative`.
// Benchmark code: a failed unwrap is a broken benchmark.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use cmsi_mail::{ComposeOptions, Mailbox, Message, SendMailRequest, StaticDirectory, Validator};
use cmsi_mail_benches::{mail_builder, w1};

/// The most the text of the hostile HTML may take on the development VM.
const HOSTILE_BUDGET: Duration = Duration::from_millis(50);
const ROUNDS: usize = 200;
const CALLS: usize = 100;

fn validate(json: &[u8]) -> Message<'static> {
    let request = SendMailRequest::from_json(json).unwrap();
    Validator::new(
        Mailbox::parse("noreply@example.com").unwrap(),
        &StaticDirectory::new(),
    )
    .validate(request)
    .unwrap()
    .message
    .into_owned()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let workload = w1();
    let message = validate(&workload.json);
    let with_text = ComposeOptions::new();
    let without_text = ComposeOptions::new().with_text_alternative(false);
    let sizes = [
        message.compose(&with_text).bytes.len(),
        message.compose(&without_text).bytes.len(),
        mail_builder(&workload).len(),
    ];
    println!("w1: message sizes with text / without / mail-builder: {sizes:?}");

    let names = ["ours with text", "ours without text", "mail-builder"];
    let run = |which: usize| match which {
        0 => black_box(message.compose(&with_text).bytes.len()),
        1 => black_box(message.compose(&without_text).bytes.len()),
        _ => black_box(mail_builder(&workload).len()),
    };
    for which in 0..3 {
        for _ in 0..CALLS {
            run(which);
        }
    }
    let mut times: [Vec<f64>; 3] = Default::default();
    let mut ratios: [Vec<f64>; 3] = Default::default();
    let mut rng = fastrand::Rng::with_seed(10);
    for _ in 0..ROUNDS {
        let mut order = [0, 1, 2];
        rng.shuffle(&mut order);
        let mut round = [0.0; 3];
        for which in order {
            let start = Instant::now();
            for _ in 0..CALLS {
                run(which);
            }
            round[which] = start.elapsed().as_secs_f64() / CALLS as f64;
        }
        for which in 0..3 {
            times[which].push(round[which]);
            ratios[which].push(round[which] / round[2]);
        }
    }
    println!("\n| W1 compose | median | ratio to mail-builder (median of per-round ratios) |");
    println!("|---|---|---|");
    for which in 0..3 {
        let time = median(&mut times[which]);
        let ratio = median(&mut ratios[which]);
        println!("| {} | {:.2} µs | {ratio:.2}× |", names[which], time * 1e6);
    }

    // Hostile HTML, 1 MB each: deep nesting (of blocks, or of tables), then a
    // huge table, so that the converted first 64 KiB hold both.
    let mut worst: f64 = 0.0;
    for (name, nesting) in [
        ("nested blocks", "<div><span>".repeat(2_000)),
        ("nested tables", "<table><tr><td>".repeat(2_000)),
        ("one huge table", String::new()),
    ] {
        let mut html = nesting;
        html.push_str("deep<table>");
        let mut cell = 0;
        while html.len() < 1_000_000 {
            html.push_str("<tr>");
            for _ in 0..30 {
                html.push_str(&format!("<td>cell {cell} 告警</td>"));
                cell += 1;
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        let request =
            serde_json::json!({"receiver": "a@example.com", "title": "t", "content": html});
        let hostile = validate(&serde_json::to_vec(&request).unwrap());
        let mut with = Vec::new();
        let mut without = Vec::new();
        for _ in 0..15 {
            let start = Instant::now();
            let composed = black_box(hostile.compose(&with_text));
            with.push(start.elapsed().as_secs_f64());
            assert!(composed.bytes.len() <= hostile.estimated_len());
            let start = Instant::now();
            black_box(hostile.compose(&without_text));
            without.push(start.elapsed().as_secs_f64());
        }
        let (with, without) = (median(&mut with), median(&mut without));
        let text = with - without;
        worst = worst.max(text);
        println!(
            "\nhostile HTML, {name} ({} octets): compose {:.2} ms with text, {:.2} ms without; \
             the text takes {:.2} ms (budget {} ms)",
            html.len(),
            with * 1e3,
            without * 1e3,
            text * 1e3,
            HOSTILE_BUDGET.as_millis()
        );
    }
    let text = worst;
    if text > HOSTILE_BUDGET.as_secs_f64() {
        println!("OVER BUDGET");
        std::process::exit(1);
    }
}
