//! Rebuilding a Postgres projection from the log, beside the live tables, resumably.
//!
//! The projection is folded into shadow tables (`esqase_rebuild.<table>`, see [`shadow`]) a
//! chunk of the feed at a time; each chunk commits its rows together with the rebuild's place
//! in `checkpoints` (`rebuild:<projection>`), so a rebuild that is interrupted, or crashes, goes
//! on from its last chunk when it runs again. Meanwhile the live tables keep serving and the
//! commands keep folding into them. At the end the shadow tables get the live tables' indexes,
//! constraints and grants; then one short transaction takes the event-log writer lock
//! exclusively (no command can commit while it holds it), folds the events appended since the
//! last chunk, and swaps the shadow tables in.

mod shadow;

use crate::read_models::Rows;
use commands::store::{self, FeedPosition, RecordedEvent, StoreError};
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No projection has that name.
    #[error("no projection is named '{0}'; known: {known}, {audit}", known = crate::read_models::NAME, audit = crate::audit::NAME)]
    Unknown(String),
    /// Another process is rebuilding the same projection.
    #[error("another rebuild of {0} is running")]
    Busy(&'static str),
    /// The swap could not take its locks: a transaction kept the event-log writer lock or one
    /// of the tables that long, every time.
    #[error("could not take the locks to swap in the rebuilt {projection} after {attempts} attempts; run the command again to retry (the rebuilt tables are kept)")]
    SwapLocks { projection: &'static str, attempts: u32 },
    /// A migration changed the live tables while the rebuild ran; the next run starts over.
    #[error("the tables of {0} changed while it was rebuilt (a migration?); run the command again to start over")]
    TablesChanged(&'static str),
    /// The log or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// How to run a rebuild.
#[derive(Clone, Debug)]
pub struct Options {
    /// Discard a partial rebuild of this projection and start from the first event.
    pub restart: bool,
    /// Events folded per chunk: each commits with its checkpoint, so an interrupted rebuild
    /// loses at most one chunk; fewer, larger chunks write a row changed in many of them less
    /// often.
    pub chunk_events: u64,
    /// Stop, leaving the partial rebuild to be resumed, after this many chunks (none: go on to
    /// the swap).
    pub stop_after_chunks: Option<u64>,
}

/// The default [`Options::chunk_events`].
pub const CHUNK_EVENTS: u64 = 1_000_000;

impl Default for Options {
    fn default() -> Options {
        Options { restart: false, chunk_events: CHUNK_EVENTS, stop_after_chunks: None }
    }
}

/// Told how far a rebuild has got, after each batch of events it folds.
pub trait Progress: Send + Sync {
    /// `replayed` events of the log are folded (by this run and the runs it resumes), of
    /// `total` known so far (the log grows while a rebuild runs).
    fn report(&self, replayed: u64, total: u64);
}

/// No progress shown.
impl Progress for () {
    fn report(&self, _replayed: u64, _total: u64) {}
}

/// How a rebuild ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The rebuilt tables replaced the live ones; `replayed` events were folded into them.
    Swapped { replayed: u64 },
    /// Stopped after [`Options::stop_after_chunks`] chunks, `replayed` events in; the next
    /// run goes on from there.
    Paused { replayed: u64 },
}

impl Outcome {
    /// How many events are folded.
    pub fn replayed(self) -> u64 {
        match self {
            Outcome::Swapped { replayed } | Outcome::Paused { replayed } => replayed,
        }
    }
}

/// Events per message from the reading task to the fold (and per read in the swap).
const BATCH: usize = 10_000;

/// How long the swap waits for each lock (the writer lock, then the tables) before it lets go,
/// catches up and tries again: commands wait for it meanwhile, so never long.
const SWAP_LOCK_TIMEOUT: &str = "2s";

/// Attempts at the swap before giving up.
const SWAP_ATTEMPTS: u32 = 10;

/// Rebuilds projection `name` with the default options, no progress shown, resuming a partial
/// rebuild if there is one. Returns how many events it folded.
pub async fn rebuild(pool: &PgPool, name: &str) -> Result<u64, RebuildError> {
    Ok(rebuild_with(pool, name, &Options::default(), &()).await?.replayed())
}

#[derive(Clone, Copy)]
enum Projection {
    ReadModels,
    AuditLog,
}

impl Projection {
    fn named(name: &str) -> Result<Projection, RebuildError> {
        match name {
            crate::read_models::NAME => Ok(Projection::ReadModels),
            crate::audit::NAME => Ok(Projection::AuditLog),
            _ => Err(RebuildError::Unknown(name.to_owned())),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Projection::ReadModels => crate::read_models::NAME,
            Projection::AuditLog => crate::audit::NAME,
        }
    }

    fn tables(self) -> &'static [&'static str] {
        match self {
            Projection::ReadModels => crate::read_models::TABLES,
            Projection::AuditLog => crate::audit::TABLES,
        }
    }

    /// The session advisory lock a rebuild of this projection holds: "esqa", then "rbrm" or
    /// "rbal".
    fn lock(self) -> (i32, i32) {
        match self {
            Projection::ReadModels => (0x6573_7161, 0x7262_726d),
            Projection::AuditLog => (0x6573_7161, 0x7262_616c),
        }
    }

    fn checkpoint(self) -> String {
        format!("rebuild:{}", self.name())
    }
}

/// A projection's fold, as a rebuild drives it: fold batches, then write what is held before
/// each commit.
enum Fold {
    ReadModels(Rows),
    AuditLog(crate::audit::Rebuild),
}

impl Fold {
    fn new(projection: Projection) -> Fold {
        match projection {
            Projection::ReadModels => Fold::ReadModels(Rows::default()),
            Projection::AuditLog => Fold::AuditLog(crate::audit::Rebuild::default()),
        }
    }

    async fn apply(&mut self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        match self {
            Fold::ReadModels(rows) => rows.apply(conn, events).await,
            Fold::AuditLog(audit) => audit.apply(conn, events).await,
        }
    }

    async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        match self {
            Fold::ReadModels(rows) => rows.write(conn).await,
            Fold::AuditLog(audit) => audit.flush(conn).await,
        }
    }

    /// Forgets what a transaction that rolled back was folding.
    fn forget(&mut self) {
        match self {
            Fold::ReadModels(rows) => *rows = Rows::default(),
            Fold::AuditLog(audit) => audit.forget(),
        }
    }
}

