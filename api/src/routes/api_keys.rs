//! The API keys page: list, create (the secret shown once), get, edit allowed domains, set or
//! remove a rate limit, revoke, roll (the new secret shown once).

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, ListQuery, PageParams, PathId, Permitted, RequestId};
use crate::openapi::{problems, JSON_BODY, KEY_CREDENTIALS, LIST, SESSION};
use crate::requests::{AllowedDomainsRequest, CreateApiKeyRequest, RateLimitUpdateRequest, RollRequest};
use crate::response::{json, no_store};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use commands::auth::{ManagesApiKeys, SignedInMember};
use commands::read_back::{read_back, ReadBack};
use domain::api_key::KeyStatus;
use domain::ApiKeyId;
use projections::page::Page;
use projections::verification::CurrentKey;
use projections::views::{self, ApiKeyView};
use serde::Serialize;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The routes of this area.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(current))
        .routes(routes!(show))
        .routes(routes!(update_allowed_domains))
        .routes(routes!(update_rate_limit))
        .routes(routes!(revoke))
        .routes(routes!(roll))
}

/// The filter of `GET /v1/api-keys`, as documented (read by [`ListQuery`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyFilter {
    /// Only keys of this status now (`expired` from the instant `expires_at` passes).
    pub status: Option<KeyStatus>,
}

/// `POST /v1/api-keys`'s answer: the only response that ever holds the secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedKeyResponse {
    api_key: ApiKeyView,
    /// The whole secret (`esq_` + 32 + 6 base62 characters), shown this once.
    #[schema(pattern = "^esq_[0-9A-Za-z]{38}$")]
    secret: String,
}

/// `POST /v1/api-keys/{id}/roll`'s answer: the new key with its secret (shown this once), and
/// the old key as it now stands (`replaced_by`, `grace_ends_at`).
#[derive(Serialize, ToSchema)]
pub struct RolledKeyResponse {
    /// The new key (`replaces` names the old one).
    api_key: ApiKeyView,
    /// The new key's whole secret, shown this once.
    #[schema(pattern = "^esq_[0-9A-Za-z]{38}$")]
    secret: String,
    /// The old key: Active until `grace_ends_at`, Revoked from then (at once for a grace of 0).
    replaces: ApiKeyView,
}

/// `GET /v1/api-keys/current`'s answer, serialized straight from its parts (no JSON tree: this
/// is the verification benchmark's route).
#[derive(Serialize, ToSchema)]
pub struct CurrentKeyResponse {
    pub api_key: ApiKeyView,
    pub firm: CurrentKeyFirm,
    /// The key's scopes that its creator's role holds now.
    #[schema(schema_with = effective_permissions_schema)]
    pub effective_permissions: Vec<&'static str>,
}

/// The calling key's firm.
#[derive(Serialize, ToSchema)]
pub struct CurrentKeyFirm {
    pub id: Uuid,
    pub name: String,
}

fn effective_permissions_schema() -> utoipa::openapi::schema::ArrayBuilder {
    utoipa::openapi::schema::ArrayBuilder::new().items(domain::schema::scope()).unique_items(true)
}

problems!(
    /// What listing keys can answer besides success.
    ListProblems = [SESSION, LIST, &[ApiError::PermissionDenied]]
);
problems!(
    /// What creating a key can answer besides success.
    CreateProblems = [SESSION, JSON_BODY, &[ApiError::PermissionDenied, ApiError::Conflict]]
);
problems!(
    /// What reading one key can answer besides success.
    ShowProblems = [SESSION, &[ApiError::PermissionDenied, ApiError::NotFound]]
);
problems!(
    /// What editing a key's domains or rate limit can answer besides success.
    DomainsProblems = [
        SESSION,
        JSON_BODY,
        &[ApiError::PermissionDenied, ApiError::NotFound, ApiError::ApiKeyNotActive("revoked"), ApiError::Conflict]
    ]
);
problems!(
    /// What revoking a key can answer besides success.
    RevokeProblems = [
        SESSION,
        &[ApiError::PermissionDenied, ApiError::NotFound, ApiError::ApiKeyNotActive("revoked"), ApiError::Conflict]
    ]
);
problems!(
    /// What rolling a key can answer besides success.
    RollProblems = [
        SESSION,
        JSON_BODY,
        &[
            ApiError::PermissionDenied,
            ApiError::NotFound,
            ApiError::ApiKeyNotActive("revoked"),
            ApiError::ApiKeyAlreadyRolled,
            ApiError::Conflict
        ]
    ]
);
problems!(
    /// What `GET /v1/api-keys/current` can answer besides success.
    CurrentProblems = [KEY_CREDENTIALS, &[ApiError::ApiKeyRequired]]
);

