//! A durable delivery queue for cmsi-mail on PostgreSQL: accept now, deliver
//! later, shared by any number of gateways and workers on any number of
//! machines.
//!
//! Depend on this crate to take mail off the request path: a gateway composes
//! a message as usual and [`Queue::accept`]s it instead of sending it; workers
//! ([`Queue::start_workers`], or the `cmsi-mail worker` command) deliver it
//! through any [`cmsi_mail::Transport`], at the pace the relay allows, trying
//! again with backoff when it is down.
//!
//! The flow:
//!
//! 1. [`Queue::connect`]: a connection pool, and the schema brought up to date
//!    (embedded migrations, under sqlx's advisory lock);
//! 2. [`Queue::accept`]: the composed bytes and envelope stored as `queued`,
//!    committed before it returns; a repeated idempotency key returns the first
//!    answer and stores nothing;
//! 3. workers claim due rows (`FOR UPDATE SKIP LOCKED`, under a lease they
//!    renew), woken by `LISTEN/NOTIFY` and polling as a fallback, take a token
//!    of the pace shared in the database, and deliver: `sent` with the receipt,
//!    `queued` again with exponential backoff for a transient failure, `failed`
//!    with the reason for a permanent one or when the attempts are used up;
//! 4. [`Queue::status`] per app, [`Queue::stats`], [`Queue::list`],
//!    [`Queue::retry`] for operators, [`Queue::housekeep`] to purge.
//!
//! Delivery is at least once: a message is delivered twice only when a worker
//! dies (or loses the database, or the database crashes) after the relay
//! accepted it and before the row was marked, or when the connection to the
//! relay breaks after the whole message was sent, leaving unknown whether the
//! relay took it.
//!
//! ```no_run
//! # async fn example(
//! #     envelope: cmsi_mail::Envelope,
//! #     composed: cmsi_mail::Composed,
//! #     transport: std::sync::Arc<dyn cmsi_mail::Transport>,
//! # ) -> Result<(), cmsi_mail_queue::Error> {
//! use cmsi_mail_queue::{Queue, QueueSettings};
//!
//! let queue = Queue::connect(&QueueSettings::new("postgres://mail@db.example.com/cmsi_mail")).await?;
//! let workers = queue.start_workers(transport);
//! let data = serde_json::json!({"message_id": format!("<{}>", composed.message_id), "queued": true});
//! let accepted = queue.accept("monitor", Some("order-42"), &envelope, &composed, &data).await?;
//! let status = queue.status("monitor", &accepted.message_id).await?;
//! workers.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod error;
mod migrate;
mod queue;
mod settings;
mod status;
mod worker;

pub use error::Error;
pub use queue::{Housekeeping, Queue};
pub use settings::{
    DEFAULT_CONNECT_TIMEOUT_SECONDS, DEFAULT_IDEMPOTENCY_DAYS, DEFAULT_LEASE_SECONDS,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_POLL_SECONDS, DEFAULT_RETENTION_DAYS, DEFAULT_RETRY_BASE_SECONDS,
    DEFAULT_RETRY_MAX_SECONDS, DEFAULT_SHUTDOWN_GRACE_SECONDS, DEFAULT_WORKERS, QueueSettings,
    redact_url,
};
pub use status::{Accepted, State, Stats, Status, Timestamp, UnknownState};
pub use worker::Workers;

/// The README's example, compiled as a doctest so that it cannot drift.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
