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

use crate::app::{json, AppState};
use crate::caller::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, ListQuery, PathId};
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::names::{single_line, Email, TextError};
use domain::{FieldErrors, FirmId, Permission};
use projections::page::Page;
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Postgres, Row};
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use uuid::Uuid;

/// The longest name or title, in characters.
const NAME_MAX_CHARS: usize = 200;
/// The longest phone number, in characters.
const PHONE_MAX_CHARS: usize = 40;
/// The longest free text (a lead's source), in characters.
const TEXT_MAX_CHARS: usize = 200;

/// What a field holds and how a request's value for it is checked. Every field is a JSON string
/// (or `null`) on the wire.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Required: trimmed, 1 to 200 characters, no control characters.
    Name,
    /// Optional email address, lower-cased.
    Email,
    /// Optional phone number: trimmed, 1 to 40 characters, no control characters.
    Phone,
    /// Optional free text: trimmed, 1 to 200 characters, no control characters.
    Text,
    /// Optional id of a record of the caller's own firm in `table` (a `noun`, for messages).
    Reference { table: &'static str, noun: &'static str },
    /// A matter's status: `open` (the default) or `closed`; never null.
    Status,
}

/// One field of a resource: its JSON name, which is also its column.
#[derive(Debug)]
struct Field {
    name: &'static str,
    kind: Kind,
}

/// One resource of the data API.
#[derive(Debug)]
struct Resource {
    /// The path segment: `/v1/{path}`.
    path: &'static str,
    /// One record, as the OpenAPI document names its schema (`Contact`).
    noun: &'static str,
    table: &'static str,
    /// What GET needs.
    read: Permission,
    /// What POST, PATCH and DELETE need.
    write: Permission,
    /// Its fields besides `id`, `created_at`, `updated_at` and `created_by`, in response order.
    fields: &'static [Field],
}

const fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

const CONTACTS: Resource = Resource {
    path: "contacts",
    noun: "Contact",
    table: "contacts",
    read: Permission::ContactsRead,
    write: Permission::ContactsWrite,
    fields: &[field("name", Kind::Name), field("email", Kind::Email), field("phone", Kind::Phone)],
};

const LEADS: Resource = Resource {
    path: "leads",
    noun: "Lead",
    table: "leads",
    read: Permission::LeadsRead,
    write: Permission::LeadsWrite,
    fields: &[field("name", Kind::Name), field("email", Kind::Email), field("source", Kind::Text)],
};

const PRACTICE_AREAS: Resource = Resource {
    path: "practice-areas",
    noun: "PracticeArea",
    table: "practice_areas",
    read: Permission::PracticeAreasRead,
    write: Permission::PracticeAreasWrite,
    fields: &[field("name", Kind::Name)],
};

const PRACTICE_AREA: Kind = Kind::Reference { table: "practice_areas", noun: "practice area" };

const MATTER_TYPES: Resource = Resource {
    path: "matter-types",
    noun: "MatterType",
    table: "matter_types",
    read: Permission::MatterTypesRead,
    write: Permission::MatterTypesWrite,
    fields: &[field("name", Kind::Name), field("practice_area_id", PRACTICE_AREA)],
};

const MATTERS: Resource = Resource {
    path: "matters",
    noun: "Matter",
    table: "matters",
    read: Permission::MattersRead,
    write: Permission::MattersWrite,
    fields: &[
        field("title", Kind::Name),
        field("contact_id", Kind::Reference { table: "contacts", noun: "contact" }),
        field("practice_area_id", PRACTICE_AREA),
        field("matter_type_id", Kind::Reference { table: "matter_types", noun: "matter type" }),
        field("status", Kind::Status),
    ],
};

static RESOURCES: [&Resource; 5] = [&CONTACTS, &MATTERS, &LEADS, &PRACTICE_AREAS, &MATTER_TYPES];

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

// ---- Bodies: parsed only after the permission check. ----

/// The JSON object of a POST or PATCH (415, 413 and 400 as for every JSON body).
async fn read_body(state: &Arc<AppState>, body: Request) -> ApiResult<Map<String, Value>> {
    let JsonBody(body) = JsonBody::<Map<String, Value>>::from_request(body, state).await?;
    Ok(body)
}

/// Whether a body creates a record or changes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Every field is set: an absent or `null` field takes its default (or is required).
    Create,
    /// Only the fields present are set; `null` clears an optional one.
    Update,
}

/// A column's new value.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cell {
    Text(Option<String>),
    Id(Option<Uuid>),
}

