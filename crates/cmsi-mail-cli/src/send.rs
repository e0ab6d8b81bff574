//! `cmsi-mail send`: one request, delivered; the ESB response on stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail::{CODE_BAD_REQUEST, EsbResponse};

use crate::config::DeliveryArgs;
use crate::{Outcome, read_input};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The request, JSON; `-` or nothing reads standard input.
    file: Option<PathBuf>,
    #[command(flatten)]
    delivery: DeliveryArgs,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    let mut config = args.delivery.config()?;
    let mailer = args.delivery.mailer(&mut config).await?;
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
