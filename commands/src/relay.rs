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
            // One at a time: if NATS drops a message, nothing after it may be stored before it is
            // published again, or the stream would leave feed order.
            let mut previous = at;
            for event in &batch {
                let ack = self.publish(&jetstream, event, previous).await?;
                ack.await.map_err(|e| RelayError::Nats(e.to_string()))?;
                previous = event.feed;
            }
            at = previous;
            store::save_checkpoint(&mut conn, CHECKPOINT, at).await?;
            self.status.published.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.status.checkpoint_position.store(at.position, Ordering::Relaxed);
        }
    }

    async fn publish(
        &self,
        jetstream: &jetstream::Context,
        event: &store::RecordedEvent,
        previous: FeedPosition,
    ) -> Result<jetstream::context::PublishAckFuture, RelayError> {
        let payload = serde_json::to_vec(event).map_err(|e| RelayError::Nats(e.to_string()))?;
        let subject = self.names.subject(event.metadata.firm_id, event.stream_kind, event.event.event_type());
        let publish = jetstream::context::Publish::build()
            .payload(payload.into())
            .message_id(event.id.to_string())
            .header(headers::POSITION, event.feed.to_string().as_str())
            .header(headers::PREVIOUS, previous.to_string().as_str());
        jetstream.send_publish(subject, publish).await.map_err(|e| RelayError::Nats(e.to_string()))
    }
}
