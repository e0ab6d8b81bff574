//! `cmsi-mail compose`.

use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail::{ComposeOptions, SendMailRequest, StaticDirectory, ValidationError, Validator};

use crate::config::{load_users, parse_sender};
use crate::{Outcome, read_input};

/// Seed and Date (2000-01-01T00:00:00Z) of `--deterministic`.
const DETERMINISTIC_SEED: u64 = 0;
const DETERMINISTIC_DATE: i64 = 946_684_800;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The request, JSON; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// TOML file with a `[users]` table for receiver__username and cc__username.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Sender when the request names none (default: cmsi-mail@localhost).
    #[arg(long, value_name = "ADDR")]
    sender: Option<String>,
    /// Fixed Date (2000-01-01T00:00:00Z), Message-ID and boundaries: the same
    /// request always gives the same bytes.
    #[arg(long)]
    deterministic: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Outcome> {
    let directory = match &args.users {
        Some(path) => load_users(path)?,
        None => StaticDirectory::new(),
    };
    let sender = parse_sender(args.sender.as_deref(), "--sender")?;

    let input = read_input(args.file.as_ref())?;
    let request = match SendMailRequest::from_json(&input) {
        Ok(request) => request,
        Err(error) => return Ok(Outcome::BadRequest(error.to_string())),
    };
    let validated = match Validator::new(sender, &directory).validate(request) {
        Ok(validated) => validated,
        Err(ValidationError::Request(error)) => return Ok(Outcome::BadRequest(error.to_string())),
        Err(error) => return Err(error.into()),
    };
    if !validated.username_check.invalid.is_empty() {
        eprintln!(
            "cmsi-mail: unknown usernames left out: {}",
            validated.username_check.invalid.join(", ")
        );
    }
    let options = if args.deterministic {
        ComposeOptions::deterministic(DETERMINISTIC_SEED, DETERMINISTIC_DATE)
    } else {
        ComposeOptions::new()
    };
    validated
        .message
        .write_to(&options, std::io::stdout().lock())
        .context("cannot write the message to standard output")?;
    Ok(Outcome::Done)
}
