//! Configuration: every option is a flag and an environment variable (`esqase --help`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;

/// Esqase API keys service.
#[derive(Debug, Parser)]
#[command(name = "esqase", version, about = "Esqase API keys: the service behind a firm's API keys")]
pub struct Cli {
    /// Where to connect and how to behave.
    #[command(flatten)]
    pub settings: Settings,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the database if missing, apply migrations, and serve the API.
    Serve,
    /// Create the database if missing and apply migrations, then exit.
    Migrate,
    /// The Postgres projections (`read_models`, `audit_log`): folds of the event log.
    Projections {
        /// What to do with them.
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// The audit log.
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        command: AuditCommand,
    },
}

/// `esqase audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk a firm's hash chain; print the result as JSON and exit non-zero, naming the first
    /// broken sequence, when an entry was altered, removed or reordered.
    Verify {
        /// The firm's id.
        #[arg(long)]
        firm: uuid::Uuid,
    },
}

/// `esqase projections …`.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Replay one projection from the first event into new tables beside the live ones, then
    /// swap them in.
    ///
    /// The live tables keep serving, and commands keep running, until the swap: one short
    /// transaction that folds the last events and replaces the tables (commands wait for it).
    /// Progress is a bar on stderr when stderr is a terminal, log lines every few seconds
    /// otherwise. Each chunk of the log commits with a checkpoint: a rebuild stopped by Ctrl-C,
    /// SIGTERM or a crash goes on from its last chunk when the same command runs again.
    Rebuild {
        /// The projection: `read_models` or `audit_log`.
        name: String,
        /// Discard a partial rebuild of this projection and start again from the first event.
        #[arg(long)]
        restart: bool,
        /// Events folded and committed per chunk: at most this much work is lost when a rebuild
        /// is interrupted.
        #[arg(long, default_value_t = projections::rebuild::CHUNK_EVENTS, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_events: u64,
    },
}

/// Whether anyone may sign a firm up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Signup {
    /// `POST /v1/firms` works without authentication.
    Open,
    /// `POST /v1/firms` answers 403 `signup_closed`.
    Closed,
}

/// Connection and behaviour settings.
#[derive(Clone, Debug, Args)]
pub struct Settings {
    /// Postgres URL; the database is created if missing.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/esqase", global = true)]
    pub database_url: String,
    /// NATS URL (JetStream enabled).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222", global = true)]
    pub nats_url: String,
    /// Names this deployment's JetStream stream, subjects and KV buckets, so several share a server.
    #[arg(long, env = "ESQASE_NATS_PREFIX", default_value = "esqase", global = true)]
    pub nats_prefix: String,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ESQASE_LISTEN", default_value = "127.0.0.1:8080", global = true)]
    pub listen: SocketAddr,
    /// How often a node flushes its key usage counts as Used events, in milliseconds.
    #[arg(long, env = "ESQASE_USAGE_FLUSH_MS", default_value_t = 10_000, global = true)]
    pub usage_flush_ms: u64,
    /// How often a node looks for keys past their expiry, or past a roll's grace period, to record
    /// them, in milliseconds (either way the key stopped at the instant; this only records it).
    #[arg(long, env = "ESQASE_EXPIRY_SWEEP_MS", default_value_t = 30_000, global = true)]
    pub expiry_sweep_ms: u64,
    /// Whether `POST /v1/firms` is open.
    #[arg(long, env = "ESQASE_SIGNUP", value_enum, default_value_t = Signup::Open, global = true)]
    pub signup: Signup,
    /// How long a member's session lasts, in hours.
    #[arg(long, env = "ESQASE_SESSION_TTL_HOURS", default_value_t = 12, global = true)]
    pub session_ttl_hours: u32,
    /// Mark the browser session cookie `Secure` (sent over HTTPS only): set it whenever the
    /// service is reached over TLS, directly or through a proxy.
    #[arg(long, env = "ESQASE_SECURE_COOKIES", global = true)]
    pub secure_cookies: bool,
    /// Most Postgres connections this process opens.
    #[arg(long, env = "ESQASE_DB_MAX_CONNECTIONS", default_value_t = 20, global = true)]
    pub db_max_connections: u32,
    /// How long a request may take before it is answered 503 (a frozen Postgres answers
    /// nothing), in milliseconds; a command whose COMMIT was sent is always waited for.
    #[arg(long, env = "ESQASE_REQUEST_DEADLINE_MS", default_value_t = 2_000, global = true)]
    pub request_deadline_ms: u64,
    /// The secret scanner's public keys (a JSON file shaped like GitHub's published list,
    /// `{"public_keys": [{"key_identifier", "key", "is_current"}]}`); without it
    /// `POST /v1/secret-scanning/reports` answers 404. Read at start: a change needs a restart.
    #[arg(long, env = "ESQASE_SECRET_SCANNING_KEYS", global = true)]
    pub secret_scanning_keys: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub sign_in: SignInSettings,
}

/// When failed sign-ins (a password, an invitation token) start to wait; see
/// `commands::throttle`. Tests and schemathesis raise them so that they are not tripped.
#[derive(Clone, Debug, Args)]
pub struct SignInSettings {
    /// Failed sign-ins to one account after which its attempts wait.
    #[arg(long, env = "ESQASE_SIGN_IN_ACCOUNT_FAILURES", default_value_t = 5, global = true)]
    pub sign_in_account_failures: u32,
    /// Failed sign-ins from one client address beyond which its attempts wait.
    #[arg(long, env = "ESQASE_SIGN_IN_ADDRESS_FAILURES", default_value_t = 50, global = true)]
    pub sign_in_address_failures: u32,
    /// How long failures are remembered after the last one, in seconds.
    #[arg(long, env = "ESQASE_SIGN_IN_WINDOW_SECONDS", default_value_t = 900, global = true)]
    pub sign_in_window_seconds: u64,
    /// The first wait, in milliseconds; each further failure doubles it.
    #[arg(long, env = "ESQASE_SIGN_IN_FIRST_DELAY_MS", default_value_t = 1_000, global = true)]
    pub sign_in_first_delay_ms: u64,
    /// The longest wait, in seconds.
    #[arg(long, env = "ESQASE_SIGN_IN_MAX_DELAY_SECONDS", default_value_t = 900, global = true)]
    pub sign_in_max_delay_seconds: u64,
}

impl SignInSettings {
    /// The limits the commands apply.
    pub fn limits(&self) -> commands::throttle::SignInLimits {
        commands::throttle::SignInLimits {
            account_failures: self.sign_in_account_failures,
            address_failures: self.sign_in_address_failures,
            window: std::time::Duration::from_secs(self.sign_in_window_seconds),
            first_delay: std::time::Duration::from_millis(self.sign_in_first_delay_ms),
            max_delay: std::time::Duration::from_secs(self.sign_in_max_delay_seconds),
        }
    }
}

impl Default for SignInSettings {
    /// The defaults of the flags.
    fn default() -> Self {
        let limits = commands::throttle::SignInLimits::default();
        SignInSettings {
            sign_in_account_failures: limits.account_failures,
            sign_in_address_failures: limits.address_failures,
            sign_in_window_seconds: limits.window.as_secs(),
            sign_in_first_delay_ms: limits.first_delay.as_millis() as u64,
            sign_in_max_delay_seconds: limits.max_delay.as_secs(),
        }
    }
}
