//! Starting the service: database, NATS, relay, HTTP; and stopping it cleanly.

use crate::app::{router, AppState};
use crate::config::{Settings, Signup};
use commands::nats::NatsNames;
use commands::relay::{Relay, RelayStatus};
use commands::usage::UsageRecorder;
use commands::{Commands, EventLog};
use projections::cluster::Cluster;
use projections::rate_limits::RateLimiter;
use projections::read_models::PgReadModels;
use projections::runner::{ProjectionStatus, Runner};
use projections::verification::{SharedVerification, VerificationProjection, VerificationState};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A running service.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Cancel to stop it: the listener stops accepting, in-flight requests finish, tasks end.
    pub shutdown: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Running {
    /// Waits until every task of the service has ended (after `shutdown`, or a fatal error).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut result = Ok(());
        while let Some(ended) = self.tasks.join_next().await {
            let outcome = ended.map_err(anyhow::Error::from).and_then(|r| r);
            if let Err(error) = outcome {
                tracing::error!(%error, "a service task failed");
                self.shutdown.cancel();
                result = Err(error);
            }
        }
        result
    }
}

/// How long a starting node gives NATS before it says that NATS does not answer.
const NATS_FIRST_CONNECT: Duration = Duration::from_secs(2);

/// A lost NATS connection is tried again after this times the attempts so far, up to
/// [`NATS_RECONNECT_MAX`] apart.
const NATS_RECONNECT_STEP: Duration = Duration::from_millis(50);
const NATS_RECONNECT_MAX: Duration = Duration::from_millis(250);

/// Said once per outage (the client's own retries are logged at debug, below the default filter).
fn say_nats_is_unreachable(url: &str) {
    tracing::warn!(
        nats_url = %url,
        "NATS is unreachable: commands are still taken and other nodes catch up from Postgres; \
         start it with `nats-server -js` (or set NATS_URL)"
    );
}

/// What a person starting the service needs to read when Postgres fails it: where it was looked
/// for (never the password) and, when it does not answer, how to start it.
fn postgres_error(url: &str, error: sqlx::Error) -> anyhow::Error {
    let shown = match url.parse::<sqlx::postgres::PgConnectOptions>() {
        Ok(options) => format!(
            "postgres://{}@{}:{}/{}",
            options.get_username(),
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("postgres")
        ),
        Err(_) => return anyhow::Error::new(error).context("DATABASE_URL is not a Postgres URL"),
    };
    let unreachable = matches!(error, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_));
    let context = if unreachable {
        format!(
            "could not reach Postgres at {shown}: start it (on Debian: `pg_ctlcluster <version> main start`) \
             or set DATABASE_URL to one that runs"
        )
    } else {
        format!("could not prepare the database at {shown}")
    };
    anyhow::Error::new(error).context(context)
}

