//! `cmsi-mail serve`: the ESB's `send_mail`, `send_msg` and `get_msg_type`
//! and the bk-cmsi API over HTTP, and with `[server] outbox_ui` the outbox
//! viewer at `/outbox/`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use cmsi_mail::Transport;
use cmsi_mail_gateway::{AppRegistry, Gateway, serve};
use cmsi_mail_queue::{Queue, redact_url};

use crate::Outcome;
use crate::config::DeliveryArgs;
use crate::outbox;
use crate::shutdown::shutdown_signal;

/// Where the outbox viewer is served when `[server] outbox_ui` is set.
const OUTBOX_PREFIX: &str = "/outbox";

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Address to listen on (default: `[server] listen`, else 127.0.0.1:8025).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// The configuration must have at least one `[apps.NAME]` table.
    #[command(flatten)]
    delivery: DeliveryArgs,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
}

const NO_APP: &str = "no app may call this gateway: add one to the config, for example

[apps.monitor]
secret = \"s3cret\"            # or: secret_env = \"MONITOR_SECRET\"
allow_bk_username = true     # may name its user by bk_username alone

and start with --config FILE";

pub(crate) async fn run(args: &Args) -> anyhow::Result<Outcome> {
    init_logging(args.log_json);
    let mut config = args.delivery.config()?;
    let apps = AppRegistry::new(&config.apps, |name| std::env::var(name).ok())?;
    if apps.is_empty() {
        anyhow::bail!(NO_APP);
    }
    // One transport (one connection pool) for the top level, every tenant and
    // the in-process workers (when it queues).
    let transport: Arc<dyn Transport> = Arc::from(args.delivery.transport(&config).await?);
    let tenants = config.tenant_mailers(&transport)?;
    let mailer = config.mailer(Box::new(Arc::clone(&transport)))?;
    let queue = match config.configured_queue() {
        Some(mut settings) => {
            // Each delivery slot may hold a connection while it stores
            // its message, besides the workers, their listener and
            // housekeeping: a busy gateway must not look like a database
            // outage.
            if settings.max_connections.is_none() {
                let wanted = settings.workers() + config.server.max_concurrent_deliveries() + 2;
                settings.max_connections = Some(u32::try_from(wanted).unwrap_or(u32::MAX));
            }
            Some(Queue::connect(&settings).await.with_context(|| {
                format!("cannot open the queue at {}", redact_url(&settings.url))
            })?)
        }
        None => None,
    };

    raise_open_file_limit(config.server.max_connections());
    let listen = args.listen.unwrap_or_else(|| config.server.listen());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let mut gateway = Gateway::new(mailer, apps, &config.server)?
        .with_transport_label(args.delivery.transport_label(&config))
        .with_channels(&config.channels())?;
    for (name, tenant) in tenants {
        gateway = gateway.with_tenant(name, tenant);
    }
    if let Some(queue) = &queue {
        gateway = gateway.with_queue(queue.clone());
    }
    let outbox = config
        .server
        .outbox_ui
        .then(|| args.delivery.outbox_dir(&config));
    match &outbox {
        Some(Some(dir)) => {
            let viewer = outbox::router(outbox::Outbox::new(dir.clone()), OUTBOX_PREFIX, local);
            gateway = gateway.with_routes(viewer);
        }
        Some(None) => eprintln!(
            "cmsi-mail: warning: outbox_ui is set but the transport is not the file one: \
             there is no outbox to show"
        ),
        None => {}
    }
    let gateway = Arc::new(gateway);
    tracing::info!(listen = %local, "serving the ESB and bk-cmsi APIs");
    if let Some(Some(dir)) = &outbox {
        outbox::warn_if_exposed(local);
        eprintln!(
            "cmsi-mail: the mail in {} is shown at http://{local}{OUTBOX_PREFIX}/",
            dir.display()
        );
    }
    // `[queue] workers` deliver in this process (counted in its metrics); 0
    // makes a pure gateway.
    let workers = queue
        .as_ref()
        .filter(|queue| queue.settings().workers() > 0)
        .map(|queue| queue.start_workers(gateway.counting(Arc::clone(&transport))));
    if let (Some(queue), Some(workers)) = (&queue, &workers) {
        eprintln!(
            "cmsi-mail: queueing into {}, {} workers delivering",
            redact_url(&queue.settings().url),
            workers.len()
        );
    }
    // One plain line for people and scripts, whatever the log format; the
    // last one before serving.
    if let Some(metrics) = config.server.metrics_listen {
        eprintln!("cmsi-mail: metrics at http://{metrics}/metrics");
    }
    eprintln!("cmsi-mail: listening on http://{local}");
    let served = serve(listener, gateway, shutdown_signal()).await;
    // The requests are answered; then the workers give back what they have
    // not delivered.
    if let Some(workers) = workers {
        workers.shutdown().await;
    }
    transport.close().await;
    if let Some(queue) = &queue {
        queue.close().await;
    }
    served.context("the HTTP server failed")?;
    eprintln!("cmsi-mail: stopped");
    Ok(Outcome::Done)
}

pub(crate) fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("CMSI_MAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Files `serve` may hold open besides its connections: database and SMTP
/// pools, the file drop, the outbox viewer, logs.
const SPARE_FILES: u64 = 256;

/// Raises the soft open-file limit (up to the hard one) to what
/// `max_connections` needs, and warns when it cannot: at the limit, connections
/// wait in the kernel and the file drop cannot open files, so clients holding
/// connections could stop deliveries.
fn raise_open_file_limit(max_connections: usize) {
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FILES);
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => eprintln!(
            "cmsi-mail: warning: the open-file limit is {limit}, below [server] \
             max_connections ({max_connections}) + {SPARE_FILES}: raise it (ulimit -n, \
             systemd LimitNOFILE=) or lower max_connections"
        ),
        Ok(_) => {}
        Err(error) => eprintln!("cmsi-mail: warning: cannot read the open-file limit: {error}"),
    }
}
