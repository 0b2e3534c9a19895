//! `esqase-bench-load`: the load generator and probes of the headline benchmark
//! (`scripts/bench.sh`). Each subcommand drives running `esqase serve` nodes (or NATS) from
//! outside, over loopback, and prints its figures as `name=value` lines on stdout for the script
//! to read; progress goes to stderr.
//!
//! - `creates`: closed-loop `POST /v1/api-keys` from C concurrent workers, each an owner of its
//!   own firm (or all of one firm), for a fixed time: key creations per second and latency.
//! - `lag`: a steady rate of commands (key creations and allowed-domain edits, alternating) and,
//!   for each, the time from its commit until each of two nodes verifies accordingly (polled
//!   with `GET /v1/api-keys/current`). The commands are run in this process through the commands
//!   layer with no barrier, so nothing waits for the nodes; then the same load goes through node
//!   A over HTTP (with the barrier) and each change is checked on node B right after its response.
//! - `revokes`: revokes N keys one by one through node A, checking node B refuses each key right
//!   after the response; beside it the same number of key creations and of contact creations
//!   (a plain-table write with no event and no barrier), one by one.
//! - `nats`: the transport's own latency: core NATS request/reply, and a JetStream publish on a
//!   scratch file stream until its ack and until an ordered consumer receives it.
//!
//! Benchmark databases and NATS prefixes only: it signs up firms and creates keys.

use anyhow::{bail, ensure, Context};
use async_nats::jetstream::{self, consumer, stream};
use clap::{Args, Parser, Subcommand};
use commands::api_keys::NewApiKey;
use commands::auth::{Authorized, ManagesApiKeys};
use commands::read_back;
use commands::{Commands, EventLog, NoBarrier};
use domain::names::KeyName;
use domain::{AllowedDomains, ApiKeyId, Scopes};
use futures::StreamExt;
use projections::read_models::PgReadModels;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long one probe polls a node before it counts as timed out.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Load and probes for the headline benchmark.
#[derive(Debug, Parser)]
#[command(name = "esqase-bench-load")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Key creations per second at a fixed concurrency (closed loop).
    Creates(CreatesArgs),
    /// Projection lag under a steady command load, on two nodes.
    Lag(LagArgs),
    /// Revocation latency with two nodes, beside no-barrier writes.
    Revokes(RevokesArgs),
    /// NATS request/reply and JetStream publish latency.
    Nats(NatsArgs),
}

#[derive(Debug, Args)]
struct CreatesArgs {
    /// The node's base URL, e.g. `http://127.0.0.1:8080`.
    #[arg(long)]
    base: String,
    /// Concurrent workers (requests in flight).
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// All workers act for one firm (its commands take turns) instead of one firm each.
    #[arg(long)]
    one_firm: bool,
}

#[derive(Debug, Args)]
struct LagArgs {
    /// Node A's base URL (takes the HTTP half of the load).
    #[arg(long)]
    a: String,
    /// Node B's base URL.
    #[arg(long)]
    b: String,
    /// The nodes' database (the direct half of the load commits here).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Commands per second, in each half.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Seconds of load, in each half.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Pause between two polls of one node for one probe, in milliseconds.
    #[arg(long, default_value_t = 1)]
    poll_ms: u64,
}

#[derive(Debug, Args)]
struct RevokesArgs {
    /// Node A's base URL (takes every command).
    #[arg(long)]
    a: String,
    /// Node B's base URL (checked after each revocation).
    #[arg(long)]
    b: String,
    /// Keys revoked (and keys and contacts created), one by one.
    #[arg(long, default_value_t = 200)]
    count: usize,
}

#[derive(Debug, Args)]
struct NatsArgs {
    /// NATS URL.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The run's prefix: the scratch stream is `<prefix>_scratch`, deleted at the end.
    #[arg(long)]
    prefix: String,
    /// Messages, one at a time, per measurement.
    #[arg(long, default_value_t = 1000)]
    count: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::init_logging();
    match Cli::parse().command {
        Command::Creates(args) => creates(args).await,
        Command::Lag(args) => lag(args).await,
        Command::Revokes(args) => revokes(args).await,
        Command::Nats(args) => nats(args).await,
    }
}

// --- figures --------------------------------------------------------------------------------

/// Latencies of one kind of operation.
#[derive(Debug, Default)]
struct Samples(Vec<Duration>);

