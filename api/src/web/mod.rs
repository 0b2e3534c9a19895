//! The web interface a firm's admin opens in a browser: sign-in, Settings, the API keys page,
//! roles and permissions, the audit log.
//!
//! Pages are rendered here, on the server, with maud, from the same read models the JSON API
//! answers with (`projections::views`, `projections::audit`). Nothing here changes anything:
//! every command (create a key, edit its domains, revoke it, change a role, sign in or out,
//! accept an invitation) is sent by the page's small ES modules to the existing `/v1` routes,
//! with the session cookie, so each rule has one path (docs/decisions.md).

pub mod assets;
mod audit;
mod keys;
mod layout;
mod pages;
mod roles;
pub mod session;
mod text;

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use commands::auth::{authenticate, SignedInMember};
use maud::Markup;
use std::sync::Arc;

/// The pages' Content-Security-Policy: nothing but this service's own scripts, styles and
/// images, no inline script or style, no framing, forms only to this service.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                                           connect-src 'self'; form-action 'self'; base-uri 'none'; \
                                           frame-ancestors 'none'";

/// The web interface's routes (pages and their assets), each answered with the security headers.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login))
        .route("/invitations/accept", get(pages::accept_invitation))
        .route("/settings", get(pages::settings))
        .route("/settings/developers", get(keys::page))
        .route("/settings/roles", get(roles::page))
        .route("/settings/audit-log", get(audit::page))
        .route("/assets/{file}", get(assets::serve))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers on every page and asset: the CSP, no MIME sniffing, no referrer (a page's URL never
/// leaves the service).
async fn security_headers(response: Response) -> Response {
    with_security_headers(response)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// What an unknown path answers: a page for a person's browser (it asks for HTML, and the path
/// is not the JSON API's), the usual `404 not_found` problem for everything else.
pub async fn not_found(headers: HeaderMap, uri: Uri) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|kind| kind.trim().starts_with("text/html")));
    if wants_html && !uri.path().starts_with("/v1/") {
        let page = layout::error_page(StatusCode::NOT_FOUND, "There is no page at this address.");
        with_security_headers(html(StatusCode::NOT_FOUND, page))
    } else {
        ApiError::NotFound.into_response()
    }
}

/// A rendered page: HTML, never cached (a page can show what only this member may see).
pub fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A `303 See Other` to `location`.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            response.headers_mut().insert(header::LOCATION, value);
        }
        Err(_) => {
            response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/settings"));
        }
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The member viewing a page, signed in with the browser cookie. Without a valid session the
/// visit goes to `/login` and comes back to this page after.
pub struct Viewer(pub SignedInMember);

impl FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let here = parts.uri.path_and_query().map_or("/settings", |pq| pq.as_str());
            see_other(&format!("/login?next={}", text::query_escape(here)))
        };
        let token = match session::cookie_token(&parts.headers) {
            Ok(Some(token)) => token,
            Ok(None) | Err(_) => return Err(to_login()),
        };
        match authenticate(state.pool(), &token, commands::log::now()).await {
            Ok(Some(member)) => Ok(Viewer(member)),
            Ok(None) => Err(to_login()),
            Err(error) => Err(PageError::from(ApiError::from(error)).into_response()),
        }
    }
}

/// A failure while rendering a page, shown as a page (not problem+json): a person reads it.
pub struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(error: ApiError) -> Self {
        PageError(error)
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        PageError(ApiError::from(error))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _) = self.0.status_and_code();
        html(status, layout::error_page(status, &self.0.to_string()))
    }
}

/// What a page handler answers.
pub type PageResult = Result<Response, PageError>;

/// The firm's name for the page's sidebar.
async fn firm_name(state: &AppState, me: &SignedInMember) -> Result<String, PageError> {
    Ok(projections::views::firm(state.pool(), me.firm_id).await?.map(|f| f.name).unwrap_or_default())
}
