//! Firms, members, sessions and the roles-and-permissions grid.

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{
    session_token, ClientAddress, JsonBody, ListQuery, Member, PageParams, PathId, Permitted, RequestId, SessionSource,
};
use crate::openapi::{problems, JSON_BODY, LIST, SESSION};
use crate::requests::{
    invitation_token_schema, AcceptInvitationRequest, CredentialsRequest, InviteRequest, LoginRequest,
    PermissionsRequest, RoleRequest, SignupRequest,
};
use crate::response::{json, no_store};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use commands::auth::{end_session, IsOwner, ManagesMembers, NewSession};
use commands::read_back::{read_back, ReadBack};
use domain::{FirmId, MemberId, Role};
use projections::page::Page;
use projections::views::{self, FirmView, MemberView, RoleView};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this area.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(log_in))
        .routes(routes!(log_out))
        .routes(routes!(accept_invitation))
        .routes(routes!(list_members, invite_member))
        .routes(routes!(get_member, change_role, remove_member))
        .routes(routes!(list_roles))
        .routes(routes!(set_role_permissions))
}

/// A new session.
#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionBody {
    /// The bearer token (`esqs_…`); shown once.
    #[schema(schema_with = session_token_schema)]
    token: String,
    /// When it stops working.
    #[schema(format = DateTime)]
    expires_at: String,
}

/// `POST /v1/firms`'s answer.
#[derive(Serialize, ToSchema)]
pub struct SignupResponse {
    firm: FirmView,
    member: MemberView,
    /// The owner's first session.
    session: SessionBody,
}

/// A member signed in: login or an accepted invitation.
#[derive(Serialize, ToSchema)]
pub struct SignInResponse {
    member: MemberView,
    /// Their new session.
    session: SessionBody,
}

/// `POST /v1/members`'s answer.
#[derive(Serialize, ToSchema)]
pub struct InvitationResponse {
    member: MemberView,
    /// The invitation (`esqi_…`): shown once, valid 7 days.
    #[schema(schema_with = invitation_token_schema)]
    invitation_token: String,
}

/// `GET /v1/roles`'s answer.
#[derive(Serialize, ToSchema)]
pub struct RolesResponse {
    /// Every role, in the order owner, administrator, attorney, staff.
    roles: Vec<RoleView>,
}

fn session_token_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::bearer_token("esqs_")
}

problems!(
    /// What signing up can answer besides success.
    SignupProblems =
        [JSON_BODY, &[ApiError::SignupClosed, ApiError::EmailTaken, ApiError::Conflict, ApiError::Unavailable]]
);
problems!(
    /// What logging in can answer besides success.
    LoginProblems = [
        JSON_BODY,
        &[
            ApiError::InvalidLogin,
            ApiError::CrossSiteRequest,
            ApiError::TooManyAttempts(std::time::Duration::ZERO),
            ApiError::Unavailable
        ]
    ]
);
problems!(
    /// What accepting an invitation can answer besides success.
    AcceptProblems = [
        JSON_BODY,
        &[
            ApiError::InvalidInvitation,
            ApiError::CrossSiteRequest,
            ApiError::Conflict,
            ApiError::TooManyAttempts(std::time::Duration::ZERO),
            ApiError::Unavailable
        ]
    ]
);
problems!(
    /// What a member route with no further rule can answer besides success.
    SessionProblems = [SESSION]
);
problems!(
    /// What listing members can answer besides success.
    ListProblems = [SESSION, LIST]
);
problems!(
    /// What reading one member can answer besides success.
    GetProblems = [SESSION, &[ApiError::NotFound]]
);
problems!(
    /// What inviting a member can answer besides success.
    InviteProblems = [SESSION, JSON_BODY, &[ApiError::PermissionDenied, ApiError::EmailTaken, ApiError::Conflict]]
);
problems!(
    /// What changing a member's role can answer besides success.
    ChangeRoleProblems = [
        SESSION,
        JSON_BODY,
        &[
            ApiError::PermissionDenied,
            ApiError::NotFound,
            ApiError::OwnerRoleFixed,
            ApiError::MemberNotActive,
            ApiError::Conflict,
        ]
    ]
);
problems!(
    /// What removing a member can answer besides success.
    RemoveProblems = [
        SESSION,
        &[
            ApiError::PermissionDenied,
            ApiError::NotFound,
            ApiError::OwnerCannotBeRemoved,
            ApiError::MemberNotActive,
            ApiError::Conflict,
        ]
    ]
);
problems!(
    /// What changing a role's permissions can answer besides success.
    RolePermissionsProblems = [
        SESSION,
        JSON_BODY,
        &[ApiError::PermissionDenied, ApiError::NotFound, ApiError::OwnerRoleFixed, ApiError::Conflict]
    ]
);

