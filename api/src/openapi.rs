//! The OpenAPI 3.1 document (`GET /openapi.json`), generated from the routers: each area's
//! router registers its handlers together with their `#[utoipa::path]` descriptions, so a route
//! cannot be served without being documented. Error responses are described by the [`ApiError`]
//! variants a route can answer with ([`problems!`]), so their statuses and codes are the ones
//! [`ApiError::status_and_code`] gives.

use crate::app::AppState;
use crate::error::{ApiError, Problem};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;

/// The security scheme of a member's session token (`esqs_…`).
pub const MEMBER_SESSION: &str = "member_session";
/// The security scheme of an API key (`esq_…`).
pub const API_KEY: &str = "api_key";

/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A route for members: a missing, unknown or ended session, an API key, or a state-changing
/// request made with the browser's session cookie from another site.
pub const SESSION: &[ApiError] = &[
    ApiError::InvalidCredentials,
    ApiError::InvalidSession,
    ApiError::SessionRequired,
    ApiError::CrossSiteRequest,
    ApiError::Unavailable,
];

/// A route that takes an API key (the data API also a member session): the credential judged in
/// the contract's order (docs/api.md, "How a key is checked": existence, status, origin).
pub const KEY_CREDENTIALS: &[ApiError] = &[
    ApiError::InvalidCredentials,
    ApiError::InvalidSession,
    ApiError::InvalidApiKey,
    ApiError::ApiKeyRevoked,
    ApiError::ApiKeyExpired,
    ApiError::OriginNotAllowed,
    ApiError::RateLimited(0),
    ApiError::Unavailable,
];

/// A route of the firm's data API past the credential: the key's scope, its creator's role now,
/// a member's role (steps 4 and 5).
pub const DATA_PERMISSIONS: &[ApiError] = &[
    ApiError::InsufficientScope(domain::Permission::ContactsRead),
    ApiError::CreatorLacksPermission(domain::Permission::ContactsRead),
    ApiError::PermissionDenied,
];

/// A route that reads a JSON body.
pub const JSON_BODY: &[ApiError] = &[
    ApiError::Malformed(String::new()),
    ApiError::PayloadTooLarge,
    ApiError::UnsupportedMediaType,
    ApiError::Validation(Vec::new()),
];

/// A paginated list.
pub const LIST: &[ApiError] = &[ApiError::InvalidQuery(String::new())];

/// Declares a type whose OpenAPI responses are the problem responses of the given groups of
/// [`ApiError`] variants (each a `&[ApiError]`), for a handler's `#[utoipa::path(responses(..))]`.
macro_rules! problems {
    ($(#[$doc:meta])* $name:ident = [$($group:expr),+ $(,)?]) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::openapi::problem_responses(&[$($group),+])
            }
        }
    };
}
pub(crate) use problems;

/// The problem responses of `groups`, one per status: each lists its codes (in the description,
/// and as the enum of `code`), refers to the one `Problem` schema, and names the headers the
/// status carries (`WWW-Authenticate` on 401, `Retry-After` on 503).
pub fn problem_responses(groups: &[&[ApiError]]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&ApiError>> = BTreeMap::new();
    for error in groups.iter().flat_map(|group| group.iter()) {
        let (status, code) = error.status_and_code();
        let errors = by_status.entry(status.as_u16()).or_default();
        if !errors.iter().any(|e| e.status_and_code().1 == code) {
            errors.push(error);
        }
    }
    by_status
        .into_iter()
        .map(|(status, errors)| {
            let codes: Vec<&'static str> = errors.iter().map(|e| e.status_and_code().1).collect();
            let description =
                errors.iter().map(|e| format!("`{}`: {}.", e.status_and_code().1, e.explanation())).collect::<Vec<_>>();
            let schema = AllOfBuilder::new()
                .item(Ref::from_schema_name(Problem::name()))
                .item(ObjectBuilder::new().property("code", domain::schema::string_enum(codes)));
            let mut response = ResponseBuilder::new()
                .description(description.join(" "))
                .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(schema)).build());
            if status == 401 {
                response = response.header(
                    "WWW-Authenticate",
                    HeaderBuilder::new()
                        .schema(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some(["Bearer error=\"invalid_token\""])),
                        )
                        .description(Some("Always `Bearer error=\"invalid_token\"`."))
                        .build(),
                );
            }
            if status == 503 || status == 429 {
                response = response.header(
                    "Retry-After",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$")))
                        .description(Some("Seconds to wait before trying again."))
                        .build(),
                );
            }
            (status.to_string(), response.build().into())
        })
        .collect()
}

