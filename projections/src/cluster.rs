//! The consistency barrier across nodes. Each node publishes how far its verification state has
//! applied the feed to a NATS KV bucket whose entries expire (a dead node drops out); a command
//! whose events change verification returns only once every live node has applied them, or
//! once the bound passes. A node that cannot show it is current (its NATS connection is down)
//! does not trust its cache: it verifies against Postgres until it is current again.

use crate::runner::ProjectionStatus;
use crate::verification::SharedVerification;
use async_nats::jetstream::{self, consumer, stream};
use commands::nats::NatsNames;
use commands::store::{FeedPosition, RecordedEvent};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a node's entry lives without a refresh: a node silent for longer counts as gone.
pub const NODE_TTL: Duration = Duration::from_secs(5);

/// How often a node refreshes its entry even when nothing changes.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// This node in the cluster.
pub struct Cluster {
    /// This node's id (its KV key).
    pub node_id: Uuid,
    nats: async_nats::Client,
    jetstream: jetstream::Context,
    names: NatsNames,
    /// This node's verification progress.
    status: Arc<ProjectionStatus>,
    /// This node's verification state: a command's own events are folded in at once.
    verification: SharedVerification,
    /// How long a command waits at most.
    bound: Duration,
}

impl Cluster {
    /// A node publishing `status` under a fresh id, folding its own commands into `verification`.
    pub fn new(
        nats: async_nats::Client,
        names: NatsNames,
        verification: SharedVerification,
        status: Arc<ProjectionStatus>,
        bound: Duration,
    ) -> Self {
        let jetstream = jetstream::new(nats.clone());
        Cluster { node_id: Uuid::now_v7(), nats, jetstream, names, status, verification, bound }
    }

    /// The nodes stream (one subject per node, last message kept, messages expire). Asked for
    /// each time: it lives in memory, so a restarted NATS server has to make it again.
    async fn bucket(&self) -> Option<stream::Stream> {
        // While NATS is unreachable, asking would only wait for a time-out. Nodes that lost it
        // verify against Postgres meanwhile, so there is nobody to wait for.
        if self.nats.connection_state() != async_nats::connection::State::Connected {
            return None;
        }
        self.jetstream
            .get_or_create_stream(stream::Config {
                name: self.names.nodes_bucket(),
                subjects: vec![format!("{}.*", self.names.nodes_bucket())],
                max_messages_per_subject: 1,
                max_age: NODE_TTL,
                // JetStream refuses a de-duplication window longer than the age limit.
                duplicate_window: Duration::from_secs(1),
                storage: stream::StorageType::Memory,
                ..Default::default()
            })
            .await
            .map_err(|error| tracing::warn!(%error, "the nodes stream is not available"))
            .ok()
    }

    fn subject(&self) -> String {
        format!("{}.{}", self.names.nodes_bucket(), self.node_id.simple())
    }

    /// Publishes this node's position on every change and every heartbeat, until shutdown.
    pub async fn publish(&self, shutdown: CancellationToken) {
        let mut applied = self.status.applied.subscribe();
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                changed = applied.changed() => if changed.is_err() { break },
                _ = heartbeat.tick() => {}
            }
            let at = *applied.borrow_and_update();
            if self.bucket().await.is_some() {
                let published = self.jetstream.publish(self.subject(), at.to_string().into()).await;
                if let Err(error) = published {
                    tracing::debug!(%error, "could not publish this node's position");
                }
            }
        }
        // Leave at once rather than after the TTL: commands stop waiting for this node.
        if let Some(bucket) = self.bucket().await {
            let _ = bucket.purge().filter(self.subject()).await;
        }
    }

    /// Folds this node's own committed events at once, then waits until every other live node
    /// has applied the feed up to them, within the bound.
    pub async fn wait_for(&self, events: &[RecordedEvent]) -> bool {
        let Some(position) = events.iter().map(|e| e.feed).max() else { return true };
        {
            let mut verification = self.verification.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            for event in events {
                verification.apply_own(event);
            }
        }
        // Every NATS round trip below counts against the bound, not only the wait for other nodes.
        match tokio::time::timeout(self.bound, self.wait_for_others(position)).await {
            Ok(confirmed) => confirmed,
            Err(_) => {
                tracing::warn!(%position, "NATS did not answer within the bound");
                false
            }
        }
    }

    async fn wait_for_others(&self, position: FeedPosition) -> bool {
        let deadline = tokio::time::Instant::now() + self.bound;
        let Some(bucket) = self.bucket().await else {
            // Without NATS, no node trusts its cache (each verifies against Postgres), so the
            // events folded above are enough for this node and there is nobody to wait for.
            return self.nats.connection_state() != async_nats::connection::State::Connected;
        };
        // This node too: its own events may not have been the next of their streams here.
        if !self.status.wait_for(position, self.bound).await {
            tracing::warn!(%position, "this node did not apply its own command within the bound");
            return false;
        }
        let me = self.subject();
        let others = match bucket.clone().info().await {
            Ok(info) => info.state.subjects_count.saturating_sub(1),
            Err(error) => {
                tracing::warn!(%error, "reading the nodes stream failed");
                return false;
            }
        };
        if others == 0 {
            return true;
        }
        let updates = bucket
            .create_consumer(consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                filter_subject: format!("{}.*", self.names.nodes_bucket()),
                ..Default::default()
            })
            .await;
        let updates = match updates {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = &updates {
            tracing::warn!(%error, "watching the nodes stream failed");
        }
        let Ok(mut updates) = updates else {
            tracing::warn!("could not watch the nodes stream");
            return false;
        };
        // The consumer replays each live node's latest position (the last of them with nothing
        // pending), then follows new ones.
        let mut nodes: HashMap<String, FeedPosition> = HashMap::new();
        let mut replayed = false;
        loop {
            if replayed && nodes.iter().all(|(node, at)| *node == me || *at >= position) {
                return true;
            }
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = match tokio::time::timeout(remaining, updates.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "watching the nodes stream failed");
                    return false;
                }
                Ok(None) => {
                    tracing::warn!("the nodes stream watch ended");
                    return false;
                }
                Err(_) => {
                    tracing::warn!(?nodes, %position, "nodes behind at the bound");
                    return false;
                }
            };
            if let Some(at) = std::str::from_utf8(&message.payload).ok().and_then(|v| v.parse().ok()) {
                nodes.insert(message.subject.to_string(), at);
            }
            replayed |= message.info().map(|info| info.pending == 0).unwrap_or(true) || nodes.len() as u64 > others;
        }
    }
}

#[async_trait::async_trait]
impl commands::Barrier for Cluster {
    async fn wait_for(&self, events: &[RecordedEvent]) {
        if !Cluster::wait_for(self, events).await {
            tracing::warn!("not every node confirmed a command within the bound");
        }
    }
}
