//! The API keys page: list, create (the secret shown once), get, edit allowed domains, revoke.

use crate::app::{json, AppState};
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, ListQuery, Member, RequestId};
use crate::routes::path_id;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::Router;
use commands::api_keys::{AllowedDomainsRequest, CreateApiKeyRequest};
use commands::auth::SignedInMember;
use domain::api_key::KeyStatus;
use domain::{ApiKeyId, Permission};
use projections::views::{self, ApiKeyView};
use serde_json::json;
use std::sync::Arc;

/// The routes of this area.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/api-keys", get(list).post(create))
        .route("/v1/api-keys/current", get(current))
        .route("/v1/api-keys/{id}", get(show))
        .route("/v1/api-keys/{id}/allowed-domains", put(update_allowed_domains))
        .route("/v1/api-keys/{id}/revoke", post(revoke))
}

async fn key_view(state: &AppState, me: &SignedInMember, id: ApiKeyId) -> ApiResult<ApiKeyView> {
    views::api_key(state.pool(), me.firm_id, id, commands::log::now()).await?.ok_or(ApiError::NotFound)
}

async fn list(State(state): State<Arc<AppState>>, Member(me): Member, query: ListQuery) -> ApiResult<Response> {
    me.require(Permission::ApiKeys)?;
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

async fn create(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<CreateApiKeyRequest>,
) -> ApiResult<Response> {
    let created = state.commands.create_api_key(&me, request, request_id).await?;
    let key = key_view(&state, &me, created.id).await?;
    let mut response = json(StatusCode::CREATED, &json!({ "api_key": key, "secret": created.secret.expose() }));
    // The only response that ever holds the secret: no cache may keep it.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn show(State(state): State<Arc<AppState>>, Member(me): Member, Path(id): Path<String>) -> ApiResult<Response> {
    me.require(Permission::ApiKeys)?;
    let id = ApiKeyId::from_uuid(path_id(&id)?);
    Ok(json(StatusCode::OK, &key_view(&state, &me, id).await?))
}

async fn update_allowed_domains(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<AllowedDomainsRequest>,
) -> ApiResult<Response> {
    me.require(Permission::ApiKeys)?;
    let id = ApiKeyId::from_uuid(path_id(&id)?);
    state.commands.update_allowed_domains(&me, id, request, request_id).await?;
    Ok(json(StatusCode::OK, &key_view(&state, &me, id).await?))
}

async fn revoke(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    me.require(Permission::ApiKeys)?;
    let id = ApiKeyId::from_uuid(path_id(&id)?);
    state.commands.revoke_api_key(&me, id, request_id).await?;
    Ok(json(StatusCode::OK, &key_view(&state, &me, id).await?))
}

/// The key making the request, its firm, and what it may do now. Needs no scope.
async fn current(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Response> {
    let Caller::ApiKey(key) = caller else { return Err(ApiError::ApiKeyRequired) };
    let now = commands::log::now();
    let view = views::api_key(state.pool(), key.firm_id, ApiKeyId::from_uuid(key.key_id), now).await?;
    let firm = views::firm(state.pool(), key.firm_id).await?;
    let (Some(view), Some(firm)) = (view, firm) else { return Err(ApiError::InvalidApiKey) };
    Ok(json(
        StatusCode::OK,
        &json!({
            "api_key": view,
            "firm": { "id": firm.id, "name": firm.name },
            "effective_permissions": key.effective_permissions().names(),
        }),
    ))
}