/// The columns a body sets, in field order.
type Changes = Vec<(&'static Field, Cell)>;

/// Reads a body against `r`'s fields: an unknown field or a value that is not a string or null
/// is a 400 at once; invalid values are collected as field errors, for one 422 with every field.
fn parse_body(r: &Resource, mut body: Map<String, Value>, mode: Mode) -> ApiResult<(Changes, FieldErrors)> {
    if let Some(unknown) = body.keys().find(|key| !r.fields.iter().any(|f| f.name == key.as_str())) {
        let known = r.fields.iter().map(|f| format!("`{}`", f.name)).collect::<Vec<_>>().join(", ");
        return Err(ApiError::Malformed(format!(
            "the body is not valid: unknown field `{unknown}`, expected one of {known}"
        )));
    }
    let mut changes = Changes::new();
    let mut errors = FieldErrors::new();
    for field in r.fields {
        let raw = match body.remove(field.name) {
            None if mode == Mode::Update => continue,
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                return Err(ApiError::Malformed(format!(
                    "the body is not valid: `{}` must be a string or null",
                    field.name
                )))
            }
        };
        match parse_value(field.kind, raw.as_deref(), mode) {
            Ok(cell) => changes.push((field, cell)),
            Err(message) => errors.push(field.name, message),
        }
    }
    Ok((changes, errors))
}

/// One field's value (`None` for absent or `null`), or what is wrong with it.
fn parse_value(kind: Kind, raw: Option<&str>, mode: Mode) -> Result<Cell, String> {
    let text = |value: Result<String, TextError>| value.map(|v| Cell::Text(Some(v))).map_err(|e| e.to_string());
    match (kind, raw) {
        (Kind::Name, None) => Err(TextError::Empty.to_string()),
        (Kind::Name, Some(raw)) => text(single_line(raw, NAME_MAX_CHARS)),
        (Kind::Status, None) if mode == Mode::Create => Ok(Cell::Text(Some("open".into()))),
        (Kind::Status, Some(status @ ("open" | "closed"))) => Ok(Cell::Text(Some(status.into()))),
        (Kind::Status, _) => Err("must be open or closed".into()),
        (Kind::Reference { .. }, None) => Ok(Cell::Id(None)),
        (_, None) => Ok(Cell::Text(None)),
        (_, Some(raw)) if raw.trim().is_empty() => Err("must not be blank; send null to leave it empty".into()),
        (Kind::Email, Some(raw)) => text(Email::parse(raw).map(|e| e.as_str().to_owned())),
        (Kind::Phone, Some(raw)) => text(single_line(raw, PHONE_MAX_CHARS)),
        (Kind::Text, Some(raw)) => text(single_line(raw, TEXT_MAX_CHARS)),
        // An id that is not a UUID names nothing: the same answer as an id of no record.
        (Kind::Reference { noun, .. }, Some(raw)) => {
            Uuid::try_parse(raw.trim()).map(|id| Cell::Id(Some(id))).map_err(|_| no_such(noun))
        }
    }
}

fn no_such(noun: &str) -> String {
    format!("must be the id of one of your firm's {noun}s")
}

/// Checks every reference a body sets against the caller's firm, inside the writing
/// transaction: `FOR KEY SHARE` keeps each referenced record from being deleted before commit.
/// Then refuses the body with every field error at once, in field order.
async fn check(
    r: &Resource,
    tx: &mut sqlx::PgConnection,
    firm: FirmId,
    changes: &Changes,
    mut errors: FieldErrors,
) -> ApiResult<()> {
    for (field, cell) in changes {
        if let (Kind::Reference { table, noun }, Cell::Id(Some(id))) = (field.kind, cell) {
            let found = sqlx::query(&format!("SELECT 1 FROM {table} WHERE firm_id = $1 AND id = $2 FOR KEY SHARE"))
                .bind(firm.as_uuid())
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                errors.push(field.name, no_such(noun));
            }
        }
    }
    if errors.is_empty() {
        return Ok(());
    }
    errors.0.sort_by_key(|e| r.fields.iter().position(|f| f.name == e.field));
    Err(ApiError::Validation(errors.0))
}

fn bind_all(
    mut query: sqlx::query::Query<'_, Postgres, PgArguments>,
    changes: Changes,
) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    for (_, cell) in changes {
        query = match cell {
            Cell::Text(value) => query.bind(value),
            Cell::Id(value) => query.bind(value),
        };
    }
    query
}

// ---- Responses. ----

/// The columns every statement returns.
fn columns(r: &Resource) -> String {
    let fields = r.fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    format!("id, {fields}, created_at, updated_at, created_by_type, created_by_id")
}

