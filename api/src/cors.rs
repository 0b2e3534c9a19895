//! CORS for the firm's data API. A preflight carries no key, so it cannot be judged: every
//! preflight is answered. The real request is judged by key verification itself: once a key
//! has been found, is Active and was presented from one of its allowed origins, the answer is
//! readable by that origin (`Access-Control-Allow-Origin`), whatever the route then answers (a
//! browser developer can read `insufficient_scope` and the scope it names). Nothing else is
//! readable cross-origin; credentials (cookies) are never allowed.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// The answer's fields a page may read besides the safelisted ones: how a limited key may pace
/// itself ([`crate::rate_limit`]) and how long a refused one must wait.
const EXPOSED: &str = "RateLimit, RateLimit-Policy, Retry-After";

/// Whether the request's key passed verification up to its origin: put on each request by
/// [`cors`], raised by the [`crate::caller::Caller`] extractor, read once the route has answered.
#[derive(Clone, Default)]
pub struct OriginVerdict(Arc<AtomicBool>);

impl OriginVerdict {
    /// The key is verified and the origin is one it allows.
    pub fn allow(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn allowed(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Answers preflights and marks verified key requests readable by their origin.
pub async fn cors(mut request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let is_preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(origin)) = (is_preflight, origin.as_ref()) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PATCH, PUT, DELETE"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let verdict = OriginVerdict::default();
    request.extensions_mut().insert(verdict.clone());
    let mut response = next.run(request).await;
    if let (true, Some(origin)) = (verdict.allowed(), origin) {
        // `Origin: null` is never allowed for a key with domains, and a key without domains
        // allows any origin: echoing "null" then is what the browser needs to read the answer.
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED));
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
