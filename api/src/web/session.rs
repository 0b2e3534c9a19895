//! The browser session: the `esqase_session` cookie and the same-origin rule that guards it.
//!
//! The cookie holds the very `esqs_…` token `POST /v1/sessions` answers with, so a browser and
//! a script are the same member to every route and every rule. It is `HttpOnly` (no script
//! can read it), `SameSite=Strict` (no other site's page sends it), `Path=/`, and `Secure` when
//! the service is configured for TLS. On top of `SameSite`, every state-changing request made
//! with the cookie must show it comes from this service's own pages ([`require_same_origin`]):
//! there is no cookie-authenticated CORS.

use crate::error::ApiError;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::Response;
use commands::auth::NewSession;
use domain::secret::{BearerToken, TokenKind};

/// The cookie's name.
pub const COOKIE: &str = "esqase_session";

/// The request header with which a sign-in (`POST /v1/sessions`, `POST /v1/invitations/accept`)
/// asks for the new session to be set as the browser cookie too.
pub const SESSION_MODE_HEADER: &str = "esqase-session";

/// The value of [`SESSION_MODE_HEADER`] that asks for the cookie.
pub const SESSION_MODE_COOKIE: &str = "cookie";

/// The session token in the request's `esqase_session` cookie, if there is one. A cookie of
/// that name that is not a session token is `invalid_session`, like a bad bearer token.
pub fn cookie_token(headers: &HeaderMap) -> Result<Option<BearerToken>, ApiError> {
    let Some(value) = cookie_value(headers) else { return Ok(None) };
    BearerToken::parse(TokenKind::Session, value).map(Some).map_err(|_| ApiError::InvalidSession)
}

/// The raw value of the first `esqase_session` cookie among the request's `Cookie` headers.
fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// True for the methods that change nothing, which the cookie may authenticate from anywhere
/// (a link followed from another site still lands signed in only where `SameSite` allows).
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD)
}

/// Refuses a cookie-authenticated request that does not come from this service's own pages:
/// a browser that sends `Sec-Fetch-Site` must say `same-origin`; one that does not must send an
/// `Origin` whose host is the request's own `Host`. Anything else is `cross_site_request`.
pub fn require_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let same_origin = match site {
        Some(site) => site == "same-origin",
        None => match (host, origin) {
            (Some(host), Some(origin)) => origin_host(origin).is_some_and(|o| o.eq_ignore_ascii_case(host)),
            _ => false,
        },
    };
    if same_origin {
        return Ok(());
    }
    // Worth seeing in the logs: a page elsewhere tried to act with a member's session.
    tracing::warn!(sec_fetch_site = site, origin, host, "cookie request from another site refused");
    Err(ApiError::CrossSiteRequest)
}

/// The `host[:port]` of an `http` or `https` origin; `None` for `null` or any other scheme.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"))?;
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// True when a sign-in request asks for the session as the browser cookie.
pub fn wants_cookie(headers: &HeaderMap) -> bool {
    headers.get(SESSION_MODE_HEADER).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(SESSION_MODE_COOKIE.as_bytes()))
}

/// Whether a sign-in asks for the cookie ([`wants_cookie`]); one that does must come from this
/// service's own pages, or a page elsewhere could sign a browser in as someone else.
pub fn sign_in_cookie_requested(headers: &HeaderMap) -> Result<bool, ApiError> {
    if !wants_cookie(headers) {
        return Ok(false);
    }
    require_same_origin(headers)?;
    Ok(true)
}

/// Adds the session cookie to a sign-in's answer when it was asked for.
pub fn with_cookie_if(
    wanted: bool,
    mut response: Response,
    session: &NewSession,
    secure: bool,
) -> Result<Response, ApiError> {
    if wanted {
        let max_age = (session.expires_at - commands::log::now()).num_seconds();
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(&session.token, max_age, secure)?);
    }
    Ok(response)
}

/// The `Set-Cookie` value that puts `token` in the browser until `max_age_seconds` pass (the
/// session's own lifetime, so the cookie never outlives the session it names).
pub fn set_cookie(token: &BearerToken, max_age_seconds: i64, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    let max_age = max_age_seconds.max(0);
    HeaderValue::from_str(&format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}",
        token.expose()
    ))
    .map_err(|_| ApiError::Internal)
}

/// The `Set-Cookie` value that removes the cookie (sign-out).
pub fn clear_cookie(secure: bool) -> HeaderValue {
    if secure {
        HeaderValue::from_static("esqase_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0; Secure")
    } else {
        HeaderValue::from_static("esqase_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let token = BearerToken::generate(TokenKind::Session);
        let mut map = HeaderMap::new();
        let cookie = format!("theme=dark; {COOKIE}={}; other=1", token.expose());
        map.insert(header::COOKIE, HeaderValue::from_str(&cookie).expect("a header value"));
        assert_eq!(cookie_token(&map).ok().flatten().map(|t| t.expose().to_owned()), Some(token.expose().to_owned()));
    }

    #[test]
    fn no_cookie_is_none_and_a_bad_one_is_an_invalid_session() {
        assert!(matches!(cookie_token(&headers(&[("cookie", "theme=dark")])), Ok(None)));
        assert!(matches!(cookie_token(&headers(&[("cookie", "esqase_session=nope")])), Err(ApiError::InvalidSession)));
    }

    #[test]
    fn same_origin_is_shown_by_sec_fetch_site_or_by_origin() {
        assert!(require_same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(require_same_origin(&headers(&[("host", "esq.test:8080"), ("origin", "http://esq.test:8080")])).is_ok());
        assert!(require_same_origin(&headers(&[("host", "esq.test"), ("origin", "https://esq.test")])).is_ok());
    }

    #[test]
    fn anything_else_is_a_cross_site_request() {
        for pairs in [
            &[][..],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site"), ("host", "esq.test"), ("origin", "http://esq.test")],
            &[("host", "esq.test"), ("origin", "http://evil.test")],
            &[("host", "esq.test"), ("origin", "null")],
            &[("host", "esq.test"), ("origin", "http://esq.test.evil.test")],
            &[("host", "esq.test")],
        ] {
            assert!(matches!(require_same_origin(&headers(pairs)), Err(ApiError::CrossSiteRequest)), "{pairs:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_configured() {
        let token = BearerToken::generate(TokenKind::Session);
        let plain = set_cookie(&token, 60, false).expect("a header value");
        assert!(plain.to_str().is_ok_and(|v| v.contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=60")));
        assert!(!plain.to_str().is_ok_and(|v| v.contains("Secure")));
        assert!(set_cookie(&token, 60, true).expect("a header value").to_str().is_ok_and(|v| v.ends_with("; Secure")));
        assert!(clear_cookie(true).to_str().is_ok_and(|v| v.contains("Max-Age=0")));
    }
}