impl Samples {
    fn push(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    /// The nearest-rank percentile `p` (0..=100) in milliseconds, or NaN with no samples.
    fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank.min(sorted.len()) - 1].as_secs_f64() * 1e3
    }

    /// How many samples exceed `limit`.
    fn over(&self, limit: Duration) -> usize {
        self.0.iter().filter(|&&latency| latency > limit).count()
    }

    /// Prints `<name>_count`, `<name>_p50_ms`, `<name>_p99_ms`, `<name>_max_ms` and
    /// `<name>_over_100ms`.
    fn print(&self, name: &str) {
        println!("{name}_count={}", self.0.len());
        println!("{name}_over_100ms={}", self.over(Duration::from_millis(100)));
        println!("{name}_p50_ms={:.2}", self.percentile_ms(50.0));
        println!("{name}_p99_ms={:.2}", self.percentile_ms(99.0));
        println!("{name}_max_ms={:.2}", self.percentile_ms(100.0));
    }
}

/// Samples shared between tasks.
type Shared = Arc<Mutex<Samples>>;

fn record(samples: &Shared, latency: Duration) {
    samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(latency);
}

fn take(samples: Shared) -> Samples {
    match Arc::try_unwrap(samples) {
        Ok(mutex) => mutex.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()),
        Err(shared) => std::mem::take(&mut *shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())),
    }
}

// --- HTTP -----------------------------------------------------------------------------------

/// A keep-alive HTTP/1.1 client for loopback.
fn http_client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")
}

/// Reads a JSON body, failing with the status and body unless the status is `expected`.
async fn expect_json(response: reqwest::Response, expected: StatusCode, what: &str) -> anyhow::Result<Value> {
    let status = response.status();
    let body = response.text().await.with_context(|| format!("{what}: reading the body"))?;
    ensure!(status == expected, "{what}: {status} {body}");
    serde_json::from_str(&body).with_context(|| format!("{what}: the body is not JSON"))
}

/// Signs a new firm up through `base`; returns its owner's session token.
async fn sign_up(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let unique = Uuid::now_v7().simple();
    let response = http
        .post(format!("{base}/v1/firms"))
        .json(&json!({
            "firm_name": format!("Load {unique} LLP"),
            "owner": {
                "name": "Load Owner",
                "email": format!("owner-{unique}@load.example"),
                "password": "correct horse battery staple",
            },
        }))
        .send()
        .await
        .context("POST /v1/firms")?;
    let body = expect_json(response, StatusCode::CREATED, "POST /v1/firms").await?;
    body["session"]["token"].as_str().map(str::to_owned).context("POST /v1/firms: no session token")
}

/// A key made through the HTTP API: its id and secret.
struct HttpKey {
    id: String,
    secret: String,
}

/// Creates a key through `base` as the member of `token`.
async fn create_key(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
    domains: &[&str],
) -> anyhow::Result<HttpKey> {
    let response = http
        .post(format!("{base}/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": name, "scopes": ["contacts:read"], "allowed_domains": domains }))
        .send()
        .await
        .context("POST /v1/api-keys")?;
    let body = expect_json(response, StatusCode::CREATED, "POST /v1/api-keys").await?;
    Ok(HttpKey {
        id: body["api_key"]["id"].as_str().context("POST /v1/api-keys: no id")?.to_owned(),
        secret: body["secret"].as_str().context("POST /v1/api-keys: no secret")?.to_owned(),
    })
}

/// `GET /v1/api-keys/current` with `secret` (and an `Origin` if given): its status.
async fn current_status(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    origin: Option<&str>,
) -> anyhow::Result<StatusCode> {
    let mut request = http.get(format!("{base}/v1/api-keys/current")).bearer_auth(secret);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let response = request.send().await.context("GET /v1/api-keys/current")?;
    let status = response.status();
    // Drain the body so the connection goes back to the pool.
    response.bytes().await.context("GET /v1/api-keys/current: reading the body")?;
    Ok(status)
}

/// Polls `base` until the key answers 200 (with `origin`, if given); returns how long that took
/// from `since`, or `None` if it did not within [`PROBE_TIMEOUT`].
async fn until_accepted(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    origin: Option<&str>,
    since: Instant,
    poll: Duration,
) -> anyhow::Result<Option<Duration>> {
    loop {
        if current_status(http, base, secret, origin).await? == StatusCode::OK {
            return Ok(Some(since.elapsed()));
        }
        if since.elapsed() > PROBE_TIMEOUT {
            return Ok(None);
        }
        tokio::time::sleep(poll).await;
    }
}

// --- creates --------------------------------------------------------------------------------

