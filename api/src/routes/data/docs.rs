//! The OpenAPI description of a resource, from its [`Resource`] entry: the record, create and
//! update schemas, and the five operations.

use super::body::Mode;
use super::resources::{Field, Kind, Resource, NAME_MAX_CHARS, PHONE_MAX_CHARS, TEXT_MAX_CHARS};
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
