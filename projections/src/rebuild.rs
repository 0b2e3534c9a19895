//! Replaying a Postgres projection from the first event.

use commands::store::{FeedPosition, StoreError};
use sqlx::PgPool;

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No projection has that name.
    #[error("no projection is named '{0}'; known: {known}, {audit}", known = crate::read_models::NAME, audit = crate::audit::NAME)]
    Unknown(String),
    /// The log or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Events replayed per round trip.
const BATCH: i64 = 1000;

/// Empties projection `name` and folds the whole log into it again, in feed order, in one
/// transaction: readers see the old tables until it commits, and a crash leaves them as they
/// were. Commands that write the same tables wait for it. Returns how many events it replayed.
pub async fn rebuild(pool: &PgPool, name: &str) -> Result<u64, RebuildError> {
    let audit = match name {
        crate::read_models::NAME => false,
        crate::audit::NAME => true,
        _ => return Err(RebuildError::Unknown(name.to_owned())),
    };
    let tables = if audit { crate::audit::TABLES } else { crate::read_models::TABLES };
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("TRUNCATE {tables}")).execute(&mut *tx).await?;
    let mut at = FeedPosition::START;
    let mut replayed = 0u64;
    let mut audit_fold = crate::audit::Rebuild::default();
    loop {
        // Inside this transaction every committed event is visible and none can appear under
        // us (the tables are locked), so the whole log is read in feed order without a horizon.
        let events = commands::store::read_all_after(&mut tx, at, BATCH).await?;
        if events.is_empty() {
            break;
        }
        if audit {
            audit_fold.apply(&mut tx, &events).await?;
        } else {
            crate::read_models::apply_all(&mut tx, &events).await?;
        }
        replayed += events.len() as u64;
        at = events.last().map_or(at, |e| e.feed);
    }
    if audit {
        audit_fold.finish(&mut tx).await?;
    }
    tx.commit().await?;
    Ok(replayed)
}
