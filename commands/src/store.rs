//! The Postgres event log: append with an expected version, load a stream, read the global feed.

use domain::{Actor, Event, EventId, FirmId, StreamKind, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use std::fmt;
use uuid::Uuid;

/// A place in the global feed: the writing transaction's id, then the global sequence.
///
/// The feed is ordered by this pair, and only events below the oldest open event-log writer
/// are read (see [`WriterTx`]), so a reader never passes an event that a slower writer has yet
/// to commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeedPosition {
    /// The writing transaction's id (`xid8`).
    pub tx_id: i64,
    /// The global sequence (`events.position`).
    pub position: i64,
}

impl FeedPosition {
    /// Before the first event.
    pub const START: FeedPosition = FeedPosition { tx_id: 0, position: 0 };

    /// Just past every transaction below `xmin`: where a reader stands once it has read all
    /// that a snapshot with that horizon could see for certain.
    pub fn below_horizon(xmin: i64) -> FeedPosition {
        FeedPosition { tx_id: xmin - 1, position: i64::MAX }
    }
}

impl fmt::Display for FeedPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx_id, self.position)
    }
}

impl std::str::FromStr for FeedPosition {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once(':').ok_or("a feed position is tx_id:position")?;
        Ok(FeedPosition {
            tx_id: tx.parse().map_err(|_| "bad tx_id")?,
            position: pos.parse().map_err(|_| "bad position")?,
        })
    }
}

/// What an event carries besides its payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The firm the event belongs to.
    pub firm_id: FirmId,
    /// Who caused it.
    pub actor: Actor,
    /// The HTTP request that caused it, if any.
    pub request_id: Option<String>,
    /// When it happened.
    pub occurred_at: Timestamp,
}

/// An event as the log holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Where it stands in the global feed.
    pub feed: FeedPosition,
    /// Its id (also the JetStream message id, for de-duplication).
    pub id: EventId,
    /// The aggregate it belongs to.
    pub stream_id: Uuid,
    /// The aggregate's kind.
    pub stream_kind: StreamKind,
    /// Its version within the stream, from 1.
    pub version: i32,
    pub event: Event,
    /// Who, when, for which firm.
    pub metadata: Metadata,
}

impl RecordedEvent {
    /// The acting member, if a member acted.
    pub fn member_actor(&self) -> Option<domain::MemberId> {
        match self.metadata.actor {
            Actor::Member(id) => Some(id),
            Actor::System => None,
        }
    }
}

/// Events to append to one stream, which must be at `expected_version` (0 for a new stream).
#[derive(Clone, Debug)]
pub struct Append {
    pub stream_id: Uuid,
    /// The version the decision was made against.
    pub expected_version: i32,
    /// What to record (may be empty: then nothing is written for this stream).
    pub events: Vec<Event>,
}

/// Why the log refused or failed an operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error("concurrent write to stream {0}")]
    Conflict(Uuid),
    /// A stored payload no longer deserializes (a bug or a corrupted row).
    #[error("event {position} cannot be read: {source}")]
    Corrupt {
        /// The global sequence of the bad row.
        position: i64,
        /// What failed.
        source: serde_json::Error,
    },
    /// Postgres failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const EVENT_COLUMNS: &str = "position, tx_id::text::bigint AS tx_id, id, stream_id, stream_kind, version, \
     event_type, payload, firm_id, actor, request_id, occurred_at";

/// The two keys of the shared advisory lock that every event-log writer holds (`esqa`, `writ`);
/// `esqase_writer_lock_keys()` in the migrations names the same pair.
const WRITER_LOCK: (i32, i32) = (0x6573_7161, 0x7772_6974);

/// Marks the transaction as an event-log writer for the guard on `events`, until it ends.
const MARK: &str = "SET LOCAL esqase.event_log_writer = 'on'";

/// True for a stream `s` (of `unnest(ids, expected) AS s(id, expected)`) that is not at its
/// expected version: an append to it would decide on a state that has moved on.
const STALE: &str = "s.expected <> COALESCE((SELECT max(version) FROM events e WHERE e.stream_id = s.id), 0)";