/// Creates the database if missing, applies migrations, connects to NATS, starts the relay and
/// serves the API. Returns once it listens.
pub async fn start(settings: Settings) -> anyhow::Result<Running> {
    let names = NatsNames::new(&settings.nats_prefix)?;
    // A broken keys file stops the start, before anything else: a route that could never accept
    // a report would hide that leaked keys go unrevoked.
    let secret_scanning =
        settings.secret_scanning_keys.as_deref().map(crate::routes::secret_scanning::ScannerKeys::load).transpose()?;
    let pool = commands::db::connect(&settings.database_url, settings.db_max_connections)
        .await
        .map_err(|e| postgres_error(&settings.database_url, e))?;
    // Connect in the background: with NATS down the service still takes commands, and the
    // relay catches up when NATS returns.
    let verification_status = Arc::new(ProjectionStatus::default());
    let nats = {
        let status = verification_status.clone();
        let nats_url = Arc::<str>::from(settings.nats_url.as_str());
        async_nats::ConnectOptions::new().event_callback(move |event| {
            let status = status.clone();
            let nats_url = nats_url.clone();
            async move {
                // A (re)connection, or messages this client dropped: what was announced
                // meanwhile never reached this node, so only Postgres can tell it.
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("connected to NATS");
                        status.nats_connections.fetch_add(1, Ordering::Relaxed);
                        status.mark_missed();
                    }
                    async_nats::Event::Disconnected => say_nats_is_unreachable(&nats_url),
                    async_nats::Event::SlowConsumer(_) => {
                        tracing::warn!("NATS messages were dropped on this node; reading the feed from Postgres");
                        status.mark_missed();
                    }
                    _ => {}
                }
            }
        })
    }
    .retry_on_initial_connect()
    // The client's default backoff doubles up to 4 s between attempts, so a node could stay
    // off NATS (verifying against Postgres, its commands waiting out leases) for seconds after
    // the server is back. A handful of nodes retrying every quarter second costs the server
    // nothing.
    .reconnect_delay_callback(|attempts| NATS_RECONNECT_STEP.saturating_mul(attempts as u32).min(NATS_RECONNECT_MAX))
    .name(format!("esqase-{}", names.prefix()))
    .connect(&settings.nats_url)
    .await?;
    let nats_client = nats.clone();
    // The verification state starts from the read models as of a known feed position, so a
    // node does not replay the whole log to start.
    let loading = std::time::Instant::now();
    let state = VerificationState::load(&pool).await?;
    tracing::info!(
        keys = state.key_count(),
        key_heap_bytes = state.key_heap_bytes(),
        elapsed_ms = loading.elapsed().as_millis() as u64,
        "verification state loaded"
    );
    let verification: SharedVerification = Arc::new(RwLock::new(state));
    let relay_wake = Arc::new(tokio::sync::Notify::new());
    let cluster = Arc::new(Cluster::new(
        nats.clone(),
        names.clone(),
        verification.clone(),
        verification_status.clone(),
        relay_wake.clone(),
    ));
    let rate_limiter = {
        let cluster = cluster.clone();
        RateLimiter::new(nats.clone(), &names, move || cluster.known_nodes())
    };
    let log = EventLog::new(pool.clone(), Arc::new(PgReadModels), cluster.clone(), relay_wake);
    let relay_status = Arc::new(RelayStatus::default());
    let relay = Relay {
        pool: pool.clone(),
        nats: nats.clone(),
        names: names.clone(),
        wake: log.commit_signal(),
        status: relay_status.clone(),
    };
    let runner = Runner {
        pool: pool.clone(),
        nats: nats.clone(),
        names: names.clone(),
        projection: VerificationProjection { state: verification.clone() },
        status: verification_status.clone(),
    };
    let state = Arc::new(AppState {
        commands: Commands {
            log,
            session_ttl: chrono::TimeDelta::hours(i64::from(settings.session_ttl_hours)),
            sign_in_limits: settings.sign_in.limits(),
        },
        signup_open: settings.signup == Signup::Open,
        secure_cookies: settings.secure_cookies,
        nats,
        cluster: cluster.clone(),
        relay: relay_status,
        verification,
        verification_status,
        usage: Arc::new(UsageRecorder::default()),
        rate_limiter,
        request_deadline: Duration::from_millis(settings.request_deadline_ms.max(1)),
        secret_scanning,
    });
    let shutdown = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let mut tasks = JoinSet::new();
    {
        // A NATS that never answered since start raises no Disconnected: say it once here.
        let (nats, url, shutdown) = (nats_client.clone(), settings.nats_url.clone(), shutdown.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(NATS_FIRST_CONNECT) => {
                    if nats.connection_state() != async_nats::connection::State::Connected {
                        say_nats_is_unreachable(&url);
                    }
                }
            }
            Ok(())
        });
    }
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            relay.run(shutdown).await;
            Ok(())
        });
    }
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            runner.run(shutdown).await;
            Ok(())
        });
    }
    {
        let (cluster, shutdown) = (cluster.clone(), shutdown.clone());
        tasks.spawn(async move { cluster.run(shutdown).await });
    }
    {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        let interval = Duration::from_millis(settings.usage_flush_ms.max(1));
        tasks.spawn(async move {
            state.usage.run(&state.commands, interval, shutdown).await;
            Ok(())
        });
    }
    {
        let (limiter, shutdown) = (state.rate_limiter.clone(), shutdown.clone());
        tasks.spawn(async move {
            limiter.run(shutdown).await;
            Ok(())
        });
    }
    {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        let interval = Duration::from_millis(settings.expiry_sweep_ms.max(1));
        tasks.spawn(async move {
            state.commands.run_expiry_sweeper(interval, shutdown).await;
            Ok(())
        });
    }
    {
        let shutdown = shutdown.clone();
        let app = router(state);
        tasks.spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await?;
            Ok(())
        });
    }
    Ok(Running { addr, shutdown, tasks })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_postgres_is_named_without_its_password_with_how_to_start_it() {
        let error = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let message =
            format!("{:#}", postgres_error("postgres://esq:hunter2@db.internal:6543/firm", sqlx::Error::Io(error)));
        assert!(message.starts_with("could not reach Postgres at postgres://esq@db.internal:6543/firm"), "{message}");
        assert!(message.contains("pg_ctlcluster") && message.contains("DATABASE_URL"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
}
