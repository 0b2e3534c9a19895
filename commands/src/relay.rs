//! The relay: publishes the committed feed to JetStream, in order, one leader at a time.
//!
//! The leader holds a Postgres advisory lock on a connection of its own; if it dies the lock
//! goes with its connection and another node takes over from the saved checkpoint. Each message
//! carries the event id as `Nats-Msg-Id`, so a republish after a crash is dropped by JetStream,
//! and the checkpoint moves only after JetStream has acknowledged.

use crate::log::FEED_CHANNEL;
use crate::nats::{headers, NatsNames};
use crate::store::{self, FeedPosition, StoreError};
use async_nats::jetstream;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The relay's checkpoint name.
pub const CHECKPOINT: &str = "relay";

/// The advisory lock that elects the relay leader.
const LEADER_LOCK: i64 = 0x6573_7161_7365_0001;

/// Events read from the feed and published per round trip.
const BATCH: i64 = 500;

/// When nothing wakes the relay, it looks anyway this often (a lost wake-up costs this much).
const FALLBACK_POLL: Duration = Duration::from_secs(1);

/// How long the relay waits for JetStream to acknowledge a publish (or answer a request) before
/// it ends its term and starts again: an acknowledgement takes well under a millisecond, and
/// one lost with a NATS restart would otherwise hold the feed back for the client's default 5 s.
const ACK_BOUND: Duration = Duration::from_secs(1);

/// How often a relay paused by a NATS outage looks whether NATS is back.
const NATS_CHECK: Duration = Duration::from_millis(50);

/// What the relay has done, for `/metrics` and `/readyz`.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// True while this node is the leader.
    pub leader: AtomicBool,
    /// Events this node has published.
    pub published: AtomicU64,
    /// The global sequence of the last event this node has published and saved.
    pub checkpoint_position: AtomicI64,
}

/// Why a leadership term ended.
#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("JetStream: {0}")]
    Nats(String),
}

/// Publishes the feed to JetStream.
pub struct Relay {
    pub pool: PgPool,
    /// Where to publish (JetStream), and whether it is reachable now.
    pub nats: async_nats::Client,
    /// Subject and stream names.
    pub names: NatsNames,
    /// Raised by this node's commits, and by other nodes' commits as the cluster hears of them
    /// (writers outside the cluster NOTIFY [`FEED_CHANNEL`] instead).
    pub wake: Arc<Notify>,
    /// Shared with `/metrics`.
    pub status: Arc<RelayStatus>,
}

impl Relay {
    /// Runs until `shutdown`: waits to lead, then publishes; after an error, backs off and tries again.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(error) => {
                    tracing::warn!(%error, "relay paused");
                    self.status.leader.store(false, Ordering::Relaxed);
                    if self.nats.connection_state() != async_nats::connection::State::Connected {
                        // Nothing to try while NATS is away; resume the moment it is back rather
                        // than after a backoff that grew through the outage.
                        self.until_nats_returns(&shutdown).await;
                        backoff = Duration::from_millis(100);
                        continue;
                    }
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        self.status.leader.store(false, Ordering::Relaxed);
    }

    async fn until_nats_returns(&self, shutdown: &CancellationToken) {
        while self.nats.connection_state() != async_nats::connection::State::Connected {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(NATS_CHECK) => {}
            }
        }
    }

    /// One term: become leader, then publish until shutdown or an error.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let mut jetstream = jetstream::new(self.nats.clone());
        jetstream.set_timeout(ACK_BOUND);
        // A connection of our own, closed (not pooled) when the term ends, so the lock goes with it.
        let mut conn = self.pool.acquire().await?.detach();
        // The checkpoint saves on it need not wait for the WAL to reach the disk: one lost in a
        // crash of Postgres only makes the next leader publish a few events again, which
        // JetStream drops by their message ids; meanwhile the feed never waits on an fsync here.
        sqlx::query("SET synchronous_commit = off").execute(&mut conn).await?;
        loop {
            let leader: bool =
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LEADER_LOCK).fetch_one(&mut conn).await?;
            if leader {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(FALLBACK_POLL) => {}
            }
        }
        crate::nats::ensure_stream(&jetstream, &self.names).await.map_err(|e| RelayError::Nats(e.to_string()))?;
        self.status.leader.store(true, Ordering::Relaxed);
        tracing::info!("relay leading");
        // Writers outside the cluster announce their commits here (see `Barrier::announces_commits`).
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(FEED_CHANNEL).await?;
        let mut at = store::load_checkpoint(&mut conn, CHECKPOINT).await?;
        // The message id of the last event this term sent; a term starts knowing none.
        let mut last_id: Option<String> = None;
        self.status.checkpoint_position.store(at.position, Ordering::Relaxed);
        loop {
            let batch = store::read_feed(&self.pool, at, BATCH).await?;
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = self.wake.notified() => {}
                    notification = listener.recv() => { notification?; }
                    _ = tokio::time::sleep(FALLBACK_POLL) => {}
                }
                continue;
            }
            // Pipelined: the whole batch is sent before the first acknowledgement is awaited. Each
            // message names the one sent before it (`Nats-Expected-Last-Msg-Id`), so if NATS
            // drops one, JetStream stores nothing after it: the stream keeps feed order, and the
            // next term resumes from the first unacknowledged event (what was stored already is
            // dropped as a duplicate by its message id, before its expectation is judged).
            let mut sent = Vec::with_capacity(batch.len());
            let mut previous = at;
            for event in &batch {
                let ack = self.publish(&jetstream, event, previous, last_id.as_deref()).await?;
                sent.push((event.feed, ack));
                previous = event.feed;
                last_id = Some(event.id.to_string());
            }
            let (mut acknowledged, mut count, mut failure) = (at, 0u64, None);
            for (feed, ack) in sent {
                match ack.await {
                    Ok(_) => (acknowledged, count) = (feed, count + 1),
                    Err(error) => {
                        failure = Some(error);
                        break;
                    }
                }
            }
            if acknowledged != at {
                at = acknowledged;
                store::save_checkpoint(&mut conn, CHECKPOINT, at).await?;
                self.status.published.fetch_add(count, Ordering::Relaxed);
                self.status.checkpoint_position.store(at.position, Ordering::Relaxed);
            }
            if let Some(error) = failure {
                return Err(RelayError::Nats(error.to_string()));
            }
        }
    }

    /// Sends one event; `after` is the message id of the event sent just before it in this
    /// term, which JetStream must have stored last for it to store this one.
    async fn publish(
        &self,
        jetstream: &jetstream::Context,
        event: &store::RecordedEvent,
        previous: FeedPosition,
        after: Option<&str>,
    ) -> Result<jetstream::context::PublishAckFuture, RelayError> {
        let payload = serde_json::to_vec(event).map_err(|e| RelayError::Nats(e.to_string()))?;
        let subject = self.names.subject(event.metadata.firm_id, event.stream_kind, event.event.event_type());
        let publish = jetstream::context::Publish::build()
            .payload(payload.into())
            .message_id(event.id.to_string())
            .header(headers::POSITION, event.feed.to_string().as_str())
            .header(headers::PREVIOUS, previous.to_string().as_str());
        let publish = match after {
            Some(id) => publish.expected_last_message_id(id),
            None => publish,
        };
        jetstream.send_publish(subject, publish).await.map_err(|e| RelayError::Nats(e.to_string()))
    }
}
