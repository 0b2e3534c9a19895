//! The Postgres read models (firms, role permissions, members, API keys) as a fold of the log.
//!
//! Commands apply this fold inside their own transaction, so a response already reflects its
//! events; `esqase projections rebuild read_models` replays it from the first event, a chunk of
//! the log at a time. Both run the same fold ([`Rows`]): load the rows the events change, fold
//! the events into them in memory ([`Rows::fold`], the one statement of what each event does),
//! and write each changed row once, whole, with one multi-row statement per table. Every step
//! is idempotent: a row carries its stream's version, an event at or below it is skipped, and a
//! write never replaces a row with an older version of it.

use commands::RecordedEvent;
use domain::{ApiKeyId, Event, FirmId, KeyHash, MemberId, Role, StreamKind, Timestamp};
use sqlx::{PgConnection, Postgres};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// The name under which `projections rebuild` knows this fold.
pub const NAME: &str = "read_models";

/// The tables this fold owns, each after the tables it references.
pub const TABLES: &[&str] = &["firms", "role_permissions", "members", "api_keys"];

/// The read models, as the command side's inline fold.
pub struct PgReadModels;

#[async_trait::async_trait]
impl commands::ReadModels for PgReadModels {
    async fn apply(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        apply_all(conn, events).await?;
        // The audit log is folded in the same transaction (its own tables, its own module; it
        // reads names from the log, not from these tables, so the order between them is free).
        for event in events {
            crate::audit::apply(conn, event).await?;
        }
        Ok(())
    }

    async fn keys_past_expiry(
        &self,
        conn: &mut PgConnection,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
        crate::views::keys_past_expiry(conn, now, limit).await
    }

    async fn keys_past_grace(
        &self,
        conn: &mut PgConnection,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
        crate::views::keys_past_grace(conn, now, limit).await
    }

    async fn keys_with_hashes(
        &self,
        conn: &mut PgConnection,
        hashes: &[KeyHash],
    ) -> Result<Vec<(KeyHash, FirmId, ApiKeyId)>, sqlx::Error> {
        crate::views::keys_with_hashes(conn, hashes).await
    }

    async fn active_keys_created_by(
        &self,
        conn: &mut PgConnection,
        member: MemberId,
        now: Timestamp,
    ) -> Result<Vec<ApiKeyId>, sqlx::Error> {
        crate::views::active_keys_created_by(conn, member, now).await
    }
}

/// Folds `events` (in feed order) into the read models: one load per table for the rows they
/// change, then one write per table for the rows that changed.
pub async fn apply_all(conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
    let mut rows = Rows::default();
    rows.apply(conn, events).await?;
    rows.write(conn).await
}

/// Folds one event into the read models.
pub async fn apply(conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), sqlx::Error> {
    apply_all(conn, std::slice::from_ref(e)).await
}

/// Read-model rows held in memory while events are folded into them, until [`Rows::write`].
///
/// A command folds its own few events through it; a rebuild folds a whole chunk of the log, so
/// that a key used a thousand times in the chunk is written once.
#[derive(Default)]
pub struct Rows {
    firms: HashMap<Uuid, Held<FirmRow>>,
    members: HashMap<Uuid, Held<MemberRow>>,
    keys: HashMap<Uuid, Held<KeyRow>>,
}

/// A row and whether the fold changed it (only changed rows are written back).
struct Held<R> {
    row: R,
    changed: bool,
}

impl<R> Held<R> {
    fn new(row: R) -> Held<R> {
        Held { row, changed: true }
    }
}

/// A row that carries its stream's version.
trait Versioned {
    fn version(&mut self) -> &mut i32;
}

/// The row of `e`'s stream if `e` is news to it: the row then takes the event's version and
/// counts as changed. `None` for a row that is not there (an event with nothing to change) or
/// that has folded this event already.
fn advance<'a, R: Versioned>(rows: &'a mut HashMap<Uuid, Held<R>>, e: &RecordedEvent) -> Option<&'a mut R> {
    let held = rows.get_mut(&e.stream_id)?;
    let version = held.row.version();
    if *version >= e.version {
        return None;
    }
    *version = e.version;
    held.changed = true;
    Some(&mut held.row)
}

impl Rows {
    /// Loads the rows `events` change that are not held yet, then folds the events.
    pub async fn apply(&mut self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        self.load_for(conn, events).await?;
        for e in events {
            self.fold(e);
        }
        Ok(())
    }