/// A transaction that may append events.
///
/// It took the shared writer lock as its first statement, before it had a transaction id, so
/// while it is open the feed horizon (`esqase_feed_horizon()`, the oldest transaction id among
/// the lock's holders in this database) stays at or below its id, and no reader passes its
/// events before they commit. Transactions in other databases of the cluster, or in this one
/// without the lock, hold nothing back. A trigger refuses an insert into `events` by any
/// transaction without the lock, so the rule cannot be skipped by accident.
pub struct WriterTx {
    tx: Transaction<'static, Postgres>,
}

impl WriterTx {
    /// Begins a writer; `exclusive`, if given, is a transaction-scoped advisory lock taken in
    /// the same round trip (a command's serialization key).
    pub async fn begin(pool: &PgPool, exclusive: Option<i64>) -> Result<WriterTx, StoreError> {
        let (class, object) = WRITER_LOCK;
        // One round trip: BEGIN and the locks as one simple query (integers only, no text).
        // The mark tells the guard on `events` that this transaction holds the lock (a
        // migration, `writer_mark`, says why it is not asked of `pg_locks`).
        let begin = match exclusive {
            Some(key) => format!(
                "BEGIN; SELECT pg_advisory_xact_lock_shared({class}, {object}), pg_advisory_xact_lock({key}); {MARK}"
            ),
            None => format!("BEGIN; SELECT pg_advisory_xact_lock_shared({class}, {object}); {MARK}"),
        };
        Ok(WriterTx { tx: pool.begin_with(begin).await? })
    }

    /// Commits: the events become readable in the feed.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }

    /// Rolls back: nothing of it was ever readable.
    pub async fn rollback(self) -> Result<(), StoreError> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for WriterTx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriterTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

/// The JSON text of a `jsonb` column, without building a `serde_json::Value` (in the binary
/// format a version byte, 1, comes first).
fn json_text<'r>(row: &'r PgRow, column: &str) -> Result<&'r [u8], sqlx::Error> {
    let value = row.try_get_raw(column)?;
    let format = value.format();
    let bytes = value.as_bytes().map_err(|source| sqlx::Error::ColumnDecode { index: column.into(), source })?;
    match format {
        PgValueFormat::Text => Ok(bytes),
        PgValueFormat::Binary => bytes.strip_prefix(&[1]).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: column.into(),
            source: "unknown jsonb format version".into(),
        }),
    }
}

fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |source| StoreError::Corrupt { position, source };
    let kind: &str = row.try_get("stream_kind")?;
    let stream_kind = StreamKind::parse(kind)
        .ok_or_else(|| corrupt(serde::de::Error::custom(format!("unknown stream kind {kind}"))))?;
    let event_type: &str = row.try_get("event_type")?;
    let event = Event::from_stored_json(event_type, json_text(row, "payload")?).map_err(corrupt)?;
    let actor: Actor = serde_json::from_slice(json_text(row, "actor")?).map_err(corrupt)?;
    Ok(RecordedEvent {
        feed: FeedPosition { tx_id: row.try_get("tx_id")?, position },
        id: EventId::from_uuid(row.try_get("id")?),
        stream_id: row.try_get("stream_id")?,
        stream_kind,
        version: row.try_get("version")?,
        event,
        metadata: Metadata {
            firm_id: FirmId::from_uuid(row.try_get("firm_id")?),
            actor,
            request_id: row.try_get("request_id")?,
            occurred_at: row.try_get("occurred_at")?,
        },
    })
}

