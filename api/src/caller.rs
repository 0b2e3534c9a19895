//! Who is calling the firm's data API: a member with a session, or an API key verified from
//! this node's in-memory state (no database query, no database write) while it can show that
//! state is current, else from Postgres.
//!
//! The contract's order: (1) the key exists — a malformed key or a bad checksum is refused
//! before any lookup; (2) not revoked, not expired; (3) the browser origin, if any, is allowed;
//! (4) the key is within its rate limit, if it has one; then, per route, (5) the key has the
//! scope and (6) its creator's role has it now.

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{credential, Credential, Member};
use axum::extract::FromRequestParts;
use axum::http::header::ORIGIN;
use axum::http::request::Parts;
use commands::auth::SignedInMember;
use domain::api_key::KeyStatus;
use domain::{ApiKeySecret, FirmId, MemberId, Permission, PermissionSet};
use projections::rate_limits::RateStatus;
use std::sync::Arc;
use uuid::Uuid;

/// An API key that exists, is Active and was presented from an allowed origin (the first three
/// checks of docs/api.md, "How a key is checked"); scope and ceiling are checked per route.
#[derive(Clone, Debug)]
pub struct VerifiedKey {
    pub key_id: Uuid,
    pub firm_id: FirmId,
    /// Whose access it inherits.
    pub creator: MemberId,
    pub scopes: PermissionSet,
    /// What its creator's role may do now.
    pub creator_permissions: PermissionSet,
}

impl VerifiedKey {
    /// The key's scopes that its creator's role holds now.
    pub fn effective_permissions(&self) -> PermissionSet {
        self.scopes.intersection(self.creator_permissions)
    }
}

/// Who is calling.
pub enum Caller {
    /// A member with a session.
    Member(SignedInMember),
    /// A verified API key.
    ApiKey(VerifiedKey),
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        match credential(&parts.headers)? {
            Credential::Session(_) => Member::from_request_parts(parts, state).await.map(|Member(m)| Caller::Member(m)),
            Credential::ApiKey(presented) => {
                let origin = parts.headers.get(ORIGIN).map(|v| v.to_str().unwrap_or("null"));
                let (verified, rate) = verify_key(state, &presented, origin).await?;
                if let Some(verdict) = parts.extensions.get::<crate::cors::OriginVerdict>() {
                    verdict.allow();
                }
                let Some(rate) = rate else { return Ok(Caller::ApiKey(verified)) };
                if let Some(note) = parts.extensions.get::<crate::rate_limit::RateLimitNote>() {
                    note.set(rate);
                }
                if !rate.allowed {
                    return Err(ApiError::RateLimited(rate.resets_in));
                }
                Ok(Caller::ApiKey(verified))
            }
        }
    }
}

/// Steps 1 to 4 of verification; a key that passes 1 and 2 counts as used. From memory while
/// this node can show its cache is current; from Postgres while it cannot. Step 4's verdict
/// (`None` for a key without a rate limit) is returned for the caller to note and act on, a
/// refusal included, so that the answer can say what is left of the window.
async fn verify_key(
    state: &AppState,
    presented: &str,
    origin: Option<&str>,
) -> Result<(VerifiedKey, Option<RateStatus>), ApiError> {
    // A malformed key or a bad checksum is refused before any lookup.
    let secret = ApiKeySecret::parse(presented).map_err(|_| ApiError::InvalidApiKey)?;
    let hash = secret.hash();
    let now = commands::log::now();
    let cached = state.trusted_verification().map(|verification| verification.key(&hash));
    let (key, creator_permissions) = match cached {
        Some(found) => found.ok_or(ApiError::InvalidApiKey)?,
        None => projections::verification::load_key(state.pool(), &hash).await?.ok_or(ApiError::InvalidApiKey)?,
    };
    // Revoked also from the instant a roll's grace period ends, recorded or not.
    match key.status_at(now) {
        KeyStatus::Active => {}
        KeyStatus::Revoked => return Err(ApiError::ApiKeyRevoked),
        KeyStatus::Expired => return Err(ApiError::ApiKeyExpired),
    }
    let verified = VerifiedKey {
        key_id: key.id,
        firm_id: FirmId::from_uuid(key.firm),
        creator: MemberId::from_uuid(key.creator),
        scopes: key.scopes,
        creator_permissions,
    };
    state.usage.record(verified.key_id, verified.firm_id, now);
    let origin_allowed = match origin {
        Some(origin) if !key.allowed_domains.is_any() => key.allowed_domains.allows_origin(origin),
        _ => true,
    };
    if !origin_allowed {
        return Err(ApiError::OriginNotAllowed);
    }
    let rate = match key.rate_limit {
        Some(limit) => Some(state.rate_limiter.admit(verified.key_id, limit, now).await),
        None => None,
    };
    Ok((verified, rate))
}

impl Caller {
    /// The caller's firm: every query is scoped by it.
    pub fn firm_id(&self) -> FirmId {
        match self {
            Caller::Member(member) => member.firm_id,
            Caller::ApiKey(key) => key.firm_id,
        }
    }

    /// Steps 4 and 5 for a key (its scope, then its creator's role now); the role for a member.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        match self {
            Caller::Member(member) => member.require(permission).map_err(ApiError::from),
            Caller::ApiKey(key) if !key.scopes.contains(permission) => Err(ApiError::InsufficientScope(permission)),
            Caller::ApiKey(key) if !key.creator_permissions.contains(permission) => {
                Err(ApiError::CreatorLacksPermission(permission))
            }
            Caller::ApiKey(_) => Ok(()),
        }
    }

    /// Who a new record is created by: `("member", id)` or `("api_key", id)`.
    pub fn author(&self) -> (&'static str, Uuid) {
        match self {
            Caller::Member(member) => ("member", member.member_id.as_uuid()),
            Caller::ApiKey(key) => ("api_key", key.key_id),
        }
    }
}
