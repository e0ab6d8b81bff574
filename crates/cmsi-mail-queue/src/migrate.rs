//! The schema, embedded in the binary and applied at start.
//!
//! sqlx's migrator holds a PostgreSQL advisory lock while it applies them, so
//! processes starting at once apply each migration exactly once. The files are
//! listed here rather than found by `sqlx::migrate!` to keep sqlx's macros
//! (and their build time) out of the tree.

use std::borrow::Cow;

use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// Version, description, SQL: append, never edit (applied migrations are
/// checked against their checksum).
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "queue", include_str!("../migrations/0001_queue.sql"))];

#[derive(Debug)]
struct Embedded;

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 's>>
    {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        Cow::Borrowed(*description),
                        MigrationType::Simple,
                        Cow::Borrowed(*sql),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// The migrator of the queue's schema.
pub(crate) async fn migrator() -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded).await
}
