//! The consistency barrier across nodes, over core NATS: how "the very next request is
//! rejected, on every node" holds without waiting on the feed.
//!
//! Every node has one subscription to `<prefix>_cluster.>` and handles its messages in order:
//! - **Heartbeats.** Each node publishes `cluster.hb.<node>` every [`HEARTBEAT`]. When a node's
//!   own heartbeat comes back, it holds a **lease** until the heartbeat's send time + [`LEASE`]:
//!   everything the NATS server ordered before that heartbeat has been handled here. A node
//!   answers from its cache only while it holds a lease (see [`Cluster::trusts_cache`]).
//! - **Commits.** After a command commits, its node folds the events into its own state, then
//!   publishes them as `cluster.commit.<node>` with a reply subject and flushes. Every other
//!   node folds them (or, when a version is missing there, stops trusting its cache until its
//!   feed reader has caught up from Postgres) and replies at once. When the committing node's
//!   own commit message comes back, it knows every peer whose heartbeat the server ordered
//!   before the commit; it returns once each of them has replied.
//! - **Fail closed.** If a peer does not reply within [`REPLY_WAIT`], or the commit cannot be
//!   published, the command waits until [`LEASE`] + [`MARGIN`] after the flush: by then any node
//!   that has not handled the commit has lost its lease (its own heartbeats since were ordered
//!   after the commit, so they would have brought it), and verifies against Postgres.
//! - **A silent peer.** A peer that stops being heard may be committing without reaching NATS.
//!   While one is silent (heard within [`PEER_MEMORY`] but not within [`LEASE`]), a node trusts
//!   its cache only if it has also read the Postgres feed to its end, in a read begun within
//!   [`POSTGRES_FRESH`]; the committing node's fallback wait covers that too.
//!
//! Nothing here touches Postgres, and nothing else on the cluster (another database's open
//! transaction, a slow JetStream consumer) can delay a command's answer.

use crate::runner::ProjectionStatus;
use crate::verification::SharedVerification;
use commands::nats::NatsNames;
use commands::store::{FeedPosition, RecordedEvent};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a node's own heartbeat, once back, lets it trust its cache (from the send).
pub const LEASE: Duration = Duration::from_secs(1);

/// How often each node publishes a heartbeat: several per lease, so one lost changes nothing.
pub const HEARTBEAT: Duration = Duration::from_millis(150);

/// How long a command waits for peers' replies before it falls back to outwaiting leases.
pub const REPLY_WAIT: Duration = Duration::from_millis(500);

/// How long a command waits for NATS to take its commit message.
const FLUSH_BOUND: Duration = Duration::from_millis(250);

/// Added to [`LEASE`] in the fallback wait, for the time between a lease check and an answer.
pub const MARGIN: Duration = Duration::from_millis(100);

/// How long a peer that fell silent is remembered (and the Postgres check kept on for it).
pub const PEER_MEMORY: Duration = Duration::from_secs(30);

/// While a peer is silent, how recent this node's last full read of the Postgres feed must be.
pub const POSTGRES_FRESH: Duration = Duration::from_secs(1);

/// A commit message larger than this carries only its position: peers read the events from
/// Postgres (NATS refuses payloads over its limit, 1 MiB by default).
const MAX_NOTICE_BYTES: usize = 256 * 1024;

/// What a node tells the others after a commit.
#[derive(Serialize, Deserialize)]
struct CommitNotice {
    /// The committing node's number for it (its reply subject ends in it too).
    id: u64,
    /// The last event's feed position.
    upto: FeedPosition,
    /// The events, unless too large to send.
    events: Option<Vec<RecordedEvent>>,
}

/// What a waiting command has learned about its commit.
#[derive(Clone, Default)]
struct Progress {
    /// The peers heard within the lease when the commit message came back here.
    peers: Option<HashSet<Uuid>>,
    /// The peers that have replied.
    replied: HashSet<Uuid>,
}

impl Progress {
    fn complete(&self) -> bool {
        self.peers.as_ref().is_some_and(|peers| peers.is_subset(&self.replied))
    }
}