/// The key as the member's answer shows it, read in the command's own transaction (so a change
/// that committed is never answered with an error).
fn key_read_back(me: &SignedInMember) -> impl ReadBack<ApiKeyId, ApiKeyView> {
    let firm = me.firm_id;
    read_back(move |conn, id| {
        Box::pin(
            async move { views::api_key(conn, firm, id, commands::log::now()).await?.ok_or(sqlx::Error::RowNotFound) },
        )
    })
}

async fn key_view(state: &AppState, me: &SignedInMember, id: ApiKeyId) -> ApiResult<ApiKeyView> {
    views::api_key(state.pool(), me.firm_id, id, commands::log::now()).await?.ok_or(ApiError::NotFound)
}

/// The firm's keys, newest first.
#[utoipa::path(
    get,
    path = "/v1/api-keys",
    operation_id = "list_api_keys",
    tag = "api_keys",
    security(("member_session" = [])),
    params(PageParams, KeyFilter),
    responses((status = 200, description = "A page of keys.", body = Page<ApiKeyView>), ListProblems)
)]
async fn list(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    query: ListQuery,
) -> ApiResult<Response> {
    query.only(&["status"])?;
    let status = match query.filters.get("status") {
        None => None,
        Some(raw) => Some(
            KeyStatus::parse(raw)
                .ok_or_else(|| ApiError::InvalidQuery("status must be active, revoked or expired".into()))?,
        ),
    };
    let page = views::api_keys(state.pool(), me.firm_id, status, query.page, commands::log::now()).await?;
    Ok(json(StatusCode::OK, &page))
}

/// Creates a key; the answer is the only one that ever holds its secret.
#[utoipa::path(
    post,
    path = "/v1/api-keys",
    operation_id = "create_api_key",
    tag = "api_keys",
    security(("member_session" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key and its secret, shown once.", body = CreatedKeyResponse,
            headers(("Cache-Control" = String, description = "`no-store`: the body holds the secret."))),
        CreateProblems,
    )
)]
async fn create(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<CreateApiKeyRequest>,
) -> ApiResult<Response> {
    let new_key = request.parse(me.time_zone, commands::log::now())?;
    let (created, key) = state.commands.create_api_key(&me, new_key, request_id, key_read_back(&me)).await?;
    let body = CreatedKeyResponse { api_key: key, secret: created.secret.expose().to_owned() };
    Ok(no_store(json(StatusCode::CREATED, &body)))
}

/// One key of the firm.
#[utoipa::path(
    get,
    path = "/v1/api-keys/{id}",
    operation_id = "get_api_key",
    tag = "api_keys",
    security(("member_session" = [])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses((status = 200, description = "The key.", body = ApiKeyView), ShowProblems)
)]
async fn show(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &key_view(&state, &me, id).await?))
}

/// Replaces an Active key's allowed domains; scopes and expiry never change.
#[utoipa::path(
    put,
    path = "/v1/api-keys/{id}/allowed-domains",
    operation_id = "update_api_key_allowed_domains",
    tag = "api_keys",
    security(("member_session" = [])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    request_body = AllowedDomainsRequest,
    responses((status = 200, description = "The key.", body = ApiKeyView), DomainsProblems)
)]
async fn update_allowed_domains(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(request): JsonBody<AllowedDomainsRequest>,
) -> ApiResult<Response> {
    let domains = request.parse()?;
    let key = state.commands.update_allowed_domains(&me, id, domains, request_id, key_read_back(&me)).await?;
    Ok(json(StatusCode::OK, &key))
}