    /// What each event does to its stream's row: the one statement of the read models' rules.
    ///
    /// A creation makes the row unless it is there already; any other event changes a row it
    /// is news to and nothing else (see [`advance`]).
    pub fn fold(&mut self, e: &RecordedEvent) {
        let at = e.metadata.occurred_at;
        let firm = e.metadata.firm_id.as_uuid();
        match &e.event {
            Event::FirmCreated { name, time_zone, grid } => {
                self.firms.entry(e.stream_id).or_insert_with(|| {
                    let permissions = [Role::Administrator, Role::Attorney, Role::Staff]
                        .into_iter()
                        .map(|role| (role.as_str().to_owned(), names(grid.permissions(role).names())))
                        .collect();
                    Held::new(FirmRow {
                        id: e.stream_id,
                        name: name.as_str().to_owned(),
                        time_zone: time_zone.name().to_owned(),
                        created_at: at,
                        version: e.version,
                        permissions,
                    })
                });
            }
            Event::RolePermissionsChanged { role, after, .. } => {
                if let Some(row) = advance(&mut self.firms, e) {
                    row.permissions.insert(role.as_str().to_owned(), names(after.names()));
                }
            }
            Event::MemberRegistered { name, email, role } | Event::MemberInvited { name, email, role } => {
                let joined = matches!(e.event, Event::MemberRegistered { .. });
                self.members.entry(e.stream_id).or_insert_with(|| {
                    Held::new(MemberRow {
                        id: e.stream_id,
                        firm_id: firm,
                        name: name.as_str().to_owned(),
                        email: email.as_str().to_owned(),
                        role: role.as_str().to_owned(),
                        status: "active".to_owned(),
                        joined,
                        created_at: at,
                        version: e.version,
                    })
                });
            }
            Event::InvitationAccepted {} => {
                if let Some(row) = advance(&mut self.members, e) {
                    row.joined = true;
                }
            }
            // Only the audit log shows it; the member's row takes its version.
            Event::MemberSignInThrottled { .. } => {
                advance(&mut self.members, e);
            }
            Event::MemberRoleChanged { after, .. } => {
                if let Some(row) = advance(&mut self.members, e) {
                    row.role = after.as_str().to_owned();
                }
            }
            Event::MemberRemoved {} => {
                if let Some(row) = advance(&mut self.members, e) {
                    row.status = "removed".to_owned();
                }
            }
            Event::ApiKeyCreated {
                name,
                key_hash,
                preview,
                scopes,
                expires_at,
                allowed_domains,
                created_by,
                replaces,
                rate_limit,
            } => {
                self.keys.entry(e.stream_id).or_insert_with(|| {
                    Held::new(KeyRow {
                        id: e.stream_id,
                        firm_id: firm,
                        name: name.as_str().to_owned(),
                        key_hash: key_hash.as_bytes().to_vec(),
                        preview: preview.as_str().to_owned(),
                        scopes: names(scopes.as_set().names()),
                        allowed_domains: allowed_domains.to_strings(),
                        lifecycle: "active".to_owned(),
                        expires_at: *expires_at,
                        last_used_at: None,
                        created_at: at,
                        created_by: created_by.as_uuid(),
                        revoked_at: None,
                        revoked_by: None,
                        revoke_reason: None,
                        version: e.version,
                        replaced_by: None,
                        grace_ends_at: None,
                        replaces: replaces.map(|id| id.as_uuid()),
                        rate_limit: rate_limit.map(|l| l.limit() as i32),
                        rate_limit_window_seconds: rate_limit.map(|l| l.window_seconds() as i32),
                    })
                });
            }
            Event::ApiKeyRateLimitUpdated { after, .. } => {
                if let Some(row) = advance(&mut self.keys, e) {
                    row.rate_limit = after.map(|l| l.limit() as i32);
                    row.rate_limit_window_seconds = after.map(|l| l.window_seconds() as i32);
                }
            }
            Event::ApiKeyRolled { replaced_by, grace_ends_at, .. } => {
                if let Some(row) = advance(&mut self.keys, e) {
                    row.replaced_by = Some(replaced_by.as_uuid());
                    row.grace_ends_at = Some(*grace_ends_at);
                }
            }
            Event::ApiKeyDomainsUpdated { after, .. } => {
                if let Some(row) = advance(&mut self.keys, e) {
                    row.allowed_domains = after.to_strings();
                }
            }
            Event::ApiKeyRevoked { reason, .. } => {
                if let Some(row) = advance(&mut self.keys, e) {
                    row.lifecycle = "revoked".to_owned();
                    // A rolled key stopped at its grace end, not when the sweeper recorded it.
                    row.revoked_at = Some(match reason {
                        domain::events::RevocationReason::Rolled => row.grace_ends_at.unwrap_or(at),
                        _ => at,
                    });
                    row.revoked_by = reason.revoked_by(e.member_actor()).map(|m| m.as_uuid());
                    row.revoke_reason = Some(reason.as_str().to_owned());
                }
            }
            Event::ApiKeyUsed { last_used_at, .. } => {
                if let Some(row) = advance(&mut self.keys, e) {
                    // Uses are flushed per node: a later event may carry an earlier use.
                    row.last_used_at = row.last_used_at.max(Some(*last_used_at));
                }
            }
            Event::ApiKeyExpired {} => {
                if let Some(row) = advance(&mut self.keys, e) {
                    row.lifecycle = "expired".to_owned();
                }
            }
        }
    }