fn session_body(session: &NewSession) -> SessionBody {
    SessionBody { token: session.token.expose().to_owned(), expires_at: domain::format_time(&session.expires_at) }
}

/// The member as a command's answer shows them, read in the command's own transaction.
fn member_read_back() -> impl ReadBack<MemberId, MemberView> {
    read_back(|conn, id| Box::pin(async move { views::member_by_id(conn, id).await?.ok_or(sqlx::Error::RowNotFound) }))
}

async fn member_view(state: &AppState, firm: FirmId, id: MemberId) -> ApiResult<MemberView> {
    views::member(state.pool(), firm, id).await?.ok_or(ApiError::NotFound)
}

/// Creates a firm and its owner, signed in. Can be turned off by configuration.
#[utoipa::path(
    post,
    path = "/v1/firms",
    tag = "members",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The firm, its owner and the owner's session.", body = SignupResponse,
            headers(("Cache-Control" = String, description = "`no-store`: the body holds a token."))),
        SignupProblems,
    )
)]
async fn sign_up(
    State(state): State<Arc<AppState>>,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<SignupRequest>,
) -> ApiResult<Response> {
    if !state.signup_open {
        return Err(ApiError::SignupClosed);
    }
    let firm = request.parse()?;
    let read_firm_and_owner = read_back(|conn, (firm_id, owner_id): (FirmId, MemberId)| {
        Box::pin(async move {
            let firm = views::firm(&mut *conn, firm_id).await?.ok_or(sqlx::Error::RowNotFound)?;
            let member = views::member(&mut *conn, firm_id, owner_id).await?.ok_or(sqlx::Error::RowNotFound)?;
            Ok((firm, member))
        })
    });
    let (signup, (firm, member)) = state.commands.sign_up(firm, request_id, read_firm_and_owner).await?;
    Ok(no_store(json(StatusCode::CREATED, &SignupResponse { firm, member, session: session_body(&signup.session) })))
}

/// Logs a member in; a wrong email or password is the same answer.
#[utoipa::path(
    post,
    path = "/v1/sessions",
    tag = "members",
    params(("Esqase-Session" = Option<String>, Header,
        description = "`cookie` (browser sign-in): also set the session as the `esqase_session` cookie \
                       (`HttpOnly; SameSite=Strict; Path=/`). Only from the service's own pages: \
                       otherwise 403 `cross_site_request`.")),
    request_body = LoginRequest,
    responses(
        (status = 201, description = "The member and a new session.", body = SignInResponse,
            headers(
                ("Cache-Control" = String, description = "`no-store`: the body holds a token."),
                ("Set-Cookie" = String, description = "With `Esqase-Session: cookie`: the browser session."),
            )),
        LoginProblems,
    )
)]
async fn log_in(
    State(state): State<Arc<AppState>>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CredentialsRequest>,
) -> ApiResult<Response> {
    let cookie = crate::web::session::sign_in_cookie_requested(&headers)?;
    let login = request.login()?;
    let (sign_in, member) = state.commands.log_in(login, client, member_read_back()).await?;
    let response =
        no_store(json(StatusCode::CREATED, &SignInResponse { member, session: session_body(&sign_in.session) }));
    crate::web::session::with_cookie_if(cookie, response, &sign_in.session, state.secure_cookies)
}

