//! Step definitions, one module per area, over a shared [`world::Esqase`].

pub mod api_keys;
pub mod audit;
pub mod keys_at_work;
pub mod members;
pub mod rate_limits;
pub mod rolling;
pub mod secret_scanning;
pub mod web;
pub mod world;
