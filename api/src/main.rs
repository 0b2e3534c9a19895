//! `esqase`: serve the API, migrate the database, rebuild projections.

use api::config::{AuditCommand, Cli, Command, ProjectionsCommand};
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc rather than the system allocator: a request allocates dozens of small, short-lived
/// buffers across worker threads, where glibc's malloc spent ~15% of the verified route's CPU
/// (docs/benchmarks.md). Version 2, which hands freed pages back to the system after 10 ms (v3
/// keeps them a second), so a long audit-log export does not hold its buffers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,async_nats=warn")))
        .json()
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            let running = api::serve::start(cli.settings).await?;
            let page = format!("http://{}/settings/developers", running.addr);
            tracing::info!(addr = %running.addr, %page, "listening");
            eprintln!("Esqase is listening: open {page}");
            let shutdown = running.shutdown.clone();
            tokio::spawn(async move {
                api::serve::shutdown_signal().await;
                tracing::info!("shutting down");
                shutdown.cancel();
            });
            running.wait().await
        }
        Command::Migrate => {
            commands::db::connect(&cli.settings.database_url, 2).await?.close().await;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Projections { command: ProjectionsCommand::Rebuild { name, restart, chunk_events } } => {
            // The rebuild holds a lock session, writes a chunk and reads the next one at once.
            let pool = commands::db::connect_batch(&cli.settings.database_url, 4).await?;
            let options = projections::rebuild::Options { restart, chunk_events, stop_after_chunks: None };
            let progress = api::progress::RebuildProgress::new(&name);
            let outcome = tokio::select! {
                outcome = projections::rebuild::rebuild_with(&pool, &name, &options, &progress) => outcome,
                () = api::serve::shutdown_signal() => {
                    // Ending the process rolls back the chunk being folded; the ones committed
                    // stay, with their checkpoint.
                    progress.finish();
                    eprintln!(
                        "rebuild of {name} interrupted: run the same command again to go on from its last chunk \
                         (--restart starts over)"
                    );
                    std::process::exit(130);
                }
            };
            progress.finish();
            let replayed = outcome?.replayed();
            tracing::info!(projection = %name, events = replayed, "rebuilt");
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify { firm } } => {
            let pool = commands::db::connect(&cli.settings.database_url, 2).await?;
            let verification = projections::audit::verify(&pool, domain::FirmId::from_uuid(firm)).await?;
            pool.close().await;
            println!("{}", serde_json::to_string(&verification)?);
            if let Some(sequence) = verification.first_broken_sequence {
                eprintln!("the audit log of firm {firm} is broken at sequence {sequence}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