/// Key creations per second from `concurrency` closed-loop workers.
async fn creates(args: CreatesArgs) -> anyhow::Result<()> {
    ensure!(args.concurrency > 0, "--concurrency must be positive");
    let http = http_client(args.concurrency)?;
    let firms = if args.one_firm { 1 } else { args.concurrency };
    let mut tokens = Vec::with_capacity(firms);
    for _ in 0..firms {
        tokens.push(sign_up(&http, &args.base).await?);
    }
    eprintln!("creates: {firms} firm(s) signed up; {} workers, {:.0} s warm-up", args.concurrency, args.warmup);
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(args.warmup);
    let end = measure_from + Duration::from_secs_f64(args.seconds);
    let latencies: Shared = Arc::default();
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::with_capacity(args.concurrency);
    for worker in 0..args.concurrency {
        let (http, base, token) = (http.clone(), args.base.clone(), tokens[worker % firms].clone());
        let (latencies, errors) = (latencies.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let began = Instant::now();
                let made = create_key(&http, &base, &token, &format!("Load key {worker}-{n}"), &[]).await;
                let finished = Instant::now();
                // Only requests that both began and ended inside the window count.
                if began >= measure_from && finished <= end {
                    match made {
                        Ok(_) => record(&latencies, finished - began),
                        Err(error) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("creates: first error: {error:#}");
                            }
                        }
                    }
                }
            }
        }));
    }
    for worker in workers {
        worker.await.context("a worker panicked")?;
    }
    let latencies = take(latencies);
    println!("creates_per_s={:.1}", latencies.0.len() as f64 / args.seconds);
    println!("creates_errors={}", errors.load(Ordering::Relaxed));
    latencies.print("creates");
    Ok(())
}

// --- lag ------------------------------------------------------------------------------------

/// A key made in this process through the commands layer, already visible on both nodes.
struct DirectKey {
    id: ApiKeyId,
    secret: String,
}

/// What the lag probes gather.
#[derive(Default)]
struct LagFigures {
    /// Command: from the call to its return (commit and NOTIFY; no barrier).
    command: Shared,
    /// From the command's return until node A accepts.
    node_a: Shared,
    /// From the command's return until node B accepts.
    node_b: Shared,
    /// From the command's return until both accept.
    both: Shared,
    /// Probes that never saw the change within the time-out.
    timeouts: Arc<AtomicU64>,
    /// Commands or polls that failed.
    errors: Arc<AtomicU64>,
}

/// Projection lag: the direct half (no barrier), then the HTTP half (with the barrier).
async fn lag(args: LagArgs) -> anyhow::Result<()> {
    ensure!(args.rate > 0.0, "--rate must be positive");
    let http = http_client(64)?;
    direct_lag(&args, &http).await?;
    barrier_lag(&args, &http).await
}

/// Commands committed by this process at a steady rate, each probed on both nodes.
async fn direct_lag(args: &LagArgs, http: &reqwest::Client) -> anyhow::Result<()> {
    let pool = commands::db::connect(&args.database_url, 8).await.context("connecting to the database")?;
    let commands = Arc::new(Commands {
        log: EventLog::new(pool.clone(), Arc::new(PgReadModels), Arc::new(NoBarrier), Default::default()),
        session_ttl: chrono::TimeDelta::hours(1),
        sign_in_limits: Default::default(),
    });
    let unique = Uuid::now_v7().simple();
    let (_, owner) =
        bench::sign_up_firm(&commands, &format!("Lag {unique} LLP"), &format!("owner-{unique}@lag.example")).await?;
    let owner: Arc<Authorized<ManagesApiKeys>> = Arc::new(owner);
    // Give both nodes the new firm and owner before the clock starts.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let figures = Arc::new(LagFigures::default());
    let watching = tokio_util::sync::CancellationToken::new();
    let horizon = tokio::spawn(watch_horizon(pool.clone(), watching.clone()));
    let visible: Arc<Mutex<Vec<DirectKey>>> = Arc::default();
    let poll = Duration::from_millis(args.poll_ms);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let total = (args.rate * args.seconds).round() as u64;
    let mut probes = Vec::with_capacity(total as usize);
    eprintln!("lag: {total} direct commands at {:.0}/s (creates and domain edits, alternating)", args.rate);
    for n in 0..total {
        ticker.tick().await;
        // An edit needs a key both nodes know; until there is one, create.
        let edit_target =
            if n % 2 == 1 { visible.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop() } else { None };
        let (commands, owner, figures, visible) = (commands.clone(), owner.clone(), figures.clone(), visible.clone());
        let (http, a, b) = (http.clone(), args.a.clone(), args.b.clone());
        probes.push(tokio::spawn(async move {
            let outcome = direct_probe(&commands, &owner, &http, [&a, &b], n, edit_target, poll, &figures).await;
            match outcome {
                Ok(Some(key)) => visible.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(key),
                Ok(None) => {}
                Err(error) => {
                    if figures.errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("lag: first error: {error:#}");
                    }
                }
            }
        }));
    }
    for probe in probes {
        probe.await.context("a probe panicked")?;
    }
    watching.cancel();
    let horizon = horizon.await.context("the horizon watch panicked")??;
    pool.close().await;
    println!("horizon_samples={}", horizon.samples);
    println!("horizon_held_samples={}", horizon.held);
    println!("horizon_longest_ms={:.0}", horizon.longest * 1e3);
    println!("horizon_longest_here={}", horizon.longest_here);
    let figures = Arc::try_unwrap(figures).map_err(|_| anyhow::anyhow!("probes still hold the figures"))?;
    println!("lag_commands={total}");
    println!("lag_timeouts={}", figures.timeouts.load(Ordering::Relaxed));
    println!("lag_errors={}", figures.errors.load(Ordering::Relaxed));
    take(figures.command).print("lag_command");
    take(figures.node_a).print("lag_node_a");
    take(figures.node_b).print("lag_node_b");
    take(figures.both).print("lag_both");
    Ok(())
}

