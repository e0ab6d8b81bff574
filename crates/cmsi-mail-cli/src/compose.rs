//! `cmsi-mail compose`.

use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail::{ComposeOptions, SendMailRequest, StaticDirectory, ValidationError, Validator};

use crate::config::{Config, load_users, parse_sender};
use crate::{Outcome, read_input};

/// Seed and Date (2000-01-01T00:00:00Z) of `--deterministic`.
const DETERMINISTIC_SEED: u64 = 0;
const DETERMINISTIC_DATE: i64 = 946_684_800;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The request, JSON; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// Configuration file (TOML): its `[dkim]` signs the message, its
    /// `text_alternative`, `mail_sender` and `[users]` apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// TOML file with a `[users]` table for receiver__username and cc__username.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Sender when the request names none (default: the config's
    /// mail_sender, else cmsi-mail@localhost).
    #[arg(long, value_name = "ADDR")]
    sender: Option<String>,
    /// Fixed Date (2000-01-01T00:00:00Z), Message-ID and boundaries: the same
    /// request always gives the same bytes.
    #[arg(long)]
    deterministic: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<Outcome> {
    let mut config = Config::load(args.config.as_deref())?;
    // The key first: a key that cannot be read stops the command.
    let dkim = config.dkim_signer();
    let directory = match &args.users {
        Some(path) => load_users(path)?,
        None if args.config.is_some() => config.take_users(),
        None => StaticDirectory::new(),
    };
    let sender = match &args.sender {
        Some(sender) => parse_sender(Some(sender), "--sender")?,
        None => config.sender()?,
    };

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
    }
    .with_text_alternative(config.text_alternative());
    let mut stdout = std::io::stdout().lock();
    match dkim {
        // Signing needs the whole message first.
        Some(signer) => {
            let signed = signer.sign(validated.message.compose(&options))?;
            std::io::Write::write_all(&mut stdout, &signed.bytes)
                .and_then(|()| std::io::Write::flush(&mut stdout))
                .context("cannot write the message to standard output")?;
        }
        None => {
            validated
                .message
                .write_to(&options, stdout)
                .context("cannot write the message to standard output")?;
        }
    }
    Ok(Outcome::Done)
}