/// Every route of the service, each registered with its description: the one list both the
/// served router ([`crate::app::router`]) and the document come from.
pub fn routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .merge(crate::routes::ops::router())
        .merge(crate::routes::members::router())
        .merge(crate::routes::api_keys::router())
        .merge(crate::routes::data::router())
        .merge(crate::routes::audit::router())
        .merge(crate::routes::secret_scanning::router())
}

/// The links from a create to the operations on what it created (OpenAPI `links`, followed by
/// clients and by stateful testing): the operation and status whose body holds the new id, where
/// in the body it is (a JSON pointer), and the operations that take it as their `id`. The data
/// API's records answer with their `id` at the top, where tools find it without a link.
const LINKS: [(&str, &str, &str, &[&str]); 2] = [
    ("invite_member", "201", "/member/id", &["get_member", "change_member_role", "remove_member"]),
    (
        "create_api_key",
        "201",
        "/api_key/id",
        &["get_api_key", "update_api_key_allowed_domains", "update_api_key_rate_limit", "revoke_api_key"],
    ),
];

/// Adds [`LINKS`] to the responses they start from. Written into the JSON: utoipa 5 serializes
/// a link's `operationId` as `operation_id`.
fn add_links(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut) else { return };
    for operation in paths.values_mut().filter_map(serde_json::Value::as_object_mut).flat_map(|item| item.values_mut())
    {
        let id = operation.get("operationId").and_then(serde_json::Value::as_str).map(str::to_owned);
        let Some((_, status, pointer, targets)) = LINKS.iter().find(|(from, ..)| id.as_deref() == Some(*from)) else {
            continue;
        };
        let Some(response) = operation.pointer_mut(&format!("/responses/{status}")) else { continue };
        let links: serde_json::Map<String, serde_json::Value> = targets
            .iter()
            .map(|target| {
                let link = serde_json::json!({
                    "operationId": target,
                    "parameters": { "id": format!("$response.body#{pointer}") },
                });
                ((*target).to_owned(), link)
            })
            .collect();
        if let Some(response) = response.as_object_mut() {
            response.insert("links".into(), serde_json::Value::Object(links));
        }
    }
}

/// The header fields on every answer to a key with a rate limit (`crate::rate_limit`), as
/// `components.headers`: written into the JSON, as utoipa 5 has no header components.
fn rate_limit_header_components() -> serde_json::Value {
    serde_json::json!({
        "RateLimit-Policy": {
            "description": "On every answer to a request whose API key has a rate limit (past the checks of the key \
                itself): the limit as `\"api-key\";q=<limit>;w=<window seconds>` \
                (draft-ietf-httpapi-ratelimit-headers).",
            "schema": { "type": "string", "pattern": "^\"api-key\";q=[0-9]+;w=[0-9]+$" },
            "example": "\"api-key\";q=100;w=60",
        },
        "RateLimit": {
            "description": "On every answer to a request whose API key has a rate limit: what is left of the current \
                window and the seconds until it ends, as `\"api-key\";r=<remaining>;t=<seconds>`.",
            "schema": { "type": "string", "pattern": "^\"api-key\";r=[0-9]+;t=[0-9]+$" },
            "example": "\"api-key\";r=42;t=17",
        },
    })
}

/// Names the rate-limit header fields on every answer of the operations that take an API key,
/// but the 401s (given before a key is found, so before its limit is known).
fn add_rate_limit_headers(document: &mut serde_json::Value) {
    if let Some(components) = document.get_mut("components").and_then(serde_json::Value::as_object_mut) {
        components.insert("headers".into(), rate_limit_header_components());
    }
    let Some(paths) = document.get_mut("paths").and_then(serde_json::Value::as_object_mut) else { return };
    for operation in paths.values_mut().filter_map(serde_json::Value::as_object_mut).flat_map(|item| item.values_mut())
    {
        let takes_a_key = operation
            .get("security")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|schemes| schemes.iter().any(|scheme| scheme.get(API_KEY).is_some()));
        if !takes_a_key {
            continue;
        }
        let Some(responses) = operation.get_mut("responses").and_then(serde_json::Value::as_object_mut) else {
            continue;
        };
        for (_, response) in responses.iter_mut().filter(|(status, _)| status.as_str() != "401") {
            let Some(response) = response.as_object_mut() else { continue };
            let headers = response.entry("headers").or_insert_with(|| serde_json::json!({}));
            if let Some(headers) = headers.as_object_mut() {
                for name in ["RateLimit-Policy", "RateLimit"] {
                    headers.insert(name.into(), serde_json::json!({ "$ref": format!("#/components/headers/{name}") }));
                }
            }
        }
    }
}

