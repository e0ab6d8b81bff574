#![doc = include_str!("../README.md")]
//!
//! ## How it works
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
    DEFAULT_MAX_ATTEMPTS, DEFAULT_POLL_SECONDS, DEFAULT_QUERY_TIMEOUT_SECONDS,
    DEFAULT_RETENTION_DAYS, DEFAULT_RETRY_BASE_SECONDS, DEFAULT_RETRY_MAX_SECONDS,
    DEFAULT_SHUTDOWN_GRACE_SECONDS, DEFAULT_WORKERS, QueueSettings, redact_url,
};
pub use status::{Accepted, State, Stats, Status, Timestamp, UnknownState};
pub use worker::Workers;
