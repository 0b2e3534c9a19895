//! Routes, one module per area.

pub mod api_keys;
pub mod audit;
pub mod data;
pub mod members;
pub mod ops;
pub mod secret_scanning;
