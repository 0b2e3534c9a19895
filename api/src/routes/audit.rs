//! The audit log, for members whose role holds `audit_log`: list (filtered, newest first),
//! verify the firm's hash chain, export the whole filtered log as CSV or JSON Lines.

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ListQuery, PageParams, Permitted};
use crate::openapi::{problems, LIST, SESSION};
use crate::response::json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use commands::auth::ReadsAuditLog;
use domain::FirmId;
use projections::audit::{self, AuditEntry, AuditFilter, Verification};
use projections::page::Page;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// The routes of this area.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(verify)).routes(routes!(export))
}

/// The filters of the list and the export, as documented (read by [`parse_filter`]); they
/// combine.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilters {
    /// Only this action.
    #[param(schema_with = audit::action_schema)]
    pub action: Option<String>,
    /// Only entries about this key.
    pub api_key_id: Option<Uuid>,
    /// Only entries this member caused.
    pub actor_id: Option<Uuid>,
    /// Only entries at or after this instant (RFC 3339).
    #[param(schema_with = domain::schema::time)]
    pub since: Option<String>,
    /// Only entries strictly before this instant (RFC 3339).
    #[param(schema_with = domain::schema::time)]
    pub until: Option<String>,
}

problems!(
    /// What the list and the export can answer besides success.
    ListProblems = [SESSION, LIST, &[ApiError::PermissionDenied]]
);
problems!(
    /// What verifying the chain can answer besides success.
    VerifyProblems = [SESSION, &[ApiError::PermissionDenied]]
);

/// The filters both the list and the export take.
pub(crate) const FILTERS: [&str; 5] = ["action", "api_key_id", "actor_id", "since", "until"];

fn uuid_filter(filters: &HashMap<String, String>, name: &str) -> Result<Option<Uuid>, ApiError> {
    filters
        .get(name)
        .map(|raw| Uuid::try_parse(raw.trim()).map_err(|_| ApiError::InvalidQuery(format!("{name} must be a UUID"))))
        .transpose()
}

fn time_filter(filters: &HashMap<String, String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    filters
        .get(name)
        .map(|raw| {
            DateTime::parse_from_rfc3339(raw.trim()).map(|t| t.with_timezone(&Utc)).map_err(|_| {
                ApiError::InvalidQuery(format!("{name} must be an RFC 3339 time, e.g. 2026-11-27T15:45:18.123Z"))
            })
        })
        .transpose()
}

pub(crate) fn parse_filter(filters: &HashMap<String, String>) -> Result<AuditFilter, ApiError> {
    let action = match filters.get("action") {
        None => None,
        Some(raw) if audit::ACTIONS.contains(&raw.as_str()) => Some(raw.clone()),
        Some(_) => {
            return Err(ApiError::InvalidQuery(format!("action must be one of: {}", audit::ACTIONS.join(", "))));
        }
    };
    Ok(AuditFilter {
        action,
        api_key_id: uuid_filter(filters, "api_key_id")?,
        actor_id: uuid_filter(filters, "actor_id")?,
        since: time_filter(filters, "since")?,
        until: time_filter(filters, "until")?,
    })
}

/// The firm's audit log, newest first.
#[utoipa::path(
    get,
    path = "/v1/audit-log",
    operation_id = "list_audit_log",
    tag = "audit_log",
    security(("member_session" = [])),
    params(PageParams, AuditFilters),
    responses((status = 200, description = "A page of entries.", body = Page<AuditEntry>), ListProblems)
)]
async fn list(
    State(state): State<Arc<AppState>>,
    me: Permitted<ReadsAuditLog>,
    query: ListQuery,
) -> ApiResult<Response> {
    query.only(&FILTERS)?;
    let filter = parse_filter(&query.filters)?;
    let page = audit::entries(state.pool(), me.firm_id, &filter, query.page).await?;
    Ok(json(StatusCode::OK, &page))
}

