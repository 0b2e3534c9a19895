//! CORS for the firm's data API. A preflight carries no key, so it cannot be judged: every
//! preflight is answered. The real request is judged; only an allowed one (an API key request
//! that passed verification) gets `Access-Control-Allow-Origin`. Credentials are never allowed.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use domain::secret::API_KEY_PREFIX;

/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "600";

/// Answers preflights and marks allowed key requests readable by their origin.
pub async fn cors(request: Request, next: Next) -> Response {
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
    let with_key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' ').map(|(_, token)| token.trim().starts_with(API_KEY_PREFIX)))
        .unwrap_or(false);
    let mut response = next.run(request).await;
    let judged_allowed = !matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
    if let (true, true, Some(origin)) = (with_key, judged_allowed, origin) {
        // `Origin: null` is never allowed for a key with domains, and a key without domains
        // allows any origin: echoing "null" then is what the browser needs to read the answer.
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}