/// Appends the events of each stream in one statement, inside the writer's transaction.
/// A stream not at its expected version is [`StoreError::Conflict`].
pub async fn append(
    tx: &mut WriterTx,
    metadata: &Metadata,
    appends: &[Append],
) -> Result<Vec<RecordedEvent>, StoreError> {
    let mut ids = Vec::new();
    let mut streams = Vec::new();
    let mut kinds = Vec::new();
    let mut versions = Vec::new();
    let mut types = Vec::new();
    let mut payloads = Vec::new();
    for append in appends {
        for (offset, event) in append.events.iter().enumerate() {
            ids.push(Uuid::now_v7());
            streams.push(append.stream_id);
            kinds.push(event.stream_kind().as_str());
            // A stream never holds anywhere near i32::MAX events; a batch is a handful.
            versions.push(append.expected_version + 1 + offset as i32);
            types.push(event.event_type());
            payloads.push(event.payload());
        }
    }
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let conn: &mut PgConnection = tx;
    // Each stream must be exactly at its expected version. Under the firm's lock this check is
    // the whole story; a writer outside it that races us trips the unique (stream_id, version)
    // index instead. The check and the insert are one statement (one round trip): with a stale
    // stream nothing is inserted.
    let expected: Vec<(Uuid, i32)> =
        appends.iter().filter(|a| !a.events.is_empty()).map(|a| (a.stream_id, a.expected_version)).collect();
    let (expected_streams, expected_versions): (Vec<Uuid>, Vec<i32>) = expected.iter().copied().unzip();
    let actor = serde_json::to_value(metadata.actor).map_err(|source| StoreError::Corrupt { position: 0, source })?;
    let rows = sqlx::query(&format!(
        "WITH stale AS (
             SELECT 1 FROM unnest($11::uuid[], $12::int[]) AS s(id, expected) WHERE {STALE})
         INSERT INTO events (id, stream_id, stream_kind, version, event_type, payload, firm_id, actor, request_id, occurred_at)
         SELECT e.id, e.stream_id, e.kind, e.version, e.type, e.payload, $7, $8, $9, $10
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::jsonb[])
              AS e(id, stream_id, kind, version, type, payload)
         WHERE NOT EXISTS (SELECT 1 FROM stale)
         RETURNING position, tx_id::text::bigint AS tx_id, id, stream_id, stream_kind, version,
                   event_type, payload, firm_id, actor, request_id, occurred_at"
    ))
    .bind(&ids)
    .bind(&streams)
    .bind(&kinds)
    .bind(&versions)
    .bind(&types)
    .bind(&payloads)
    .bind(metadata.firm_id.as_uuid())
    .bind(&actor)
    .bind(&metadata.request_id)
    .bind(metadata.occurred_at)
    .bind(&expected_streams)
    .bind(&expected_versions)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(appends.first().map(|a| a.stream_id).unwrap_or_default())
        }
        _ => StoreError::Database(e),
    })?;
    if rows.is_empty() {
        // Nothing inserted: a stream had moved on. Which one, for the error (a rare path).
        let stale: Option<Uuid> = sqlx::query_scalar(&format!(
            "SELECT s.id FROM unnest($1::uuid[], $2::int[]) AS s(id, expected) WHERE {STALE} LIMIT 1"
        ))
        .bind(&expected_streams)
        .bind(&expected_versions)
        .fetch_optional(&mut *conn)
        .await?;
        return Err(StoreError::Conflict(stale.or(expected_streams.first().copied()).unwrap_or_default()));
    }
    let mut recorded = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    recorded.sort_by_key(|e| e.feed);
    Ok(recorded)
}

/// Every event of one stream, in version order.
pub async fn load_stream(conn: &mut PgConnection, stream_id: Uuid) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version"))
        .bind(stream_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// Up to `limit` events after `after`, in feed order, never at or past the oldest event-log
/// writer still open (whose events might yet commit before ones already visible).
pub async fn read_feed(pool: &PgPool, after: FeedPosition, limit: i64) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM esqase_read_feed($1::text::xid8, $2, $3)"))
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(i32::try_from(limit).unwrap_or(i32::MAX))
        .fetch_all(pool)
        .await?;
    rows.iter().map(decode).collect()
}

