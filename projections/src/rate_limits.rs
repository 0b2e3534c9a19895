//! Per-key rate limits, enforced by every node from memory and held to the limit across nodes.
//!
//! Each key's count for each window lives in one entry of a JetStream key-value bucket
//! (`<prefix>_rate_limits`, key `<key id>.<window seconds>.<window index>`), changed only by
//! compare-and-set. A node never asks the bucket per request: it **reserves** quota from it in
//! chunks (one compare-and-set adds the chunk to the count) and admits requests from its
//! reservation with an in-memory counter. Since every admitted request was reserved first and
//! the count never passes the limit, the nodes together never admit more than the limit in a
//! window, however many there are and however the load is spread.
//!
//! Chunks start at one request a window and double while a node keeps using them (from an
//! eighth of what it used in the previous window), and never exceed half of what is left
//! divided among the nodes: a busy node asks the bucket a few dozen times a window at most,
//! and quota a node reserved but did not use (lost to the others for that window) stays small.
//! A node tops its reservation up in the background once half of its last chunk is used, so
//! requests rarely wait for NATS.
//!
//! When the bucket cannot be reached (NATS down, or two reservations in a row slower than
//! [`RESERVE_BOUND`]), the node falls back, for the rest of that window, to an equal share of
//! the limit among the nodes it knows of, counted on its own (`docs/decisions.md`, "Rate limits
//! per key").

use async_nats::jetstream::{self, kv};
use commands::nats::NatsNames;
use domain::rate_limit::{RateLimit, Window};
use domain::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a reservation may take before the node counts on its own share instead.
pub const RESERVE_BOUND: Duration = Duration::from_millis(250);

/// How often quotas of keys no longer in use are forgotten.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// How long the bucket keeps a window's count: past the longest window, with room for clocks.
const BUCKET_MAX_AGE: Duration = Duration::from_secs(2 * domain::rate_limit::MAX_WINDOW_SECONDS as u64);

/// Compare-and-set attempts of one reservation before it gives up (each lost one means another
/// node reserved in between, so the count moved on and is read afresh).
const ATTEMPTS: usize = 16;

/// What a node tells a client about its key's limit after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateStatus {
    pub limit: RateLimit,
    /// Requests still allowed in this window, as far as this node can tell (other nodes may
    /// have used some of them meanwhile).
    pub remaining: u64,
    /// Whole seconds until the window ends and the quota comes back.
    pub resets_in: u64,
    /// False when this request was refused for being over the limit.
    pub allowed: bool,
}

/// The rate limits of the keys this node has seen used, and the bucket they share.
pub struct RateLimiter {
    /// JetStream for the bucket; checked before a reservation too: without a connection a
    /// reservation would only wait out its bound.
    nats: async_nats::Client,
    bucket: String,
    /// The bucket, made (or found) on the first reservation: the service starts without NATS.
    store: OnceCell<kv::Store>,
    /// Each key's quota on this node, by key id. Forgotten once idle ([`RateLimiter::forget_idle`]).
    /// Read-locked by every limited request; write-locked only to add a key or forget some.
    quotas: RwLock<HashMap<Uuid, Arc<Quota>>>,
    /// How many nodes there are, for the fallback share (this one and the peers it knows).
    nodes: Box<dyn Fn() -> usize + Send + Sync>,
    /// Requests refused for their key's limit, for `/metrics`.
    pub refused: AtomicU64,
    /// Reservations taken from the shared count (one compare-and-set each, or a few when other
    /// nodes got there first), for `/metrics`.
    pub reservations: AtomicU64,
    /// Windows counted on this node's own share because the shared count could not be
    /// reached, for `/metrics` (each logged).
    pub fallbacks: AtomicU64,
    /// `fallbacks` when a reservation last succeeded: the next fallback starts an outage and is
    /// logged, the ones after it are not.
    said_fallback: AtomicU64,
}

/// One key's quota on this node.
#[derive(Default)]
struct Quota {
    state: Mutex<QuotaState>,
    /// Raised when a reservation ends, for the requests that wait on it.
    reserved: Notify,
}