    /// Loads the rows of the streams in `events` that are not held yet, except streams whose
    /// first event here creates them (version 1: nothing can be in the table before it, or if
    /// it is, because this event was folded before, the write leaves that row alone).
    async fn load_for(&mut self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        let mut seen = HashSet::new();
        let (mut firms, mut members, mut keys) = (Vec::new(), Vec::new(), Vec::new());
        for e in events {
            if !seen.insert(e.stream_id) || e.version == 1 {
                continue;
            }
            let (held, wanted) = match e.stream_kind {
                StreamKind::Firm => (self.firms.contains_key(&e.stream_id), &mut firms),
                StreamKind::Member => (self.members.contains_key(&e.stream_id), &mut members),
                StreamKind::ApiKey => (self.keys.contains_key(&e.stream_id), &mut keys),
            };
            if !held {
                wanted.push(e.stream_id);
            }
        }
        if !firms.is_empty() {
            let mut loaded: HashMap<Uuid, FirmRow> = load::<FirmRow>(conn, "firms", FIRM_COLUMNS, &firms)
                .await?
                .into_iter()
                .map(|row| (row.id, row))
                .collect();
            let grids: Vec<(Uuid, String, Vec<String>)> =
                sqlx::query_as("SELECT firm_id, role, permissions FROM role_permissions WHERE firm_id = ANY($1)")
                    .bind(&firms)
                    .fetch_all(&mut *conn)
                    .await?;
            for (firm, role, permissions) in grids {
                if let Some(row) = loaded.get_mut(&firm) {
                    row.permissions.insert(role, permissions);
                }
            }
            self.firms.extend(loaded.into_iter().map(|(id, row)| (id, Held { row, changed: false })));
        }
        if !members.is_empty() {
            let loaded = load::<MemberRow>(conn, "members", MEMBER_COLUMNS, &members).await?;
            self.members.extend(loaded.into_iter().map(|row| (row.id, Held { row, changed: false })));
        }
        if !keys.is_empty() {
            let loaded = load::<KeyRow>(conn, "api_keys", KEY_COLUMNS, &keys).await?;
            self.keys.extend(loaded.into_iter().map(|row| (row.id, Held { row, changed: false })));
        }
        Ok(())
    }

    /// Writes every changed row (a table's parents before it) and forgets them all.
    pub async fn write(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        let firms = changed(&mut self.firms);
        let members = changed(&mut self.members);
        let keys = changed(&mut self.keys);
        if !firms.is_empty() {
            write_firms(conn, &firms).await?;
        }
        if !members.is_empty() {
            write_members(conn, &members).await?;
        }
        if !keys.is_empty() {
            write_keys(conn, &keys).await?;
        }
        Ok(())
    }
}

fn names(names: Vec<&str>) -> Vec<String> {
    names.into_iter().map(str::to_owned).collect()
}

/// Takes the changed rows out, dropping the rest.
fn changed<R>(rows: &mut HashMap<Uuid, Held<R>>) -> Vec<R> {
    rows.drain().filter(|(_, held)| held.changed).map(|(_, held)| held.row).collect()
}

// Each table's row: the struct, its column list (the struct's fields, which `load` reads by
// name) and its `write_*` (one array per column, in the list's order). A new column is a field,
// a name in the list and an array in the write.

/// `firms`, with the firm's `role_permissions` rows.
#[derive(sqlx::FromRow)]
struct FirmRow {
    id: Uuid,
    name: String,
    time_zone: String,
    created_at: Timestamp,
    version: i32,
    /// Role name to permission names (`role_permissions`).
    #[sqlx(skip)]
    permissions: BTreeMap<String, Vec<String>>,
}

