//! Reading a firm's entries: the filtered, paged list and the batches of an export.

use super::*;
use crate::page::{Cursor, Direction, Page, PageRequest};
use chrono::{DateTime, Utc};
use domain::FirmId;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

/// Entries read per round trip when walking or exporting a chain.
pub const BATCH: i64 = 1000;

const COLUMNS: &str = "id, sequence, occurred_at, action, actor_type, actor_id, actor_name, target_type, target_id, \
     target_name, details, hash, previous_hash";

fn entry_from_row(row: &PgRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: row.try_get("id")?,
        sequence: row.try_get("sequence")?,
        occurred_at: row.try_get("occurred_at")?,
        action: row.try_get("action")?,
        actor: EntryActor {
            kind: row.try_get("actor_type")?,
            id: row.try_get("actor_id")?,
            name: row.try_get("actor_name")?,
        },
        target: EntryTarget {
            kind: row.try_get("target_type")?,
            id: row.try_get("target_id")?,
            name: row.try_get("target_name")?,
        },
        details: row.try_get("details")?,
        hash: row.try_get("hash")?,
        previous_hash: row.try_get("previous_hash")?,
    })
}

/// The filters of the audit log's list and export; they combine (all must hold).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Only this action.
    pub action: Option<String>,
    /// Only entries about this key.
    pub api_key_id: Option<Uuid>,
    /// Only entries this member caused.
    pub actor_id: Option<Uuid>,
    /// Only entries at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only entries strictly before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn push(&self, query: &mut QueryBuilder<'_, Postgres>) {
        if let Some(action) = &self.action {
            query.push(" AND action = ").push_bind(action.clone());
        }
        if let Some(key) = self.api_key_id {
            query.push(" AND target_type = 'api_key' AND target_id = ").push_bind(key.to_string());
        }
        if let Some(actor) = self.actor_id {
            query.push(" AND actor_id = ").push_bind(actor);
        }
        if let Some(since) = self.since {
            query.push(" AND occurred_at >= ").push_bind(since);
        }
        if let Some(until) = self.until {
            query.push(" AND occurred_at < ").push_bind(until);
        }
    }
}

/// A page of `firm`'s entries, newest (highest sequence) first. Cursors name an entry's id; the
/// page continues from that entry's sequence.
pub async fn entries(
    pool: &PgPool,
    firm: FirmId,
    filter: &AuditFilter,
    page: PageRequest,
) -> Result<Page<AuditEntry>, sqlx::Error> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log WHERE firm_id = "));
    query.push_bind(firm.as_uuid());
    filter.push(&mut query);
    let order = match page.cursor {
        None => "DESC",
        Some(Cursor { boundary, direction }) => {
            let (op, order) = match direction {
                Direction::Older => ("<", "DESC"),
                Direction::Newer => (">", "ASC"),
            };
            query
                .push(format!(" AND sequence {op} (SELECT b.sequence FROM audit_log b WHERE b.firm_id = "))
                .push_bind(firm.as_uuid())
                .push(" AND b.id = ")
                .push_bind(boundary)
                .push(")");
            order
        }
    };
    query.push(format!(" ORDER BY sequence {order} LIMIT ")).push_bind(page.limit + 1);
    let rows = query.build().fetch_all(pool).await?;
    let entries = rows.iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page.page(entries, |e| e.id))
}

/// Up to `limit` of `firm`'s entries with a sequence in `(after, up_to]`, oldest first: a batch
/// of an export.
pub async fn batch(
    pool: &PgPool,
    firm: FirmId,
    filter: &AuditFilter,
    after: i64,
    up_to: i64,
    limit: i64,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let mut query = QueryBuilder::new(format!("SELECT {COLUMNS} FROM audit_log WHERE firm_id = "));
    query.push_bind(firm.as_uuid());
    filter.push(&mut query);
    query.push(" AND sequence > ").push_bind(after);
    query.push(" AND sequence <= ").push_bind(up_to);
    query.push(" ORDER BY sequence LIMIT ").push_bind(limit);
    let rows = query.build().fetch_all(pool).await?;
    rows.iter().map(entry_from_row).collect()
}

/// The sequence of `firm`'s newest entry (0 when it has none).
pub async fn last_sequence(pool: &PgPool, firm: FirmId) -> Result<i64, sqlx::Error> {
    let last: Option<i64> = sqlx::query_scalar("SELECT max(sequence) FROM audit_log WHERE firm_id = $1")
        .bind(firm.as_uuid())
        .fetch_one(pool)
        .await?;
    Ok(last.unwrap_or(0))
}
