//! The projection runner against the machine's Postgres and NATS: it catches up from the
//! Postgres feed, follows JetStream, and applies every event exactly once, in feed order.

use commands::nats::NatsNames;
use commands::relay::{Relay, RelayStatus};
use commands::store::{self, Append, FeedPosition, Metadata, RecordedEvent};
use domain::{Actor, Event, EventId, FirmId};
use projections::runner::{Projection, ProjectionError, ProjectionStatus, Runner};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records what it applies, skipping what is at or before its checkpoint.
struct Recorder {
    seen: Arc<Mutex<Vec<(FeedPosition, EventId)>>>,
    checkpoint: FeedPosition,
}

#[async_trait::async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn checkpoint(&self) -> FeedPosition {
        self.checkpoint
    }
    async fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut seen = self.seen.lock().expect("not poisoned");
        for event in events {
            if event.feed > self.checkpoint {
                seen.push((event.feed, event.id));
                self.checkpoint = event.feed;
            }
        }
        Ok(())
    }
}

fn database_url() -> String {
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let server = base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server).to_owned();
    format!("{server}/esqase_test_{}", Uuid::now_v7().simple())
}

async fn append(pool: &sqlx::PgPool, firm: FirmId, n: usize) -> Vec<RecordedEvent> {
    let mut recorded = Vec::new();
    for _ in 0..n {
        let mut tx = store::WriterTx::begin(pool, None).await.expect("a transaction");
        let metadata =
            Metadata { firm_id: firm, actor: Actor::System, request_id: None, occurred_at: chrono::Utc::now() };
        let append = Append { stream_id: Uuid::now_v7(), expected_version: 0, events: vec![Event::MemberRemoved {}] };
        recorded.extend(store::append(&mut tx, &metadata, &[append]).await.expect("appended"));
        tx.commit().await.expect("committed");
    }
    recorded
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_catches_up_from_postgres_then_follows_jetstream_applying_each_event_once_in_order() {
    let url = database_url();
    let pool = commands::db::connect(&url, 8).await.expect("a database");
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let client = async_nats::connect(&nats_url).await.expect("NATS");
    let js = async_nats::jetstream::new(client.clone());
    let names = NatsNames::new(&format!("t{}", Uuid::now_v7().simple())).expect("a prefix");
    let firm = FirmId::new();
    let shutdown = CancellationToken::new();

    // Events from before the projection started: it reads them from Postgres.
    let mut expected = append(&pool, firm, 5).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(ProjectionStatus::default());
    let runner = Runner {
        pool: pool.clone(),
        nats: client.clone(),
        names: names.clone(),
        projection: Recorder { seen: seen.clone(), checkpoint: FeedPosition::START },
        status: status.clone(),
    };
    tokio::spawn(runner.run(shutdown.clone()));
    eventually("the catch-up", || seen.lock().expect("not poisoned").len() == 5).await;
    // The runner marks itself caught up just after it applies the batch it read.
    eventually("the caught-up flag", || status.caught_up.load(Ordering::Relaxed)).await;

    // The relay now publishes everything, old events included: those are skipped.
    let wake = Arc::new(Notify::new());
    let relay_status = Arc::new(RelayStatus::default());
    let relay = Relay {
        pool: pool.clone(),
        nats: client.clone(),
        names: names.clone(),
        wake: wake.clone(),
        status: relay_status.clone(),
    };
    tokio::spawn(relay.run(shutdown.clone()));
    eventually("the relay", || relay_status.published.load(Ordering::Relaxed) == 5).await;
    eventually("the subscription", || status.following.load(Ordering::Relaxed)).await;

    // New events reach it through JetStream.
    expected.extend(append(&pool, firm, 20).await);
    wake.notify_one();
    eventually("the new events", || seen.lock().expect("not poisoned").len() >= 25).await;
    let last = expected.last().map(|e| e.feed).expect("events");
    assert!(status.wait_for(last, Duration::from_secs(5)).await, "the status reports the last position");
    tokio::time::sleep(Duration::from_millis(600)).await;

    let seen = seen.lock().expect("not poisoned").clone();
    let expected: Vec<(FeedPosition, EventId)> = expected.iter().map(|e| (e.feed, e.id)).collect();
    assert_eq!(seen, expected, "every event once, in feed order");

    shutdown.cancel();
    pool.close().await;
    let _ = js.delete_stream(names.stream()).await;
    commands::db::drop_database(&url).await.expect("dropped");
}
