//! The projection runner: catches a projection up from the Postgres feed, then follows
//! JetStream, reading from Postgres whatever a message shows it has missed.
//!
//! A message carries its event's feed position and the position of the event the relay
//! published before it. When that previous position is beyond the projection's checkpoint, the
//! projection has missed something (it started late, NATS dropped it, a relay failed over), so
//! it reads the feed from Postgres up to the message. Events at or before the checkpoint are
//! skipped, so applying one twice changes nothing. With NATS down, a periodic catch-up from
//! Postgres keeps the projection moving.

use async_nats::jetstream;
use commands::nats::{headers, NatsNames};
use commands::store::{self, FeedPosition, RecordedEvent, StoreError};
use futures::StreamExt;
use sqlx::PgPool;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Why a projection could not apply events.
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The projection's own storage failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A named fold of the feed with a checkpoint.
#[async_trait::async_trait]
pub trait Projection: Send {
    /// Its name, for metrics and logs.
    fn name(&self) -> &'static str;
    /// How far it has applied the feed.
    fn checkpoint(&self) -> FeedPosition;
    /// Applies `events` (in feed order; those at or before the checkpoint are skipped) and moves
    /// the checkpoint to the last one, atomically with the changes where its storage allows.
    async fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError>;
}

/// What a running projection reports, for `/readyz`, `/metrics` and whether the verification
/// state may answer on its own ([`crate::cluster::Cluster::trusts_cache`]).
#[derive(Debug)]
pub struct ProjectionStatus {
    /// The global sequence of its checkpoint.
    pub checkpoint_position: AtomicI64,
    /// True once it has caught up with the Postgres feed and while it keeps up.
    pub caught_up: AtomicBool,
    /// True while its JetStream subscription is live.
    pub following: AtomicBool,
    /// Its checkpoint, for those who wait for it to pass a position.
    pub applied: tokio::sync::watch::Sender<FeedPosition>,
    /// Raised to make it read the Postgres feed now (NATS came back).
    pub wake: tokio::sync::Notify,
    /// When (ms since the Unix epoch) the latest catch-up that reached the end of the feed
    /// began: everything committed before then is applied.
    pub caught_up_since_ms: AtomicI64,
    /// When (ms since the Unix epoch) this node may last have missed a feed or cluster message
    /// (NATS (re)connected, a subscription started, the client dropped messages): only a
    /// catch-up from Postgres begun after it makes the state current again.
    pub missed_at_ms: AtomicI64,
    /// Raised on every NATS (re)connection. A JetStream consumer made before a NATS server
    /// restart keeps retrying its old server-side state for many seconds instead of ending, so
    /// the runner makes a new one whenever this changes.
    pub nats_connections: AtomicU64,
}

impl Default for ProjectionStatus {
    fn default() -> Self {
        ProjectionStatus {
            checkpoint_position: AtomicI64::new(0),
            caught_up: AtomicBool::new(false),
            following: AtomicBool::new(false),
            applied: tokio::sync::watch::channel(FeedPosition::START).0,
            wake: tokio::sync::Notify::new(),
            caught_up_since_ms: AtomicI64::new(0),
            missed_at_ms: AtomicI64::new(0),
            nats_connections: AtomicU64::new(0),
        }
    }
}

impl ProjectionStatus {
    /// Records that messages may have been missed, and asks for a catch-up from Postgres now.
    pub fn mark_missed(&self) {
        self.missed_at_ms.store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Returns once the projection has applied `position`, or after `bound`; true if it has.
    pub async fn wait_for(&self, position: FeedPosition, bound: Duration) -> bool {
        let mut applied = self.applied.subscribe();
        self.wake.notify_one();
        tokio::time::timeout(bound, applied.wait_for(|at| *at >= position)).await.is_ok_and(|r| r.is_ok())
    }
}

/// How often the runner reads the Postgres feed even without a message (NATS down or quiet).
pub const SAFETY_POLL: Duration = Duration::from_millis(250);

/// Runs one projection until shutdown.
pub struct Runner<P: Projection> {
    pub pool: PgPool,
    /// NATS, for the fast path (JetStream) and to know whether it is reachable.
    pub nats: async_nats::Client,
    /// Stream names.
    pub names: NatsNames,
    pub projection: P,
    /// Shared with `/readyz` and `/metrics`.
    pub status: Arc<ProjectionStatus>,
}

/// Events read per Postgres round trip.
const BATCH: i64 = 1000;

impl<P: Projection> Runner<P> {
    /// Reads the Postgres feed after the checkpoint until there is nothing more; returns how many events.
    pub async fn catch_up(&mut self) -> Result<usize, ProjectionError> {
        let began = chrono::Utc::now().timestamp_millis();
        let mut applied = 0;
        loop {
            let events = store::read_feed(&self.pool, self.projection.checkpoint(), BATCH).await?;
            if events.is_empty() {
                self.status.caught_up.store(true, Ordering::Relaxed);
                self.status.caught_up_since_ms.fetch_max(began, Ordering::Relaxed);
                self.publish_status();
                return Ok(applied);
            }
            applied += events.len();
            self.projection.apply(&events).await?;
            self.publish_status();
        }
    }

