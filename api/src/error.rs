//! The one error type of the HTTP layer. Each variant documents its status and stable `code`;
//! every error is rendered as RFC 9457 problem details (`application/problem+json`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::CommandError;
use domain::FieldError;
use serde::Serialize;

/// Everything a route can answer besides success.
#[derive(Debug, thiserror::Error, strum::EnumCount)]
pub enum ApiError {
    /// 400 `malformed_request`: the body is not JSON of the expected shape.
    #[error("{0}")]
    Malformed(String),
    /// 400 `invalid_query`: a bad cursor, limit or filter.
    #[error("{0}")]
    InvalidQuery(String),
    /// 401 `invalid_credentials`: no bearer token, or one of no known kind.
    #[error("a valid bearer token is required")]
    InvalidCredentials,
    /// 401 `invalid_session`: a session token that is unknown, ended or expired.
    #[error("the session has ended or is not valid; log in again")]
    InvalidSession,
    /// 401 `invalid_login`: wrong email or password.
    #[error("the email or password is wrong")]
    InvalidLogin,
    /// 401 `invalid_invitation`: unknown, used or expired invitation.
    #[error("the invitation is not valid: it may have expired or already been used")]
    InvalidInvitation,
    /// 401 `invalid_signature`: a secret scanning report whose signature is missing, names an
    /// unknown key, or does not match its body.
    #[error("the report's signature is missing, names an unknown key, or does not match the body")]
    InvalidSignature,
    /// 401 `invalid_api_key`: malformed, bad checksum, or no such key.
    #[error("the API key is not valid")]
    InvalidApiKey,
    /// 401 `api_key_revoked`.
    #[error("the API key has been revoked")]
    ApiKeyRevoked,
    /// 401 `api_key_expired`.
    #[error("the API key has expired")]
    ApiKeyExpired,
    /// 403 `origin_not_allowed`: the browser origin is not in the key's allowed domains.
    #[error("this API key may not be used from this web site")]
    OriginNotAllowed,
    /// 403 `insufficient_scope`: the key lacks the scope the route needs.
    #[error("the API key does not have the {0} scope this request needs")]
    InsufficientScope(domain::Permission),
    /// 403 `creator_lacks_permission`: the key's creator's role no longer has the permission.
    #[error("the member who created this API key no longer has the {0} permission this request needs")]
    CreatorLacksPermission(domain::Permission),
    /// 403 `api_key_required`: the route is for API keys, and a member session was presented.
    #[error("this route needs an API key, not a member session")]
    ApiKeyRequired,
    /// 403 `permission_denied`: the member's role lacks what the route needs.
    #[error("your role does not allow this")]
    PermissionDenied,
    /// 403 `session_required`: the route is for members, and an API key was presented.
    #[error("this route needs a member session, not an API key")]
    SessionRequired,
    /// 403 `cross_site_request`: a state-changing request authenticated by the browser's session
    /// cookie that did not come from this service's own pages (`Sec-Fetch-Site` is not
    /// `same-origin` and `Origin` is not the service's own). Bearer requests are never refused so.
    #[error("a request made with the browser session must come from this service's own pages")]
    CrossSiteRequest,
    /// 403 `signup_closed`: signup is turned off by configuration.
    #[error("signing up is turned off on this service")]
    SignupClosed,
    /// 404 `not_found`: no such thing (or another firm's, which is the same answer).
    #[error("not found")]
    NotFound,
    /// 405 `method_not_allowed`.
    #[error("this method is not allowed on this route")]
    MethodNotAllowed,
    /// 409 `email_taken`.
    #[error("that email address is already in use")]
    EmailTaken,
    /// 409 `api_key_not_active`.
    #[error("the API key is {0}; only an Active key can be changed or revoked")]
    ApiKeyNotActive(&'static str),
    /// 409 `api_key_already_rolled`: the key was rolled already and is in its grace period.
    #[error("the API key has been rolled already and is in its grace period; roll its replacement instead")]
    ApiKeyAlreadyRolled,
    /// 409 `owner_role_fixed`.
    #[error("the owner role always has every permission and cannot be changed")]
    OwnerRoleFixed,
    /// 409 `owner_cannot_be_removed`.
    #[error("the owner cannot be removed from the firm")]
    OwnerCannotBeRemoved,
    /// 409 `member_not_active`.
    #[error("the member has been removed")]
    MemberNotActive,
    /// 409 `concurrent_modification`.
    #[error("the resource was changed by another request at the same time; try again")]
    Conflict,
    /// 409 `record_in_use`: a record that other records still refer to cannot be deleted.
    #[error("matters or matter types still refer to this record; change or delete them first")]
    RecordInUse,
    /// 413 `payload_too_large`.
    #[error("the request body is larger than 64 KiB")]
    PayloadTooLarge,
    /// 413 `report_too_large`: a secret scanning report of more than 1,000 tokens or 1 MiB.
    #[error("{0}")]
    ReportTooLarge(String),
    /// 415 `unsupported_media_type`.
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// 422 `validation_failed`, with every failing field.
    #[error("some fields are not valid")]
    Validation(Vec<FieldError>),
    /// 429 `too_many_attempts`, with `Retry-After` (whole seconds): failed sign-ins for the
    /// account or from the address make further attempts wait.
    #[error("too many failed attempts; try again in {} seconds", retry_after_seconds(*.0))]
    TooManyAttempts(std::time::Duration),
    /// 429 `rate_limited`, with `Retry-After` (whole seconds until the key's window ends): the
    /// key has used its rate limit for the current window.
    #[error("this API key has used its rate limit; try again in {0} seconds")]
    RateLimited(u64),
    /// 503 `service_unavailable`, with `Retry-After`.
    #[error("the service is temporarily unavailable; try again shortly")]
    Unavailable,
    /// 500 `internal_error`: logged in full, shown as nothing but this.
    #[error("something went wrong on our side")]
    Internal,
}

impl ApiError {
    /// The status and stable code.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            Malformed(_) => (StatusCode::BAD_REQUEST, "malformed_request"),
            InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            InvalidSession => (StatusCode::UNAUTHORIZED, "invalid_session"),
            InvalidLogin => (StatusCode::UNAUTHORIZED, "invalid_login"),
            InvalidInvitation => (StatusCode::UNAUTHORIZED, "invalid_invitation"),
            InvalidSignature => (StatusCode::UNAUTHORIZED, "invalid_signature"),
            InvalidApiKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            ApiKeyRevoked => (StatusCode::UNAUTHORIZED, "api_key_revoked"),
            ApiKeyExpired => (StatusCode::UNAUTHORIZED, "api_key_expired"),
            OriginNotAllowed => (StatusCode::FORBIDDEN, "origin_not_allowed"),
            InsufficientScope(_) => (StatusCode::FORBIDDEN, "insufficient_scope"),
            CreatorLacksPermission(_) => (StatusCode::FORBIDDEN, "creator_lacks_permission"),
            ApiKeyRequired => (StatusCode::FORBIDDEN, "api_key_required"),
            PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
            SessionRequired => (StatusCode::FORBIDDEN, "session_required"),
            CrossSiteRequest => (StatusCode::FORBIDDEN, "cross_site_request"),
            SignupClosed => (StatusCode::FORBIDDEN, "signup_closed"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            EmailTaken => (StatusCode::CONFLICT, "email_taken"),
            ApiKeyNotActive(_) => (StatusCode::CONFLICT, "api_key_not_active"),
            ApiKeyAlreadyRolled => (StatusCode::CONFLICT, "api_key_already_rolled"),
            OwnerRoleFixed => (StatusCode::CONFLICT, "owner_role_fixed"),
            OwnerCannotBeRemoved => (StatusCode::CONFLICT, "owner_cannot_be_removed"),
            MemberNotActive => (StatusCode::CONFLICT, "member_not_active"),
            Conflict => (StatusCode::CONFLICT, "concurrent_modification"),
            RecordInUse => (StatusCode::CONFLICT, "record_in_use"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ReportTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "report_too_large"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            TooManyAttempts(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
            RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

/// Every variant once, in declaration order: what the OpenAPI document lists as the codes. Its
/// length is the number of variants (`strum::EnumCount`), so a new variant cannot be left out,
/// and a test sees that none is listed twice.
pub const EVERY: [ApiError; <ApiError as strum::EnumCount>::COUNT] = [
    ApiError::Malformed(String::new()),
    ApiError::InvalidQuery(String::new()),
    ApiError::InvalidCredentials,
    ApiError::InvalidSession,
    ApiError::InvalidLogin,
    ApiError::InvalidInvitation,
    ApiError::InvalidSignature,
    ApiError::InvalidApiKey,
    ApiError::ApiKeyRevoked,
    ApiError::ApiKeyExpired,
    ApiError::OriginNotAllowed,
    ApiError::InsufficientScope(domain::Permission::ContactsRead),
    ApiError::CreatorLacksPermission(domain::Permission::ContactsRead),
    ApiError::ApiKeyRequired,
    ApiError::PermissionDenied,
    ApiError::SessionRequired,
    ApiError::CrossSiteRequest,
    ApiError::SignupClosed,
    ApiError::NotFound,
    ApiError::MethodNotAllowed,
    ApiError::EmailTaken,
    ApiError::ApiKeyNotActive("revoked"),
    ApiError::ApiKeyAlreadyRolled,
    ApiError::OwnerRoleFixed,
    ApiError::OwnerCannotBeRemoved,
    ApiError::MemberNotActive,
    ApiError::Conflict,
    ApiError::RecordInUse,
    ApiError::PayloadTooLarge,
    ApiError::ReportTooLarge(String::new()),
    ApiError::UnsupportedMediaType,
    ApiError::Validation(Vec::new()),
    ApiError::TooManyAttempts(std::time::Duration::ZERO),
    ApiError::RateLimited(0),
    ApiError::Unavailable,
    ApiError::Internal,
];

impl ApiError {
    /// What the variant means, for the OpenAPI document: its message where that is fixed, a
    /// description of it where the message carries the particulars.
    pub fn explanation(&self) -> String {
        match self {
            ApiError::Malformed(_) => "the body is not JSON of the expected shape".into(),
            ApiError::InvalidQuery(_) => "a bad cursor, limit or filter".into(),
            ApiError::InsufficientScope(_) => {
                "the API key does not have the scope this request needs (named in `required_scope`)".into()
            }
            ApiError::CreatorLacksPermission(_) => {
                "the member who created the API key no longer has the permission this request needs (named in \
                 `required_scope`)"
                    .into()
            }
            ApiError::ApiKeyNotActive(_) => {
                "the API key is revoked or expired; only an Active key can be changed or revoked".into()
            }
            ApiError::Validation(_) => "some fields are not valid; `errors` lists every one".into(),
            ApiError::ReportTooLarge(_) => {
                "the report holds more than 1,000 tokens or more than 1 MiB; send it in parts".into()
            }
            ApiError::TooManyAttempts(_) => "too many failed sign-ins for this account or from this address; \
                 try again after `Retry-After` seconds (the wait doubles with each further failure, up to 15 \
                 minutes)"
                .into(),
            ApiError::RateLimited(_) => "the API key has used its rate limit for the current window; try again after \
                 `Retry-After` seconds, when the next window begins (the `RateLimit` header says how many requests \
                 are left and when the window ends)"
                .into(),
            other => other.to_string(),
        }
    }
}

/// The problem details body (RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub(crate) struct Problem<'a> {
    /// A URI naming the problem's kind: `https://docs.esqase.com/errors/{code}`.
    #[serde(rename = "type")]
    #[schema(schema_with = type_schema)]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// A sentence for a person.
    detail: String,
    /// The stable, machine-readable code.
    #[schema(schema_with = code_schema)]
    code: &'a str,
    /// On `validation_failed`: every failing field.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>, nullable = false)]
    errors: Option<&'a [FieldError]>,
    /// The scope or permission a refused key lacked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<domain::Permission>, nullable = false)]
    required_scope: Option<&'static str>,
}

/// A wait as `Retry-After` says it: whole seconds, rounded up, at least one.
fn retry_after_seconds(wait: std::time::Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

fn type_schema() -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::Custom("uri".into())))
}

fn code_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(EVERY.iter().map(|e| e.status_and_code().1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let problem = Problem {
            kind: format!("https://docs.esqase.com/errors/{code}"),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            code,
            errors: match &self {
                ApiError::Validation(errors) => Some(errors),
                _ => None,
            },
            required_scope: match &self {
                ApiError::InsufficientScope(p) | ApiError::CreatorLacksPermission(p) => Some(p.as_str()),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        match self {
            ApiError::TooManyAttempts(wait) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
            }
            ApiError::RateLimited(seconds) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            }
            _ => {}
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Validation(errors) => errors.into(),
            CommandError::NotFound => ApiError::NotFound,
            CommandError::PermissionDenied => ApiError::PermissionDenied,
            CommandError::EmailTaken => ApiError::EmailTaken,
            CommandError::ApiKeyNotActive(status) => ApiError::ApiKeyNotActive(status),
            CommandError::ApiKeyAlreadyRolled => ApiError::ApiKeyAlreadyRolled,
            CommandError::OwnerRoleFixed => ApiError::OwnerRoleFixed,
            CommandError::OwnerCannotBeRemoved => ApiError::OwnerCannotBeRemoved,
            CommandError::MemberNotActive => ApiError::MemberNotActive,
            CommandError::InvalidLogin => ApiError::InvalidLogin,
            CommandError::InvalidInvitation => ApiError::InvalidInvitation,
            CommandError::TooManyAttempts { retry_after } => ApiError::TooManyAttempts(retry_after),
            CommandError::Conflict => ApiError::Conflict,
            CommandError::Unavailable(error) => {
                tracing::warn!(%error, "database unavailable");
                ApiError::Unavailable
            }
            CommandError::Internal(error) => {
                tracing::error!(%error, "command failed");
                ApiError::Internal
            }
        }
    }
}

impl From<domain::FieldErrors> for ApiError {
    fn from(errors: domain::FieldErrors) -> Self {
        ApiError::Validation(errors.0)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        CommandError::from(error).into()
    }
}

/// The result of a route.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lists_each_variant_once() {
        let kinds: std::collections::HashSet<_> = EVERY.iter().map(std::mem::discriminant).collect();
        assert_eq!(kinds.len(), EVERY.len(), "a variant is listed twice, so another is missing");
    }
}
