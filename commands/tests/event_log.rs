//! The Postgres event log against a real Postgres: optimistic concurrency, streams, the
//! gap-free global feed, checkpoints. Each test has a database of its own.

mod support;

use commands::store::{self, Append, FeedPosition, Metadata, RecordedEvent, StoreError};
use domain::{Actor, Event, EventId, FirmId, MemberId, StreamKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use support::{append_committed, event, eventually, metadata, one, whole_feed, TestDb};
use tokio::sync::watch;
use uuid::Uuid;

#[tokio::test]
async fn appending_at_a_stale_expected_version_is_a_conflict_and_nothing_of_the_losing_batch_is_stored() {
    let db = TestDb::new(4).await;
    let firm = FirmId::new();
    let (stream, bystander) = (Uuid::now_v7(), Uuid::now_v7());
    let winner = append_committed(&db.pool, &metadata(firm), &[one(stream, 0)]).await.expect("first append");

    // The losing batch: three events decided against the empty stream, plus a new stream that
    // on its own would have been fine. All or nothing.
    let mut tx = store::WriterTx::begin(&db.pool, None).await.expect("begin");
    let losing = [Append { stream_id: stream, expected_version: 0, events: vec![event(); 3] }, one(bystander, 0)];
    let error = store::append(&mut tx, &metadata(firm), &losing).await.expect_err("a stale version must not append");
    assert!(
        matches!(error, StoreError::Conflict(id) if id == stream),
        "expected a conflict on {stream}, got {error:?}"
    );
    tx.rollback().await.expect("rollback");

    let mut conn = db.pool.acquire().await.expect("connection");
    assert_eq!(store::load_stream(&mut conn, stream).await.expect("load"), winner);
    assert!(store::load_stream(&mut conn, bystander).await.expect("load").is_empty());
    // (Other transactions open on the cluster may hold the feed back for a moment.)
    let feed = eventually("the winner is readable in the feed", || async {
        let feed = whole_feed(&db.pool).await;
        (!feed.is_empty()).then_some(feed)
    })
    .await;
    assert_eq!(feed, winner);

    // The stream goes on from where the winner left it.
    let next =
        append_committed(&db.pool, &metadata(firm), &[one(stream, 1)]).await.expect("append at the real version");
    assert_eq!(next[0].version, 2);
}

#[tokio::test]
async fn of_two_writers_racing_at_the_same_version_exactly_one_wins() {
    let db = TestDb::new(4).await;
    let firm = FirmId::new();
    let stream = Uuid::now_v7();
    append_committed(&db.pool, &metadata(firm), &[one(stream, 0)]).await.expect("first append");

    // The first writer inserts version 2 and holds its transaction open.
    let mut first = store::WriterTx::begin(&db.pool, None).await.expect("begin");
    let won = store::append(&mut first, &metadata(firm), &[one(stream, 1)]).await.expect("first writer appends");

    // The second writer, decided against the same version, waits on the unique index...
    let pool = db.pool.clone();
    let second = tokio::spawn(async move {
        let mut tx = store::WriterTx::begin(&pool, None).await.expect("begin");
        store::append(&mut tx, &metadata(firm), &[one(stream, 1)]).await.map(|_| ())
    });
    eventually("the second writer waits on the first one's row", || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&db.pool)
        .await
        .ok()?;
        (waiting > 0).then_some(())
    })
    .await;

    // ...and loses as soon as the first commits.
    first.commit().await.expect("commit");
    let outcome = tokio::time::timeout(support::DEADLINE, second).await.expect("the loser returns").expect("task");
    assert!(matches!(outcome, Err(StoreError::Conflict(id)) if id == stream), "got {outcome:?}");

    let mut conn = db.pool.acquire().await.expect("connection");
    let stored = store::load_stream(&mut conn, stream).await.expect("load");
    assert_eq!(stored.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(stored[1], won[0]);
}