/// What [`watch_horizon`] saw.
#[derive(Debug, Default)]
struct Horizon {
    /// Samples taken.
    samples: u64,
    /// Samples that found a write transaction open for over 100 ms.
    held: u64,
    /// The oldest such transaction's age, in seconds.
    longest: f64,
    /// Whether that transaction was in the benchmark's own database.
    longest_here: bool,
}

/// Every 20 ms until cancelled, looks for write transactions open for over 100 ms anywhere in
/// the Postgres cluster: each holds every feed reader (the relay) below its id, so events
/// committed meanwhile wait for it (docs/decisions.md).
async fn watch_horizon(pool: sqlx::PgPool, stop: tokio_util::sync::CancellationToken) -> anyhow::Result<Horizon> {
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut seen = Horizon::default();
    while !stop.is_cancelled() {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let oldest: Option<(f64, bool)> = sqlx::query_as(
            "SELECT extract(epoch FROM clock_timestamp() - xact_start)::float8, datname = current_database()
             FROM pg_stat_activity
             WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
               AND clock_timestamp() - xact_start > interval '100 milliseconds'
             ORDER BY xact_start LIMIT 1",
        )
        .fetch_optional(&pool)
        .await
        .context("reading pg_stat_activity")?;
        seen.samples += 1;
        if let Some((age, here)) = oldest {
            seen.held += 1;
            if age > seen.longest {
                seen.longest = age;
                seen.longest_here = here;
            }
        }
    }
    Ok(seen)
}

/// One command through the commands layer, then both nodes polled until they reflect it.
/// A creation's key is returned once both nodes accept it, for a later edit.
#[allow(clippy::too_many_arguments)]
async fn direct_probe(
    commands: &Commands,
    owner: &Authorized<ManagesApiKeys>,
    http: &reqwest::Client,
    nodes: [&str; 2],
    n: u64,
    edit_target: Option<DirectKey>,
    poll: Duration,
    figures: &LagFigures,
) -> anyhow::Result<Option<DirectKey>> {
    let began = Instant::now();
    // A created key allows only `start.example`, so an edit's new domain shows as a change of
    // answer (403 origin_not_allowed, then 200) for a request from that domain.
    let (secret, origin, key) = match edit_target {
        Some(key) => {
            let domain = format!("e{n}.lag.example");
            let domains = AllowedDomains::parse(&[domain.as_str()])
                .map_err(|e| anyhow::anyhow!("the domain {domain} does not parse: {e:?}"))?;
            commands
                .update_allowed_domains(owner, key.id, domains, None, read_back::nothing)
                .await
                .map_err(|e| anyhow::anyhow!("editing a key's domains: {e:?}"))?;
            (key.secret.clone(), Some(format!("https://{domain}")), Some(key))
        }
        None => {
            let key = NewApiKey {
                name: KeyName::parse(&format!("Lag key {n}"))?,
                scopes: Scopes::parse(&["contacts:read"])?,
                expires_at: None,
                allowed_domains: AllowedDomains::parse(&["start.example"])
                    .map_err(|e| anyhow::anyhow!("start.example does not parse: {e:?}"))?,
                rate_limit: None,
            };
            let (created, ()) = commands
                .create_api_key(owner, key, None, read_back::nothing)
                .await
                .map_err(|e| anyhow::anyhow!("creating a key: {e:?}"))?;
            let secret = created.secret.expose().to_owned();
            (secret.clone(), None, Some(DirectKey { id: created.id, secret }))
        }
    };
    let committed = Instant::now();
    record(&figures.command, committed - began);
    let (on_a, on_b) = tokio::join!(
        until_accepted(http, nodes[0], &secret, origin.as_deref(), committed, poll),
        until_accepted(http, nodes[1], &secret, origin.as_deref(), committed, poll),
    );
    match (on_a?, on_b?) {
        (Some(a), Some(b)) => {
            record(&figures.node_a, a);
            record(&figures.node_b, b);
            record(&figures.both, a.max(b));
            Ok(key)
        }
        _ => {
            figures.timeouts.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        }
    }
}

