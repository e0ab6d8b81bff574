//! The queue's handle: connect, accept, look up, list, retry, clean up.

use std::str::FromStr;
use std::sync::Arc;

use cmsi_mail::{Composed, Envelope, Rejection};
use serde_json::Value;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::settings::QueueSettings;
use crate::status::{Accepted, State, Stats, Status, Timestamp};
use crate::{Error, migrate};

/// The channel workers LISTEN on; accept and retry NOTIFY it.
pub(crate) const CHANNEL: &str = "cmsi_mail_queue";

/// The longest `Idempotency-Key` kept.
const MAX_KEY_LEN: usize = 255;

/// Rows deleted per statement when purging, so that a purge never holds
/// many locks or one long transaction.
const PURGE_BATCH: i64 = 5000;

/// The columns [`status_from_row`] reads.
const STATUS_COLUMNS: &str = "message_id, app_code, state, attempts, last_error, recipients, \
    accepted, rejected::text AS rejected, transport_id, message_size, locked_by, \
    (EXTRACT(EPOCH FROM created_at) * 1000000)::BIGINT AS created_us, \
    (EXTRACT(EPOCH FROM updated_at) * 1000000)::BIGINT AS updated_us, \
    CASE WHEN state IN ('queued', 'sending') \
        THEN (EXTRACT(EPOCH FROM next_attempt_at) * 1000000)::BIGINT END AS next_us, \
    (EXTRACT(EPOCH FROM sent_at) * 1000000)::BIGINT AS sent_us";

/// Inserts a message; with a key already taken by the app, inserts nothing
/// and returns no row.
///
/// It does not NOTIFY: PostgreSQL holds one lock across the commits of all
/// notifying transactions, which cut accepts at 32 clients from about 3 000
/// to 560 a second here. [`Notifier`] sends one NOTIFY after the commits instead.
const INSERT: &str = "INSERT INTO cmsi_mail_message (app_code, message_id, idempotency_key,
        idempotency_expires_at, sender, recipients, message, message_size, response)
    VALUES ($1, $2, $3,
        CASE WHEN $3::TEXT IS NULL THEN NULL ELSE now() + make_interval(secs => $4) END,
        $5, $6, $7, $8, $9::JSONB)
    ON CONFLICT (app_code, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id";

/// A durable delivery queue on PostgreSQL, shared by every gateway and worker
/// that points at the same database. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    pub(crate) pool: PgPool,
    pub(crate) settings: Arc<QueueSettings>,
    notifier: Arc<Notifier>,
}

/// Wakes the workers after accepts: one NOTIFY at a time, and the accepts
/// committed while one is on its way share the next.
struct Notifier {
    poke: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Notifier {
    fn start(pool: PgPool) -> Notifier {
        let poke = Arc::new(Notify::new());
        let task = tokio::spawn(Notifier::run(pool, Arc::clone(&poke)));
        Notifier { poke, task }
    }

    async fn run(pool: PgPool, poke: Arc<Notify>) {
        loop {
            poke.notified().await;
            let sent = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&pool)
                .await;
            match sent {
                Ok(_) => {}
                Err(sqlx::Error::PoolClosed) => return,
                // The workers also poll: a lost notification only delays.
                Err(error) => {
                    tracing::debug!(error = %Error::from(error), "cannot notify the workers")
                }
            }
        }
    }

