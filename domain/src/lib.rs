//! Esqase's domain: the product's rules, with no IO.
//!
//! Everything here is plain data and plain functions: ids, permissions and roles, the API key
//! secret format, allowed domains, the events, and each aggregate as `decide` and `evolve`.
//! The write side (`commands`) loads state, calls `decide`, and appends what it returns.

pub mod allowed_domains;
pub mod api_key;
pub mod events;
pub mod expiry;
pub mod firm;
pub mod ids;
pub mod member;
pub mod names;
pub mod permissions;
pub mod rate_limit;
#[cfg(feature = "openapi")]
pub mod schema;
pub mod secret;
pub mod secret_scanning;
pub mod validation;

pub use allowed_domains::AllowedDomains;
pub use events::{Actor, Event, StreamKind};
pub use ids::{ApiKeyId, EventId, FirmId, MemberId};
pub use permissions::{Grid, Permission, PermissionSet, Role, Scopes};
pub use rate_limit::RateLimit;
pub use secret::{ApiKeySecret, KeyHash, KeyPreview};
pub use validation::{FieldError, FieldErrors};

/// Times in the domain are UTC instants with millisecond precision (the contract's format).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Truncates an instant to whole milliseconds, so that what is stored round-trips exactly
/// through Postgres (microseconds) and JSON (milliseconds).
pub fn to_millis(t: Timestamp) -> Timestamp {
    use chrono::{DurationRound, TimeDelta};
    // Rounding down to a millisecond cannot overflow for any representable instant.
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

/// Formats an instant as the contract writes times: RFC 3339, UTC, milliseconds, `Z`.
pub fn format_time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
