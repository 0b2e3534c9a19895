//! Extractors: JSON bodies that fail as problem+json, the signed-in member, the request id and
//! list queries.

use crate::app::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use commands::auth::{authenticate, Authorized, Requirement, SignedInMember};
use domain::secret::{BearerToken, TokenKind, API_KEY_PREFIX};
use projections::page::{Cursor, PageRequest, MAX_LIMIT};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Arc;

/// A JSON body of type `T`: 415 without a JSON content type, 413 over 64 KiB, 400 when it is
/// not JSON of the expected shape.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Malformed("the request body could not be read".into())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::Malformed(format!("the body is not valid: {e}")))
    }
}

/// The presented bearer token, classified by its prefix.
pub enum Credential {
    /// `esqs_…`: a member's session.
    Session(BearerToken),
    /// `esq_…`: an API key (not yet checked beyond its prefix).
    ApiKey(String),
}

/// Reads `Authorization: Bearer …`; anything but a session or key prefix is `invalid_credentials`.
pub fn credential(headers: &HeaderMap) -> Result<Credential, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or(ApiError::InvalidCredentials)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(ApiError::InvalidCredentials)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::InvalidCredentials);
    }
    let token = token.trim();
    if token.starts_with(TokenKind::Session.prefix()) {
        BearerToken::parse(TokenKind::Session, token).map(Credential::Session).map_err(|_| ApiError::InvalidSession)
    } else if token.starts_with(API_KEY_PREFIX) {
        Ok(Credential::ApiKey(token.to_owned()))
    } else {
        Err(ApiError::InvalidCredentials)
    }
}

/// How a request presented its member session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionSource {
    /// `Authorization: Bearer esqs_…`.
    Bearer,
    /// The browser's `esqase_session` cookie.
    Cookie,
}

/// The session token a member's request presents: the bearer header as always, else the
/// browser's cookie. A bearer API key is `session_required`; no credential at all is
/// `invalid_credentials`. A state-changing request made with the cookie must come from this
/// service's own pages ([`crate::web::session::require_same_origin`]); a bearer token needs no
/// such proof, since no browser attaches one by itself.
pub fn session_token(method: &Method, headers: &HeaderMap) -> Result<(BearerToken, SessionSource), ApiError> {
    if headers.contains_key(header::AUTHORIZATION) {
        return match credential(headers)? {
            Credential::Session(token) => Ok((token, SessionSource::Bearer)),
            Credential::ApiKey(_) => Err(ApiError::SessionRequired),
        };
    }
    let token = crate::web::session::cookie_token(headers)?.ok_or(ApiError::InvalidCredentials)?;
    if !crate::web::session::is_safe(method) {
        crate::web::session::require_same_origin(headers)?;
    }
    Ok((token, SessionSource::Cookie))
}

/// A member signed in with a session token (bearer or browser cookie).
pub struct Member(pub SignedInMember);

impl FromRequestParts<Arc<AppState>> for Member {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let (token, _) = session_token(&parts.method, &parts.headers)?;
        authenticate(&state.commands.log.pool, &token, commands::log::now())
            .await?
            .map(Member)
            .ok_or(ApiError::InvalidSession)
    }
}

/// A signed-in member who meets `R` (`commands::auth`'s requirements: `ManagesApiKeys`,
/// `ManagesMembers`, `ReadsAuditLog`, `IsOwner`). Put it before every other extractor that
/// reads the request (query, path, body): axum runs them in order, so a member who may not use
/// the route is told `403 permission_denied` whatever else is wrong with the request. It holds
/// the [`Authorized`] proof that the route's command takes: the one check of the rule.
pub struct Permitted<R>(pub Authorized<R>);

impl<R> std::ops::Deref for Permitted<R> {
    type Target = Authorized<R>;
    fn deref(&self) -> &Authorized<R> {
        &self.0
    }
}

impl<R: Requirement> FromRequestParts<Arc<AppState>> for Permitted<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        let Member(member) = Member::from_request_parts(parts, state).await?;
        Ok(Permitted(member.authorize::<R>()?))
    }
}

/// A record's id from the route's one path parameter. Anything that is not a UUID names no
/// record: `404 not_found`, as an unknown id would.
pub struct PathId<T>(pub T);

impl<T: From<uuid::Uuid>, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state).await.map_err(|_| ApiError::NotFound)?;
        uuid::Uuid::try_parse(&raw).map(|id| PathId(T::from(id))).map_err(|_| ApiError::NotFound)
    }
}

/// The request's id (echoed or made by the request-id middleware).
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(parts.extensions.get::<crate::middleware::RequestIdValue>().map(|id| id.0.clone())))
    }
}

/// The query string as a map, refusing unknown parameters.
pub struct ListQuery {
    pub page: PageRequest,
    /// Every other parameter, for the route's own filters.
    pub filters: HashMap<String, String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut filters: HashMap<String, String> = HashMap::new();
        let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::InvalidQuery("the query string is not valid".into()))?;
        for (key, value) in pairs.0 {
            if filters.insert(key.clone(), value).is_some() {
                return Err(ApiError::InvalidQuery(format!("'{key}' is given more than once")));
            }
        }
        let mut page = PageRequest::default();
        if let Some(limit) = filters.remove("limit") {
            page.limit =
                limit.parse::<i64>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| {
                    ApiError::InvalidQuery(format!("limit must be a whole number from 1 to {MAX_LIMIT}"))
                })?;
        }
        if let Some(cursor) = filters.remove("cursor") {
            page.cursor = Some(Cursor::decode(&cursor).map_err(|e| ApiError::InvalidQuery(e.to_string()))?);
        }
        Ok(ListQuery { page, filters })
    }
}

/// The query parameters every list takes, as documented (read by [`ListQuery`], which refuses
/// any parameter a route does not know).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows per page, 1 to 100 (default 25).
    #[param(minimum = 1, maximum = 100, default = 25)]
    pub limit: Option<i64>,
    /// A `next_cursor` or `prev_cursor` from a list response.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// Refuses any parameter the route does not know.
    pub fn only(&self, known: &[&str]) -> Result<(), ApiError> {
        match self.filters.keys().find(|k| !known.contains(&k.as_str())) {
            Some(unknown) => Err(ApiError::InvalidQuery(format!("unknown query parameter '{unknown}'"))),
            None => Ok(()),
        }
    }
}

/// The address of the client that sent the request, as the connection shows it (`None` when
/// the app is served without connection info, as in-process tests do). Forwarding headers are
/// not trusted: anyone can write them.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let connected = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>();
        Ok(ClientAddress(connected.map(|info| info.0.ip())))
    }
}