#[derive(Default)]
struct QuotaState {
    /// The limit and window this state counts; a request under another starts afresh.
    counting: Option<(RateLimit, i64)>,
    /// Requests this node has reserved in the window.
    granted: u64,
    /// Requests this node has admitted in the window (never more than `granted`).
    used: u64,
    /// The size of the next reservation.
    next_chunk: u64,
    /// The bucket's count for the window and its revision, as last seen here.
    counter: Option<(u64, u64)>,
    /// A reservation is on its way.
    reserving: bool,
    /// Reservations in a row that failed while NATS was connected (a slow or lost answer).
    failures: u8,
    /// The bucket could not be reached: this node counts its own share for the window.
    fallback: bool,
}

impl QuotaState {
    /// Moves the state to `window` of `limit`, starting the count afresh when either changed.
    fn enter(&mut self, limit: RateLimit, window: i64) {
        if self.counting == Some((limit, window)) {
            return;
        }
        let same_window =
            self.counting.is_some_and(|(l, w)| w == window && l.window_seconds() == limit.window_seconds());
        if same_window {
            // Only the number changed (an edit of the limit mid-window): what was used still
            // counts against the new number, and what this node reserved but did not use is
            // given up, so a lowered limit is never passed with quota reserved under the old one.
            self.counting = Some((limit, window));
            self.granted = self.used;
            return;
        }
        // What this node used in the window just ended sizes its first chunk of this one.
        let used_before = if self.counting.is_some_and(|(_, w)| w + 1 == window) { self.used } else { 0 };
        *self = QuotaState {
            counting: Some((limit, window)),
            next_chunk: (used_before / 8).max(1),
            // A reservation of the old window may still be on its way: its end clears this.
            reserving: self.reserving,
            ..QuotaState::default()
        };
    }

    /// True when no request can be admitted here in this window, whatever is reserved next.
    fn exhausted(&self, limit: RateLimit) -> bool {
        self.used >= self.granted
            && (self.fallback || self.counter.is_some_and(|(count, _)| count >= u64::from(limit.limit())))
    }

    /// Requests this node could still admit in the window.
    fn remaining(&self, limit: RateLimit) -> u64 {
        let here = self.granted - self.used;
        if self.fallback {
            return here;
        }
        let counted = self.counter.map_or(0, |(count, _)| count);
        here + u64::from(limit.limit()).saturating_sub(counted)
    }
}

/// What one compare-and-set round on the bucket came to.
enum Reservation {
    /// `took` requests reserved; the count is now `count` at `revision`.
    Took { took: u64, count: u64, revision: u64 },
    /// The count has reached the limit.
    Exhausted { count: u64, revision: u64 },
}

impl RateLimiter {
    /// A limiter whose counts live in `names`' bucket; `nodes` says how many nodes share the
    /// limits (for the fallback share).
    pub fn new(
        nats: async_nats::Client,
        names: &NatsNames,
        nodes: impl Fn() -> usize + Send + Sync + 'static,
    ) -> Arc<RateLimiter> {
        Arc::new(RateLimiter {
            nats,
            bucket: names.rate_limit_bucket(),
            store: OnceCell::new(),
            quotas: RwLock::new(HashMap::new()),
            nodes: Box::new(nodes),
            refused: AtomicU64::new(0),
            reservations: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            said_fallback: AtomicU64::new(0),
        })
    }

    /// Counts one request of key `key` under `limit` at `now`: allowed while the key is under
    /// its limit in the current window, across every node.
    pub async fn admit(self: &Arc<Self>, key: Uuid, limit: RateLimit, now: Timestamp) -> RateStatus {
        let window = limit.window_at(now);
        // Most requests: a held quota with reservation left, under read locks and one mutex.
        if let Some(decided) = self.admit_held(key, limit, window, now) {
            return decided;
        }
        let quota = self.quota(key);
        loop {
            let notified = quota.reserved.notified();
            tokio::pin!(notified);
            let reserves_here = {
                let mut state = lock(&quota.state);
                if let Some(decided) = self.decide(&quota, &mut state, key, limit, window, now) {
                    return decided;
                }
                if state.reserving {
                    // Registered before the lock is released, so the end of that reservation
                    // cannot be missed.
                    notified.as_mut().enable();
                    false
                } else {
                    state.reserving = true;
                    true
                }
            };
            if reserves_here {
                self.reserve(&quota, key, limit, window).await;
            } else {
                notified.await;
            }
        }
    }