/// The same load through node A's HTTP API: each response waits for the barrier, so node B
/// should accept each change as soon as the response is back.
async fn barrier_lag(args: &LagArgs, http: &reqwest::Client) -> anyhow::Result<()> {
    let token = Arc::new(sign_up(http, &args.a).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let latencies: Shared = Arc::default();
    let seen = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let keys: Arc<Mutex<Vec<HttpKey>>> = Arc::default();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let total = (args.rate * args.seconds).round() as u64;
    let mut probes = Vec::with_capacity(total as usize);
    eprintln!("lag: {total} commands through node A at {:.0}/s, each checked on node B", args.rate);
    for n in 0..total {
        ticker.tick().await;
        let target = if n % 2 == 1 { keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).pop() } else { None };
        let (http, a, b, token) = (http.clone(), args.a.clone(), args.b.clone(), token.clone());
        let (latencies, seen, errors, keys) = (latencies.clone(), seen.clone(), errors.clone(), keys.clone());
        probes.push(tokio::spawn(async move {
            let outcome = async {
                let began = Instant::now();
                let (key, origin) = match target {
                    Some(key) => {
                        let domain = format!("e{n}.barrier.example");
                        let response = http
                            .put(format!("{a}/v1/api-keys/{}/allowed-domains", key.id))
                            .bearer_auth(token.as_str())
                            .json(&json!({ "allowed_domains": [domain] }))
                            .send()
                            .await
                            .context("PUT allowed-domains")?;
                        expect_json(response, StatusCode::OK, "PUT allowed-domains").await?;
                        (key, Some(format!("https://{domain}")))
                    }
                    None => {
                        (create_key(&http, &a, &token, &format!("Barrier key {n}"), &["start.example"]).await?, None)
                    }
                };
                record(&latencies, began.elapsed());
                if current_status(&http, &b, &key.secret, origin.as_deref()).await? == StatusCode::OK {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                keys.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(key);
                anyhow::Ok(())
            };
            if let Err(error) = outcome.await {
                if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("lag: first error through node A: {error:#}");
                }
            }
        }));
    }
    for probe in probes {
        probe.await.context("a probe panicked")?;
    }
    println!("barrier_commands={total}");
    println!("barrier_seen_on_b={}", seen.load(Ordering::Relaxed));
    println!("barrier_errors={}", errors.load(Ordering::Relaxed));
    take(latencies).print("barrier_command");
    Ok(())
}

// --- revokes --------------------------------------------------------------------------------

/// Revocations one by one through node A, each checked on node B, beside key creations and
/// contact creations one by one.
async fn revokes(args: RevokesArgs) -> anyhow::Result<()> {
    ensure!(args.count > 0, "--count must be positive");
    let http = http_client(4)?;
    let token = sign_up(&http, &args.a).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut created = Samples::default();
    let mut keys = Vec::with_capacity(args.count);
    for n in 0..args.count {
        let began = Instant::now();
        keys.push(create_key(&http, &args.a, &token, &format!("Revoke key {n}"), &[]).await?);
        created.push(began.elapsed());
    }

    let mut revoked = Samples::default();
    let mut refused_on_b = 0usize;
    for key in &keys {
        let began = Instant::now();
        let response = http
            .post(format!("{}/v1/api-keys/{}/revoke", args.a, key.id))
            .bearer_auth(&token)
            .send()
            .await
            .context("POST /v1/api-keys/{id}/revoke")?;
        expect_json(response, StatusCode::OK, "POST /v1/api-keys/{id}/revoke").await?;
        revoked.push(began.elapsed());
        if current_status(&http, &args.b, &key.secret, None).await? == StatusCode::UNAUTHORIZED {
            refused_on_b += 1;
        }
    }

    let mut contacts = Samples::default();
    for n in 0..args.count {
        let began = Instant::now();
        let response = http
            .post(format!("{}/v1/contacts", args.a))
            .bearer_auth(&token)
            .json(&json!({ "name": format!("Contact {n}") }))
            .send()
            .await
            .context("POST /v1/contacts")?;
        expect_json(response, StatusCode::CREATED, "POST /v1/contacts").await?;
        contacts.push(began.elapsed());
    }

    println!("revoke_refused_on_b={refused_on_b}");
    revoked.print("revoke");
    created.print("create_seq");
    contacts.print("contact_seq");
    Ok(())
}