    /// Asks for a NOTIFY soon (a permit is kept if one is on its way).
    fn poke(&self) {
        self.poke.notify_one();
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What [`Queue::housekeep`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Housekeeping {
    /// Sent and failed messages older than the retention, deleted.
    pub purged: u64,
    /// Idempotency keys past their time, forgotten (their messages stay).
    pub keys_expired: u64,
}

impl Queue {
    /// Connects to the database and brings its schema up to date (under an
    /// advisory lock, so that processes starting together migrate once).
    ///
    /// Fails with [`Error::Unavailable`] within about
    /// `connect_timeout_seconds` when the database does not answer.
    pub async fn connect(settings: &QueueSettings) -> Result<Queue, Error> {
        if !["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| settings.url.starts_with(scheme))
        {
            return Err(Error::Settings(
                "url must start with postgres:// or postgresql://".to_owned(),
            ));
        }
        let options = PgConnectOptions::from_str(&settings.url)
            .map_err(|error| {
                Error::Settings(format!("url is not a usable postgres:// URL: {error}"))
            })?
            .application_name("cmsi-mail");
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections())
            .acquire_timeout(settings.connect_timeout())
            .test_before_acquire(true)
            .connect_with(options)
            .await?;
        migrate::migrator().await?.run(&pool).await?;
        Ok(Queue {
            notifier: Arc::new(Notifier::start(pool.clone())),
            pool,
            settings: Arc::new(settings.clone()),
        })
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Whether the database answers: for a readiness check. Fails as
    /// unreachable after `query_timeout_seconds` at most.
    pub async fn ping(&self) -> Result<(), Error> {
        self.within_query_timeout(async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
        .await
    }

    /// `operation`, or [`Error::TimedOut`] when it takes longer than
    /// `query_timeout_seconds` (dropping it rolls back an open transaction).
    async fn within_query_timeout<T>(
        &self,
        operation: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let limit = self.settings.query_timeout();
        tokio::time::timeout(limit, operation)
            .await
            .unwrap_or_else(|_| Err(Error::TimedOut(limit)))
    }

    /// Stores a composed message for delivery, in one transaction, and
    /// returns once it is committed.
    ///
    /// `response` is the `data` the caller answers with; it is stored so that
    /// a request repeated with the same `idempotency_key` (unique per
    /// `app_code`, remembered for `idempotency_days`) gets the first answer
    /// back, with [`Accepted::repeated`] set and nothing queued.
    ///
    /// Errors: [`Error::IdempotencyKey`] for a key that is not 1–255 printable
    /// ASCII characters (the caller's fault); [`Error::Unavailable`] when the
    /// database cannot be reached (within about `connect_timeout_seconds`);
    /// [`Error::TimedOut`] when it stops answering (`query_timeout_seconds`);
    /// [`Error::DuplicateMessageId`] when this Message-ID is already queued;
    /// [`Error::Database`] otherwise.
    pub async fn accept(
        &self,
        app_code: &str,
        idempotency_key: Option<&str>,
        envelope: &Envelope,
        composed: &Composed,
        response: &Value,
    ) -> Result<Accepted, Error> {
        self.within_query_timeout(self.store(
            app_code,
            idempotency_key,
            envelope,
            composed,
            response,
        ))
        .await
    }

    /// [`Queue::accept`] without its time limit.
    async fn store(
        &self,
        app_code: &str,
        idempotency_key: Option<&str>,
        envelope: &Envelope,
        composed: &Composed,
        response: &Value,
    ) -> Result<Accepted, Error> {
        if let Some(key) = idempotency_key
            && (key.is_empty()
                || key.len() > MAX_KEY_LEN
                || !key
                    .bytes()
                    .all(|byte| byte.is_ascii_graphic() || byte == b' '))
        {
            return Err(Error::IdempotencyKey);
        }
        let size = i64::try_from(composed.bytes.len()).unwrap_or(i64::MAX);
        let insert = sqlx::query(INSERT)
            .bind(app_code)
            .bind(&composed.message_id)
            .bind(idempotency_key)
            .bind(self.settings.idempotency().as_secs_f64())
            .bind(envelope.sender())
            .bind(envelope.recipients())
            .bind(composed.bytes.as_slice())
            .bind(size)
            .bind(response.to_string());
        let accepted = Accepted {
            message_id: composed.message_id.clone(),
            response: response.clone(),
            repeated: false,
        };
        let Some(key) = idempotency_key else {
            insert
                .execute(&self.pool)
                .await
                .map_err(|error| duplicate_message_id(error, &composed.message_id))?;
            self.notifier.poke();
            return Ok(accepted);
        };
        let mut transaction = self.pool.begin().await?;
        // A key past its time is free again, even before housekeeping clears it.
        sqlx::query(
            "UPDATE cmsi_mail_message SET idempotency_key = NULL, idempotency_expires_at = NULL
             WHERE app_code = $1 AND idempotency_key = $2 AND idempotency_expires_at <= now()",
        )
        .bind(app_code)
        .bind(key)
        .execute(&mut *transaction)
        .await?;
        let inserted = insert
            .fetch_optional(&mut *transaction)
            .await
            .map_err(|error| duplicate_message_id(error, &composed.message_id))?;
        if inserted.is_some() {
            transaction.commit().await?;
            self.notifier.poke();
            return Ok(accepted);
        }
        // The key is taken: by a committed row (a request in flight with the
        // same key made the insert above wait for its outcome).
        let first = sqlx::query(
            "SELECT message_id, response::TEXT FROM cmsi_mail_message
             WHERE app_code = $1 AND idempotency_key = $2",
        )
        .bind(app_code)
        .bind(key)
        .fetch_optional(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let Some(first) = first else {
            return Err(Error::Database(sqlx::Error::RowNotFound));
        };
        let response: String = first.try_get(1)?;
        Ok(Accepted {
            message_id: first.try_get(0)?,
            response: serde_json::from_str(&response).unwrap_or(Value::Null),
            repeated: true,
        })
    }

    /// The message `message_id` (with or without angle brackets) if `app_code`
    /// sent it; another app's message is `None`, as if it did not exist.
    pub async fn status(&self, app_code: &str, message_id: &str) -> Result<Option<Status>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS} FROM cmsi_mail_message WHERE message_id = $1 AND app_code = $2"
        ))
        .bind(bare(message_id))
        .bind(app_code)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(status_from_row).transpose()
    }

    /// Counts by state, and the age of the oldest message not yet delivered.
    pub async fn stats(&self) -> Result<Stats, Error> {
        let row = sqlx::query(
            "SELECT
                count(*) FILTER (WHERE state = 'queued'),
                count(*) FILTER (WHERE state = 'queued' AND next_attempt_at <= now()),
                count(*) FILTER (WHERE state = 'sending'),
                count(*) FILTER (WHERE state = 'sent'),
                count(*) FILTER (WHERE state = 'failed'),
                EXTRACT(EPOCH FROM now() - min(created_at)
                    FILTER (WHERE state IN ('queued', 'sending')))::FLOAT8
             FROM cmsi_mail_message",
        )
        .fetch_one(&self.pool)
        .await?;
        let count = |index: usize| -> Result<u64, Error> {
            Ok(u64::try_from(row.try_get::<i64, _>(index)?).unwrap_or(0))
        };
        Ok(Stats {
            queued: count(0)?,
            due: count(1)?,
            sending: count(2)?,
            sent: count(3)?,
            failed: count(4)?,
            oldest_queued_seconds: row.try_get(5)?,
        })
    }

    /// Up to `limit` messages in `state` (every state when `None`), the most
    /// recently changed first, whichever app sent them.
    pub async fn list(&self, state: Option<State>, limit: u32) -> Result<Vec<Status>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {STATUS_COLUMNS} FROM cmsi_mail_message
             WHERE $1::TEXT IS NULL OR state = $1
             ORDER BY updated_at DESC, id DESC LIMIT $2"
        ))
        .bind(state.map(State::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(status_from_row).collect()
    }

    /// Queues a failed message again, due now, with all its attempts ahead.
    pub async fn retry(&self, message_id: &str) -> Result<Status, Error> {
        let message_id = bare(message_id);
        let row = sqlx::query(&format!(
            "WITH retried AS (
                UPDATE cmsi_mail_message
                SET state = 'queued', attempts = 0, next_attempt_at = now(), updated_at = now()
                WHERE message_id = $1 AND state = 'failed'
                RETURNING *
             )
             SELECT {STATUS_COLUMNS}, pg_notify('{CHANNEL}', '')::TEXT FROM retried"
        ))
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            return status_from_row(&row);
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM cmsi_mail_message WHERE message_id = $1")
                .bind(message_id)
                .fetch_optional(&self.pool)
                .await?;
        Err(match state.as_deref().map(State::from_str) {
            Some(Ok(state)) => Error::NotFailed {
                message_id: message_id.to_owned(),
                state,
            },
            _ => Error::NotFound(message_id.to_owned()),
        })
    }