/// Walks the firm's hash chain and names the first broken entry, if any.
#[utoipa::path(
    get,
    path = "/v1/audit-log/verify",
    operation_id = "verify_audit_log",
    tag = "audit_log",
    security(("member_session" = [])),
    responses((status = 200, description = "What the walk found.", body = Verification), VerifyProblems)
)]
async fn verify(State(state): State<Arc<AppState>>, me: Permitted<ReadsAuditLog>) -> ApiResult<Response> {
    let verification = audit::verify(state.pool(), me.firm_id).await?;
    Ok(json(StatusCode::OK, &verification))
}

/// How an export is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
enum Format {
    Csv,
    Jsonl,
}

const CSV_HEADER: &str = "id,sequence,occurred_at,action,actor_type,actor_id,actor_name,target_type,target_id,\
                          target_name,details,hash,previous_hash\r\n";

/// One CSV field (RFC 4180): quoted, with quotes doubled, when it holds a comma, a quote or a
/// line break; as itself otherwise.
///
/// A value a spreadsheet would run as a formula (one that begins with `=`, `+`, `-`, `@`, a tab
/// or a carriage return, such as a key named `=HYPERLINK(…)`) is neutralised the OWASP way: a
/// leading `'` and quoted. The CSV is for people; the JSON lines export keeps every value exact,
/// for recomputing hashes.
fn csv_field(out: &mut String, value: &str) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula || value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        if formula {
            out.push('\'');
        }
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

fn csv_row(out: &mut String, e: &AuditEntry) {
    let fields = [
        e.id.to_string(),
        e.sequence.to_string(),
        domain::format_time(&e.occurred_at),
        e.action.clone(),
        e.actor.kind.clone(),
        e.actor.id.map(|id| id.to_string()).unwrap_or_default(),
        e.actor.name.clone().unwrap_or_default(),
        e.target.kind.clone(),
        e.target.id.clone(),
        e.target.name.clone().unwrap_or_default(),
        e.details.to_string(),
        e.hash.clone(),
        e.previous_hash.clone(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, field);
    }
    out.push_str("\r\n");
}

fn render(format: Format, entries: &[AuditEntry]) -> Result<Bytes, serde_json::Error> {
    let mut out = String::new();
    for entry in entries {
        match format {
            Format::Csv => csv_row(&mut out, entry),
            Format::Jsonl => {
                out.push_str(&serde_json::to_string(entry)?);
                out.push('\n');
            }
        }
    }
    Ok(Bytes::from(out))
}

/// Where an export stream stands between batches.
struct Export {
    pool: PgPool,
    firm: FirmId,
    filter: AuditFilter,
    format: Format,
    /// The last sequence written.
    after: i64,
    /// The newest entry when the export began: the export is that prefix of the chain.
    up_to: i64,
    header_sent: bool,
}

/// Why an export stopped part way (the client sees a cut-off body).
#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

async fn next_chunk(mut export: Export) -> Result<Option<(Bytes, Export)>, ExportError> {
    if !export.header_sent {
        export.header_sent = true;
        if export.format == Format::Csv {
            return Ok(Some((Bytes::from_static(CSV_HEADER.as_bytes()), export)));
        }
    }
    if export.after >= export.up_to {
        return Ok(None);
    }
    let entries =
        audit::batch(&export.pool, export.firm, &export.filter, export.after, export.up_to, audit::BATCH).await?;
    let Some(last) = entries.last() else { return Ok(None) };
    export.after = last.sequence;
    Ok(Some((render(export.format, &entries)?, export)))
}

