//! The IETF `RateLimit-Policy` and `RateLimit` header fields (draft-ietf-httpapi-ratelimit-headers)
//! on every answer to a request whose key has a rate limit, so a client can pace itself:
//!
//! ```text
//! RateLimit-Policy: "api-key";q=100;w=60
//! RateLimit: "api-key";r=42;t=17
//! ```
//!
//! `q` is the limit and `w` the window in seconds; `r` is what is left of this window and `t`
//! the seconds until it ends. The count itself is kept by [`projections::rate_limits`]; the
//! [`crate::caller::Caller`] extractor notes its verdict here, and [`headers`] writes it once the
//! route has answered (a 429 included).

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use projections::rate_limits::RateStatus;
use std::sync::{Arc, OnceLock};

/// The name of the one policy the fields describe: the key's own limit.
const POLICY: &str = "api-key";

/// The verdict on the request's key, if it has a rate limit: put on each request by
/// [`headers`], set by the [`crate::caller::Caller`] extractor.
#[derive(Clone, Default)]
pub struct RateLimitNote(Arc<OnceLock<RateStatus>>);

impl RateLimitNote {
    pub fn set(&self, status: RateStatus) {
        // A request verifies its key once; were it twice, the first verdict stands.
        let _ = self.0.set(status);
    }
}

/// Writes the rate-limit fields on the answer to a request whose key has a limit.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let note = RateLimitNote::default();
    request.extensions_mut().insert(note.clone());
    let mut response = next.run(request).await;
    if let Some(status) = note.0.get() {
        let (policy, current) = fields(status);
        let headers = response.headers_mut();
        // Only ASCII digits and the policy's name: always a valid header value.
        if let (Ok(policy), Ok(current)) = (HeaderValue::from_str(&policy), HeaderValue::from_str(&current)) {
            headers.insert("ratelimit-policy", policy);
            headers.insert("ratelimit", current);
        }
    }
    response
}

/// The two field values for `status`: the policy, then the current state.
fn fields(status: &RateStatus) -> (String, String) {
    (
        format!("\"{POLICY}\";q={};w={}", status.limit.limit(), status.limit.window_seconds()),
        format!("\"{POLICY}\";r={};t={}", status.remaining, status.resets_in),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::RateLimit;

    #[test]
    fn the_fields_name_the_policy_its_quota_and_window_then_what_is_left_and_when_it_ends() {
        let status =
            RateStatus { limit: RateLimit::new(100, 60).expect("valid"), remaining: 42, resets_in: 17, allowed: true };
        assert_eq!(fields(&status), ("\"api-key\";q=100;w=60".to_owned(), "\"api-key\";r=42;t=17".to_owned()));
    }
}