/// Sets, changes or removes (`null`) an Active key's rate limit; every node counts the new limit
/// once this answers. Scopes and expiry never change.
#[utoipa::path(
    put,
    path = "/v1/api-keys/{id}/rate-limit",
    operation_id = "update_api_key_rate_limit",
    tag = "api_keys",
    security(("member_session" = [])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    request_body = RateLimitUpdateRequest,
    responses((status = 200, description = "The key.", body = ApiKeyView), DomainsProblems)
)]
async fn update_rate_limit(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(request): JsonBody<RateLimitUpdateRequest>,
) -> ApiResult<Response> {
    let rate_limit = request.parse()?;
    let key = state.commands.update_rate_limit(&me, id, rate_limit, request_id, key_read_back(&me)).await?;
    Ok(json(StatusCode::OK, &key))
}

/// Revokes an Active key for good: the very next request that uses it is refused, on every node.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{id}/revoke",
    operation_id = "revoke_api_key",
    tag = "api_keys",
    security(("member_session" = [])),
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses((status = 200, description = "The key, now `revoked`.", body = ApiKeyView), RevokeProblems)
)]
async fn revoke(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<ApiKeyId>,
) -> ApiResult<Response> {
    let key = state.commands.revoke_api_key(&me, id, request_id, key_read_back(&me)).await?;
    Ok(json(StatusCode::OK, &key))
}

/// Rolls an Active key: a new key with the same name, scopes, allowed domains, rate limit and
/// expiry, created by the caller (under the caller's role), working on every node when this
/// answers; the old key keeps working until its grace period ends and is Revoked from that
/// instant.
#[utoipa::path(
    post,
    path = "/v1/api-keys/{id}/roll",
    operation_id = "roll_api_key",
    tag = "api_keys",
    security(("member_session" = [])),
    params(("id" = Uuid, Path, description = "The key to roll.")),
    request_body = RollRequest,
    responses(
        (status = 201, description = "The new key and its secret, shown once, and the old key.",
            body = RolledKeyResponse,
            headers(("Cache-Control" = String, description = "`no-store`: the body holds the secret."))),
        RollProblems,
    )
)]
async fn roll(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesApiKeys>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<ApiKeyId>,
    JsonBody(request): JsonBody<RollRequest>,
) -> ApiResult<Response> {
    let grace = request.parse()?;
    let (created, new_key, old_key) =
        state.commands.roll_api_key(&me, id, grace, request_id, key_read_back(&me)).await?;
    let body = RolledKeyResponse { api_key: new_key, secret: created.secret.expose().to_owned(), replaces: old_key };
    Ok(no_store(json(StatusCode::CREATED, &body)))
}

/// The key making the request, its firm, and what it may do now. Needs no scope. The cheapest
/// authenticated call: while this node's verification state is current the body comes from it,
/// with no database query; otherwise (or for a key revoked since it was verified) from the
/// read models.
#[utoipa::path(
    get,
    path = "/v1/api-keys/current",
    operation_id = "get_current_api_key",
    tag = "api_keys",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The calling key, its firm and its effective permissions.",
            body = CurrentKeyResponse),
        CurrentProblems,
    )
)]
async fn current(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let Caller::ApiKey(key) = caller else { return Err(ApiError::ApiKeyRequired) };
    let now = commands::log::now();
    let held = state.trusted_verification().and_then(|verification| verification.current_key(key.key_id, now));
    let current = match held {
        Some(held) => held,
        None => {
            let view = views::api_key(state.pool(), key.firm_id, ApiKeyId::from_uuid(key.key_id), now).await?;
            let firm = views::firm(state.pool(), key.firm_id).await?;
            let (Some(api_key), Some(firm)) = (view, firm) else { return Err(ApiError::InvalidApiKey) };
            CurrentKey { api_key, firm_id: firm.id, firm_name: firm.name }
        }
    };
    let body = CurrentKeyResponse {
        api_key: current.api_key,
        firm: CurrentKeyFirm { id: current.firm_id, name: current.firm_name },
        effective_permissions: key.effective_permissions().names(),
    };
    Ok(json(StatusCode::OK, &body))
}