#[tokio::test]
async fn load_stream_returns_events_in_version_order_with_their_metadata() {
    let db = TestDb::new(4).await;
    let firm = FirmId::new();
    let (stream, other) = (Uuid::now_v7(), Uuid::now_v7());
    let by_member = Metadata {
        firm_id: firm,
        actor: Actor::Member(MemberId::new()),
        request_id: Some("req-7f3a".into()),
        occurred_at: commands::log::now(),
    };

    let mut expected = append_committed(
        &db.pool,
        &by_member,
        &[Append { stream_id: stream, expected_version: 0, events: vec![Event::InvitationAccepted {}] }],
    )
    .await
    .expect("append");
    // Another stream's event lands between this stream's events in the global sequence.
    append_committed(&db.pool, &metadata(FirmId::new()), &[one(other, 0)]).await.expect("append elsewhere");
    expected.extend(
        append_committed(
            &db.pool,
            &metadata(firm),
            &[Append {
                stream_id: stream,
                expected_version: 1,
                events: vec![Event::MemberRemoved {}, Event::ApiKeyExpired {}],
            }],
        )
        .await
        .expect("append a batch"),
    );

    let mut conn = db.pool.acquire().await.expect("connection");
    let loaded = store::load_stream(&mut conn, stream).await.expect("load");
    assert_eq!(loaded, expected, "what was appended is what is loaded, field by field");
    assert_eq!(loaded.iter().map(|e| e.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(loaded.iter().all(|e| e.stream_id == stream));
    assert_eq!(
        loaded.iter().map(|e| e.event.clone()).collect::<Vec<_>>(),
        [Event::InvitationAccepted {}, Event::MemberRemoved {}, Event::ApiKeyExpired {}]
    );
    assert_eq!(
        loaded.iter().map(|e| e.stream_kind).collect::<Vec<_>>(),
        [StreamKind::Member, StreamKind::Member, StreamKind::ApiKey]
    );
    assert_eq!(loaded[0].metadata, by_member);
    assert_eq!(
        loaded[0].member_actor(),
        Some(match by_member.actor {
            Actor::Member(id) => id,
            Actor::System => unreachable!(),
        })
    );
    assert_eq!(loaded[1].metadata.actor, Actor::System);
    assert_eq!(loaded[1].metadata.request_id, None);
    assert!(loaded.windows(2).all(|w| w[0].feed < w[1].feed));
    assert_eq!(loaded.iter().map(|e| e.id).collect::<HashSet<_>>().len(), 3, "every event has its own id");

    assert!(store::load_stream(&mut conn, Uuid::now_v7()).await.expect("load").is_empty());
}

#[tokio::test]
async fn a_feed_reader_waits_for_a_transaction_still_open_instead_of_passing_it() {
    let db = TestDb::new(4).await;
    let firm = FirmId::new();

    let mut slow = store::WriterTx::begin(&db.pool, None).await.expect("begin");
    let late = store::append(&mut slow, &metadata(firm), &[one(Uuid::now_v7(), 0)]).await.expect("slow append");
    let early = append_committed(&db.pool, &metadata(firm), &[one(Uuid::now_v7(), 0)]).await.expect("fast append");
    assert!(late[0].feed < early[0].feed, "the slow writer's event comes first in the feed");

    // The fast writer has committed, but a reader that took its event now would have passed the
    // slow writer's place for good.
    assert!(whole_feed(&db.pool).await.is_empty(), "nothing may be read past an open transaction");
    assert_eq!(store::feed_head(&db.pool).await.expect("head"), FeedPosition::START);

    slow.commit().await.expect("commit");
    let expected = [late, early].concat();
    let feed = eventually("both events are readable", || async {
        let feed = whole_feed(&db.pool).await;
        (feed.len() == expected.len()).then_some(feed)
    })
    .await;
    assert_eq!(feed, expected);
    assert_eq!(store::feed_head(&db.pool).await.expect("head"), expected[1].feed);
}

#[tokio::test]
async fn transactions_that_append_nothing_hold_no_reader_back_in_this_database_or_another() {
    let db = TestDb::new(4).await;
    let neighbour = TestDb::new(2).await;
    let firm = FirmId::new();
    // A migration in another database of the cluster, and a forgotten psql session in this
    // one: both have a transaction id, and stay open throughout.
    let mut elsewhere = neighbour.pool.begin().await.expect("begin elsewhere");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *elsewhere).await.expect("an id elsewhere");
    let mut idle_here = db.pool.begin().await.expect("begin here");
    sqlx::query("SELECT pg_current_xact_id()").execute(&mut *idle_here).await.expect("an id here");

    let appended = append_committed(&db.pool, &metadata(firm), &[one(Uuid::now_v7(), 0)]).await.expect("append");
    assert_eq!(whole_feed(&db.pool).await, appended, "the committed event is readable at once");
    assert_eq!(store::feed_head(&db.pool).await.expect("head"), appended[0].feed);
    elsewhere.rollback().await.expect("rollback");
    idle_here.rollback().await.expect("rollback");
}

#[tokio::test]
async fn an_insert_into_the_log_without_the_writer_lock_is_refused() {
    let db = TestDb::new(2).await;
    let error = sqlx::query(
        "INSERT INTO events (id, stream_id, stream_kind, version, event_type, payload, firm_id, actor, occurred_at)
         VALUES (gen_random_uuid(), gen_random_uuid(), 'member', 1, 'member.removed', '{}', gen_random_uuid(), '{}', now())",
    )
    .execute(&db.pool)
    .await
    .expect_err("a writer without the lock would let readers pass its events");
    assert!(error.to_string().contains("writer lock"), "{error}");
    assert!(whole_feed(&db.pool).await.is_empty());
}

const WRITERS: u64 = 16;
const TRANSACTIONS_PER_WRITER: usize = 200;
const READ_BATCH: i64 = 50;

/// What one writer did.
#[derive(Default)]
struct Written {
    committed: Vec<RecordedEvent>,
    rolled_back: Vec<EventId>,
}

/// Appends single-event transactions to a stream of its own; some stay open for a while after
/// their insert before they commit, and a few roll back.
async fn writer(pool: PgPool, seed: u64) -> Written {
    let mut rng = StdRng::seed_from_u64(seed);
    let firm = FirmId::new();
    let stream = Uuid::now_v7();
    let mut written = Written::default();
    for _ in 0..TRANSACTIONS_PER_WRITER {
        let mut tx = store::WriterTx::begin(&pool, None).await.expect("begin");
        let version = written.committed.len() as i32;
        let recorded = store::append(&mut tx, &metadata(firm), &[one(stream, version)]).await.expect("append");
        let roll = rng.gen_range(0..100);
        if roll < 15 {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(20..=100))).await;
        }
        if roll >= 95 {
            tx.rollback().await.expect("rollback");
            written.rolled_back.extend(recorded.iter().map(|e| e.id));
        } else {
            tx.commit().await.expect("commit");
            written.committed.extend(recorded);
        }
    }
    written
}