const FIRM_COLUMNS: &[(&str, &str)] =
    &[("id", "uuid"), ("name", "text"), ("time_zone", "text"), ("created_at", "timestamptz"), ("version", "int4")];

#[derive(sqlx::FromRow)]
struct MemberRow {
    id: Uuid,
    firm_id: Uuid,
    name: String,
    email: String,
    role: String,
    status: String,
    joined: bool,
    created_at: Timestamp,
    version: i32,
}

const MEMBER_COLUMNS: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("firm_id", "uuid"),
    ("name", "text"),
    ("email", "text"),
    ("role", "text"),
    ("status", "text"),
    ("joined", "bool"),
    ("created_at", "timestamptz"),
    ("version", "int4"),
];

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    firm_id: Uuid,
    name: String,
    key_hash: Vec<u8>,
    preview: String,
    scopes: Vec<String>,
    allowed_domains: Vec<String>,
    lifecycle: String,
    expires_at: Option<Timestamp>,
    last_used_at: Option<Timestamp>,
    created_at: Timestamp,
    created_by: Uuid,
    revoked_at: Option<Timestamp>,
    revoked_by: Option<Uuid>,
    revoke_reason: Option<String>,
    version: i32,
    replaced_by: Option<Uuid>,
    grace_ends_at: Option<Timestamp>,
    replaces: Option<Uuid>,
    rate_limit: Option<i32>,
    rate_limit_window_seconds: Option<i32>,
}

const KEY_COLUMNS: &[(&str, &str)] = &[
    ("id", "uuid"),
    ("firm_id", "uuid"),
    ("name", "text"),
    ("key_hash", "bytea"),
    ("preview", "text"),
    ("scopes", "text[]"),
    ("allowed_domains", "text[]"),
    ("lifecycle", "text"),
    ("expires_at", "timestamptz"),
    ("last_used_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("created_by", "uuid"),
    ("revoked_at", "timestamptz"),
    ("revoked_by", "uuid"),
    ("revoke_reason", "text"),
    ("version", "int4"),
    ("replaced_by", "uuid"),
    ("grace_ends_at", "timestamptz"),
    ("replaces", "uuid"),
    ("rate_limit", "int4"),
    ("rate_limit_window_seconds", "int4"),
];

impl Versioned for FirmRow {
    fn version(&mut self) -> &mut i32 {
        &mut self.version
    }
}

impl Versioned for MemberRow {
    fn version(&mut self) -> &mut i32 {
        &mut self.version
    }
}

impl Versioned for KeyRow {
    fn version(&mut self) -> &mut i32 {
        &mut self.version
    }
}

/// The rows of `table` whose `id` is one of `ids`.
async fn load<R>(
    conn: &mut PgConnection,
    table: &str,
    columns: &[(&str, &str)],
    ids: &[Uuid],
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let list = columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    sqlx::query_as(&format!("SELECT {list} FROM {table} WHERE id = ANY($1)")).bind(ids).fetch_all(conn).await
}

/// `INSERT INTO table (…) SELECT … FROM unnest($1::type[], …)`, one array per column; a row
/// already there is replaced only by a newer version of it.
///
/// A `text[]` column travels as one array literal per row (unnest would flatten an array of
/// arrays), cast back in the `SELECT`.
fn upsert(table: &str, columns: &[(&str, &str)], returning: &str) -> String {
    let list = columns.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ");
    let arrays = columns
        .iter()
        .enumerate()
        .map(
            |(i, (_, kind))| {
                if kind.ends_with("[]") {
                    format!("${}::text[]", i + 1)
                } else {
                    format!("${}::{kind}[]", i + 1)
                }
            },
        )
        .collect::<Vec<_>>()
        .join(", ");
    let values = columns
        .iter()
        .map(|(name, kind)| if kind.ends_with("[]") { format!("u.{name}::{kind}") } else { format!("u.{name}") })
        .collect::<Vec<_>>()
        .join(", ");
    let set =
        columns.iter().skip(1).map(|(name, _)| format!("{name} = excluded.{name}")).collect::<Vec<_>>().join(", ");
    format!(
        "INSERT INTO {table} ({list}) SELECT {values} FROM unnest({arrays}) AS u({list})
         ON CONFLICT (id) DO UPDATE SET {set} WHERE {table}.version < excluded.version {returning}"
    )
}

/// An array literal Postgres reads back as the same `text[]`: every element quoted, with `"`
/// and `\` escaped.
fn array_literal(items: &[String]) -> String {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

type Query<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn column<'q, T, U>(query: Query<'q>, rows: &[T], value: impl Fn(&T) -> U) -> Query<'q>
where
    U: 'q,
    Vec<U>: sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send,
{
    query.bind(rows.iter().map(value).collect::<Vec<_>>())
}

async fn write_firms(conn: &mut PgConnection, rows: &[FirmRow]) -> Result<(), sqlx::Error> {
    let sql = upsert("firms", FIRM_COLUMNS, "RETURNING id");
    let query = sqlx::query_scalar::<_, Uuid>(&sql)
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.time_zone.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>());
    // The grid changes with the firm's version: only the firms written here get theirs.
    let written: HashSet<Uuid> = query.fetch_all(&mut *conn).await?.into_iter().collect();
    let (mut firm_ids, mut roles, mut permissions) = (Vec::new(), Vec::new(), Vec::new());
    for row in rows.iter().filter(|r| written.contains(&r.id)) {
        for (role, names) in &row.permissions {
            firm_ids.push(row.id);
            roles.push(role.clone());
            permissions.push(array_literal(names));
        }
    }
    if firm_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO role_permissions (firm_id, role, permissions)
         SELECT u.firm_id, u.role, u.permissions::text[] FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(firm_id, role, permissions)
         ON CONFLICT (firm_id, role) DO UPDATE SET permissions = excluded.permissions",
    )
    .bind(&firm_ids)
    .bind(&roles)
    .bind(&permissions)
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_members(conn: &mut PgConnection, rows: &[MemberRow]) -> Result<(), sqlx::Error> {
    let sql = upsert("members", MEMBER_COLUMNS, "");
    let mut query = sqlx::query(&sql);
    query = column(query, rows, |r| r.id);
    query = column(query, rows, |r| r.firm_id);
    query = column(query, rows, |r| r.name.clone());
    query = column(query, rows, |r| r.email.clone());
    query = column(query, rows, |r| r.role.clone());
    query = column(query, rows, |r| r.status.clone());
    query = column(query, rows, |r| r.joined);
    query = column(query, rows, |r| r.created_at);
    query = column(query, rows, |r| r.version);
    query.execute(conn).await?;
    Ok(())
}

