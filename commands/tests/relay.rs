//! The relay against a real Postgres and a real JetStream: everything committed reaches the
//! stream once, in feed order, also across a NATS outage and a change of leader.

mod support;

use async_nats::connection::State;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream;
use commands::nats::{ensure_stream, headers, NatsNames};
use commands::relay::{self, Relay, RelayStatus};
use commands::store::{self, Append, FeedPosition, RecordedEvent};
use domain::FirmId;
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

use support::{
    command, event, event_log, eventually, jetstream_context, metadata, nats_client, nats_names, shared_nats_url,
    stream_len, stream_messages, whole_feed, NatsServer, StreamGuard, TestDb, DEADLINE,
};

/// A relay running in the background, stopped when this drops.
struct RunningRelay {
    status: Arc<RelayStatus>,
    task: JoinHandle<()>,
    _stop: DropGuard,
    shutdown: CancellationToken,
}

impl RunningRelay {
    fn spawn(pool: &PgPool, nats: &async_nats::Client, names: &NatsNames, wake: Arc<Notify>) -> RunningRelay {
        let status = Arc::new(RelayStatus::default());
        let shutdown = CancellationToken::new();
        let relay =
            Relay { pool: pool.clone(), nats: nats.clone(), names: names.clone(), wake, status: status.clone() };
        let task = tokio::spawn(relay.run(shutdown.clone()));
        RunningRelay { status, task, _stop: shutdown.clone().drop_guard(), shutdown }
    }

    fn leads(&self) -> bool {
        self.status.leader.load(Ordering::Relaxed)
    }

    fn published(&self) -> u64 {
        self.status.published.load(Ordering::Relaxed)
    }

    /// Stops it and waits until it has.
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task).await.expect("the relay stops in time").expect("relay task");
    }
}

/// Creates the test's stream, waiting for JetStream to be ready on a server just started.
async fn stream_of(jetstream: &jetstream::Context, names: &NatsNames) -> jetstream::stream::Stream {
    eventually("JetStream is ready", || async { ensure_stream(jetstream, names).await.ok() }).await
}

/// Waits until the relay's checkpoint is the feed's head and the stream holds `count` messages.
async fn wait_until_relayed(pool: &PgPool, stream: &jetstream::stream::Stream, count: u64) {
    eventually(&format!("the stream holds {count} messages and the relay's checkpoint is the feed head"), || async {
        let mut conn = pool.acquire().await.ok()?;
        let checkpoint = store::load_checkpoint(&mut conn, relay::CHECKPOINT).await.ok()?;
        let head = store::feed_head(pool).await.ok()?;
        (head != FeedPosition::START && checkpoint == head && stream_len(stream).await? == count).then_some(())
    })
    .await;
}

