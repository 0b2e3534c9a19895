//! Key usage: counted in memory on the verification path, flushed as at most one Used event
//! per key per interval, in batches. Never a database write per request.

use crate::error::CommandError;
use crate::log::now;
use crate::store::{Append, Metadata};
use crate::Commands;
use domain::{Actor, Event, FirmId, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Uses of one key since the last flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pending {
    firm: FirmId,
    last_used_at: Timestamp,
    count: u64,
}

/// The uses counted on this node since the last flush.
#[derive(Debug, Default)]
pub struct UsageRecorder {
    /// Key id to its pending uses. A short lock per verified request; swapped out whole at flush.
    pending: Mutex<HashMap<Uuid, Pending>>,
}

impl UsageRecorder {
    /// Counts one authenticated request of `key` at `at`.
    pub fn record(&self, key: Uuid, firm: FirmId, at: Timestamp) {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        pending
            .entry(key)
            .and_modify(|p| {
                p.last_used_at = p.last_used_at.max(at);
                p.count += 1;
            })
            .or_insert(Pending { firm, last_used_at: at, count: 1 });
    }

    fn take(&self) -> HashMap<Uuid, Pending> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Puts back uses that could not be flushed, so none is lost.
    fn restore(&self, batch: HashMap<Uuid, Pending>) {
        let mut pending = self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (key, back) in batch {
            pending
                .entry(key)
                .and_modify(|p| {
                    p.last_used_at = p.last_used_at.max(back.last_used_at);
                    p.count += back.count;
                })
                .or_insert(back);
        }
    }

    /// Appends one Used event per key with uses, one transaction and one insert per firm.
    /// Returns how many events were appended.
    pub async fn flush(&self, commands: &Commands) -> Result<usize, CommandError> {
        let batch = self.take();
        let mut by_firm: BTreeMap<FirmId, Vec<(Uuid, Pending)>> = BTreeMap::new();
        for (key, pending) in &batch {
            by_firm.entry(pending.firm).or_default().push((*key, *pending));
        }
        let mut appended = 0;
        let mut unflushed = batch.clone();
        for (firm, keys) in by_firm {
            match flush_firm(commands, firm, &keys).await {
                Ok(n) => {
                    appended += n;
                    for (key, _) in &keys {
                        unflushed.remove(key);
                    }
                }
                Err(error) => {
                    self.restore(unflushed);
                    return Err(error);
                }
            }
        }
        Ok(appended)
    }

    /// Flushes every `interval` until `shutdown`, then once more.
    pub async fn run(&self, commands: &Commands, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let stopping = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = tick.tick() => false,
            };
            if let Err(error) = self.flush(commands).await {
                tracing::warn!(%error, "key usage not flushed yet");
            }
            if stopping {
                return;
            }
        }
    }
}

async fn flush_firm(commands: &Commands, firm: FirmId, keys: &[(Uuid, Pending)]) -> Result<usize, CommandError> {
    let mut tx = commands.log.begin(firm).await?;
    let ids: Vec<Uuid> = keys.iter().map(|(key, _)| *key).collect();
    let versions: HashMap<Uuid, i32> = sqlx::query_as::<_, (Uuid, i32)>(
        "SELECT stream_id, max(version) FROM events WHERE stream_id = ANY($1) GROUP BY stream_id",
    )
    .bind(&ids)
    .fetch_all(tx.conn())
    .await?
    .into_iter()
    .collect();
    let appends: Vec<Append> = keys
        .iter()
        .filter_map(|(key, pending)| {
            // A key this node verified exists in the log; if not (a wiped database), drop the count.
            let version = *versions.get(key)?;
            Some(Append {
                stream_id: *key,
                expected_version: version,
                events: vec![Event::ApiKeyUsed { last_used_at: pending.last_used_at, count: pending.count }],
            })
        })
        .collect();
    let metadata = Metadata { firm_id: firm, actor: Actor::System, request_id: None, occurred_at: now() };
    let recorded = commands.log.append(&mut tx, &metadata, &appends).await?;
    commands.log.commit(tx, &recorded).await?;
    Ok(recorded.len())
}
