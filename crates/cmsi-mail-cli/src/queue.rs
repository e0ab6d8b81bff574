//! `cmsi-mail queue`: look into the delivery queue and retry failed mail.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail_queue::{Queue, State, Stats, Status, redact_url};

use crate::Outcome;
use crate::config::Config;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Configuration file with a `[queue]` table (or set CMSI_MAIL_QUEUE_URL).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Print JSON (one object per line) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Messages by state, and the age of the oldest not yet delivered.
    Stats,
    /// Messages, the most recently changed first.
    List {
        /// Only messages in this state.
        #[arg(long, value_enum)]
        state: Option<StateArg>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Queue a failed message again, due now, with all its attempts ahead.
    Retry {
        /// Its Message-ID, with or without angle brackets.
        message_id: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum StateArg {
    Queued,
    Sending,
    Sent,
    Failed,
}

impl From<StateArg> for State {
    fn from(state: StateArg) -> State {
        match state {
            StateArg::Queued => State::Queued,
            StateArg::Sending => State::Sending,
            StateArg::Sent => State::Sent,
            StateArg::Failed => State::Failed,
        }
    }
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let settings = Config::load(args.config.as_deref())?.queue_settings()?;
    let queue = Queue::connect(&settings)
        .await
        .with_context(|| format!("cannot open the queue at {}", redact_url(&settings.url)))?;
    let mut out = std::io::stdout().lock();
    match &args.command {
        Command::Stats => {
            let stats = queue.stats().await?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string(&stats)?)?;
            } else {
                write_stats(&mut out, &stats)?;
            }
        }
        Command::List { state, limit } => {
            for status in queue.list(state.map(State::from), *limit).await? {
                if args.json {
                    writeln!(out, "{}", serde_json::to_string(&status)?)?;
                } else {
                    write_status(&mut out, &status)?;
                }
            }
        }
        Command::Retry { message_id } => {
            let status = queue.retry(message_id).await?;
            if args.json {
                writeln!(out, "{}", serde_json::to_string(&status)?)?;
            } else {
                writeln!(out, "<{}> queued again", status.message_id)?;
            }
        }
    }
    queue.close().await;
    Ok(Outcome::Done)
}

fn write_stats(out: &mut impl std::io::Write, stats: &Stats) -> std::io::Result<()> {
    writeln!(out, "queued   {:>8}  ({} due now)", stats.queued, stats.due)?;
    writeln!(out, "sending  {:>8}", stats.sending)?;
    writeln!(out, "sent     {:>8}", stats.sent)?;
    writeln!(out, "failed   {:>8}", stats.failed)?;
    match stats.oldest_queued_seconds {
        Some(seconds) => writeln!(out, "oldest not yet sent: {}", age(seconds)),
        None => writeln!(out, "nothing waits"),
    }
}

/// One line: Message-ID, state, attempts, when it last changed, app, reason.
fn write_status(out: &mut impl std::io::Write, status: &Status) -> std::io::Result<()> {
    writeln!(
        out,
        "<{}>  {:<7}  {:>2} attempts  {}  {}{}",
        status.message_id,
        status.state,
        status.attempts,
        status.updated_at,
        status.app_code,
        status
            .last_error
            .as_deref()
            .map(|error| format!("  {error}"))
            .unwrap_or_default()
    )
}

/// `3h 20m`, `4m 05s`, `12s`.
fn age(seconds: f64) -> String {
    // Whole seconds are enough for an age.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m {:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h {:02}m", seconds / 3600, seconds / 60 % 60),
    }
}
