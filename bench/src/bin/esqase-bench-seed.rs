//! `esqase-bench-seed`: fills a database with API keys for the verification benchmark
//! (`scripts/bench-verification.sh`), and cleans up after it.
//!
//! Seeding creates one firm and its owner through the commands layer (real events, real read
//! models), then, through the commands layer too, one Active key, one revoked key and one key
//! with a rate limit far above any load (1,000,000 a second), whose secrets it prints; then it
//! inserts `--keys` more rows straight into the `api_keys` read model, in `INSERT … SELECT FROM
//! unnest(…)` batches of 10k: real generated secrets' hashes and previews, created by the owner. Those bulk rows have no events: a node loads its verification
//! state from the read models at start-up, so the rows are all a load test needs (a rebuild of
//! the read models from the log would drop them).
//!
//! Prints, one per line on stdout: `active_secret=…`, `limited_secret=…`, `revoked_secret=…`,
//! `firm_id=…`, and the in-memory sizes of a cached key. Benchmark databases only: the secrets
//! are printed.

use anyhow::Context;
use clap::Parser;
use commands::api_keys::NewApiKey;
use commands::read_back;
use commands::{Commands, EventLog, NoBarrier};
use domain::names::KeyName;
use domain::{AllowedDomains, ApiKeySecret, RateLimit, Scopes};
use projections::read_models::PgReadModels;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Rows per `INSERT … SELECT FROM unnest(…)`.
const BATCH: usize = 10_000;

/// Seeds a benchmark database with API keys, or cleans one up.
#[derive(Debug, Parser)]
#[command(name = "esqase-bench-seed")]
struct Cli {
    /// Postgres URL of the benchmark database (created if missing, migrated).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// How many extra keys to insert in bulk, besides the three made through the commands (active, revoked, limited).
    #[arg(long, default_value_t = 0)]
    keys: usize,
    /// Instead of seeding: drop the database and delete the NATS stream and KV bucket of
    /// `--nats-prefix`.
    #[arg(long)]
    cleanup: bool,
    /// NATS URL (for `--cleanup`).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The benchmarked node's `ESQASE_NATS_PREFIX` (for `--cleanup`).
    #[arg(long, env = "ESQASE_NATS_PREFIX")]
    nats_prefix: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    bench::init_logging();
    let cli = Cli::parse();
    if cli.cleanup {
        cleanup(&cli).await
    } else {
        seed(&cli).await
    }
}

/// Drops the database, deletes the stream and the KV bucket (each best effort but reported).
async fn cleanup(cli: &Cli) -> anyhow::Result<()> {
    commands::db::drop_database(&cli.database_url).await.context("dropping the benchmark database")?;
    if let Some(prefix) = &cli.nats_prefix {
        let names = commands::nats::NatsNames::new(prefix)?;
        let client = async_nats::connect(&cli.nats_url).await.context("connecting to NATS")?;
        let js = async_nats::jetstream::new(client);
        if let Err(error) = commands::nats::delete_all(&js, &names).await {
            eprintln!("cleanup: the stream or bucket of {prefix} was not deleted: {error}");
        }
    }
    Ok(())
}

/// One batch of generated keys, ready to bind.
struct Batch {
    ids: Vec<Uuid>,
    names: Vec<String>,
    hashes: Vec<Vec<u8>>,
    previews: Vec<String>,
}

/// Generates `count` keys from `first` on, in batches, into `out` (stops when the receiver hangs up).
fn generate(first: usize, count: usize, out: &tokio::sync::mpsc::Sender<Batch>) {
    let mut made = 0;
    while made < count {
        let len = BATCH.min(count - made);
        let mut batch = Batch {
            ids: Vec::with_capacity(len),
            names: Vec::with_capacity(len),
            hashes: Vec::with_capacity(len),
            previews: Vec::with_capacity(len),
        };
        for i in first + made..first + made + len {
            let secret = ApiKeySecret::generate();
            batch.ids.push(Uuid::now_v7());
            batch.names.push(format!("Bench key {i}"));
            batch.hashes.push(secret.hash().as_bytes().to_vec());
            batch.previews.push(secret.preview().as_str().to_owned());
        }
        made += len;
        if out.blocking_send(batch).is_err() {
            return;
        }
    }
}

