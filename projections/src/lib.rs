//! Esqase's read side: the Postgres read models and the queries that serve them, the
//! projection runner, and the in-memory verification cache.

pub mod page;
pub mod read_models;
pub mod rebuild;
pub mod views;
