//! The firm's data API: contacts, leads, practice areas, matter types and matters, each with
//! list, get, create, update and delete, for a member session or an API key.
//!
//! The five resources are one table-driven design: a [`Resource`] names its path, its table, its
//! permissions and its [`Field`]s, and the handlers below serve any of them. Every table and
//! column name in the SQL comes from the constants in this file, never from a request; a request's
//! values are always bound parameters. Records are plain rows (not event-sourced), scoped by the
//! caller's firm in every statement; each keeps who created it (a member or an API key), and
//! nothing happens to it when that key is revoked or expires.
//!
//! The OpenAPI description of each resource is built from the same table ([`docs`]).

mod body;
mod docs;
mod record;
mod resources;

use crate::app::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ListQuery, PathId};
use crate::response::json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use projections::page::Page;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

use body::*;
use record::*;
use resources::*;

/// The routes of every resource, each with its OpenAPI description.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    RESOURCES.iter().copied().fold(OpenApiRouter::new(), |router, r| {
        router
            .routes((
                docs::schemas(r),
                docs::collection(r),
                get(move |state: State<Arc<AppState>>, caller: Caller, query: ListQuery| list(r, state, caller, query))
                    .post(move |state: State<Arc<AppState>>, caller: Caller, body: Request| {
                        create(r, state, caller, body)
                    }),
            ))
            .routes((
                Vec::new(),
                docs::item(r),
                get(move |state: State<Arc<AppState>>, caller: Caller, id: Result<PathId<Uuid>, ApiError>| {
                    show(r, state, caller, id)
                })
                .patch(
                    move |state: State<Arc<AppState>>,
                          caller: Caller,
                          id: Result<PathId<Uuid>, ApiError>,
                          body: Request| { update(r, state, caller, id, body) },
                )
                .delete(
                    move |state: State<Arc<AppState>>, caller: Caller, id: Result<PathId<Uuid>, ApiError>| {
                        delete(r, state, caller, id)
                    },
                ),
            ))
    })
}

// ---- Handlers: each checks the caller's permission before anything else. ----

async fn list(
    r: &Resource,
    State(state): State<Arc<AppState>>,
    caller: Caller,
    query: ListQuery,
) -> ApiResult<Response> {
    caller.require(r.read)?;
    query.only(&[])?;
    let (condition, order) = query.page.sql("id", 2);
    let rows = sqlx::query(&format!(
        "SELECT {} FROM {} WHERE firm_id = $1 AND {condition} ORDER BY {order} LIMIT $3",
        columns(r),
        r.table
    ))
    .bind(caller.firm_id().as_uuid())
    .bind(query.page.boundary())
    .bind(query.page.limit + 1)
    .fetch_all(state.pool())
    .await?;
    let records = rows.iter().map(|row| record(r, row)).collect::<Result<Vec<_>, _>>()?;
    let page: Page<Record> = query.page.page(records, |record| record.id);
    Ok(json(StatusCode::OK, &page))
}

async fn show(
    r: &Resource,
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<PathId<Uuid>, ApiError>,
) -> ApiResult<Response> {
    caller.require(r.read)?;
    // The scope is judged before the id: a key that may not read contacts learns nothing more.
    let PathId(id) = id?;
    let row = sqlx::query(&format!("SELECT {} FROM {} WHERE firm_id = $1 AND id = $2", columns(r), r.table))
        .bind(caller.firm_id().as_uuid())
        .bind(id)
        .fetch_optional(state.pool())
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(json(StatusCode::OK, &record(r, &row)?))
}

async fn create(
    r: &Resource,
    State(state): State<Arc<AppState>>,
    caller: Caller,
    body: Request,
) -> ApiResult<Response> {
    caller.require(r.write)?;
    let body = read_body(&state, body).await?;
    let firm = caller.firm_id();
    let (changes, errors) = parse_body(r, body, Mode::Create)?;
    let mut tx = state.pool().begin().await?;
    check(r, &mut tx, firm, &changes, errors).await?;

    let now = commands::log::now();
    let (author_type, author_id) = caller.author();
    let names = changes.iter().map(|(field, _)| format!(", {}", field.name)).collect::<String>();
    let placeholders = (7..7 + changes.len()).map(|n| format!(", ${n}")).collect::<String>();
    let sql = format!(
        "INSERT INTO {} (id, firm_id, created_by_type, created_by_id, created_at, updated_at{names}) \
         VALUES ($1, $2, $3, $4, $5, $6{placeholders}) RETURNING {}",
        r.table,
        columns(r)
    );
    let query = sqlx::query(&sql)
        .bind(Uuid::now_v7())
        .bind(firm.as_uuid())
        .bind(author_type)
        .bind(author_id)
        .bind(now)
        .bind(now);
    let row = bind_all(query, changes).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(json(StatusCode::CREATED, &record(r, &row)?))
}

async fn update(
    r: &Resource,
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<PathId<Uuid>, ApiError>,
    body: Request,
) -> ApiResult<Response> {
    caller.require(r.write)?;
    let PathId(id) = id?;
    let body = read_body(&state, body).await?;
    let firm = caller.firm_id();
    let mut tx = state.pool().begin().await?;
    // NO KEY UPDATE, like the UPDATE itself: it does not wait for writers that merely reference
    // this record (they hold KEY SHARE).
    let current = sqlx::query(&format!(
        "SELECT {} FROM {} WHERE firm_id = $1 AND id = $2 FOR NO KEY UPDATE",
        columns(r),
        r.table
    ))
    .bind(firm.as_uuid())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(ApiError::NotFound)?;
    let (changes, errors) = parse_body(r, body, Mode::Update)?;
    check(r, &mut tx, firm, &changes, errors).await?;
    if changes.is_empty() {
        return Ok(json(StatusCode::OK, &record(r, &current)?));
    }

    let assignments =
        changes.iter().enumerate().map(|(i, (field, _))| format!("{} = ${}, ", field.name, i + 4)).collect::<String>();
    let sql = format!(
        "UPDATE {} SET {assignments}updated_at = $3 WHERE firm_id = $1 AND id = $2 RETURNING {}",
        r.table,
        columns(r)
    );
    let query = sqlx::query(&sql).bind(firm.as_uuid()).bind(id).bind(commands::log::now());
    let row = bind_all(query, changes).fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(json(StatusCode::OK, &record(r, &row)?))
}

async fn delete(
    r: &Resource,
    State(state): State<Arc<AppState>>,
    caller: Caller,
    id: Result<PathId<Uuid>, ApiError>,
) -> ApiResult<Response> {
    caller.require(r.write)?;
    let PathId(id) = id?;
    let deleted = sqlx::query(&format!("DELETE FROM {} WHERE firm_id = $1 AND id = $2", r.table))
        .bind(caller.firm_id().as_uuid())
        .bind(id)
        .execute(state.pool())
        .await
        .map_err(|error| match &error {
            // A matter type or matter still refers to it (the (firm_id, id) foreign keys).
            sqlx::Error::Database(db) if db.code().as_deref() == Some(FOREIGN_KEY_VIOLATION) => ApiError::RecordInUse,
            _ => ApiError::from(error),
        })?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Postgres' SQLSTATE for a foreign key violation.
const FOREIGN_KEY_VIOLATION: &str = "23503";