/// This node in the cluster.
pub struct Cluster {
    /// This node's id (in its subjects).
    pub node_id: Uuid,
    nats: async_nats::Client,
    names: NatsNames,
    /// This node's verification progress (its feed reader).
    status: Arc<ProjectionStatus>,
    /// This node's verification state: committed events are folded into it at once.
    verification: SharedVerification,
    /// Woken when any node commits, so that the relay (if it leads here) publishes at once.
    relay_wake: Arc<Notify>,
    /// The clock that the lease and peers' last-heard times count from.
    epoch: Instant,
    /// Until when (µs since `epoch`) this node holds its lease; 0 for none.
    lease_until: AtomicU64,
    /// The oldest last-heard time (µs since `epoch`) among remembered peers; `u64::MAX` with none.
    oldest_heard: AtomicU64,
    /// Peers by id: when each was last heard.
    peers: Mutex<HashMap<Uuid, Instant>>,
    /// Commands waiting on their commit, by notice id.
    waiting: Mutex<HashMap<u64, watch::Sender<Progress>>>,
    /// The number of the next commit notice.
    next_notice: AtomicU64,
    /// Commits every live peer confirmed, for `/metrics`.
    pub confirmed: AtomicU64,
    /// Commits that had to outwait leases instead, for `/metrics` (each logged with why).
    pub outwaited: AtomicU64,
}