// --- nats -----------------------------------------------------------------------------------

/// NATS round trips: core request/reply, JetStream publish to ack and to delivery.
async fn nats(args: NatsArgs) -> anyhow::Result<()> {
    ensure!(args.count > 0, "--count must be positive");
    let names = commands::nats::NatsNames::new(&args.prefix)?;
    let client = async_nats::connect(&args.nats_url).await.context("connecting to NATS")?;

    // Core request/reply through the server, with the responder in this process.
    let echo = format!("{}_scratch.echo", names.prefix());
    let mut requests = client.subscribe(echo.clone()).await.context("subscribing")?;
    let responder_client = client.clone();
    let responder = tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            if let Some(reply) = message.reply {
                if responder_client.publish(reply, message.payload).await.is_err() {
                    break;
                }
            }
        }
    });
    client.flush().await.context("flushing the subscription")?;
    let mut round_trips = Samples::default();
    for n in 0..args.count {
        let began = Instant::now();
        client.request(echo.clone(), n.to_string().into()).await.context("NATS request")?;
        round_trips.push(began.elapsed());
    }
    responder.abort();

    // JetStream, on a file stream like the events stream.
    let js = jetstream::new(client.clone());
    let stream_name = format!("{}_scratch", names.prefix());
    let subject = format!("{}_scratch.js", names.prefix());
    let measured = jetstream_latency(&js, &stream_name, &subject, args.count).await;
    if let Err(error) = js.delete_stream(&stream_name).await {
        eprintln!("nats: the scratch stream {stream_name} was not deleted: {error}");
    }
    let (acks, deliveries) = measured?;
    round_trips.print("nats_request");
    acks.print("js_publish_ack");
    deliveries.print("js_delivery");
    Ok(())
}

/// Publishes `count` messages one at a time; returns the latencies to the ack and to the
/// delivery through an ordered consumer.
async fn jetstream_latency(
    js: &jetstream::Context,
    stream_name: &str,
    subject: &str,
    count: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let scratch = js
        .create_stream(stream::Config {
            name: stream_name.to_owned(),
            subjects: vec![subject.to_owned()],
            storage: stream::StorageType::File,
            max_messages: i64::try_from(count).unwrap_or(i64::MAX).max(1000),
            ..Default::default()
        })
        .await
        .context("creating the scratch stream")?;
    let mut delivered = scratch
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .context("creating the consumer")?
        .messages()
        .await
        .context("following the scratch stream")?;
    let mut acks = Samples::default();
    let mut deliveries = Samples::default();
    for n in 0..count {
        let payload = n.to_string();
        let began = Instant::now();
        // The ack and the delivery race: each is timed on its own.
        let acked = async {
            let ack = js.publish(subject.to_owned(), payload.clone().into()).await.context("publishing")?;
            ack.await.context("waiting for the ack")?;
            anyhow::Ok(began.elapsed())
        };
        let received = async {
            loop {
                let message = tokio::time::timeout(PROBE_TIMEOUT, delivered.next())
                    .await
                    .context("no delivery within the time-out")?
                    .context("the consumer ended")?
                    .map_err(|e| anyhow::anyhow!("the consumer failed: {e}"))?;
                if message.payload.as_ref() == payload.as_bytes() {
                    return anyhow::Ok(began.elapsed());
                }
            }
        };
        let (acked, received) = tokio::join!(acked, received);
        acks.push(acked?);
        deliveries.push(received?);
    }
    if deliveries.0.len() != count {
        bail!("{} of {count} messages delivered", deliveries.0.len());
    }
    Ok((acks, deliveries))
}
