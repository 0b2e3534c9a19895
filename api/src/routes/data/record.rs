//! A record as the API shows it, read from the row every statement returns.

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::resources::*;

/// The columns every statement returns.
pub(super) fn columns(r: &Resource) -> String {
    let fields = r.fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
    format!("id, {fields}, created_at, updated_at, created_by_type, created_by_id")
}

/// A record as the API shows it: `id`, its fields, `created_at`, `updated_at`, `created_by`.
pub(super) struct Record {
    pub(super) id: Uuid,
    pub(super) body: Value,
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.body.serialize(s)
    }
}

pub(super) fn record(r: &Resource, row: &PgRow) -> Result<Record, sqlx::Error> {
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