    fn publish_status(&self) {
        let checkpoint = self.projection.checkpoint();
        self.status.checkpoint_position.store(checkpoint.position, Ordering::Relaxed);
        self.status.applied.send_replace(checkpoint);
    }

    /// Handles one JetStream message of the feed.
    async fn on_message(&mut self, message: &async_nats::Message) -> Result<(), ProjectionError> {
        let header = |name| {
            message.headers.as_ref().and_then(|h| h.get(name)).and_then(|v| v.as_str().parse::<FeedPosition>().ok())
        };
        let (Some(position), Some(previous)) = (header(headers::POSITION), header(headers::PREVIOUS)) else {
            tracing::warn!(projection = self.projection.name(), subject = %message.subject, "feed message without positions");
            return Ok(());
        };
        let checkpoint = self.projection.checkpoint();
        if position <= checkpoint {
            return Ok(());
        }
        if previous > checkpoint {
            // Something between our checkpoint and this message never reached us: Postgres has it.
            self.catch_up().await?;
            return Ok(());
        }
        match serde_json::from_slice::<RecordedEvent>(&message.payload) {
            Ok(event) => {
                self.projection.apply(std::slice::from_ref(&event)).await?;
                self.publish_status();
            }
            Err(error) => {
                tracing::warn!(projection = self.projection.name(), %error, "unreadable feed message; reading Postgres");
                self.catch_up().await?;
            }
        }
        Ok(())
    }

    /// Follows the feed until `shutdown`; survives NATS and Postgres outages.
    pub async fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(error) = self.follow(&shutdown).await {
                tracing::warn!(projection = self.projection.name(), %error, "projection paused");
                self.status.following.store(false, Ordering::Relaxed);
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(SAFETY_POLL) => {}
                }
            }
        }
    }

    async fn subscribe(&self) -> Option<jetstream::consumer::pull::Ordered> {
        // While NATS is unreachable, asking would only wait for a time-out; Postgres serves.
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            return None;
        }
        let js = jetstream::new(self.nats.clone());
        let stream = commands::nats::ensure_stream(&js, &self.names).await.ok()?;
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                deliver_policy: jetstream::consumer::DeliverPolicy::New,
                ..Default::default()
            })
            .await
            .ok()?;
        consumer.messages().await.ok()
    }

    /// Reads the Postgres feed when nothing says an event was missed (a wake-up, the safety
    /// poll). While the feed subscription holds, a failure only waits for the next try: the
    /// subscription still brings every event (with Postgres away from this node, what others
    /// commit reaches it through JetStream), and a gap in it reads Postgres, and fails, on its
    /// own. Without the subscription a failure pauses the projection: it cannot show it is current.
    async fn poll_postgres(&mut self, subscribed: bool) -> Result<(), ProjectionError> {
        match self.catch_up().await {
            Err(error) if subscribed => {
                tracing::debug!(projection = self.projection.name(), %error, "Postgres feed poll failed; following JetStream");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }

    async fn follow(&mut self, shutdown: &CancellationToken) -> Result<(), ProjectionError> {
        // Subscribe before catching up, so nothing published meanwhile is missed.
        let mut connection = self.status.nats_connections.load(Ordering::Relaxed);
        let mut messages = self.subscribe().await;
        self.status.following.store(messages.is_some(), Ordering::Relaxed);
        self.catch_up().await?;
        let mut poll = tokio::time::interval(SAFETY_POLL);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = self.status.wake.notified() => self.poll_postgres(messages.is_some()).await?,
                message = next(&mut messages) => match message {
                    Some(message) => self.on_message(&message).await?,
                    None => {
                        // The subscription ended (NATS lost): poll Postgres, and try again later.
                        messages = None;
                        self.status.following.store(false, Ordering::Relaxed);
                    }
                },
                _ = poll.tick() => {
                    let now_connection = self.status.nats_connections.load(Ordering::Relaxed);
                    if now_connection != connection {
                        // NATS came back (maybe a restarted server): a fresh consumer, now.
                        connection = now_connection;
                        messages = None;
                        self.status.following.store(false, Ordering::Relaxed);
                    }
                    self.poll_postgres(messages.is_some()).await?;
                    if messages.is_none() {
                        messages = self.subscribe().await;
                        self.status.following.store(messages.is_some(), Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

/// The next message of an optional subscription; pending forever without one.
async fn next(messages: &mut Option<jetstream::consumer::pull::Ordered>) -> Option<async_nats::Message> {
    match messages {
        Some(stream) => match stream.next().await {
            Some(Ok(message)) => Some(message.message),
            Some(Err(error)) => {
                tracing::debug!(%error, "feed subscription error");
                None
            }
            None => None,
        },
        None => std::future::pending().await,
    }
}
