//! Esqase's write side: the Postgres event log, one handler per command, and the relay that
//! publishes committed events to NATS JetStream.

pub mod aggregates;
pub mod api_keys;
pub mod auth;
pub mod db;
pub mod error;
pub mod expiry;
pub mod firms;
pub mod log;
pub mod members;
pub mod nats;
pub mod read_back;
pub mod relay;
pub mod secret_scanning;
pub mod store;
pub mod throttle;
pub mod usage;

pub use error::CommandError;
pub use log::{Barrier, EventLog, NoBarrier, NoReadModels, ReadModels};
pub use store::{FeedPosition, Metadata, RecordedEvent};

/// The command handlers, over one event log.
pub struct Commands {
    /// The log every command appends to.
    pub log: EventLog,
    /// How long a new session lasts.
    pub session_ttl: chrono::TimeDelta,
    /// When failed sign-ins start to wait.
    pub sign_in_limits: throttle::SignInLimits,
}
