//! `cmsi-mail send`: one request, delivered; the ESB response on stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail::{CODE_BAD_REQUEST, EsbResponse, Mailer};

use crate::config::{Config, TransportKind};
use crate::{Outcome, read_input};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The request, JSON; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    /// Configuration file (TOML); without one, mail is dropped into ./outbox.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// TOML file with a `[users]` table; replaces the config's.
    #[arg(long, value_name = "FILE")]
    users: Option<PathBuf>,
    /// Transport, overriding the config's `[transport] kind`.
    #[arg(long, value_enum)]
    transport: Option<TransportKind>,
    /// Directory for the file transport (implies `--transport file` unless
    /// another is given).
    #[arg(long, value_name = "DIR")]
    outbox: Option<PathBuf>,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(users) = &args.users {
        config.load_users(users)?;
    }
    let kind = args
        .transport
        .or(args.outbox.as_ref().map(|_| TransportKind::File));
    let transport = config.transport(kind, args.outbox.as_deref()).await?;
    let mailer =
        Mailer::new(transport, config.sender()?).with_directory(std::sync::Arc::new(config.users));

    let input = read_input(args.file.as_ref())?;
    let response = mailer.send_json(&input).await;
    print_response(&response)?;
    Ok(if response.result {
        Outcome::Done
    } else if response.code == CODE_BAD_REQUEST {
        Outcome::Refused
    } else {
        Outcome::Failed
    })
}

fn print_response(response: &EsbResponse) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, response).context("cannot write the response")?;
    writeln!(stdout).context("cannot write the response")?;
    Ok(())
}