/// Ends the session used: its token stops working at once.
#[utoipa::path(
    delete,
    path = "/v1/sessions/current",
    tag = "members",
    security(("member_session" = [])),
    responses(
        (status = 204, description = "Logged out.",
            headers(("Set-Cookie" = String, description = "When signed in with the browser cookie: clears it."))),
        SessionProblems,
    )
)]
async fn log_out(
    State(state): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    _member: Member,
) -> ApiResult<Response> {
    let (token, source) = session_token(&method, &headers)?;
    end_session(state.pool(), &token).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if source == SessionSource::Cookie {
        response.headers_mut().insert(header::SET_COOKIE, crate::web::session::clear_cookie(state.secure_cookies));
    }
    Ok(response)
}

/// Accepts an invitation by setting a password; answers like a login.
#[utoipa::path(
    post,
    path = "/v1/invitations/accept",
    tag = "members",
    params(("Esqase-Session" = Option<String>, Header,
        description = "`cookie` (browser sign-in): also set the session as the `esqase_session` cookie \
                       (`HttpOnly; SameSite=Strict; Path=/`). Only from the service's own pages: \
                       otherwise 403 `cross_site_request`.")),
    request_body = AcceptInvitationRequest,
    responses(
        (status = 201, description = "The member and a new session.", body = SignInResponse,
            headers(
                ("Cache-Control" = String, description = "`no-store`: the body holds a token."),
                ("Set-Cookie" = String, description = "With `Esqase-Session: cookie`: the browser session."),
            )),
        AcceptProblems,
    )
)]
async fn accept_invitation(
    State(state): State<Arc<AppState>>,
    ClientAddress(client): ClientAddress,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    JsonBody(request): JsonBody<CredentialsRequest>,
) -> ApiResult<Response> {
    let cookie = crate::web::session::sign_in_cookie_requested(&headers)?;
    let acceptance = request.acceptance()?;
    let (sign_in, member) =
        state.commands.accept_invitation(acceptance, client, request_id, member_read_back()).await?;
    let response =
        no_store(json(StatusCode::CREATED, &SignInResponse { member, session: session_body(&sign_in.session) }));
    crate::web::session::with_cookie_if(cookie, response, &sign_in.session, state.secure_cookies)
}

/// The firm's members, newest first.
#[utoipa::path(
    get,
    path = "/v1/members",
    tag = "members",
    security(("member_session" = [])),
    params(PageParams),
    responses((status = 200, description = "A page of members.", body = Page<MemberView>), ListProblems)
)]
async fn list_members(State(state): State<Arc<AppState>>, Member(me): Member, query: ListQuery) -> ApiResult<Response> {
    query.only(&[])?;
    let page = views::members(state.pool(), me.firm_id, query.page).await?;
    Ok(json(StatusCode::OK, &page))
}

/// One member of the firm.
#[utoipa::path(
    get,
    path = "/v1/members/{id}",
    tag = "members",
    security(("member_session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The member's id.")),
    responses((status = 200, description = "The member.", body = MemberView), GetProblems)
)]
async fn get_member(
    State(state): State<Arc<AppState>>,
    Member(me): Member,
    PathId(id): PathId<MemberId>,
) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &member_view(&state, me.firm_id, id).await?))
}

