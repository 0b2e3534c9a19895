//! Firms, members, sessions and the roles-and-permissions grid.

use crate::app::{json, AppState};
use crate::error::{ApiError, ApiResult};
use crate::extract::{credential, Credential, JsonBody, ListQuery, Member, RequestId};
use crate::routes::path_id;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use commands::auth::{end_session, NewSession};
use commands::firms::SignupRequest;
use commands::members::{CredentialsRequest, InviteRequest};
use domain::{FirmId, MemberId};
use projections::views::{self, MemberView};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// The routes of this area.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/firms", post(sign_up))
        .route("/v1/sessions", post(log_in))
        .route("/v1/sessions/current", delete(log_out))
        .route("/v1/invitations/accept", post(accept_invitation))
        .route("/v1/members", get(list_members).post(invite_member))
        .route("/v1/members/{id}", patch(change_role).delete(remove_member).get(get_member))
        .route("/v1/roles", get(list_roles))
        .route("/v1/roles/{role}/permissions", put(set_role_permissions))
}

#[derive(Serialize)]
struct SessionBody {
    token: String,
    expires_at: String,
}

fn session_body(session: &NewSession) -> SessionBody {
    SessionBody { token: session.token.expose().to_owned(), expires_at: domain::format_time(&session.expires_at) }
}

async fn member_view(state: &AppState, firm: FirmId, id: MemberId) -> ApiResult<MemberView> {
    views::member(state.pool(), firm, id).await?.ok_or(ApiError::NotFound)
}

/// A response that holds a token: never cached.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    response
}

async fn sign_up(
    State(state): State<Arc<AppState>>,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<SignupRequest>,
) -> ApiResult<Response> {
    if !state.signup_open {
        return Err(ApiError::SignupClosed);
    }
    let signup = state.commands.sign_up(request, request_id).await?;
    let firm = views::firm(state.pool(), signup.firm_id).await?.ok_or(ApiError::Internal)?;
    let member = member_view(&state, signup.firm_id, signup.owner_id).await?;
    Ok(no_store(json(
        StatusCode::CREATED,
        &json!({ "firm": firm, "member": member, "session": session_body(&signup.session) }),
    )))
}

async fn log_in(
    State(state): State<Arc<AppState>>,
    JsonBody(request): JsonBody<CredentialsRequest>,
) -> ApiResult<Response> {
    if request.token.is_some() {
        return Err(ApiError::Validation(vec![domain::FieldError {
            field: "token".into(),
            message: "is not part of a login; send email and password".into(),
        }]));
    }
    let sign_in = state.commands.log_in(request).await?;
    let member = views::member_by_id(state.pool(), sign_in.member_id).await?.ok_or(ApiError::Internal)?;
    Ok(no_store(json(StatusCode::CREATED, &json!({ "member": member, "session": session_body(&sign_in.session) }))))
}

async fn log_out(State(state): State<Arc<AppState>>, headers: HeaderMap, _member: Member) -> ApiResult<StatusCode> {
    if let Credential::Session(token) = credential(&headers)? {
        end_session(state.pool(), &token).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn accept_invitation(
    State(state): State<Arc<AppState>>,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<CredentialsRequest>,
) -> ApiResult<Response> {
    if request.email.is_some() {
        return Err(ApiError::Validation(vec![domain::FieldError {
            field: "email".into(),
            message: "is not part of accepting an invitation; send token and password".into(),
        }]));
    }
    let sign_in = state.commands.accept_invitation(request, request_id).await?;
    let member = views::member_by_id(state.pool(), sign_in.member_id).await?.ok_or(ApiError::Internal)?;
    Ok(no_store(json(StatusCode::CREATED, &json!({ "member": member, "session": session_body(&sign_in.session) }))))
}

async fn list_members(State(state): State<Arc<AppState>>, Member(me): Member, query: ListQuery) -> ApiResult<Response> {
    query.only(&[])?;
    let page = views::members(state.pool(), me.firm_id, query.page).await?;
    Ok(json(StatusCode::OK, &page))
}

async fn get_member(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = MemberId::from_uuid(path_id(&id)?);
    Ok(json(StatusCode::OK, &member_view(&state, me.firm_id, id).await?))
}

async fn invite_member(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<InviteRequest>,
) -> ApiResult<Response> {
    let invitation = state.commands.invite_member(&me, request, request_id).await?;
    let member = member_view(&state, me.firm_id, invitation.member_id).await?;
    Ok(no_store(json(StatusCode::CREATED, &json!({ "member": member, "invitation_token": invitation.token.expose() }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRequest {
    role: Option<String>,
}

async fn change_role(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<RoleRequest>,
) -> ApiResult<Response> {
    let id = MemberId::from_uuid(path_id(&id)?);
    state.commands.change_member_role(&me, id, request.role, request_id).await?;
    Ok(json(StatusCode::OK, &member_view(&state, me.firm_id, id).await?))
}

async fn remove_member(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = MemberId::from_uuid(path_id(&id)?);
    state.commands.remove_member(&me, id, request_id).await?;
    Ok(json(StatusCode::OK, &member_view(&state, me.firm_id, id).await?))
}

async fn list_roles(State(state): State<Arc<AppState>>, Member(me): Member) -> ApiResult<Response> {
    let roles = views::roles(state.pool(), me.firm_id).await?;
    Ok(json(StatusCode::OK, &json!({ "roles": roles })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsRequest {
    permissions: Option<Vec<String>>,
}

async fn set_role_permissions(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    RequestId(request_id): RequestId,
    Path(role): Path<String>,
    JsonBody(request): JsonBody<PermissionsRequest>,
) -> ApiResult<Response> {
    let role = state.commands.set_role_permissions(&me, &role, request.permissions, request_id).await?;
    let roles = views::roles(state.pool(), me.firm_id).await?;
    let row = roles.into_iter().find(|r| r.role == role).ok_or(ApiError::Internal)?;
    Ok(json(StatusCode::OK, &row))
}