async fn seed(cli: &Cli) -> anyhow::Result<()> {
    let started = Instant::now();
    let pool = commands::db::connect(&cli.database_url, 4).await.context("connecting to the benchmark database")?;
    let commands = Commands {
        log: EventLog::new(pool.clone(), Arc::new(PgReadModels), Arc::new(NoBarrier), Default::default()),
        session_ttl: chrono::TimeDelta::hours(1),
        sign_in_limits: Default::default(),
    };
    let unique = Uuid::now_v7().simple().to_string();
    let (signup, owner) =
        bench::sign_up_firm(&commands, "Bench & Partners LLP", &format!("owner-{unique}@bench.example")).await?;
    let create = |name: &str, rate_limit: Option<RateLimit>| -> anyhow::Result<NewApiKey> {
        Ok(NewApiKey {
            name: KeyName::parse(name)?,
            scopes: Scopes::parse(&["contacts:read", "matters:read"])?,
            expires_at: None,
            allowed_domains: AllowedDomains::any(),
            rate_limit,
        })
    };
    let (active, ()) = commands
        .create_api_key(&owner, create("Bench active key", None)?, None, read_back::nothing)
        .await
        .map_err(|e| anyhow::anyhow!("creating the active key: {e:?}"))?;
    let (revoked, ()) = commands
        .create_api_key(&owner, create("Bench revoked key", None)?, None, read_back::nothing)
        .await
        .map_err(|e| anyhow::anyhow!("creating the revoked key: {e:?}"))?;
    // The highest limit over the shortest window: far above what one node can serve, so every
    // request is counted against it and none is refused.
    let far_above_the_load = RateLimit::new(1_000_000, 1)?;
    let (limited, ()) = commands
        .create_api_key(&owner, create("Bench limited key", Some(far_above_the_load))?, None, read_back::nothing)
        .await
        .map_err(|e| anyhow::anyhow!("creating the limited key: {e:?}"))?;
    commands
        .revoke_api_key(&owner, revoked.id, None, read_back::nothing)
        .await
        .map_err(|e| anyhow::anyhow!("revoking the revoked key: {e:?}"))?;

    // Generation (SHA-256 and the OS generator) runs on its own thread while Postgres inserts.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let total = cli.keys;
    let generator = std::thread::spawn(move || generate(0, total, &tx));
    let now = commands::log::now();
    let mut inserted = 0usize;
    while let Some(batch) = rx.recv().await {
        sqlx::query(
            "INSERT INTO api_keys (id, firm_id, name, key_hash, preview, scopes, allowed_domains, lifecycle,
                                   expires_at, created_at, created_by, version)
             SELECT t.id, $1, t.name, t.key_hash, t.preview, $2::text[], '{}'::text[], 'active', NULL, $3, $4, 1
             FROM unnest($5::uuid[], $6::text[], $7::bytea[], $8::text[]) AS t(id, name, key_hash, preview)",
        )
        .bind(signup.firm_id.as_uuid())
        .bind(vec!["contacts:read", "matters:read"])
        .bind(now)
        .bind(signup.owner_id.as_uuid())
        .bind(&batch.ids)
        .bind(&batch.names)
        .bind(&batch.hashes)
        .bind(&batch.previews)
        .execute(&pool)
        .await
        .context("inserting a batch of keys")?;
        inserted += batch.ids.len();
        if inserted.is_multiple_of(100_000) {
            eprintln!("seed: {inserted} keys inserted ({:.1} s)", started.elapsed().as_secs_f64());
        }
    }
    generator.join().map_err(|_| anyhow::anyhow!("the key generator panicked"))?;
    anyhow::ensure!(inserted == total, "inserted {inserted} keys of {total}");
    sqlx::query("ANALYZE api_keys").execute(&pool).await?;
    pool.close().await;
    eprintln!("seed: {} keys in the api_keys table in {:.1} s", inserted + 3, started.elapsed().as_secs_f64());
    println!("active_secret={}", active.secret.expose());
    println!("limited_secret={}", limited.secret.expose());
    println!("revoked_secret={}", revoked.secret.expose());
    println!("firm_id={}", signup.firm_id);
    Ok(())
}
