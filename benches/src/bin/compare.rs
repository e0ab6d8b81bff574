//! Ours end to end against the peers' end-to-end pipelines and the floor, on
//! the same request JSON, interleaved in shuffled order (see
//! `cmsi_mail_benches::measure`). Prints a Markdown table: `compare [w1 w2 w3]`.
#![allow(clippy::print_stdout)]

use cmsi_mail_benches::measure::{Contender, human, interleaved};
use cmsi_mail_benches::{Ours, Workload, peers};

fn table(workload: &Workload) {
    let json = workload.json.as_slice();
    let ours = Ours::default();
    let ours_with_text = Ours::default().with_text_alternative();
    let output_len = ours.run(json).len();
    let contenders = [
        Contender {
            name: "ours end-to-end",
            run: Box::new(|| ours.run(json).len()),
        },
        Contender {
            name: "ours end-to-end with the text alternative (the default)",
            run: Box::new(|| ours_with_text.run(json).len()),
        },
        Contender {
            name: "mail-builder plain (serde_json owned + base64 + mail-builder)",
            run: Box::new(|| peers::mail_builder_plain(json).len()),
        },
        Contender {
            name: "mail-builder tuned (serde_json borrowed + base64-simd + mail-builder)",
            run: Box::new(|| peers::mail_builder_tuned(json).len()),
        },
        Contender {
            name: "lettre (serde_json owned + base64 + lettre)",
            run: Box::new(|| peers::lettre_plain(json).len()),
        },
        Contender {
            name: "floor (memchr scan + SIMD base64 check + output copy)",
            run: Box::new(|| peers::floor(json, output_len).len()),
        },
    ];
    let (rounds, calls) = match workload.name {
        "w1" => (150, 1000),
        "w2" => (60, 4),
        _ => (31, 1),
    };
    let stats = interleaved(&contenders, rounds, calls);
    for (contender, stats) in contenders.iter().zip(stats) {
        println!(
            "| {} | {} | {} | {:.2}× | {:.0} |",
            workload.name.to_uppercase(),
            contender.name,
            human(stats.nanos),
            stats.first_over_this,
            stats.faults
        );
    }
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    println!(
        "| workload | pipeline, from the request JSON | median per call | ours ÷ it (median of per-round ratios) | minor faults per call |"
    );
    println!("|---|---|---|---|---|");
    for workload in cmsi_mail_benches::all() {
        if wanted.is_empty() || wanted.iter().any(|w| w == workload.name) {
            table(&workload);
        }
    }
}