impl Cluster {
    /// A node under a fresh id; `relay_wake` is this node's relay's wake-up.
    pub fn new(
        nats: async_nats::Client,
        names: NatsNames,
        verification: SharedVerification,
        status: Arc<ProjectionStatus>,
        relay_wake: Arc<Notify>,
    ) -> Self {
        Cluster {
            node_id: Uuid::now_v7(),
            nats,
            names,
            status,
            verification,
            relay_wake,
            epoch: Instant::now(),
            lease_until: AtomicU64::new(0),
            oldest_heard: AtomicU64::new(u64::MAX),
            peers: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            next_notice: AtomicU64::new(1),
            confirmed: AtomicU64::new(0),
            outwaited: AtomicU64::new(0),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    fn subject(&self, kind: &str) -> String {
        self.names.cluster_subject(kind, self.node_id)
    }

    fn reply_subject(&self, id: u64) -> String {
        format!("{}.{id}", self.names.cluster_replies(self.node_id))
    }

    /// True while this node can show that its verification state reflects every committed
    /// change: its NATS connection is up, it holds its lease, its feed reader has caught up
    /// since it last may have missed a message and knows of no missing event, and, while a
    /// peer is silent, it has read the Postgres feed to its end recently. Otherwise keys are
    /// verified against Postgres.
    pub fn trusts_cache(&self) -> bool {
        let status = &self.status;
        let now = self.micros(Instant::now());
        let caught_up_since = status.caught_up_since_ms.load(Ordering::Relaxed);
        let basics = self.nats.connection_state() == async_nats::connection::State::Connected
            && status.caught_up.load(Ordering::Relaxed)
            && caught_up_since > status.missed_at_ms.load(Ordering::Relaxed)
            && now < self.lease_until.load(Ordering::Relaxed);
        if !basics {
            return false;
        }
        let oldest_heard = self.oldest_heard.load(Ordering::Relaxed);
        let peer_silent = oldest_heard != u64::MAX && now.saturating_sub(oldest_heard) > LEASE.as_micros() as u64;
        !peer_silent || chrono::Utc::now().timestamp_millis() - caught_up_since <= POSTGRES_FRESH.as_millis() as i64
    }

    /// How many nodes share the cluster as far as this one knows: itself and the peers heard
    /// within [`PEER_MEMORY`] that have not said goodbye.
    pub fn known_nodes(&self) -> usize {
        1 + self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    /// Handles the cluster's messages and sends heartbeats until shutdown; says goodbye then.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut messages = self.nats.subscribe(self.names.cluster_subjects()).await?;
        let mut replies = self.nats.subscribe(format!("{}.*", self.names.cluster_replies(self.node_id))).await?;
        // Whatever was committed before the subscription took effect only Postgres can tell.
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                flushed = self.nats.flush() => if flushed.is_ok() { break },
            }
            tokio::time::sleep(HEARTBEAT).await;
        }
        self.status.mark_missed();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                message = messages.next() => match message {
                    Some(message) => self.on_message(message).await,
                    None => anyhow::bail!("the cluster subscription ended"),
                },
                reply = replies.next() => match reply {
                    Some(reply) => self.on_reply(&reply),
                    None => anyhow::bail!("the cluster reply subscription ended"),
                },
                _ = heartbeat.tick() => self.beat().await,
            }
        }
        // Leave at once rather than after a lease: commands stop waiting for this node.
        let _ = self.nats.publish(self.subject("bye"), bytes::Bytes::new()).await;
        let _ = tokio::time::timeout(FLUSH_BOUND, self.nats.flush()).await;
        Ok(())
    }

    async fn beat(&self) {
        let sent = self.micros(Instant::now());
        if let Err(error) = self.nats.publish(self.subject("hb"), sent.to_string().into()).await {
            tracing::debug!(%error, "could not send a heartbeat");
        }
        let now = Instant::now();
        let mut peers = self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        peers.retain(|_, heard| now.saturating_duration_since(*heard) < PEER_MEMORY);
        self.store_oldest_heard(&peers);
    }

    fn store_oldest_heard(&self, peers: &HashMap<Uuid, Instant>) {
        let oldest = peers.values().min().map_or(u64::MAX, |heard| self.micros(*heard));
        self.oldest_heard.store(oldest, Ordering::Relaxed);
    }

    fn heard(&self, node: Uuid) {
        let mut peers = self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        peers.insert(node, Instant::now());
        self.store_oldest_heard(&peers);
    }

    async fn on_message(&self, message: async_nats::Message) {
        // `<prefix>_cluster.<kind>.<node>`: the last two tokens (the prefix has no dot).
        let parsed = message.subject.rsplit_once('.').and_then(|(head, node)| {
            let kind = head.rsplit_once('.').map_or(head, |(_, kind)| kind);
            Some((kind.to_owned(), Uuid::try_parse(node).ok()?))
        });
        let Some((kind, node)) = parsed else {
            tracing::warn!(subject = %message.subject, "a cluster message on an unknown subject");
            return;
        };
        let mine = node == self.node_id;
        match kind.as_str() {
            "hb" if mine => {
                let sent = std::str::from_utf8(&message.payload).ok().and_then(|v| v.parse::<u64>().ok());
                if let Some(sent) = sent {
                    self.lease_until.fetch_max(sent.saturating_add(LEASE.as_micros() as u64), Ordering::Relaxed);
                }
            }
            "hb" => self.heard(node),
            "bye" if !mine => {
                let mut peers = self.peers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                peers.remove(&node);
                self.store_oldest_heard(&peers);
            }
            "commit" if mine => self.on_own_commit(&message),
            "commit" => {
                self.heard(node);
                self.on_peer_commit(&message).await;
            }
            _ => {}
        }
    }

    /// This node's commit message is back: every heartbeat the server ordered before it has
    /// been handled here, so the peers heard within the lease are all who may hold one.
    fn on_own_commit(&self, message: &async_nats::Message) {
        let Ok(notice) = serde_json::from_slice::<CommitNotice>(&message.payload) else { return };
        let now = Instant::now();
        let peers: HashSet<Uuid> = self
            .peers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|(_, heard)| now.saturating_duration_since(**heard) <= LEASE)
            .map(|(node, _)| *node)
            .collect();
        if let Some(progress) = self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&notice.id) {
            progress.send_modify(|p| p.peers = Some(peers));
        }
    }

    async fn on_peer_commit(&self, message: &async_nats::Message) {
        match serde_json::from_slice::<CommitNotice>(&message.payload) {
            Ok(notice) => match &notice.events {
                Some(events) => self.fold(events),
                None => self.behind(notice.upto),
            },
            Err(error) => {
                // Something was committed, and this node cannot tell what: read Postgres.
                tracing::warn!(%error, "an unreadable commit message; reading the feed from Postgres");
                self.status.mark_missed();
            }
        }
        self.relay_wake.notify_one();
        if let Some(reply) = &message.reply {
            let me = self.node_id.simple().to_string();
            if let Err(error) = self.nats.publish(reply.clone(), me.into()).await {
                tracing::debug!(%error, "could not reply to a commit");
            }
        }
    }

    fn on_reply(&self, reply: &async_nats::Message) {
        let id = reply.subject.rsplit('.').next().and_then(|id| id.parse::<u64>().ok());
        let node = std::str::from_utf8(&reply.payload).ok().and_then(|v| Uuid::try_parse(v).ok());
        let (Some(id), Some(node)) = (id, node) else { return };
        if let Some(progress) = self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&id) {
            progress.send_modify(|p| {
                p.replied.insert(node);
            });
        }
    }

    /// Folds committed events into this node's state; one that cannot be folded ahead of the
    /// feed (its stream's previous version is not here yet) makes the state not current until
    /// the feed reader has read that far from Postgres.
    fn fold(&self, events: &[RecordedEvent]) {
        let missing = {
            let mut verification = self.verification.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            let mut missing = None;
            for event in events {
                verification.apply_own(event);
                if !verification.reflects(event) {
                    missing = missing.max(Some(event.feed));
                }
            }
            if let Some(position) = missing {
                verification.mark_behind(position);
            }
            missing
        };
        if missing.is_some() {
            self.status.wake.notify_one();
        }
    }

    fn behind(&self, position: FeedPosition) {
        self.verification.write().unwrap_or_else(|poisoned| poisoned.into_inner()).mark_behind(position);
        self.status.wake.notify_one();
    }

    /// Folds this node's own committed events at once, tells every node, and returns once
    /// each live node has applied them, or once no node can still be answering without them.
    /// True if every peer confirmed.
    pub async fn wait_for(&self, events: &[RecordedEvent]) -> bool {
        let Some(upto) = events.iter().map(|e| e.feed).max() else { return true };
        let committed = Instant::now();
        self.fold(events);
        let id = self.next_notice.fetch_add(1, Ordering::Relaxed);
        let mut notice = CommitNotice { id, upto, events: Some(events.to_vec()) };
        let mut payload = serde_json::to_vec(&notice).unwrap_or_default();
        if payload.len() > MAX_NOTICE_BYTES || payload.is_empty() {
            notice.events = None;
            payload = serde_json::to_vec(&notice).unwrap_or_default();
        }
        let (progress, mut updates) = watch::channel(Progress::default());
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id, progress);
        let outcome = self.confirm(id, payload, &mut updates).await;
        self.waiting.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&id);
        match outcome {
            Ok(()) => {
                self.confirmed.fetch_add(1, Ordering::Relaxed);
                let progress = updates.borrow();
                let peers: Vec<String> =
                    progress.peers.iter().flatten().map(|node| node.simple().to_string()).collect();
                tracing::debug!(%upto, ?peers, elapsed_us = committed.elapsed().as_micros() as u64, "every node confirmed a commit");
                true
            }
            Err((flushed, why)) => {
                self.outwaited.fetch_add(1, Ordering::Relaxed);
                // Outwait every lease that may not have seen this commit.
                let since = flushed.unwrap_or(committed + FLUSH_BOUND);
                let progress = updates.borrow().clone();
                let missing: Vec<String> = progress
                    .peers
                    .iter()
                    .flatten()
                    .filter(|node| !progress.replied.contains(node))
                    .map(|node| node.simple().to_string())
                    .collect();
                tracing::warn!(%upto, why, ?missing, replied = progress.replied.len(), "a commit was not confirmed by every node; waiting out their leases");
                tokio::time::sleep_until(since + LEASE + MARGIN).await;
                false
            }
        }
    }

    /// Publishes the commit and collects replies; on failure, when the message was flushed
    /// (if it was) and why not.
    async fn confirm(
        &self,
        id: u64,
        payload: Vec<u8>,
        updates: &mut watch::Receiver<Progress>,
    ) -> Result<(), (Option<Instant>, &'static str)> {
        let published =
            self.nats.publish_with_reply(self.subject("commit"), self.reply_subject(id), payload.into()).await;
        if published.is_err() {
            return Err((None, "NATS did not take the commit message"));
        }
        match tokio::time::timeout(FLUSH_BOUND, self.nats.flush()).await {
            Ok(Ok(())) => {}
            _ => return Err((None, "NATS did not confirm the commit message in time")),
        }
        let flushed = Instant::now();
        match tokio::time::timeout_at(flushed + REPLY_WAIT, updates.wait_for(Progress::complete)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err((Some(flushed), "not every node replied in time")),
        }
    }
}

#[async_trait::async_trait]
impl commands::Barrier for Cluster {
    async fn wait_for(&self, events: &[RecordedEvent]) {
        Cluster::wait_for(self, events).await;
    }

    fn announces_commits(&self) -> bool {
        true
    }
}
