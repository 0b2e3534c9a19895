//! How fast the event log is: appends per second of single-event commands with 1, 8 and 32
//! concurrent writers, and feed read throughput over 100k events.
//!
//! `cargo bench -p commands --bench event_log` (Postgres at `DATABASE_URL`). It makes a database
//! of its own and drops it at the end, and prints Markdown tables for the README.
//! `ESQASE_BENCH_SECONDS` sets how long each writer count runs (default 5).

use anyhow::Context as _;
use commands::store::{self, Append, FeedPosition, Metadata};
use commands::{EventLog, NoBarrier, NoReadModels};
use domain::{Actor, Event, FirmId};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Concurrent writers per run.
const WRITER_COUNTS: [usize; 3] = [1, 8, 32];
/// Events the feed reader reads per run.
const FEED_EVENTS: usize = 100_000;
/// Events per `read_feed` call.
const FEED_BATCH: i64 = 500;
/// Feed read runs; the median is reported.
const FEED_RUNS: usize = 3;
/// Events per transaction when filling the log up for the feed read.
const FILL_BATCH: usize = 1_000;

/// What one writer count achieved.
struct AppendRun {
    writers: usize,
    commands: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

fn metadata(firm: FirmId) -> Metadata {
    Metadata { firm_id: firm, actor: Actor::System, request_id: None, occurred_at: commands::log::now() }
}

/// The URL of database `name` on the server of `DATABASE_URL`.
fn database_url(name: &str) -> String {
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (without_query, query) = match base.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (base.as_str(), String::new()),
    };
    let authority_start = without_query.find("://").map_or(0, |i| i + 3);
    let server = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    format!("{server}/{name}{query}")
}

/// One writer: single-event commands on a firm and stream of its own until `until`; returns
/// each command's latency.
async fn writer(log: Arc<EventLog>, until: Instant) -> anyhow::Result<Vec<Duration>> {
    let firm = FirmId::new();
    let stream_id = Uuid::now_v7();
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let started = Instant::now();
        let mut tx = log.begin(firm).await?;
        let append =
            Append { stream_id, expected_version: latencies.len() as i32, events: vec![Event::MemberRemoved {}] };
        let recorded = log.append(&mut tx, &metadata(firm), &[append]).await?;
        log.commit(tx, &recorded).await?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}

async fn appends(log: &Arc<EventLog>, writers: usize, duration: Duration) -> anyhow::Result<AppendRun> {
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..writers).map(|_| tokio::spawn(writer(log.clone(), until))).collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile = |p: usize| latencies.get((latencies.len() * p / 100).min(latencies.len().saturating_sub(1)));
    Ok(AppendRun {
        writers,
        commands: latencies.len(),
        elapsed,
        p50: percentile(50).copied().unwrap_or_default(),
        p99: percentile(99).copied().unwrap_or_default(),
    })
}

/// Appends events in large transactions until the log holds at least `count`.
async fn fill(pool: &PgPool, count: usize) -> anyhow::Result<()> {
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(pool).await?;
    let mut missing = count.saturating_sub(usize::try_from(held)?);
    let firm = FirmId::new();
    while missing > 0 {
        let size = missing.min(FILL_BATCH);
        let append =
            Append { stream_id: Uuid::now_v7(), expected_version: 0, events: vec![Event::MemberRemoved {}; size] };
        let mut tx = store::WriterTx::begin(pool, None).await?;
        store::append(&mut tx, &metadata(firm), &[append]).await?;
        tx.commit().await?;
        missing -= size;
    }
    Ok(())
}

/// Reads `count` events from the start of the feed; returns how long it took.
async fn read_feed(pool: &PgPool, count: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut at = FeedPosition::START;
    let mut read = 0;
    while read < count {
        let batch = store::read_feed(pool, at, FEED_BATCH).await?;
        let last = batch.last().context("the feed ended early (a transaction open elsewhere on the cluster?)")?;
        at = last.feed;
        read += batch.len();
    }
    Ok(started.elapsed())
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn run(pool: &PgPool, duration: Duration) -> anyhow::Result<()> {
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(pool).await?;
    let synchronous_commit: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(pool).await?;
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let log = Arc::new(EventLog::new(pool.clone(), Arc::new(NoReadModels), Arc::new(NoBarrier), Default::default()));

    // Warm the pool and Postgres's caches up; not reported.
    appends(&log, 4, Duration::from_secs(1)).await?;

    let mut runs = Vec::new();
    for writers in WRITER_COUNTS {
        let run = appends(&log, writers, duration).await?;
        eprintln!("{writers} writers: {} commands in {:.1?}", run.commands, run.elapsed);
        runs.push(run);
    }

    fill(pool, FEED_EVENTS).await?;
    let mut reads = Vec::new();
    for _ in 0..FEED_RUNS {
        reads.push(read_feed(pool, FEED_EVENTS).await?);
    }
    reads.sort_unstable();
    let median = reads[reads.len() / 2];

    println!("Event log on PostgreSQL {version} (synchronous_commit = {synchronous_commit}), {cores} cores.\n");
    println!("Single-event commands (`EventLog::begin` + `append` + `commit`, one transaction each):\n");
    println!("| Concurrent writers | Commands | Appends/s | p50 latency (ms) | p99 latency (ms) |");
    println!("|---:|---:|---:|---:|---:|");
    for run in &runs {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} |",
            run.writers,
            run.commands,
            per_second(run.commands, run.elapsed),
            millis(run.p50),
            millis(run.p99)
        );
    }
    println!("\nFeed read (`read_feed`, batches of {FEED_BATCH}, median of {FEED_RUNS} runs):\n");
    println!("| Events | Time (ms) | Events/s |");
    println!("|---:|---:|---:|");
    println!("| {FEED_EVENTS} | {:.0} | {:.0} |", millis(median), per_second(FEED_EVENTS, median));
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = match std::env::var("ESQASE_BENCH_SECONDS") {
        Ok(value) => value.parse().context("ESQASE_BENCH_SECONDS is a whole number of seconds")?,
        Err(_) => 5,
    };
    // `cargo bench` passes `--bench`; this binary takes no arguments.
    let url = database_url(&format!("esqase_bench_{}", Uuid::new_v4().simple()));
    let max_writers = WRITER_COUNTS.into_iter().max().unwrap_or(1);
    let pool =
        commands::db::connect(&url, max_writers as u32 + 8).await.context("connect to Postgres at DATABASE_URL")?;
    let outcome = run(&pool, Duration::from_secs(seconds)).await;
    pool.close().await;
    commands::db::drop_database(&url).await.context("drop the benchmark database")?;
    outcome
}
