//! Esqase's read side: the Postgres read models and the queries that serve them, the
//! projection runner, and the in-memory verification state.

pub mod audit;
pub mod cluster;
pub mod page;
pub mod rate_limits;
pub mod read_models;
pub mod rebuild;
pub mod runner;
pub mod verification;
pub mod views;
