//! What can go wrong with the queue.

use crate::State;

/// A queue operation that did not happen.
///
/// None of the messages holds the database password: sqlx's errors name the
/// host and the user at most, and the URL is never quoted. The sqlx error is
/// part of the message (and kept in the variant), not repeated as a `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database did not answer: refused or timed-out connections, a
    /// server shutting down or starting up, a lost connection. Trying again
    /// later may work; nothing of the operation was stored (a connection lost
    /// during the final commit leaves that unknown).
    #[error("the queue database is unreachable: {0}")]
    Unavailable(sqlx::Error),
    /// The database took longer than `query_timeout_seconds` (the time here):
    /// it stopped answering in the middle of an operation. Whether an accept
    /// that timed out was stored is unknown (as with a connection lost during
    /// the commit); its `Idempotency-Key`, repeated, tells.
    #[error("the queue database did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// The database answered with an error.
    #[error("queue database error: {0}")]
    Database(sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("cannot migrate the queue database: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// `[queue]` cannot be used as it is.
    #[error("[queue] {0}")]
    Settings(String),
    /// The `Idempotency-Key` is empty, longer than 255 bytes, or holds
    /// characters other than printable ASCII: the caller's request is wrong.
    #[error("Idempotency-Key must be 1 to 255 printable ASCII characters")]
    IdempotencyKey,
    /// A message with this Message-ID is already queued.
    #[error("a message with Message-ID <{0}> is already in the queue")]
    DuplicateMessageId(String),
    /// No message with this Message-ID.
    #[error("no message with Message-ID <{0}> in the queue")]
    NotFound(String),
    /// `retry` of a message that has not failed.
    #[error("message <{message_id}> is {state}, not failed: only failed mail is retried")]
    NotFailed {
        /// The message.
        message_id: String,
        /// Its state.
        state: State,
    },
}

impl Error {
    /// Whether the database could not be reached, as opposed to answering
    /// with an error: what a readiness check reports. Either way a gateway
    /// answers `1306201`, except for [`Error::IdempotencyKey`] (`1306000`).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Unavailable(_) | Error::TimedOut(_))
            || matches!(self, Error::Migrate(sqlx::migrate::MigrateError::Execute(error)) if unreachable(error))
    }
}

/// SQLSTATE classes and codes of a server that cannot serve: connection
/// exceptions (08…), shutdown and start-up (57P01–57P03), too many connections.
fn unreachable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

fn unreachable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database) => {
            database.code().is_some_and(|code| unreachable_state(&code))
        }
        _ => false,
    }
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if unreachable(&error) {
            Error::Unavailable(error)
        } else {
            Error::Database(error)
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(error)
    }
}
