//! Bodies of POST and PATCH: parsed only after the permission check, against a resource's
//! fields, with every invalid field collected for one 422.

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use axum::extract::{FromRequest, Request};
use domain::names::{single_line, Email, TextError};
use domain::{FieldErrors, FirmId};
use serde_json::{Map, Value};
use sqlx::postgres::PgArguments;
use sqlx::Postgres;
use std::sync::Arc;
use uuid::Uuid;

use super::resources::*;

/// The JSON object of a POST or PATCH (415, 413 and 400 as for every JSON body).
pub(super) async fn read_body(state: &Arc<AppState>, body: Request) -> ApiResult<Map<String, Value>> {
    let JsonBody(body) = JsonBody::<Map<String, Value>>::from_request(body, state).await?;
    Ok(body)
}

/// Whether a body creates a record or changes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    /// Every field is set: an absent or `null` field takes its default (or is required).
    Create,
    /// Only the fields present are set; `null` clears an optional one.
    Update,
}

/// A column's new value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Cell {
    Text(Option<String>),
    Id(Option<Uuid>),
}

/// The columns a body sets, in field order.
pub(super) type Changes = Vec<(&'static Field, Cell)>;

/// Reads a body against `r`'s fields: an unknown field or a value that is not a string or null
/// is a 400 at once; invalid values are collected as field errors, for one 422 with every field.
pub(super) fn parse_body(r: &Resource, mut body: Map<String, Value>, mode: Mode) -> ApiResult<(Changes, FieldErrors)> {
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
pub(super) fn parse_value(kind: Kind, raw: Option<&str>, mode: Mode) -> Result<Cell, String> {
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

pub(super) fn no_such(noun: &str) -> String {
    format!("must be the id of one of your firm's {noun}s")
}

/// Checks every reference a body sets against the caller's firm, inside the writing
/// transaction: `FOR KEY SHARE` keeps each referenced record from being deleted before commit.
/// Then refuses the body with every field error at once, in field order.
pub(super) async fn check(
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

pub(super) fn bind_all(
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
