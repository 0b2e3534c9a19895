//! Routes, one module per area.

pub mod api_keys;
pub mod audit;
pub mod data;
pub mod members;
pub mod ops;

use crate::error::ApiError;
use uuid::Uuid;

/// An id from a path: one that is not a UUID names nothing, so it is `404 not_found`.
pub fn path_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| ApiError::NotFound)
}
