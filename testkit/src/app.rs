//! Spawning the whole service for tests: its own database, its own NATS prefix, port 0, so
//! tests run in parallel and twice in a row against the machine's Postgres and NATS.

use api::config::{Settings, Signup};
use api::serve::{start, Running};
use std::net::SocketAddr;

/// A service started for one test; its database is dropped when it is [`TestApp::stop`]ped,
/// or when it is dropped without being stopped (a test that failed half-way).
pub struct TestApp {
    /// Where it listens, e.g. `http://127.0.0.1:40123`.
    pub base_url: String,
    /// Its address.
    pub addr: SocketAddr,
    /// The settings it runs with (its own database URL and NATS prefix).
    pub settings: Settings,
    running: Option<Running>,
}

/// Settings for a fresh, isolated service: a unique database and NATS prefix, port 0.
pub fn isolated_settings() -> Settings {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let database_url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/esqase_test_{unique}"),
        None => format!("{base}/esqase_test_{unique}"),
    };
    Settings {
        database_url,
        nats_url: std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into()),
        nats_prefix: format!("t{unique}"),
        listen: "127.0.0.1:0".parse().expect("a valid literal address"),
        usage_flush_ms: 200,
        expiry_sweep_ms: 500,
        signup: Signup::Open,
        session_ttl_hours: 12,
        secure_cookies: false,
        db_max_connections: 10,
        // Debug builds on a busy two-core CI machine: generous, so no test trips it by accident.
        request_deadline_ms: 30_000,
        secret_scanning_keys: None,
        sign_in: Default::default(),
    }
}

impl TestApp {
    /// Starts a service with [`isolated_settings`].
    pub async fn spawn() -> anyhow::Result<TestApp> {
        Self::spawn_with(isolated_settings()).await
    }

    /// Starts a second node beside this one: the same database and NATS prefix, its own port.
    pub async fn spawn_beside(&self) -> anyhow::Result<TestApp> {
        let mut settings = self.settings.clone();
        settings.listen = "127.0.0.1:0".parse()?;
        Self::spawn_with(settings).await
    }

    /// Starts a service with `settings`.
    pub async fn spawn_with(settings: Settings) -> anyhow::Result<TestApp> {
        let running = start(settings.clone()).await?;
        let addr = running.addr;
        Ok(TestApp { base_url: format!("http://{addr}"), addr, settings, running: Some(running) })
    }

    /// Stops the service, drops its database and deletes its JetStream stream.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            running.shutdown.cancel();
            running.wait().await?;
        }
        remove_traces(&self.settings).await
    }
}

/// Drops the test's database (ending its connections) and deletes its JetStream stream and
/// rate-limit bucket.
async fn remove_traces(settings: &Settings) -> anyhow::Result<()> {
    commands::db::drop_database(&settings.database_url).await?;
    if let Ok(client) = async_nats::connect(&settings.nats_url).await {
        let js = async_nats::jetstream::new(client);
        let names = commands::nats::NatsNames::new(&settings.nats_prefix)?;
        // Best effort: a test that stopped NATS (or its own server) may leave nothing to delete.
        let _ = commands::nats::delete_all(&js, &names).await;
    }
    Ok(())
}

impl Drop for TestApp {
    /// A test that panicked before `stop` still leaves nothing behind: the service is told to
    /// stop and its database and stream are removed from a thread of their own (the test's
    /// runtime may be the one unwinding).
    fn drop(&mut self) {
        let Some(running) = self.running.take() else { return };
        running.shutdown.cancel();
        let settings = self.settings.clone();
        let removed = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(remove_traces(&settings))
        })
        .join();
        if !matches!(removed, Ok(Ok(()))) {
            eprintln!("could not remove test database {}", self.settings.database_url);
        }
    }
}
