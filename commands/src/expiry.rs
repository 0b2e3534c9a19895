//! The expiry sweeper: records an Expired event for each Active key past its expiry, and the
//! revocation (reason `rolled`) of each rolled key whose grace period has ended. Any node may
//! run it; the firm's lock and the key's state make exactly one of them succeed. Either way the
//! key stopped working at the instant itself; the event only records it.

use crate::aggregates::load_api_key;
use crate::error::CommandError;
use crate::log::now;
use crate::store::{Append, Metadata};
use crate::Commands;
use domain::api_key::{decide_end_of_grace, decide_expire, ApiKey, ApiKeyError};
use domain::Actor;
use domain::{ApiKeyId, FirmId, Timestamp};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Keys expired per sweep at most (the next sweep takes the rest).
const SWEEP_BATCH: i64 = 500;

impl Commands {
    /// Records the expiry of every Active key past it; returns how many it recorded.
    pub async fn sweep_expired_keys(&self) -> Result<usize, CommandError> {
        let at = now();
        let due = {
            let mut conn = self.log.pool.acquire().await?;
            self.log.read_models().keys_past_expiry(&mut conn, at, SWEEP_BATCH).await?
        };
        self.record_each(due, at, decide_expire, "API key expired").await
    }

    /// Records the revocation (reason `rolled`) of every rolled key whose grace period has
    /// ended; returns how many it recorded.
    pub async fn sweep_rolled_keys(&self) -> Result<usize, CommandError> {
        let at = now();
        let due = {
            let mut conn = self.log.pool.acquire().await?;
            self.log.read_models().keys_past_grace(&mut conn, at, SWEEP_BATCH).await?
        };
        self.record_each(due, at, decide_end_of_grace, "API key's grace period ended; revoked").await
    }

    /// Decides and records, as the system, what `decide` says of each key in `due` at `at`.
    async fn record_each(
        &self,
        due: Vec<(ApiKeyId, FirmId)>,
        at: Timestamp,
        decide: fn(Option<&ApiKey>, Timestamp) -> Result<Vec<domain::Event>, ApiKeyError>,
        done: &'static str,
    ) -> Result<usize, CommandError> {
        let mut recorded_count = 0;
        for (key, firm) in due {
            let mut tx = self.log.begin(firm).await?;
            let loaded = load_api_key(tx.conn(), firm, key).await?;
            // Another node recorded it first, or it was revoked meanwhile: nothing to do.
            let Ok(events) = decide(loaded.state.as_ref(), at) else { continue };
            let metadata = Metadata { firm_id: firm, actor: Actor::System, request_id: None, occurred_at: at };
            let recorded = self
                .log
                .append(
                    &mut tx,
                    &metadata,
                    &[Append { stream_id: key.as_uuid(), expected_version: loaded.version, events }],
                )
                .await?;
            self.log.commit(tx, &recorded).await?;
            tracing::info!(api_key_id = %key, firm_id = %firm, "{done}");
            recorded_count += recorded.len();
        }
        Ok(recorded_count)
    }

    /// Sweeps every `interval` until `shutdown`.
    pub async fn run_expiry_sweeper(&self, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.sweep_expired_keys().await {
                tracing::warn!(%error, "expiry sweep failed; will try again");
            }
            if let Err(error) = self.sweep_rolled_keys().await {
                tracing::warn!(%error, "sweep of rolled keys failed; will try again");
            }
            // Sign-in counters nobody has failed for a whole window go with the same tick.
            let swept = match self.log.pool.acquire().await {
                Ok(mut conn) => crate::throttle::sweep(&mut conn, &self.sign_in_limits, now()).await,
                Err(error) => Err(error.into()),
            };
            if let Err(error) = swept {
                tracing::warn!(%error, "sweeping old sign-in counters failed; will try again");
            }
        }
    }
}
