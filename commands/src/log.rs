//! The command side's entry point: a transaction per command, serialized per firm, that
//! appends events, folds them into the read models, commits, wakes the relay and waits until
//! every node's verification state reflects them.

use crate::error::CommandError;
use crate::store::{self, Append, Metadata, RecordedEvent, WriterTx};
use domain::{ApiKeyId, FirmId, KeyHash, MemberId, Timestamp};
use sqlx::{PgConnection, PgPool};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// The Postgres read models that a command's own transaction keeps current, so that its
/// response (and every read after it) already reflects its events; and the two questions the
/// write side asks of them, to find the streams a command must load (the events decide).
#[async_trait::async_trait]
pub trait ReadModels: Send + Sync {
    /// Folds `events`, just appended, in the appending transaction. Applying one twice changes nothing.
    async fn apply(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error>;

    /// Keys recorded Active whose expiry has passed at `now`, soonest first, at most `limit`.
    async fn keys_past_expiry(
        &self,
        conn: &mut PgConnection,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error>;

    /// Keys recorded Active whose roll's grace period has ended at `now` (so Revoked now),
    /// soonest end first, at most `limit`: what the sweeper records as revoked (`rolled`).
    async fn keys_past_grace(
        &self,
        conn: &mut PgConnection,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error>;

    /// The firm and id of each key whose secret hashes to one of `hashes`, whatever its status.
    async fn keys_with_hashes(
        &self,
        conn: &mut PgConnection,
        hashes: &[KeyHash],
    ) -> Result<Vec<(KeyHash, FirmId, ApiKeyId)>, sqlx::Error>;

    /// The keys `member` created that are Active at `now`.
    async fn active_keys_created_by(
        &self,
        conn: &mut PgConnection,
        member: MemberId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyId>, sqlx::Error>;
}

/// Read models that fold nothing and hold no key: for measuring the event log alone, and for
/// its tests.
pub struct NoReadModels;

#[async_trait::async_trait]
impl ReadModels for NoReadModels {
    async fn apply(&self, _conn: &mut PgConnection, _events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        Ok(())
    }

    // With no read models there is no key to find.
    async fn keys_past_expiry(
        &self,
        _conn: &mut PgConnection,
        _now: Timestamp,
        _limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
        Ok(Vec::new())
    }

    async fn keys_past_grace(
        &self,
        _conn: &mut PgConnection,
        _now: Timestamp,
        _limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
        Ok(Vec::new())
    }

    async fn keys_with_hashes(
        &self,
        _conn: &mut PgConnection,
        _hashes: &[KeyHash],
    ) -> Result<Vec<(KeyHash, FirmId, ApiKeyId)>, sqlx::Error> {
        Ok(Vec::new())
    }

    async fn active_keys_created_by(
        &self,
        _conn: &mut PgConnection,
        _member: MemberId,
        _now: Timestamp,
    ) -> Result<Vec<ApiKeyId>, sqlx::Error> {
        Ok(Vec::new())
    }
}

/// Waits until every live node's verification state reflects a command's events.
#[async_trait::async_trait]
pub trait Barrier: Send + Sync {
    /// Returns once every live node has applied `events` (just committed, in feed order), or
    /// once no node can still be answering without them.
    async fn wait_for(&self, events: &[RecordedEvent]);

    /// True if this barrier itself tells every node (and their relays) of each commit. A
    /// process outside the cluster (a benchmark's writer, a tool) says false: its commits then
    /// wake the relays with a NOTIFY after the commit (on a second connection, so only tools
    /// pay it; a node's commands take no connection after their commit).
    fn announces_commits(&self) -> bool {
        false
    }
}

/// A barrier for processes that verify nothing (the CLI, some tests).
pub struct NoBarrier;

#[async_trait::async_trait]
impl Barrier for NoBarrier {
    async fn wait_for(&self, _events: &[RecordedEvent]) {}
}

/// The event log as commands use it.
pub struct EventLog {
    /// The database: the log's truth and the read models.
    pub pool: PgPool,
    /// Folded inline, in each command's transaction.
    read_models: Arc<dyn ReadModels>,
    /// Consulted after each commit, so that "the very next request" sees the change on every node.
    barrier: Arc<dyn Barrier>,
    /// Wakes this node's relay the moment a command commits (other nodes hear a NOTIFY).
    committed: Arc<Notify>,
    /// Events appended by this process, for `/metrics`.
    appended: AtomicU64,
}

impl EventLog {
    /// The read models this log keeps current, for the write side's questions to them.
    pub fn read_models(&self) -> &dyn ReadModels {
        self.read_models.as_ref()
    }
}

/// The Postgres channel on which a writer outside the cluster announces its commits to the
/// relays (the nodes' own commits reach them over NATS).
pub const FEED_CHANNEL: &str = "esqase_feed";

/// One command's transaction, serialized with every other command of the same firm; an
/// event-log writer (see [`WriterTx`]).
pub struct CommandTx {
    tx: WriterTx,
}

impl CommandTx {
    /// The connection, for loading streams and for writes that belong with the events.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}

impl EventLog {
    /// A log over `pool` that keeps `read_models` current, waits on `barrier`, and raises
    /// `committed` after each commit (the relay waits on it).
    pub fn new(
        pool: PgPool,
        read_models: Arc<dyn ReadModels>,
        barrier: Arc<dyn Barrier>,
        committed: Arc<Notify>,
    ) -> Self {
        EventLog { pool, read_models, barrier, committed, appended: AtomicU64::new(0) }
    }

    /// The signal this log raises after each commit (the relay waits on it).
    pub fn commit_signal(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// How many events this process has appended.
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    /// Starts a command on `firm`'s data.
    ///
    /// Commands of one firm take turns (a transaction-scoped advisory lock, taken before the
    /// first write so before the transaction has an id). So within a firm, feed order is commit
    /// order: decisions see the latest state, and the audit chain is the same on every rebuild.
    pub async fn begin(&self, firm: FirmId) -> Result<CommandTx, CommandError> {
        Ok(CommandTx { tx: WriterTx::begin(&self.pool, Some(firm_lock_key(firm))).await? })
    }

    /// Appends `appends` and folds them into the read models, inside the command's transaction.
    pub async fn append(
        &self,
        tx: &mut CommandTx,
        metadata: &Metadata,
        appends: &[Append],
    ) -> Result<Vec<RecordedEvent>, CommandError> {
        let recorded = store::append(&mut tx.tx, metadata, appends).await?;
        self.read_models.apply(&mut tx.tx, &recorded).await?;
        Ok(recorded)
    }

    /// Commits, wakes this node's relay, and returns once every node reflects `recorded`.
    ///
    /// No connection is taken after the commit: the barrier tells the other nodes (and wakes
    /// their relays) over NATS; outside the cluster a NOTIFY after it wakes the relays.
    pub async fn commit(&self, tx: CommandTx, recorded: &[RecordedEvent]) -> Result<(), CommandError> {
        // Outside a request (usage flush, expiry sweep) there is no deadline to tell.
        let _ = COMMITTING.try_with(|committing| committing.store(true, Ordering::SeqCst));
        tx.tx.commit().await?;
        if recorded.is_empty() {
            return Ok(());
        }
        if !self.barrier.announces_commits() {
            // Not inside the transaction: a NOTIFY there takes a cluster-wide lock held through
            // the commit's WAL flush, which serializes every notifying commit on the server.
            if let Err(error) = sqlx::query("SELECT pg_notify($1, '')").bind(FEED_CHANNEL).execute(&self.pool).await {
                tracing::warn!(%error, "could not wake the relays; their fallback poll will find the events");
            }
        }
        self.appended.fetch_add(recorded.len() as u64, Ordering::Relaxed);
        self.committed.notify_one();
        self.barrier.wait_for(recorded).await;
        Ok(())
    }
}

tokio::task_local! {
    /// Set by whoever serves a request under a deadline (the API's request deadline): raised
    /// by [`EventLog::commit`] just before it sends COMMIT. From then on the outcome is not the
    /// caller's to abandon: a COMMIT on the wire may succeed, and a committed command must
    /// never be answered with an error, so the deadline waits for it instead.
    pub static COMMITTING: Arc<std::sync::atomic::AtomicBool>;
}

/// The advisory lock key of a firm's command serialization.
fn firm_lock_key(firm: FirmId) -> i64 {
    let bytes = firm.as_uuid().into_bytes();
    // UUID v7's random tail: 8 well-mixed bytes; a rare collision only serializes two firms.
    i64::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]])
}

/// Runs an attempt (an `async` block that loads, decides and commits); if it lost a race on a
/// stream, decides again once on the new state. A macro, not a function taking a closure, so the
/// attempt's future stays `Send` for axum.
#[macro_export]
macro_rules! retry_once {
    ($attempt:expr) => {
        match $attempt.await {
            Err($crate::CommandError::Conflict) => $attempt.await,
            other => other,
        }
    };
}

/// The current time at the contract's precision.
pub fn now() -> domain::Timestamp {
    domain::to_millis(chrono::Utc::now())
}
