//! `cmsi-mail send`: one request, delivered; the ESB response on stdout.

use std::path::PathBuf;

use anyhow::Context as _;
use cmsi_mail::{Error, EsbResponse, SendMailRequest};

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
    let prepared = SendMailRequest::from_json(&input)
        .map_err(Error::from)
        .and_then(|request| mailer.prepare(request));
    let (response, outcome) = match prepared {
        Ok(prepared) => {
            let result = mailer.deliver(&prepared).await;
            (
                prepared.response(&result),
                exit_status(result.err().as_ref()),
            )
        }
        Err(error) => (EsbResponse::error(&error), exit_status(Some(&error))),
    };
    print_response(&response)?;
    Ok(outcome)
}

/// 2 for a request the caller must change, 1 for a failed delivery.
fn exit_status(error: Option<&Error>) -> Outcome {
    match error {
        None => Outcome::Done,
        Some(Error::Request(_)) => Outcome::Refused,
        Some(_) => Outcome::Failed,
    }
}

fn print_response(response: &EsbResponse) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer(&mut stdout, response).context("cannot write the response")?;
    writeln!(stdout).context("cannot write the response")?;
    Ok(())
}