/// Invites a member (`members` permission); the owner role cannot be given this way.
#[utoipa::path(
    post,
    path = "/v1/members",
    tag = "members",
    security(("member_session" = [])),
    request_body = InviteRequest,
    responses(
        (status = 201, description = "The invited member and the invitation token, shown once.",
            body = InvitationResponse,
            headers(("Cache-Control" = String, description = "`no-store`: the body holds a token."))),
        InviteProblems,
    )
)]
async fn invite_member(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesMembers>,
    RequestId(request_id): RequestId,
    JsonBody(request): JsonBody<InviteRequest>,
) -> ApiResult<Response> {
    let invitation = request.parse()?;
    let (invitation, member) = state.commands.invite_member(&me, invitation, request_id, member_read_back()).await?;
    let body = InvitationResponse { member, invitation_token: invitation.token.expose().to_owned() };
    Ok(no_store(json(StatusCode::CREATED, &body)))
}

/// Changes a member's role (owner only; the owner's own role cannot change).
#[utoipa::path(
    patch,
    path = "/v1/members/{id}",
    operation_id = "change_member_role",
    tag = "members",
    security(("member_session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The member's id.")),
    request_body = RoleRequest,
    responses((status = 200, description = "The member.", body = MemberView), ChangeRoleProblems)
)]
async fn change_role(
    State(state): State<Arc<AppState>>,
    me: Permitted<IsOwner>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<MemberId>,
    JsonBody(request): JsonBody<RoleRequest>,
) -> ApiResult<Response> {
    let role = request.parse()?;
    let member = state.commands.change_member_role(&me, id, role, request_id, member_read_back()).await?;
    Ok(json(StatusCode::OK, &member))
}

/// Removes a member (`members` permission; never the owner): their sessions end and every
/// Active key they created is revoked.
#[utoipa::path(
    delete,
    path = "/v1/members/{id}",
    tag = "members",
    security(("member_session" = [])),
    params(("id" = uuid::Uuid, Path, description = "The member's id.")),
    responses((status = 200, description = "The member, now `removed`.", body = MemberView), RemoveProblems)
)]
async fn remove_member(
    State(state): State<Arc<AppState>>,
    me: Permitted<ManagesMembers>,
    RequestId(request_id): RequestId,
    PathId(id): PathId<MemberId>,
) -> ApiResult<Response> {
    let member = state.commands.remove_member(&me, id, request_id, member_read_back()).await?;
    Ok(json(StatusCode::OK, &member))
}

/// The firm's roles-and-permissions grid.
#[utoipa::path(
    get,
    path = "/v1/roles",
    tag = "members",
    security(("member_session" = [])),
    responses((status = 200, description = "Every role and what it may do now.", body = RolesResponse), SessionProblems)
)]
async fn list_roles(State(state): State<Arc<AppState>>, Member(me): Member) -> ApiResult<Response> {
    let roles = views::roles(state.pool(), me.firm_id).await?;
    Ok(json(StatusCode::OK, &RolesResponse { roles }))
}

/// Sets what a role may do (owner only; the owner role is fixed). Takes effect at once, for
/// members and for every key they created.
#[utoipa::path(
    put,
    path = "/v1/roles/{role}/permissions",
    tag = "members",
    security(("member_session" = [])),
    params(("role" = domain::Role, Path, description = "The role.")),
    request_body = PermissionsRequest,
    responses((status = 200, description = "The role and its permissions.", body = RoleView), RolePermissionsProblems)
)]
async fn set_role_permissions(
    State(state): State<Arc<AppState>>,
    me: Permitted<IsOwner>,
    RequestId(request_id): RequestId,
    Path(role): Path<String>,
    JsonBody(request): JsonBody<PermissionsRequest>,
) -> ApiResult<Response> {
    let role = Role::parse(&role).map_err(|_| ApiError::NotFound)?;
    let permissions = request.parse()?;
    let firm = me.firm_id;
    let read_role = read_back(move |conn, role: Role| {
        Box::pin(async move {
            let roles = views::roles(&mut *conn, firm).await?;
            roles.into_iter().find(|r| r.role == role).ok_or(sqlx::Error::RowNotFound)
        })
    });
    let row = state.commands.set_role_permissions(&me, role, permissions, request_id, read_role).await?;
    Ok(json(StatusCode::OK, &row))
}
