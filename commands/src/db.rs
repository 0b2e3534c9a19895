//! Connecting to Postgres: create the database if it is missing, apply migrations.

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;
use std::time::Duration;

/// The schema, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// How long a request waits for a connection before the database counts as unavailable (so a
/// dead Postgres is a quick 503, never a hang).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(500);

/// Creates the database named in `url` if it does not exist (connecting to `postgres` to do so).
pub async fn create_database_if_missing(url: &str) -> Result<(), sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(&name)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("CREATE DATABASE {quoted}")).execute(&mut admin).await {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Two processes starting at once: the other one created it.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    admin.close().await
}

/// A pool on `url` with migrations applied, creating the database first if needed.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    create_database_if_missing(url).await?;
    let pool =
        PgPoolOptions::new().max_connections(max_connections).acquire_timeout(ACQUIRE_TIMEOUT).connect(url).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A pool for a long batch job (a projection rebuild): as [`connect`], except that its
/// statements are not logged: running for seconds is what they do, not a warning sign.
pub async fn connect_batch(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    create_database_if_missing(url).await?;
    let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Drops a database (for tests that made their own), ending its connections first.
pub async fn drop_database(url: &str) -> Result<(), sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else { return Ok(()) };
    let mut admin = options.database("postgres").connect().await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")).execute(&mut admin).await?;
    admin.close().await
}
