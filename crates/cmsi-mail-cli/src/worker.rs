//! `cmsi-mail worker`: delivers queued mail until SIGTERM or Ctrl-C.

use std::sync::Arc;

use crate::shutdown::shutdown_signal;
use anyhow::Context as _;
use cmsi_mail::Transport;
use cmsi_mail_queue::{Queue, redact_url};

use crate::Outcome;
use crate::config::DeliveryArgs;
use crate::serve::init_logging;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The configuration needs a `[queue]` table (or CMSI_MAIL_QUEUE_URL) and
    /// the transport to deliver through.
    #[command(flatten)]
    delivery: DeliveryArgs,
    /// Workers to run, overriding `[queue] workers`.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    init_logging(args.log_json);
    let config = args.delivery.config()?;
    let mut settings = config.queue_settings()?;
    if let Some(workers) = args.workers {
        settings.workers = Some(workers);
    }
    if settings.workers() == 0 {
        anyhow::bail!("[queue] workers = 0: there is no worker to run (use --workers N)");
    }
    let transport: Arc<dyn Transport> = Arc::from(args.delivery.transport(&config).await?);
    let queue = Queue::connect(&settings)
        .await
        .with_context(|| format!("cannot open the queue at {}", redact_url(&settings.url)))?;
    let workers = queue.start_workers(Arc::clone(&transport));
    tracing::info!(workers = workers.len(), queue = %redact_url(&settings.url), "delivering");
    // One plain line for people and scripts, whatever the log format.
    eprintln!("cmsi-mail: {} workers delivering", workers.len());
    shutdown_signal().await;
    eprintln!("cmsi-mail: stopping: giving back what is not delivered");
    workers.shutdown().await;
    transport.close().await;
    queue.close().await;
    eprintln!("cmsi-mail: stopped");
    Ok(Outcome::Done)
}