/// A record as the API shows it: `id`, its fields, `created_at`, `updated_at`, `created_by`.
struct Record {
    id: Uuid,
    body: Value,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

fn record(r: &Resource, row: &PgRow) -> Result<Record, sqlx::Error> {
    let id: Uuid = row.try_get("id")?;
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    for field in r.fields {
        let value = match field.kind {
            Kind::Reference { .. } => json!(row.try_get::<Option<Uuid>, _>(field.name)?),
            _ => json!(row.try_get::<Option<String>, _>(field.name)?),
        };
        body.insert(field.name.into(), value);
    }
    let created_at: domain::Timestamp = row.try_get("created_at")?;
    let updated_at: domain::Timestamp = row.try_get("updated_at")?;
    body.insert("created_at".into(), json!(domain::format_time(&created_at)));
    body.insert("updated_at".into(), json!(domain::format_time(&updated_at)));
    body.insert(
        "created_by".into(),
        json!({
            "type": row.try_get::<String, _>("created_by_type")?,
            "id": row.try_get::<Uuid, _>("created_by_id")?,
        }),
    );
    Ok(Record { id, body: Value::Object(body) })
}

/// The OpenAPI description of a resource, from its [`Resource`] entry: the record, create and
/// update schemas, and the five operations.
mod docs {
    use super::{Field, Kind, Mode, Resource, NAME_MAX_CHARS, PHONE_MAX_CHARS, TEXT_MAX_CHARS};
    use crate::error::ApiError;
    use crate::extract::PageParams;
    use crate::openapi::{self, DATA_PERMISSIONS, JSON_BODY, KEY_CREDENTIALS, LIST};
    use domain::schema::{single_line, string_enum, time, uuid};
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, Paths};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Schema, SchemaType, Type};
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
    use utoipa::IntoParams;

    /// `T` or null.
    fn nullable(schema: ObjectBuilder, kind: Type) -> ObjectBuilder {
        schema.schema_type(SchemaType::from_iter([kind, Type::Null]))
    }

    /// A field's value as a request sends it.
    fn input(kind: Kind, mode: Mode) -> ObjectBuilder {
        match kind {
            Kind::Name => single_line(NAME_MAX_CHARS),
            Kind::Email => nullable(domain::schema::email(), Type::String),
            Kind::Phone => nullable(single_line(PHONE_MAX_CHARS), Type::String),
            Kind::Text => nullable(single_line(TEXT_MAX_CHARS), Type::String),
            Kind::Reference { noun, .. } => {
                nullable(uuid(), Type::String).description(Some(format!("The id of one of your firm's {noun}s.")))
            }
            Kind::Status if mode == Mode::Create => ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .enum_values(Some([Some("open"), Some("closed"), None])),
            Kind::Status => string_enum(["open", "closed"]),
        }
    }

    /// A field's value as a record shows it.
    fn output(kind: Kind) -> ObjectBuilder {
        match kind {
            Kind::Name => ObjectBuilder::new().schema_type(Type::String),
            Kind::Email | Kind::Phone | Kind::Text => {
                ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
            }
            Kind::Reference { .. } => nullable(uuid(), Type::String),
            Kind::Status => string_enum(["open", "closed"]),
        }
    }

    fn required(field: &Field) -> bool {
        matches!(field.kind, Kind::Name)
    }

    fn body(r: &Resource, mode: Mode) -> ObjectBuilder {
        let mut schema = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        for field in r.fields {
            schema = schema.property(field.name, input(field.kind, mode));
            if mode == Mode::Create && required(field) {
                schema = schema.required(field.name);
            }
        }
        schema
    }

    fn record(r: &Resource) -> ObjectBuilder {
        let mut schema = ObjectBuilder::new().schema_type(Type::Object).property("id", uuid()).required("id");
        for field in r.fields {
            schema = schema.property(field.name, output(field.kind)).required(field.name);
        }
        let created_by = ObjectBuilder::new()
            .description(Some("Who created it: a member or an API key (kept when the key is revoked or expires)."))
            .property("type", string_enum(["member", "api_key"]))
            .required("type")
            .property("id", uuid())
            .required("id");
        schema
            .property("created_at", time())
            .required("created_at")
            .property("updated_at", time())
            .required("updated_at")
            .property("created_by", created_by)
            .required("created_by")
    }

    fn page(r: &Resource) -> ObjectBuilder {
        let cursor = || ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]));
        ObjectBuilder::new()
            .property("data", utoipa::openapi::schema::ArrayBuilder::new().items(Ref::from_schema_name(r.noun)))
            .required("data")
            .property("next_cursor", cursor().description(Some("Older rows (the Next button), if any.")))
            .required("next_cursor")
            .property("prev_cursor", cursor().description(Some("Newer rows (the Previous button), if any.")))
            .required("prev_cursor")
    }

    /// The resource's component schemas.
    pub(super) fn schemas(r: &Resource) -> Vec<(String, RefOr<Schema>)> {
        vec![
            (r.noun.to_owned(), record(r).into()),
            (format!("{}Create", r.noun), body(r, Mode::Create).into()),
            (format!("{}Update", r.noun), body(r, Mode::Update).into()),
            (format!("{}Page", r.noun), page(r).into()),
        ]
    }

    /// The resource's name in an operation id: `practice_areas`, or `practice_area` for one.
    fn snake(r: &Resource, one: bool) -> String {
        let name = r.path.replace('-', "_");
        if one {
            name.trim_end_matches('s').to_owned()
        } else {
            name
        }
    }

    fn operation(
        r: &Resource,
        id: &str,
        summary: String,
        success: (&str, &str, Option<String>),
        problems: &[&[ApiError]],
    ) -> OperationBuilder {
        let (status, description, schema) = success;
        let mut response = ResponseBuilder::new().description(description);
        if let Some(schema) = schema {
            response = response
                .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build());
        }
        OperationBuilder::new()
            .tag("data")
            .operation_id(Some(format!("{id}_{}", snake(r, id != "list"))))
            .summary(Some(summary))
            .security(openapi::member_session())
            .security(openapi::api_key())
            .responses(
                ResponsesBuilder::new()
                    .response(status, response.build())
                    .responses_from_iter(openapi::problem_responses(problems)),
            )
    }

    fn request_body(schema: String) -> utoipa::openapi::request_body::RequestBody {
        RequestBodyBuilder::new()
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build())
            .required(Some(Required::True))
            .build()
    }

    fn id_parameter(r: &Resource) -> utoipa::openapi::path::Parameter {
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some(format!("The {}'s id.", r.noun)))
            .schema(Some(uuid()))
            .build()
    }

    /// `GET` and `POST /v1/{path}`.
    pub(super) fn collection(r: &Resource) -> Paths {
        let (read, write) = (r.read.as_str(), r.write.as_str());
        let list = operation(
            r,
            "list",
            format!("The firm's {}, newest first (needs `{read}`).", r.path),
            ("200", "A page of records.", Some(format!("{}Page", r.noun))),
            &[KEY_CREDENTIALS, DATA_PERMISSIONS, LIST],
        )
        .parameters(Some(PageParams::into_params(|| Some(ParameterIn::Query))));
        let create = operation(
            r,
            "create",
            format!("Creates a record (needs `{write}`)."),
            ("201", "The record.", Some(r.noun.to_owned())),
            &[KEY_CREDENTIALS, DATA_PERMISSIONS, JSON_BODY],
        )
        .request_body(Some(request_body(format!("{}Create", r.noun))));
        let mut item = PathItem::new(HttpMethod::Get, list);
        item.merge_operations(PathItem::new(HttpMethod::Post, create));
        let mut paths = Paths::new();
        paths.paths.insert(format!("/v1/{}", r.path), item);
        paths
    }

    /// `GET`, `PATCH` and `DELETE /v1/{path}/{id}`.
    pub(super) fn item(r: &Resource) -> Paths {
        let (read, write) = (r.read.as_str(), r.write.as_str());
        let not_found: &[ApiError] = &[ApiError::NotFound];
        let show = operation(
            r,
            "get",
            format!("One record (needs `{read}`)."),
            ("200", "The record.", Some(r.noun.to_owned())),
            &[KEY_CREDENTIALS, DATA_PERMISSIONS, not_found],
        );
        let update = operation(
            r,
            "update",
            format!("Changes the fields sent; `null` clears an optional one (needs `{write}`)."),
            ("200", "The record.", Some(r.noun.to_owned())),
            &[KEY_CREDENTIALS, DATA_PERMISSIONS, JSON_BODY, not_found],
        )
        .request_body(Some(request_body(format!("{}Update", r.noun))));
        let delete = operation(
            r,
            "delete",
            format!("Deletes a record (needs `{write}`)."),
            ("204", "Deleted.", None),
            &[KEY_CREDENTIALS, DATA_PERMISSIONS, &[ApiError::NotFound, ApiError::RecordInUse]],
        );
        let mut item = PathItem::new(HttpMethod::Get, show);
        item.merge_operations(PathItem::new(HttpMethod::Patch, update));
        item.merge_operations(PathItem::new(HttpMethod::Delete, delete));
        item.parameters = Some(vec![id_parameter(r)]);
        let mut paths = Paths::new();
        paths.paths.insert(format!("/v1/{}/{{id}}", r.path), item);
        paths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().expect("an object")
    }

    /// The columns set, by name, and each error as `field: message`.
    type Parsed = (Vec<(&'static str, Cell)>, Vec<String>);

    fn parse(r: &Resource, value: Value, mode: Mode) -> ApiResult<Parsed> {
        let (changes, errors) = parse_body(r, body(value), mode)?;
        Ok((
            changes.into_iter().map(|(f, c)| (f.name, c)).collect(),
            errors.0.into_iter().map(|e| format!("{}: {}", e.field, e.message)).collect(),
        ))
    }

    fn text(value: &str) -> Cell {
        Cell::Text(Some(value.into()))
    }

    #[test]
    fn every_table_and_column_is_a_lower_case_identifier() {
        let identifier = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        for r in RESOURCES {
            assert!(identifier(r.table), "{}", r.table);
            for f in r.fields {
                assert!(identifier(f.name), "{}", f.name);
                if let Kind::Reference { table, .. } = f.kind {
                    assert!(identifier(table), "{table}");
                }
            }
        }
    }

    #[test]
    fn a_create_trims_and_fills_in_defaults() {
        let (changes, errors) =
            parse(&MATTERS, json!({"title": "  Smith v. Jones ", "contact_id": null}), Mode::Create).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            changes,
            vec![
                ("title", text("Smith v. Jones")),
                ("contact_id", Cell::Id(None)),
                ("practice_area_id", Cell::Id(None)),
                ("matter_type_id", Cell::Id(None)),
                ("status", text("open")),
            ]
        );
    }

    #[test]
    fn every_invalid_field_is_listed_in_field_order() {
        let (_, errors) = parse(
            &CONTACTS,
            json!({"phone": "1".repeat(41), "email": "not an email", "name": "Ada\nLovelace"}),
            Mode::Create,
        )
        .unwrap();
        assert_eq!(
            errors,
            vec![
                "name: must not contain control characters such as newlines or tabs",
                "email: must be an email address, like name@example.com",
                "phone: must be at most 40 characters",
            ]
        );
        let (_, errors) =
            parse(&MATTERS, json!({"status": "pending", "matter_type_id": "nope"}), Mode::Create).unwrap();
        assert_eq!(
            errors,
            vec![
                "title: is required",
                "matter_type_id: must be the id of one of your firm's matter types",
                "status: must be open or closed",
            ]
        );
    }

    #[test]
    fn names_of_200_characters_are_accepted_and_201_are_not() {
        let (_, errors) = parse(&PRACTICE_AREAS, json!({"name": "é".repeat(200)}), Mode::Create).unwrap();
        assert!(errors.is_empty());
        let (_, errors) = parse(&PRACTICE_AREAS, json!({"name": "é".repeat(201)}), Mode::Create).unwrap();
        assert_eq!(errors, vec!["name: must be at most 200 characters"]);
    }

    #[test]
    fn an_update_sets_only_what_is_sent_and_null_clears() {
        let (changes, errors) = parse(&LEADS, json!({"email": null, "source": " Website "}), Mode::Update).unwrap();
        assert!(errors.is_empty());
        assert_eq!(changes, vec![("email", Cell::Text(None)), ("source", text("Website"))]);
        let (changes, _) = parse(&LEADS, json!({}), Mode::Update).unwrap();
        assert!(changes.is_empty());
    }

    #[test]
    fn an_update_cannot_clear_a_name_or_a_status_or_blank_an_optional_field() {
        let (_, errors) =
            parse(&MATTERS, json!({"title": null, "status": null, "contact_id": " "}), Mode::Update).unwrap();
        assert_eq!(
            errors,
            vec![
                "title: is required",
                "contact_id: must not be blank; send null to leave it empty",
                "status: must be open or closed",
            ]
        );
    }

    #[test]
    fn an_unknown_field_or_a_wrong_type_is_malformed() {
        let unknown = parse(&CONTACTS, json!({"name": "Ada", "id": "x"}), Mode::Create).unwrap_err();
        assert!(matches!(&unknown, ApiError::Malformed(m) if m.contains("unknown field `id`")), "{unknown:?}");
        let wrong = parse(&CONTACTS, json!({"name": 7}), Mode::Update).unwrap_err();
        assert!(matches!(&wrong, ApiError::Malformed(m) if m.contains("`name` must be a string")), "{wrong:?}");
    }
}