async fn write_keys(conn: &mut PgConnection, rows: &[KeyRow]) -> Result<(), sqlx::Error> {
    let sql = upsert("api_keys", KEY_COLUMNS, "");
    let mut query = sqlx::query(&sql);
    query = column(query, rows, |r| r.id);
    query = column(query, rows, |r| r.firm_id);
    query = column(query, rows, |r| r.name.clone());
    query = column(query, rows, |r| r.key_hash.clone());
    query = column(query, rows, |r| r.preview.clone());
    query = column(query, rows, |r| array_literal(&r.scopes));
    query = column(query, rows, |r| array_literal(&r.allowed_domains));
    query = column(query, rows, |r| r.lifecycle.clone());
    query = column(query, rows, |r| r.expires_at);
    query = column(query, rows, |r| r.last_used_at);
    query = column(query, rows, |r| r.created_at);
    query = column(query, rows, |r| r.created_by);
    query = column(query, rows, |r| r.revoked_at);
    query = column(query, rows, |r| r.revoked_by);
    query = column(query, rows, |r| r.revoke_reason.clone());
    query = column(query, rows, |r| r.version);
    query = column(query, rows, |r| r.replaced_by);
    query = column(query, rows, |r| r.grace_ends_at);
    query = column(query, rows, |r| r.replaces);
    query = column(query, rows, |r| r.rate_limit);
    query = column(query, rows, |r| r.rate_limit_window_seconds);
    query.execute(conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_literal_quotes_and_escapes_every_element() {
        let items = vec!["app.example.com".to_owned(), "*.a\"b\\c, {d}".to_owned(), String::new()];
        assert_eq!(array_literal(&items), r#"{"app.example.com","*.a\"b\\c, {d}",""}"#);
        assert_eq!(array_literal(&[]), "{}");
    }

    #[test]
    fn an_upsert_casts_array_columns_back_and_replaces_only_older_rows() {
        let sql = upsert("t", &[("id", "uuid"), ("tags", "text[]"), ("version", "int4")], "");
        assert!(
            sql.contains("SELECT u.id, u.tags::text[], u.version FROM unnest($1::uuid[], $2::text[], $3::int4[])"),
            "{sql}"
        );
        assert!(
            sql.contains("SET tags = excluded.tags, version = excluded.version WHERE t.version < excluded.version"),
            "{sql}"
        );
    }
}
