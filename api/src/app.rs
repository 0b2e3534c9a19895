//! The axum application: shared state, one router per area merged into one, and the
//! cross-cutting layers (request ids, body limit, problem+json for unknown routes).

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use commands::relay::RelayStatus;
use commands::Commands;
use std::sync::Arc;

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

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
        .layer(middleware::from_fn(crate::cors::cors))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Refuses a body declared larger than [`BODY_LIMIT`] on every route, before anything runs:
/// a route that reads no body (a revoke) must not act on a request the contract refuses. Bodies
/// sent in chunks are cut off at the limit by [`DefaultBodyLimit`] when they are read. A secret
/// scanning report may be larger (1,000 tokens with their URLs): its limit is
/// [`crate::routes::secret_scanning::REPORT_BODY_LIMIT`], which its handler also applies.
async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
    use crate::routes::secret_scanning;
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let is_report = request.uri().path() == secret_scanning::PATH;
    match declared {
        Some(length) if is_report && length > secret_scanning::REPORT_BODY_LIMIT as u64 => {
            secret_scanning::too_large().into_response()
        }
        Some(length) if !is_report && length > BODY_LIMIT as u64 => ApiError::PayloadTooLarge.into_response(),
        _ => next.run(request).await,
    }
}

/// The request id of the request being served, for handlers and logs.
#[derive(Clone, Debug)]
pub struct RequestIdValue(pub String);

const REQUEST_ID: &str = "x-request-id";

/// Echoes a valid incoming `X-Request-Id` (1 to 128 visible ASCII characters of a safe set),
/// else makes a new one; puts it on the response and into the request's log span.
async fn request_id(mut request: Request, next: Next) -> Response {
    let incoming = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_owned);
    let id = incoming.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    request.extensions_mut().insert(RequestIdValue(id.clone()));
    let span =
        tracing::info_span!("request", request_id = %id, method = %request.method(), path = %request.uri().path());
    let started = std::time::Instant::now();
    let mut response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "served"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// A JSON response with a status.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, Body::from(bytes)).into_response();
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "response did not serialize");
            ApiError::Internal.into_response()
        }
    }
}
