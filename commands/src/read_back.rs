//! How a command that answers with state reads that state: inside its own transaction, after
//! its events are applied to the read models and before the commit.
//!
//! Read after the commit instead, a failure (Postgres gone that instant) would answer 503 for a
//! change that was made: a created key whose secret nobody saw, an invitation whose token is
//! lost, a revoke reported as failed that happened. Every command that answers with state takes
//! a [`ReadBack`]; none has a twin that skips it.

use futures::future::BoxFuture;
use sqlx::PgConnection;

/// Reads a command's answer for the thing it changed (`Id`) on the command's own connection.
pub trait ReadBack<Id, T>:
    for<'c> Fn(&'c mut PgConnection, Id) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + Sync
{
}

impl<Id, T, F> ReadBack<Id, T> for F where
    F: for<'c> Fn(&'c mut PgConnection, Id) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + Sync
{
}

/// Gives a closure the [`ReadBack`] signature (a closure's higher-ranked signature is only
/// inferred from a bound it is passed to directly).
pub fn read_back<Id, T, F>(read: F) -> F
where
    F: for<'c> Fn(&'c mut PgConnection, Id) -> BoxFuture<'c, Result<T, sqlx::Error>> + Send + Sync,
{
    read
}

/// The read-back of a caller that needs nothing but the command's own result (the load tools
/// and the seeding of benchmarks).
pub fn nothing<Id>(_: &mut PgConnection, _: Id) -> BoxFuture<'_, Result<(), sqlx::Error>> {
    Box::pin(async { Ok(()) })
}