    /// The verdict for a key whose quota this node holds, when it needs no reservation first.
    fn admit_held(self: &Arc<Self>, key: Uuid, limit: RateLimit, window: Window, now: Timestamp) -> Option<RateStatus> {
        let quotas = self.quotas.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let quota = quotas.get(&key)?;
        let mut state = lock(&quota.state);
        self.decide(quota, &mut state, key, limit, window, now)
    }

    /// Admits the request from the reservation (topping it up in the background when it runs
    /// low) or refuses it when the key has used its limit; `None` when a reservation must come
    /// first.
    fn decide(
        self: &Arc<Self>,
        quota: &Arc<Quota>,
        state: &mut QuotaState,
        key: Uuid,
        limit: RateLimit,
        window: Window,
        now: Timestamp,
    ) -> Option<RateStatus> {
        state.enter(limit, window.index);
        if state.used < state.granted {
            state.used += 1;
            let low = state.granted - state.used <= state.next_chunk / 2;
            if low && !state.reserving && !state.exhausted(limit) {
                state.reserving = true;
                let (limiter, quota) = (self.clone(), quota.clone());
                tokio::spawn(async move { limiter.reserve(&quota, key, limit, window).await });
            }
            return Some(status(state, limit, window, now, true));
        }
        if state.exhausted(limit) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Some(status(state, limit, window, now, false));
        }
        None
    }

    /// Forgets idle quotas every [`FORGET_EVERY`] until shutdown.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(FORGET_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => self.forget_idle(commands::log::now()),
            }
        }
    }

    /// Forgets the quotas of keys not used in their current or previous window (what they
    /// reserved is spent or void by now).
    pub fn forget_idle(&self, now: Timestamp) {
        let mut quotas = self.quotas.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        quotas.retain(|_, quota| {
            let state = lock(&quota.state);
            state.reserving || state.counting.is_some_and(|(limit, window)| limit.window_at(now).index <= window + 1)
        });
    }

    /// How many keys have a quota on this node, for `/metrics`.
    pub fn keys_held(&self) -> usize {
        self.quotas.read().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }

    fn quota(&self, key: Uuid) -> Arc<Quota> {
        let held = self.quotas.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&key).cloned();
        held.unwrap_or_else(|| {
            self.quotas.write().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(key).or_default().clone()
        })
    }

    /// Reserves the next chunk of `window` for `key` (this task set `reserving`), records the
    /// outcome and wakes whoever waits on it.
    async fn reserve(&self, quota: &Quota, key: Uuid, limit: RateLimit, window: Window) {
        let (chunk, counter) = {
            let state = lock(&quota.state);
            (state.next_chunk, state.counter)
        };
        let connected = self.nats.connection_state() == async_nats::connection::State::Connected;
        let outcome = if connected {
            let name = counter_name(key, limit, window);
            tokio::time::timeout(RESERVE_BOUND, self.take(&name, limit, chunk, counter)).await.ok().and_then(|taken| {
                taken
                    .map_err(|error| tracing::debug!(%error, api_key_id = %key, "could not reserve rate limit quota"))
                    .ok()
            })
        } else {
            None
        };
        {
            let mut state = lock(&quota.state);
            state.reserving = false;
            if state.counting.is_some_and(|(l, w)| w == window.index && l.window_seconds() == limit.window_seconds()) {
                let share_left = |count: u64| {
                    let nodes = (self.nodes)().max(1) as u64;
                    (u64::from(limit.limit()).saturating_sub(count) / (2 * nodes)).max(1)
                };
                match outcome {
                    Some(Reservation::Took { took, count, revision }) => {
                        state.failures = 0;
                        self.reservations.fetch_add(1, Ordering::Relaxed);
                        self.said_fallback.store(self.fallbacks.load(Ordering::Relaxed), Ordering::Relaxed);
                        state.granted += took;
                        state.counter = Some((count, revision));
                        state.next_chunk = (chunk * 2).min(share_left(count));
                    }
                    Some(Reservation::Exhausted { count, revision }) => {
                        state.failures = 0;
                        state.counter = Some((count, revision));
                    }
                    // One failure while connected (a slow answer, a lost one) is tried again: a
                    // node that counted its own share while the others still reserve from the
                    // count could pass the limit.
                    None if connected && state.failures == 0 => state.failures = 1,
                    None => {
                        let nodes = (self.nodes)().max(1) as u64;
                        // Said once per outage, not once per key and window.
                        if self.fallbacks.fetch_add(1, Ordering::Relaxed) == self.said_fallback.load(Ordering::Relaxed)
                        {
                            tracing::warn!(
                                api_key_id = %key, nodes,
                                "the shared rate-limit counts cannot be reached (NATS); each limited key counts its \
                                 own share of its limit on this node until they can"
                            );
                        }
                        state.fallback = true;
                        state.granted = state.granted.max(u64::from(limit.limit()) / nodes);
                    }
                }
            }
        }
        quota.reserved.notify_waiters();
    }

    /// One reservation of up to `chunk` requests from the bucket's count `name`, starting from
    /// the count last seen (`known`), read afresh whenever another node got there first.
    async fn take(
        &self,
        name: &str,
        limit: RateLimit,
        chunk: u64,
        known: Option<(u64, u64)>,
    ) -> Result<Reservation, async_nats::Error> {
        let store = self
            .store
            .get_or_try_init(|| async {
                jetstream::new(self.nats.clone())
                    .create_key_value(kv::Config {
                        bucket: self.bucket.clone(),
                        history: 1,
                        max_age: BUCKET_MAX_AGE,
                        storage: jetstream::stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
            })
            .await?;
        let mut known = known.unwrap_or((0, 0));
        for _ in 0..ATTEMPTS {
            let (count, revision) = known;
            let left = u64::from(limit.limit()).saturating_sub(count);
            if left == 0 {
                return Ok(Reservation::Exhausted { count, revision });
            }
            let took = chunk.min(left);
            match store.update(name, (count + took).to_string().into(), revision).await {
                Ok(revision) => return Ok(Reservation::Took { took, count: count + took, revision }),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    known = match store.entry(name).await? {
                        Some(entry) => (std::str::from_utf8(&entry.value)?.parse()?, entry.revision),
                        None => (0, 0),
                    };
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(format!("the count {name} kept changing under {ATTEMPTS} reservations").into())
    }
}

/// The bucket entry of one key's count in one window (the window's length is part of it, so a
/// changed length starts a new count).
fn counter_name(key: Uuid, limit: RateLimit, window: Window) -> String {
    format!("{}.{}.{}", key.simple(), limit.window_seconds(), window.index)
}

fn status(state: &QuotaState, limit: RateLimit, window: Window, now: Timestamp, allowed: bool) -> RateStatus {
    RateStatus { limit, remaining: state.remaining(limit), resets_in: window.seconds_left(now), allowed }
}

/// Locks a mutex whose holder cannot leave it inconsistent (every critical section here only
/// assigns numbers), so a poisoned one is used as it is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(n: i64, seconds: i64) -> RateLimit {
        RateLimit::new(n, seconds).expect("valid")
    }

    #[test]
    fn a_new_window_starts_afresh_and_sizes_its_first_chunk_from_the_last() {
        let l = limit(1000, 60);
        let mut state = QuotaState::default();
        state.enter(l, 10);
        (state.granted, state.used) = (400, 400);
        state.enter(l, 11);
        assert_eq!((state.granted, state.used, state.next_chunk), (0, 0, 50));
        state.enter(l, 13);
        assert_eq!(state.next_chunk, 1, "a window skipped says nothing of the load");
    }

    #[test]
    fn a_changed_number_keeps_the_windows_count_and_a_changed_length_starts_afresh() {
        let mut state = QuotaState::default();
        state.enter(limit(1000, 60), 10);
        (state.granted, state.used) = (40, 30);
        state.enter(limit(35, 60), 10);
        assert_eq!((state.granted, state.used), (30, 30), "unused reservations under the old number are given up");
        state.enter(limit(35, 30), 20);
        assert_eq!((state.granted, state.used), (0, 0));
    }

    #[test]
    fn a_key_is_exhausted_once_its_reservation_is_used_and_the_count_is_at_the_limit() {
        let l = limit(10, 60);
        let mut state = QuotaState::default();
        state.enter(l, 1);
        (state.granted, state.used, state.counter) = (4, 3, Some((10, 7)));
        assert!(!state.exhausted(l));
        assert_eq!(state.remaining(l), 1);
        state.used = 4;
        assert!(state.exhausted(l));
        assert_eq!(state.remaining(l), 0);
        state.counter = Some((8, 8));
        assert!(!state.exhausted(l), "two more can still be reserved");
        assert_eq!(state.remaining(l), 2);
    }
}