/// Follows the feed from its own checkpoint, in small batches, until it stands at `until`
/// (sent once the writers are done). Asserts that the feed only ever moves forward.
async fn follow(pool: PgPool, mut until: watch::Receiver<Option<FeedPosition>>) -> Vec<RecordedEvent> {
    let mut seen: Vec<RecordedEvent> = Vec::new();
    let mut at = FeedPosition::START;
    loop {
        let batch = store::read_feed(&pool, at, READ_BATCH).await.expect("read the feed");
        if batch.is_empty() {
            if until.borrow_and_update().is_some_and(|end| at >= end) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for event in batch {
            assert!(event.feed > at, "the feed went back from {at} to {}", event.feed);
            at = event.feed;
            seen.push(event);
        }
    }
}

/// For contrast only: the reader the architecture forbids (`WHERE position > last`), following
/// the same feed at the same time. Returns the ids it saw.
async fn follow_naively(pool: PgPool, mut until: watch::Receiver<Option<FeedPosition>>) -> HashSet<Uuid> {
    let mut seen = HashSet::new();
    let mut last = 0_i64;
    loop {
        let batch: Vec<(i64, Uuid)> =
            sqlx::query_as("SELECT position, id FROM events WHERE position > $1 ORDER BY position LIMIT $2")
                .bind(last)
                .bind(READ_BATCH)
                .fetch_all(&pool)
                .await
                .expect("read naively");
        if batch.is_empty() {
            if until.borrow_and_update().is_some_and(|end| last >= end.position) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        }
        for (position, id) in batch {
            last = position;
            seen.insert(id);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_the_feed_sees_every_committed_event_exactly_once_in_order_while_writers_hold_transactions_open(
) {
    let db = TestDb::new(WRITERS as u32 + 6).await;
    let (done, until) = watch::channel(None);
    let reader = tokio::spawn(follow(db.pool.clone(), until.clone()));
    let naive = tokio::spawn(follow_naively(db.pool.clone(), until));

    let base_seed: u64 = rand::random();
    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(writer(db.pool.clone(), base_seed + w))).collect();
    let mut committed = Vec::new();
    let mut rolled_back = HashSet::new();
    for writer in writers {
        let written = writer.await.expect("writer");
        committed.extend(written.committed);
        rolled_back.extend(written.rolled_back);
    }
    let end = committed.iter().map(|e| e.feed).max().expect("something was committed");
    done.send(Some(end)).expect("the readers are listening");

    // A transaction left open elsewhere on the cluster holds every reader back: be patient, bounded.
    let seen = tokio::time::timeout(Duration::from_secs(120), reader)
        .await
        .unwrap_or_else(|_| panic!("the reader did not reach {end} (seed {base_seed})"))
        .expect("reader");
    let naive_seen = tokio::time::timeout(Duration::from_secs(120), naive).await.expect("naive reader").expect("task");

    let committed_ids: HashSet<EventId> = committed.iter().map(|e| e.id).collect();
    let seen_ids: HashSet<EventId> = seen.iter().map(|e| e.id).collect();
    assert_eq!(
        seen.len(),
        committed.len(),
        "seen {} events, committed {} (seed {base_seed})",
        seen.len(),
        committed.len()
    );
    assert_eq!(seen_ids.len(), seen.len(), "an event was seen twice (seed {base_seed})");
    let missed: Vec<_> = committed_ids.difference(&seen_ids).collect();
    assert!(missed.is_empty(), "the reader skipped {} committed events (seed {base_seed}): {missed:?}", missed.len());
    assert!(seen_ids.is_disjoint(&rolled_back), "the reader saw a rolled-back event (seed {base_seed})");
    assert!(seen.windows(2).all(|w| w[0].feed < w[1].feed), "the feed is in (tx_id, position) order");

    // What the reader saw is what was written, event by event.
    let mut by_feed = committed.clone();
    by_feed.sort_by_key(|e| e.feed);
    assert_eq!(seen, by_feed);

    // The test did exercise concurrency: writers held transactions open, some rolled back.
    assert!(!rolled_back.is_empty(), "no transaction rolled back (seed {base_seed})");
    // And it was a real test: following the same feed at the same time, the naive reader lost events.
    let naive_missed = committed_ids.iter().filter(|id| !naive_seen.contains(&id.as_uuid())).count();
    assert!(naive_missed > 0, "the writers never overtook each other: the test proved nothing (seed {base_seed})");
    eprintln!(
        "{} events committed by {WRITERS} writers, {} rolled back; the feed reader saw all of them once, \
         a `position > last` reader would have skipped {naive_missed}",
        committed.len(),
        rolled_back.len()
    );
}

#[tokio::test]
async fn checkpoints_save_and_load() {
    let db = TestDb::new(4).await;
    let mut conn = db.pool.acquire().await.expect("connection");

    assert_eq!(store::load_checkpoint(&mut conn, "projection-a").await.expect("load"), FeedPosition::START);

    let first = FeedPosition { tx_id: 742, position: 18 };
    store::save_checkpoint(&mut conn, "projection-a", first).await.expect("save");
    assert_eq!(store::load_checkpoint(&mut conn, "projection-a").await.expect("load"), first);

    // Saving again moves it; transaction ids past 2^32 (an xid8 after wraparound epochs) survive.
    let later = FeedPosition { tx_id: 5_000_000_123, position: 9_000_000_000 };
    store::save_checkpoint(&mut conn, "projection-a", later).await.expect("save again");
    assert_eq!(store::load_checkpoint(&mut conn, "projection-a").await.expect("load"), later);

    // Each follower has its own.
    assert_eq!(store::load_checkpoint(&mut conn, "projection-b").await.expect("load"), FeedPosition::START);
    store::save_checkpoint(&mut conn, "projection-b", first).await.expect("save b");
    assert_eq!(store::load_checkpoint(&mut conn, "projection-a").await.expect("load"), later);
    assert_eq!(store::load_checkpoint(&mut conn, "projection-b").await.expect("load"), first);
}
