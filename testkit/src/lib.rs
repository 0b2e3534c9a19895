//! What the integration tests and the behaviour specs share: the whole service spawned in
//! isolation (its own database and NATS prefix, port 0), and one JSON client for it.

mod app;
mod client;

pub use app::{isolated_settings, TestApp};
pub use client::*;
