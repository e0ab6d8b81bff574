//! Runs one workload end to end in a loop, for a profiler: `profile w3 50`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]
use cmsi_mail::{ComposeOptions, Mailbox, SendMailRequest, StaticDirectory, Validator};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "w3".into());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let workload = match name.as_str() {
        "w1" => cmsi_mail_benches::w1(),
        "w2" => cmsi_mail_benches::w2(),
        _ => cmsi_mail_benches::w3(),
    };
    let directory = StaticDirectory::new();
    let sender = Mailbox::parse("noreply@example.com").unwrap();
    if let Some(peer) = std::env::var_os("PEER") {
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            if peer == "lettre" {
                std::hint::black_box(cmsi_mail_benches::lettre(&workload));
            } else {
                std::hint::black_box(cmsi_mail_benches::mail_builder(&workload));
            }
        }
        println!(
            "  {peer:?}: {:.3} µs",
            started.elapsed().as_secs_f64() * 1e6 / rounds as f64
        );
        return;
    }
    if std::env::var_os("COMPOSE_ONLY").is_some() {
        let request = SendMailRequest::from_json(&workload.json).unwrap();
        let message = Validator::new(sender.clone(), &directory)
            .validate(request)
            .unwrap()
            .message;
        let started = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(message.compose(&ComposeOptions::new()));
        }
        println!(
            "  compose: {:.3} µs",
            started.elapsed().as_secs_f64() * 1e6 / rounds as f64
        );
        return;
    }
    let started = std::time::Instant::now();
    let mut total = 0;
    for _ in 0..rounds {
        let request = SendMailRequest::from_json(&workload.json).unwrap();
        let message = Validator::new(sender.clone(), &directory)
            .validate(request)
            .unwrap()
            .message;
        total += message.compose(&ComposeOptions::new()).bytes.len();
    }
    println!(
        "{name}: {:.3} ms per message ({total} bytes)",
        started.elapsed().as_secs_f64() * 1e3 / rounds as f64
    );
    let per = |started: std::time::Instant| started.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&workload.json).unwrap());
    }
    println!("  serde_json Value parse: {:.2} µs", per(started));
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(SendMailRequest::from_json(&workload.json).unwrap());
    }
    println!("  SendMailRequest::from_json: {:.2} µs", per(started));
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        let request = SendMailRequest::from_json(&workload.json).unwrap();
        std::hint::black_box(
            Validator::new(sender.clone(), &directory)
                .validate(request)
                .unwrap(),
        );
    }
    println!("  from_json + validate: {:.2} µs", per(started));
}