    /// Deletes sent and failed messages older than `retention_days` and
    /// forgets idempotency keys older than `idempotency_days`. Workers do it
    /// every few minutes; it is safe to run from several processes at once.
    pub async fn housekeep(&self) -> Result<Housekeeping, Error> {
        let retention = self.settings.retention().as_secs_f64();
        let mut done = Housekeeping::default();
        loop {
            let purged = sqlx::query(
                "DELETE FROM cmsi_mail_message WHERE id IN (
                    SELECT id FROM cmsi_mail_message
                    WHERE state IN ('sent', 'failed')
                      AND updated_at < now() - make_interval(secs => $1)
                    LIMIT $2 FOR UPDATE SKIP LOCKED)",
            )
            .bind(retention)
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            done.purged += purged;
            if purged < u64::try_from(PURGE_BATCH).unwrap_or(u64::MAX) {
                break;
            }
        }
        done.keys_expired = sqlx::query(
            "UPDATE cmsi_mail_message SET idempotency_key = NULL, idempotency_expires_at = NULL
             WHERE idempotency_key IS NOT NULL AND idempotency_expires_at <= now()",
        )
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done)
    }

    /// Closes the connections, waiting for operations in progress.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A Message-ID without its angle brackets, as stored.
fn bare(message_id: &str) -> &str {
    let trimmed = message_id.trim();
    trimmed
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .unwrap_or(trimmed)
}