/// Streams the whole filtered log, oldest first, in batches: one short query per batch, so
/// neither the process nor a database connection holds the log while a client downloads it.
#[utoipa::path(
    get,
    path = "/v1/audit-log/export",
    operation_id = "export_audit_log",
    tag = "audit_log",
    security(("member_session" = [])),
    params(("format" = inline(Format), Query, description = "`csv` or `jsonl`."), AuditFilters),
    responses(
        (status = 200,
            description = "The whole filtered log, oldest first: CSV with a header row, or one JSON entry per line.",
            content((String = "text/csv; charset=utf-8"), (String = "application/x-ndjson")),
            headers(
                ("Cache-Control" = String, description = "`no-store`."),
                ("Content-Disposition" = String,
                    description = "`attachment; filename=\"audit-log-{firm}.{csv|jsonl}\"`."),
                ("Esqase-Audit-Chain-Head" = String,
                    description = "`sequence={n}; hash={hex}`: the firm's newest entry when the export began, as its \
                                   chain head (kept apart from the entries) records it. A whole export that ends \
                                   before it has lost its newest entries."),
            )),
        ListProblems,
    )
)]
async fn export(State(state): State<Arc<AppState>>, me: Permitted<ReadsAuditLog>, uri: Uri) -> ApiResult<Response> {
    let pairs = axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|_| ApiError::InvalidQuery("the query string is not valid".into()))?;
    let mut filters: HashMap<String, String> = HashMap::new();
    for (key, value) in pairs.0 {
        if !FILTERS.contains(&key.as_str()) && key != "format" {
            return Err(ApiError::InvalidQuery(format!("unknown query parameter '{key}'")));
        }
        if filters.insert(key.clone(), value).is_some() {
            return Err(ApiError::InvalidQuery(format!("'{key}' is given more than once")));
        }
    }
    let format = match filters.get("format").map(String::as_str) {
        Some("csv") => Format::Csv,
        Some("jsonl") => Format::Jsonl,
        _ => return Err(ApiError::InvalidQuery("format must be csv or jsonl".into())),
    };
    let filter = parse_filter(&filters)?;
    // The head first, so the file's end can be checked against it: entries appended meanwhile
    // only lie beyond it.
    let head = audit::head(state.pool(), me.firm_id).await?;
    let up_to = audit::last_sequence(state.pool(), me.firm_id).await?;
    let start =
        Export { pool: state.pool().clone(), firm: me.firm_id, filter, format, after: 0, up_to, header_sent: false };
    let firm = me.firm_id;
    let stream = futures::stream::try_unfold(start, next_chunk);
    let stream = futures::TryStreamExt::inspect_err(stream, move |error| {
        tracing::error!(%error, %firm, "audit log export stopped part way");
    });
    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Jsonl => ("application/x-ndjson", "jsonl"),
    };
    let mut response = (StatusCode::OK, Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(chain_head) = HeaderValue::from_str(&format!("sequence={}; hash={}", head.sequence, head.hash)) {
        headers.insert(HeaderName::from_static("esqase-audit-chain-head"), chain_head);
    }
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"audit-log-{}.{extension}\"", me.firm_id))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        let mut out = String::new();
        for (i, value) in ["plain", "a,b", "say \"hi\"", "two\nlines", ""].iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_field(&mut out, value);
        }
        assert_eq!(out, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",");
    }

    #[test]
    fn a_value_a_spreadsheet_would_run_is_neutralised() {
        for (value, written) in [
            ("=HYPERLINK(\"https://evil.test\",\"Open\")", "\"'=HYPERLINK(\"\"https://evil.test\"\",\"\"Open\"\")\""),
            ("+1", "\"'+1\""),
            ("-2+3", "\"'-2+3\""),
            ("@SUM(A1)", "\"'@SUM(A1)\""),
            ("\tcmd", "\"'\tcmd\""),
            ("\rcmd", "\"'\rcmd\""),
            ("Zapier = sync", "Zapier = sync"),
        ] {
            let mut out = String::new();
            csv_field(&mut out, value);
            assert_eq!(out, written, "{value:?}");
        }
    }

    #[test]
    fn filters_refuse_bad_values() {
        let map = |k: &str, v: &str| HashMap::from([(k.to_owned(), v.to_owned())]);
        assert!(parse_filter(&map("action", "api_key.created")).is_ok());
        assert!(parse_filter(&map("action", "api_key.used")).is_err());
        assert!(parse_filter(&map("api_key_id", "nope")).is_err());
        assert!(parse_filter(&map("since", "2026-11-27")).is_err());
        assert!(parse_filter(&map("until", "2026-11-27T10:00:00+01:00")).is_ok_and(|f| f.until.is_some()));
    }
}
