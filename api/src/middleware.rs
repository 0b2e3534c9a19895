//! The cross-cutting layers every request passes: request ids, the body limit. (The deadline
//! and CORS have modules of their own: [`crate::deadline`], [`crate::cors`].)

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Refuses a body declared larger than [`BODY_LIMIT`] on every route, before anything runs:
/// a route that reads no body (a revoke) must not act on a request the contract refuses. Bodies
/// sent in chunks are cut off at the limit by [`DefaultBodyLimit`] when they are read. A secret
/// scanning report may be larger (1,000 tokens with their URLs): its limit is
/// [`crate::routes::secret_scanning::REPORT_BODY_LIMIT`], which its handler also applies.
pub async fn refuse_oversized_bodies(request: Request, next: Next) -> Response {
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
pub async fn request_id(mut request: Request, next: Next) -> Response {
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