/// Up to `limit` events after `after`, in feed order, with no horizon: for a reader whose
/// transaction holds the event-log writer lock exclusively (a rebuild's swap), so that no
/// writer is open and nothing new can appear.
pub async fn read_all_after(
    conn: &mut PgConnection,
    after: FeedPosition,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE (tx_id, position) > ($1::text::xid8, $2) ORDER BY events.tx_id, events.position LIMIT $3"
    ))
    .bind(after.tx_id.to_string())
    .bind(after.position)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(decode).collect()
}

/// The feed's horizon now (`esqase_feed_horizon()`): the first transaction id whose events a
/// reader may not see yet. Read the events below it with a later statement ([`read_below`]),
/// so that a writer that commits in between is seen.
pub async fn feed_horizon(conn: &mut PgConnection) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar("SELECT esqase_feed_horizon()::text::bigint").fetch_one(conn).await?)
}

static READ_BELOW: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE (tx_id, position) > ($1::text::xid8, $2) AND tx_id < $3::text::xid8
         ORDER BY events.tx_id, events.position LIMIT $4"
    )
});

/// Up to `limit` events after `after` and below `horizon` (from [`feed_horizon`], read
/// before), in feed order, decoded as Postgres sends them: one statement however many there
/// are, and the first events are decoded while Postgres is still reading the next.
pub fn read_below(
    conn: &mut PgConnection,
    after: FeedPosition,
    horizon: i64,
    limit: i64,
) -> impl futures::Stream<Item = Result<RecordedEvent, StoreError>> + Send + '_ {
    use futures::StreamExt;
    sqlx::query(&READ_BELOW)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(horizon.to_string())
        .bind(limit)
        .fetch(conn)
        .map(|row| decode(&row?))
}

/// Where a reader of `conn`'s repeatable-read snapshot stands: below the snapshot's own xmin,
/// the oldest transaction it saw open. Deliberately not the writers' horizon: that one reads
/// the lock table now, and a writer that was open when the snapshot was taken may have
/// committed since. Lower only means more events replayed (and skipped by version) after it.
pub async fn snapshot_horizon(conn: &mut PgConnection) -> Result<FeedPosition, StoreError> {
    let xmin: i64 =
        sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint").fetch_one(conn).await?;
    Ok(FeedPosition::below_horizon(xmin))
}

/// The last event a feed reader could read now (`START` for an empty log).
pub async fn feed_head(pool: &PgPool) -> Result<FeedPosition, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id::text::bigint, position FROM esqase_feed_head()").fetch_optional(pool).await?;
    Ok(row.map(|(tx_id, position)| FeedPosition { tx_id, position }).unwrap_or(FeedPosition::START))
}

/// A follower's saved place (`START` if it has none).
pub async fn load_checkpoint(conn: &mut PgConnection, name: &str) -> Result<FeedPosition, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(tx_id, position)| FeedPosition { tx_id, position }).unwrap_or(FeedPosition::START))
}

/// Saves a follower's place.
pub async fn save_checkpoint(conn: &mut PgConnection, name: &str, at: FeedPosition) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checkpoints (name, tx_id, position) VALUES ($1, $2::text::xid8, $3)
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, updated_at = now()",
    )
    .bind(name)
    .bind(at.tx_id.to_string())
    .bind(at.position)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_positions_order_by_transaction_before_sequence() {
        let early_tx_late_seq = FeedPosition { tx_id: 10, position: 99 };
        let late_tx_early_seq = FeedPosition { tx_id: 11, position: 5 };
        assert!(early_tx_late_seq < late_tx_early_seq);
    }

    #[test]
    fn below_the_horizon_is_past_every_event_of_older_transactions() {
        let at = FeedPosition::below_horizon(100);
        assert!(FeedPosition { tx_id: 99, position: i64::MAX - 1 } < at);
        assert!(at < FeedPosition { tx_id: 100, position: 1 });
    }

    #[test]
    fn a_feed_position_round_trips_through_text() {
        let at = FeedPosition { tx_id: 7, position: 42 };
        assert_eq!(at.to_string().parse(), Ok(at));
    }
}