/// Builds the whole document.
pub fn document() -> OpenApi {
    let (_, mut openapi) = routes().split_for_parts();
    openapi.info = InfoBuilder::new()
        .title("Esqase API keys")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The Esqase API keys service: firms, members and sessions, the roles-and-permissions grid, \
             API key management, the firm's data API and the audit log. Errors are RFC 9457 problem \
             details (`application/problem+json`) with a stable `code`.",
        ))
        .license(Some(LicenseBuilder::new().name("UNLICENSED").build()))
        .build();
    let components = openapi.components.get_or_insert_with(Default::default);
    components.schemas.insert(Problem::name().into_owned(), Problem::schema());
    let mut problem_schemas = Vec::new();
    <Problem as ToSchema>::schemas(&mut problem_schemas);
    components.schemas.extend(problem_schemas);
    components.add_security_scheme(
        MEMBER_SESSION,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("esqs_…")
                .description(Some("A member's session token (`esqs_…`), from signup, login or an accepted invitation."))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("esq_…")
                .description(Some("An API key (`esq_…`), for a firm's systems."))
                .build(),
        ),
    );
    openapi.tags = Some(
        [
            ("operations", "Liveness, readiness, metrics and this document."),
            ("members", "Firms, members, sessions and the roles-and-permissions grid."),
            ("api_keys", "The API keys page (member session with `api_keys`) and the calling key."),
            ("data", "The firm's data API (API key or member session)."),
            ("audit_log", "The audit log (member session with `audit_log`)."),
            (
                "secret_scanning",
                "Leaked keys reported by a secret scanner (GitHub's partner program), signed with its key.",
            ),
        ]
        .into_iter()
        .map(|(name, description)| TagBuilder::new().name(name).description(Some(description)).build())
        .collect(),
    );
    openapi
}

/// The whole document as JSON: [`document`] with its [`LINKS`] and rate-limit header fields.
pub fn document_value() -> serde_json::Value {
    match serde_json::to_value(document()) {
        Ok(mut value) => {
            add_links(&mut value);
            add_rate_limit_headers(&mut value);
            value
        }
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document did not serialize");
            serde_json::Value::Object(serde_json::Map::new())
        }
    }
}

/// The document as served, built once.
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| match serde_json::to_string_pretty(&document_value()) {
        Ok(json) => json,
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document did not serialize");
            String::from("{}")
        }
    })
}

/// The security requirement "a member session".
pub fn member_session() -> SecurityRequirement {
    SecurityRequirement::new(MEMBER_SESSION, Vec::<String>::new())
}

/// The security requirement "an API key".
pub fn api_key() -> SecurityRequirement {
    SecurityRequirement::new(API_KEY, Vec::<String>::new())
}

/// Every `(method, path)` the document describes, e.g. `("GET", "/v1/api-keys/{id}")`.
pub fn operations(openapi: &OpenApi) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in &openapi.paths.paths {
        let methods = [
            ("GET", item.get.is_some()),
            ("PUT", item.put.is_some()),
            ("POST", item.post.is_some()),
            ("DELETE", item.delete.is_some()),
            ("OPTIONS", item.options.is_some()),
            ("HEAD", item.head.is_some()),
            ("PATCH", item.patch.is_some()),
            ("TRACE", item.trace.is_some()),
        ];
        out.extend(methods.into_iter().filter(|(_, present)| *present).map(|(m, _)| (m.to_owned(), path.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_responses_group_codes_by_status_once_each() {
        let responses = problem_responses(&[SESSION, &[ApiError::PermissionDenied, ApiError::SessionRequired]]);
        let json = serde_json::to_value(&responses).expect("responses serialize");
        let codes = &json["403"]["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert_eq!(codes, &serde_json::json!(["session_required", "cross_site_request", "permission_denied"]));
        assert!(json["401"]["headers"]["WWW-Authenticate"].is_object());
        assert!(json["503"]["headers"]["Retry-After"].is_object());
    }
}