/// Asserts that the stream holds the whole feed, each event once, in feed order, as the relay
/// promises: message id = event id, position headers chained, subject and payload of the event.
async fn assert_stream_is_the_feed(pool: &PgPool, stream: &jetstream::stream::Stream, names: &NatsNames) {
    let feed = whole_feed(pool).await;
    let messages = stream_messages(stream).await;
    assert_eq!(messages.len(), feed.len(), "the stream holds exactly the feed");

    let ids: HashSet<&str> =
        messages.iter().filter_map(|m| m.headers.get(NATS_MESSAGE_ID).map(|v| v.as_str())).collect();
    assert_eq!(ids.len(), feed.len(), "every message has its own Nats-Msg-Id: no duplicates");

    let mut previous = FeedPosition::START;
    for (message, event) in messages.iter().zip(&feed) {
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
        assert_eq!(
            message.headers.get(NATS_MESSAGE_ID).map(|v| v.as_str().to_owned()),
            Some(event.id.to_string()),
            "message {} is out of order",
            message.sequence
        );
        assert_eq!(header(headers::POSITION), Some(event.feed.to_string()));
        assert_eq!(header(headers::PREVIOUS), Some(previous.to_string()));
        assert_eq!(
            message.subject.as_str(),
            names.subject(event.metadata.firm_id, event.stream_kind, event.event.event_type())
        );
        let published: RecordedEvent = serde_json::from_slice(&message.payload).expect("the payload is an event");
        assert_eq!(&published, event);
        previous = event.feed;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_publishes_every_event_once_in_feed_order_and_catches_up_after_nats_comes_back() {
    const BEFORE: u64 = 40;
    const DURING: u64 = 25;
    let db = TestDb::new(8).await;
    let store_dir = tempfile::tempdir().expect("a store directory");
    let server = NatsServer::start(store_dir.path());
    let names = nats_names();
    let client = nats_client(&server.url()).await;
    let jetstream = jetstream_context(&client);
    let stream = stream_of(&jetstream, &names).await;
    let log = event_log(&db.pool);
    let relay = RunningRelay::spawn(&db.pool, &client, &names, log.commit_signal());

    let firms = [FirmId::new(), FirmId::new(), FirmId::new()];
    let firm = |i: u64| firms[i as usize % firms.len()];
    for i in 0..BEFORE {
        command(&log, firm(i), Uuid::now_v7(), 0).await;
    }
    wait_until_relayed(&db.pool, &stream, BEFORE).await;
    assert_stream_is_the_feed(&db.pool, &stream, &names).await;
    assert!(relay.leads());

    // NATS goes away.
    let (port, store) = (server.port(), server.store().to_owned());
    drop(server);
    eventually("the client has lost NATS", || async {
        (client.connection_state() == State::Disconnected).then_some(())
    })
    .await;

    // Commands still succeed: they never wait on NATS.
    for i in 0..DURING {
        tokio::time::timeout(DEADLINE, command(&log, firm(i), Uuid::now_v7(), 0))
            .await
            .expect("an append while NATS is down returns");
    }
    // The relay tried to publish them, could not, and stepped back.
    eventually("the relay notices that it cannot publish", || async { (!relay.leads()).then_some(()) }).await;
    let mut conn = db.pool.acquire().await.expect("connection");
    let checkpoint = store::load_checkpoint(&mut conn, relay::CHECKPOINT).await.expect("checkpoint");
    assert!(checkpoint < store::feed_head(&db.pool).await.expect("head"), "no checkpoint moves without an ack");
    drop(conn);

    // NATS comes back, the same server with the same store: the relay catches up.
    let _server = NatsServer::start_on(port, &store);
    wait_until_relayed(&db.pool, &stream, BEFORE + DURING).await;
    assert_stream_is_the_feed(&db.pool, &stream, &names).await;
    assert!(relay.leads());

    relay.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_relays_only_the_leader_publishes_and_the_other_takes_over_from_its_checkpoint() {
    const WRITERS: u64 = 8;
    const PER_WRITER: u64 = 25;
    const AFTER_TAKEOVER: u64 = 30;
    let db = TestDb::new(16).await;
    // The second relay runs as on another node: its own pool, woken by NOTIFY only.
    let other_node = commands::db::connect(db.url(), 4).await.expect("a second pool");
    let url = shared_nats_url();
    let names = nats_names();
    let _stream_guard = StreamGuard::new(&url, &names);
    let client = nats_client(&url).await;
    let jetstream = jetstream_context(&client);
    let stream = stream_of(&jetstream, &names).await;
    let log = Arc::new(event_log(&db.pool));
    let here = RunningRelay::spawn(&db.pool, &client, &names, log.commit_signal());
    let there = RunningRelay::spawn(&other_node, &client, &names, Arc::new(Notify::new()));

    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                let firm = FirmId::new();
                for _ in 0..PER_WRITER {
                    command(&log, firm, Uuid::now_v7(), 0).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let total = WRITERS * PER_WRITER;
    wait_until_relayed(&db.pool, &stream, total).await;
    assert_stream_is_the_feed(&db.pool, &stream, &names).await;

    // One led and published everything; the other published nothing.
    assert_ne!(here.leads(), there.leads(), "exactly one relay leads");
    let (leader, follower) = if here.leads() { (here, there) } else { (there, here) };
    assert_eq!(leader.published(), total);
    assert_eq!(follower.published(), 0);

    // The leader stops; the other takes over where it left off.
    leader.stop().await;
    for _ in 0..AFTER_TAKEOVER {
        command(&log, FirmId::new(), Uuid::now_v7(), 0).await;
    }
    wait_until_relayed(&db.pool, &stream, total + AFTER_TAKEOVER).await;
    assert_stream_is_the_feed(&db.pool, &stream, &names).await;
    assert!(follower.leads());
    assert_eq!(follower.published(), AFTER_TAKEOVER, "the new leader republished nothing");

    follower.stop().await;
    other_node.close().await;
}

/// Guards against a reordering the relay once had: it pipelined a batch of publishes, so when
/// NATS died in the middle of one, the messages lost in flight were republished after later
/// ones that the client had buffered and flushed on reconnect. It now waits for each ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_stays_in_feed_order_when_nats_dies_in_the_middle_of_a_batch() {
    const EVENTS: u64 = 10_000;
    let db = TestDb::new(8).await;
    let store_dir = tempfile::tempdir().expect("a store directory");
    let server = NatsServer::start(store_dir.path());
    let names = nats_names();
    let client = nats_client(&server.url()).await;
    let jetstream = jetstream_context(&client);
    let stream = stream_of(&jetstream, &names).await;
    let firm = FirmId::new();
    for _ in 0..EVENTS / 1000 {
        let events = vec![event(); 1000];
        let mut tx = store::WriterTx::begin(&db.pool, None).await.expect("begin");
        store::append(&mut tx, &metadata(firm), &[Append { stream_id: Uuid::now_v7(), expected_version: 0, events }])
            .await
            .expect("append");
        tx.commit().await.expect("commit");
    }
    let relay = RunningRelay::spawn(&db.pool, &client, &names, Arc::new(Notify::new()));

    // Kill NATS while the relay is in the middle of its batches.
    eventually("the relay is publishing", || async { (stream_len(&stream).await? > 1200).then_some(()) }).await;
    let (port, store) = (server.port(), server.store().to_owned());
    drop(server);
    let _server = NatsServer::start_on(port, &store);

    wait_until_relayed(&db.pool, &stream, EVENTS).await;
    assert_stream_is_the_feed(&db.pool, &stream, &names).await;
    relay.stop().await;
}

/// What the relay's pipelined publishing relies on when a term resumes after a lost
/// acknowledgement: JetStream drops a message whose id it stored already as a duplicate before
/// it judges the message's expected last id, and refuses a new one whose expected last id is
/// not the stream's last (so nothing is stored after a message it did not store).
#[tokio::test]
async fn jetstream_drops_a_duplicate_before_judging_its_expected_last_message_id() {
    let url = shared_nats_url();
    let names = nats_names();
    let _stream_guard = StreamGuard::new(&url, &names);
    let client = nats_client(&url).await;
    let jetstream = jetstream_context(&client);
    let stream = stream_of(&jetstream, &names).await;
    let subject = names.subject(FirmId::new(), domain::StreamKind::ApiKey, "ApiKeyUsed");
    let send = |id: &'static str, after: Option<&'static str>| {
        let (jetstream, subject) = (jetstream.clone(), subject.clone());
        async move {
            let publish = jetstream::context::Publish::build().payload(id.into()).message_id(id);
            let publish = match after {
                Some(after) => publish.expected_last_message_id(after),
                None => publish,
            };
            jetstream.send_publish(subject, publish).await.expect("sent").await
        }
    };
    for (id, after) in [("a", None), ("b", Some("a")), ("c", Some("b"))] {
        let ack = send(id, after).await.expect("stored");
        assert!(!ack.duplicate, "{id} is new");
    }
    // A term that resumes from "b" sends "b" and "c" again, each naming the one before it.
    for (id, after) in [("b", Some("a")), ("c", Some("b"))] {
        let ack = send(id, after).await.expect("a duplicate is acknowledged, whatever it expected");
        assert!(ack.duplicate, "{id} was stored already");
    }
    assert!(send("d", Some("b")).await.is_err(), "a new message after one that is not the last is refused");
    assert_eq!(stream_len(&stream).await, Some(3));
}
