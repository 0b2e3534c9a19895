//! The axum application: shared state, and one router per area merged into one under the
//! cross-cutting layers of [`crate::middleware`].

use crate::error::ApiError;
use crate::middleware::{refuse_oversized_bodies, request_id, BODY_LIMIT};
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::Router;
use commands::relay::RelayStatus;
use commands::Commands;
use std::sync::Arc;

/// What every request handler shares.
pub struct AppState {
    /// The command handlers; their log's pool also serves the read models.
    pub commands: Commands,
    /// Whether `POST /v1/firms` is open (`ESQASE_SIGNUP`).
    pub signup_open: bool,
    /// Whether the browser session cookie is marked `Secure` (`ESQASE_SECURE_COOKIES`).
    pub secure_cookies: bool,
    /// The NATS connection, checked by `/readyz`.
    pub nats: async_nats::Client,
    /// This node in the cluster: whether its verification state may answer on its own.
    pub cluster: Arc<projections::cluster::Cluster>,
    /// What the relay has done, for `/readyz` and `/metrics`.
    pub relay: Arc<RelayStatus>,
    /// This node's verification state (keys, members, grids), kept current by its runner.
    pub verification: projections::verification::SharedVerification,
    /// Key uses counted on this node, flushed as Used events.
    pub usage: Arc<commands::usage::UsageRecorder>,
    /// Each limited key's quota on this node, reserved from the count all nodes share.
    pub rate_limiter: Arc<projections::rate_limits::RateLimiter>,
    /// How long a request may take before it is answered 503 (see [`crate::deadline`]).
    pub request_deadline: std::time::Duration,
    /// How far the verification runner has got, for `/readyz` and `/metrics`.
    pub verification_status: Arc<projections::runner::ProjectionStatus>,
    /// The secret scanner's public keys (`ESQASE_SECRET_SCANNING_KEYS`); `None` turns the
    /// report route off.
    pub secret_scanning: Option<crate::routes::secret_scanning::ScannerKeys>,
}

impl AppState {
    /// This node's verification state, while it can show it reflects every committed change
    /// (see [`projections::cluster::Cluster::trusts_cache`] and `VerificationState::is_current`);
    /// `None` means: ask Postgres.
    pub fn trusted_verification(
        &self,
    ) -> Option<std::sync::RwLockReadGuard<'_, projections::verification::VerificationState>> {
        if !self.cluster.trusts_cache() {
            return None;
        }
        let verification = self.verification.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        verification.is_current().then_some(verification)
    }

    /// The database pool (the log and the read models).
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.commands.log.pool
    }
}

/// The routes of every area, without the cross-cutting layers or state (each registered with
/// its OpenAPI description, see [`crate::openapi::routes`]).
pub fn routes() -> Router<Arc<AppState>> {
    let (routes, _) = crate::openapi::routes().split_for_parts();
    routes
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    routes()
        .merge(crate::web::router())
        .fallback(crate::web::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(refuse_oversized_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), crate::deadline::deadline))
        .layer(middleware::from_fn(crate::rate_limit::headers))
        .layer(middleware::from_fn(crate::cors::cors))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}
