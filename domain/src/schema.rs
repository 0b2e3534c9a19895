//! OpenAPI schemas for the domain types that serialize by hand, so that the document says
//! exactly what the JSON holds, and the text rules shared by every request schema.
//!
//! The patterns are written for both ECMA-262 (JSON Schema) and Python's `re` (the tools that
//! generate requests from the document): `\u` escapes and character classes only.

use crate::permissions::{Permission, PermissionSet, Scopes};
use crate::rate_limit::{RateLimit, MAX_LIMIT, MAX_WINDOW_SECONDS};
use crate::AllowedDomains;
use std::borrow::Cow;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// The characters `char::is_control` refuses, as a regex class body.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// The rule of every short text people type ([`crate::names::single_line`]): at most `max`
/// characters, no control character, and something besides white space.
pub fn single_line(max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("^[^{CONTROL}]*[^\\s{CONTROL}][^{CONTROL}]*$")))
}

/// An email address as [`crate::names::Email`] takes it: `local@domain.tld`, no white space or
/// control character, a domain with a dot that neither starts nor ends it, at most 254 bytes.
pub fn email() -> ObjectBuilder {
    let c = format!("\\s@{CONTROL}");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(254))
        .pattern(Some(format!("^[^{c}]+@[^{c}.][^{c}]*\\.[^{c}]*[^{c}.]$")))
        .examples(["olivia@acme.test"])
}

/// An instant as the contract writes it: RFC 3339, UTC, milliseconds, `Z`.
pub fn time() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .examples(["2026-11-27T15:45:18.123Z"])
}

/// A string that is one of `values`.
pub fn string_enum<I: IntoIterator<Item = &'static str>>(values: I) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values))
}

/// A UUID as a string.
pub fn uuid() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

/// The wire names of the data permissions: the scopes a key may hold.
pub fn scope_names() -> Vec<&'static str> {
    Permission::ALL.into_iter().filter(|p| p.is_data()).map(Permission::as_str).collect()
}

/// One scope (a data permission) as a string.
pub fn scope() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(scope_names()))
}

impl PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("One thing a role may do; a data permission is also a key's scope."))
            .enum_values(Some(Permission::ALL.map(Permission::as_str)))
            .into()
    }
}

impl ToSchema for Permission {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Permission")
    }
}

impl PartialSchema for PermissionSet {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(Permission::schema())
            .unique_items(true)
            .description(Some("Permissions, in the contract's order."))
            .into()
    }
}

impl ToSchema for PermissionSet {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PermissionSet")
    }
}

impl PartialSchema for Scopes {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(scope())
            .min_items(Some(1))
            .unique_items(true)
            .description(Some("A key's scopes: data permissions, in the contract's order."))
            .examples([serde_json::json!(["contacts:read", "contacts:write"])])
            .into()
    }
}

impl ToSchema for Scopes {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Scopes")
    }
}

/// Scopes as a request sends them: at least one, each a data permission; duplicates are folded.
pub fn scopes_request() -> ArrayBuilder {
    ArrayBuilder::new().items(scope()).min_items(Some(1)).examples([serde_json::json!(["contacts:read"])])
}

/// Permissions as a request sends them; duplicates are folded.
pub fn permissions_request() -> ArrayBuilder {
    ArrayBuilder::new().items(Permission::schema())
}

/// A bearer token of a person (`esqs_…` or `esqi_…`): the prefix and 32 base62 characters.
pub fn bearer_token(prefix: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(format!("^{prefix}[0-9A-Za-z]{{32}}$")))
}

impl PartialSchema for AllowedDomains {
    fn schema() -> RefOr<Schema> {
        ArrayBuilder::new()
            .items(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(253)))
            .max_items(Some(100))
            .unique_items(true)
            .description(Some(
                "Normalized entries (lower case, punycode): hostnames, `*.` wildcards, `localhost` or IP \
                 addresses. Empty means any domain.",
            ))
            .examples([serde_json::json!(["app.example.com", "*.example.com"])])
            .into()
    }
}

impl ToSchema for AllowedDomains {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("AllowedDomains")
    }
}

impl PartialSchema for RateLimit {
    fn schema() -> RefOr<Schema> {
        let whole = |max: u32, description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(max))
                .description(Some(description.to_owned()))
        };
        ObjectBuilder::new()
            .property("limit", whole(MAX_LIMIT, "Requests allowed in each window, across every node."))
            .required("limit")
            .property(
                "window_seconds",
                whole(
                    MAX_WINDOW_SECONDS,
                    "The window's length in seconds. Windows are fixed and aligned on the Unix epoch (a \
                     60-second window runs from one whole minute to the next).",
                ),
            )
            .required("window_seconds")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
            .description(Some("At most `limit` requests in each window of `window_seconds`."))
            .examples([serde_json::json!({"limit": 100, "window_seconds": 60})])
            .into()
    }
}

impl ToSchema for RateLimit {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RateLimit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_schemas_list_every_wire_name() {
        let json = serde_json::to_value(Permission::schema()).expect("a schema serializes");
        assert_eq!(json["enum"].as_array().map(Vec::len), Some(Permission::ALL.len()));
        let scopes = serde_json::to_value(Scopes::schema()).expect("a schema serializes");
        assert_eq!(scopes["items"]["enum"].as_array().map(Vec::len), Some(10));
    }
}