/// One rebuild's state between its steps.
struct Run<'a> {
    pool: &'a PgPool,
    projection: Projection,
    /// The schema of the live tables.
    live: String,
    fold: Fold,
    /// The last event folded into the shadow tables and committed.
    at: FeedPosition,
    replayed: u64,
    total: u64,
    progress: &'a dyn Progress,
}

/// Rebuilds projection `name`: resumes a partial rebuild (unless `options.restart`), folds the
/// log into the shadow tables a chunk at a time, and swaps them in. One rebuild of a projection
/// runs at a time.
pub async fn rebuild_with(
    pool: &PgPool,
    name: &str,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Outcome, RebuildError> {
    let projection = Projection::named(name)?;
    // A connection of its own for the session lock, closed at the end (returned to the pool,
    // it would keep the lock).
    let mut guard = pool.acquire().await?.detach();
    let (class, object) = projection.lock();
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(object)
        .fetch_one(&mut guard)
        .await?;
    if !locked {
        return Err(RebuildError::Busy(projection.name()));
    }
    let outcome = run(pool, projection, options, progress).await;
    // Unlocked before the close: a session's locks go only once its backend has exited, a
    // moment after the close returns, and the next rebuild may start at once. If the unlock
    // fails, the connection is broken and its session ends with it.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1, $2)").bind(class).bind(object).execute(&mut guard).await;
    if let Err(error) = unlocked.map(drop).and(sqlx::Connection::close(guard).await) {
        tracing::debug!(%error, "releasing the rebuild's lock");
    }
    outcome
}

async fn run(
    pool: &PgPool,
    projection: Projection,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Outcome, RebuildError> {
    let tables = projection.tables();
    let mut conn = pool.acquire().await?;
    let live = shadow::live_schema(&mut conn, tables[0]).await?;
    let checkpoint: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id::text::bigint, position FROM checkpoints WHERE name = $1")
            .bind(projection.checkpoint())
            .fetch_optional(&mut *conn)
            .await?;
    let resumable = match checkpoint {
        Some(_) if !options.restart => {
            let matches = shadow::match_live(&mut conn, &live, tables).await?;
            if !matches {
                tracing::warn!(
                    projection = projection.name(),
                    "the partial rebuild's tables no longer match the live ones (a migration ran since?): starting over"
                );
            }
            matches
        }
        _ => false,
    };
    let at = match checkpoint {
        Some((tx_id, position)) if resumable => FeedPosition { tx_id, position },
        _ => {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            shadow::drop_all(&mut tx, tables).await?;
            shadow::create(&mut tx, &live, tables).await?;
            store::save_checkpoint(&mut tx, &projection.checkpoint(), FeedPosition::START).await?;
            tx.commit().await?;
            FeedPosition::START
        }
    };
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await?;
    let replayed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE (tx_id, position) <= ($1::text::xid8, $2)")
            .bind(at.tx_id.to_string())
            .bind(at.position)
            .fetch_one(&mut *conn)
            .await?;
    drop(conn);
    if at != FeedPosition::START {
        tracing::info!(projection = projection.name(), replayed, %at, "resuming a partial rebuild");
    }
    let mut run = Run {
        pool,
        projection,
        live,
        fold: Fold::new(projection),
        at,
        replayed: u64::try_from(replayed).unwrap_or(0),
        total: u64::try_from(total).unwrap_or(0),
        progress,
    };
    run.progress.report(run.replayed, run.total);
    let chunk_events = options.chunk_events.max(1);
    let mut chunks = 0;
    // Chunks until one comes back short: the feed's horizon is reached.
    loop {
        if options.stop_after_chunks.is_some_and(|stop| chunks >= stop) {
            return Ok(Outcome::Paused { replayed: run.replayed });
        }
        let folded = run.chunk(chunk_events).await?;
        chunks += 1;
        if folded < chunk_events {
            break;
        }
    }
    let started = Instant::now();
    let mut conn = pool.begin().await?;
    shadow::complete(&mut conn, &run.live, tables).await?;
    conn.commit().await?;
    tracing::debug!(
        projection = projection.name(),
        seconds = started.elapsed().as_secs_f64(),
        "indexes and constraints made"
    );
    // What was appended while the indexes were built, so that the swap has little left to fold.
    while run.chunk(chunk_events).await? == chunk_events {}
    for attempt in 1..=SWAP_ATTEMPTS {
        match run.swap().await {
            Ok(()) => {
                run.progress.report(run.replayed, run.total);
                return Ok(Outcome::Swapped { replayed: run.replayed });
            }
            Err(RebuildError::Database(sqlx::Error::Database(e))) if e.code().as_deref() == Some("55P03") => {
                run.fold.forget();
                tracing::info!(
                    projection = projection.name(),
                    attempt,
                    "the swap waited too long for its locks; catching up and trying again"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                while run.chunk(chunk_events).await? == chunk_events {}
            }
            Err(error) => return Err(error),
        }
    }
    Err(RebuildError::SwapLocks { projection: projection.name(), attempts: SWAP_ATTEMPTS })
}

impl Run<'_> {
    /// Folds up to `limit` events of the feed after the checkpoint into the shadow tables and
    /// commits them with the new checkpoint. The events are read on another connection, a
    /// batch ahead of the fold, and never past the feed's horizon (an event of a command still
    /// open may yet commit before events already visible). Returns how many it folded.
    async fn chunk(&mut self, limit: u64) -> Result<u64, RebuildError> {
        let started = Instant::now();
        let (sender, mut batches) = mpsc::channel(2);
        let reader = tokio::spawn(read_chunk(self.pool.clone(), self.at, limit, sender));
        let mut tx = self.pool.begin().await?;
        shadow::use_shadow(&mut tx, &self.live).await?;
        let mut at = self.at;
        let mut folded = 0u64;
        let result: Result<(), RebuildError> = async {
            while let Some(batch) = batches.recv().await {
                let events = batch?;
                self.fold.apply(&mut tx, &events).await?;
                folded += events.len() as u64;
                at = events.last().map_or(at, |e| e.feed);
                self.progress.report(self.replayed + folded, self.total.max(self.replayed + folded));
            }
            Ok(())
        }
        .await;
        // The reader stops at its limit or when the fold hangs up; either way it is done now.
        drop(batches);
        if let Err(error) = reader.await {
            tracing::warn!(%error, "the rebuild's reader task failed");
        }
        if let Err(error) = result {
            self.fold.forget();
            return Err(error);
        }
        if folded == 0 {
            return Ok(0);
        }
        let folding = started.elapsed();
        self.fold.flush(&mut tx).await?;
        store::save_checkpoint(&mut tx, &self.projection.checkpoint(), at).await?;
        tx.commit().await?;
        tracing::debug!(
            projection = self.projection.name(),
            events = folded,
            folding_s = folding.as_secs_f64(),
            writing_s = (started.elapsed() - folding).as_secs_f64(),
            "chunk committed"
        );
        self.at = at;
        self.replayed += folded;
        self.total = self.total.max(self.replayed);
        Ok(folded)
    }

    /// Folds the rest of the log and swaps the shadow tables in, in one transaction that holds
    /// the event-log writer lock exclusively: every command that appends waits for it, so the
    /// rest is everything there is, and no command commits into the old tables after the fold
    /// has read the log.
    async fn swap(&mut self) -> Result<(), RebuildError> {
        let started = Instant::now();
        let tables = self.projection.tables();
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'")).execute(&mut *tx).await?;
        // The writer lock before the tables: a command takes its tables only while holding the
        // writer lock, so taking them in this order cannot deadlock with one.
        sqlx::query("SELECT pg_advisory_xact_lock(k.class_id, k.object_id) FROM esqase_writer_lock_keys() k")
            .execute(&mut *tx)
            .await?;
        shadow::lock_live(&mut tx, &self.live, tables).await?;
        if !shadow::match_live(&mut tx, &self.live, tables).await? {
            return Err(RebuildError::TablesChanged(self.projection.name()));
        }
        shadow::use_shadow(&mut tx, &self.live).await?;
        let mut at = self.at;
        let mut folded = 0u64;
        loop {
            // No writer is open, so the whole log is readable without a horizon.
            let events = store::read_all_after(&mut tx, at, BATCH as i64).await?;
            let Some(last) = events.last() else { break };
            at = last.feed;
            self.fold.apply(&mut tx, &events).await?;
            folded += events.len() as u64;
        }
        self.fold.flush(&mut tx).await?;
        shadow::swap(&mut tx, &self.live, tables).await?;
        sqlx::query("DELETE FROM checkpoints WHERE name = $1")
            .bind(self.projection.checkpoint())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::debug!(
            projection = self.projection.name(),
            events = folded,
            seconds = started.elapsed().as_secs_f64(),
            "swapped"
        );
        self.at = at;
        self.replayed += folded;
        self.total = self.total.max(self.replayed);
        Ok(())
    }
}

/// Reads up to `limit` events after `after`, below the feed's horizon, in batches sent to
/// `batches`; stops early at the horizon or when the receiver hangs up.
async fn read_chunk(
    pool: PgPool,
    after: FeedPosition,
    limit: u64,
    batches: mpsc::Sender<Result<Vec<RecordedEvent>, RebuildError>>,
) {
    if let Err(error) = read_chunk_into(&pool, after, limit, &batches).await {
        // The fold hears of it and fails the chunk; if it hung up, there is no one to tell.
        let _ = batches.send(Err(error)).await;
    }
}

async fn read_chunk_into(
    pool: &PgPool,
    after: FeedPosition,
    limit: u64,
    batches: &mpsc::Sender<Result<Vec<RecordedEvent>, RebuildError>>,
) -> Result<(), RebuildError> {
    let mut conn = pool.acquire().await?;
    let horizon = store::feed_horizon(&mut conn).await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut events = std::pin::pin!(store::read_below(&mut conn, after, horizon, limit));
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(event) = events.try_next().await? {
        batch.push(event);
        if batch.len() == BATCH
            && batches.send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).await.is_err()
        {
            return Ok(());
        }
    }
    if !batch.is_empty() {
        // A receiver that hung up has failed the chunk already.
        let _ = batches.send(Ok(batch)).await;
    }
    Ok(())
}