/// The insert's error, as [`Error::DuplicateMessageId`] when the Message-ID
/// is taken.
fn duplicate_message_id(error: sqlx::Error, message_id: &str) -> Error {
    if let sqlx::Error::Database(database) = &error
        && database.constraint() == Some("cmsi_mail_message_message_id")
    {
        return Error::DuplicateMessageId(message_id.to_owned());
    }
    Error::from(error)
}

fn timestamp(row: &PgRow, column: &str) -> Result<Option<Timestamp>, Error> {
    Ok(row
        .try_get::<Option<i64>, _>(column)?
        .map(Timestamp::from_unix_micros))
}

fn status_from_row(row: &PgRow) -> Result<Status, Error> {
    let state: String = row.try_get("state")?;
    let rejected: String = row.try_get("rejected")?;
    let created_at = timestamp(row, "created_us")?;
    let updated_at = timestamp(row, "updated_us")?;
    Ok(Status {
        message_id: row.try_get("message_id")?,
        app_code: row.try_get("app_code")?,
        state: State::from_str(&state)
            .map_err(|error| Error::Database(sqlx::Error::Decode(Box::new(error))))?,
        attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
        last_error: row.try_get("last_error")?,
        recipients: row.try_get("recipients")?,
        accepted: row.try_get("accepted")?,
        rejected: rejections(&rejected),
        transport_id: row.try_get("transport_id")?,
        size: u64::try_from(row.try_get::<i64, _>("message_size")?).unwrap_or(0),
        created_at: created_at.unwrap_or(Timestamp::from_unix_micros(0)),
        updated_at: updated_at.unwrap_or(Timestamp::from_unix_micros(0)),
        next_attempt_at: timestamp(row, "next_us")?,
        sent_at: timestamp(row, "sent_us")?,
        worker: row.try_get("locked_by")?,
    })
}

/// The stored `rejected` list (written by the worker from a receipt).
fn rejections(json: &str) -> Vec<Rejection> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(json) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| Rejection {
            recipient: text(item, "recipient"),
            reason: text(item, "reason"),
            temporary: item
                .get("temporary")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
        .collect()
}

fn text(item: &Value, key: &str) -> String {
    item.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}
