//! `cmsi-mail`: compose, send and serve BlueKing CMSI `send_mail` requests,
//! deliver them from the queue, and show the outbox in the browser.
//!
//! Exit status: 0 on success, 2 for a bad request, 1 for anything else (an
//! unreadable file, a failed delivery).

mod compose;
mod config;
mod outbox;
mod queue;
mod send;
mod serve;
mod shutdown;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sender used when neither the request, `--sender` nor the configuration names
/// one. `localhost` marks it as a placeholder that real relays will refuse.
pub(crate) const PLACEHOLDER_SENDER: &str = "cmsi-mail@localhost";

#[derive(Parser)]
#[command(
    name = "cmsi-mail",
    version,
    about = "BlueKing CMSI send_mail as RFC 5322 mail"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read one request (JSON) and write the composed message to stdout.
    Compose(compose::Args),
    /// Read one request (JSON), deliver it, and print the ESB response.
    Send(send::Args),
    /// Serve the ESB endpoint POST /api/c/compapi/cmsi/send_mail/.
    Serve(serve::Args),
    /// Show the outbox (the file transport's directory) in the browser.
    Outbox(outbox::Args),
    /// Deliver queued mail (`[queue]` in the config) until SIGTERM or Ctrl-C.
    Worker(worker::Args),
    /// Look into the delivery queue: stats, list, retry.
    Queue(queue::Args),
}

/// How a command ended, mapped to the exit status.
pub(crate) enum Outcome {
    /// Exit 0.
    Done,
    /// The request is wrong: exit 2 with this one line on stderr.
    BadRequest(String),
    /// The request is wrong and the response already says so: exit 2.
    Refused,
    /// Delivery failed and the response already says so: exit 1.
    Failed,
}

/// `FILE`, or `-` / nothing for standard input.
pub(crate) fn read_input(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    use std::io::Read as _;
    match path {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        }
        _ => {
            let mut input = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut input)
                .context("cannot read standard input")?;
            Ok(input)
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compose(args) => compose::run(&args),
        Command::Send(args) => runtime().and_then(|rt| rt.block_on(send::run(&args))),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(serve::run(&args))),
        Command::Outbox(args) => runtime().and_then(|rt| rt.block_on(outbox::run(&args))),
        Command::Worker(args) => runtime().and_then(|rt| rt.block_on(worker::run(&args))),
        Command::Queue(args) => runtime().and_then(|rt| rt.block_on(queue::run(&args))),
    };
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::BadRequest(line)) => {
            eprintln!("cmsi-mail: bad request: {line}");
            ExitCode::from(2)
        }
        Ok(Outcome::Refused) => ExitCode::from(2),
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cmsi-mail: {error:#}");
            ExitCode::FAILURE
        }
    }
}
