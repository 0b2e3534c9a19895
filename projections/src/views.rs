//! What the API shows, read from the read models.

use crate::page::{Page, PageRequest};
use chrono::{DateTime, Utc};
use domain::api_key::KeyStatus;
use domain::events::RevocationReason;
use domain::{ApiKeyId, FirmId, KeyHash, MemberId, RateLimit, Role};
use serde::{Serialize, Serializer};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// Serializes a time as the contract writes it.
fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&domain::format_time(t))
}

fn optional_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => time(t, s),
        None => s.serialize_none(),
    }
}

/// A member named in another record.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct MemberRef {
    pub id: Uuid,
    pub name: String,
}

/// An API key as the keys table shows it. Never the secret, never its hash.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// `esq_ab12cd…wxyz`.
    #[schema(examples("esq_ab12cd…wxyz"))]
    pub preview: String,
    #[schema(value_type = domain::Scopes)]
    pub scopes: Vec<String>,
    /// Its allowed domains; empty is Any.
    #[schema(value_type = domain::AllowedDomains)]
    pub allowed_domains: Vec<String>,
    /// Active, revoked or expired (expired from the instant `expires_at` passes).
    pub status: KeyStatus,
    /// The latest use the table knows of.
    #[serde(serialize_with = "optional_time")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working.
    #[serde(serialize_with = "optional_time")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(serialize_with = "time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    /// Whose access it inherits.
    pub created_by: MemberRef,
    /// When it was revoked.
    #[serde(serialize_with = "optional_time")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it (null when the service did, e.g. the creator was removed).
    #[schema(required = true)]
    pub revoked_by: Option<MemberRef>,
    /// Why it was revoked: `revoked_by_member`, `creator_removed`, `leaked` (a secret scanner
    /// reported it found in public) or `rolled` (its grace period ended); null unless revoked.
    #[schema(required = true, schema_with = revocation_reason_schema)]
    pub revocation_reason: Option<String>,
    /// The key that took over when this one was rolled; null unless rolled.
    #[schema(required = true)]
    pub replaced_by: Option<Uuid>,
    /// The instant a rolled key stops working (it is `revoked` from then); null unless rolled.
    #[serde(serialize_with = "optional_time")]
    #[schema(required = true, value_type = Option<String>, format = DateTime)]
    pub grace_ends_at: Option<DateTime<Utc>>,
    /// The key this one was rolled from; null for a key created afresh.
    #[schema(required = true)]
    pub replaces: Option<Uuid>,
    /// At most this many requests per window, across every node; null for no limit.
    #[schema(required = true, value_type = Option<domain::RateLimit>)]
    pub rate_limit: Option<RateLimit>,
}

fn revocation_reason_schema() -> utoipa::openapi::schema::OneOfBuilder {
    use domain::events::RevocationReason;
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(domain::schema::string_enum(RevocationReason::ALL.map(RevocationReason::as_str)))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "Why it was revoked: `leaked` when a secret scanner reported it found in public, `rolled` when it was \
             rolled and its grace period ended; null unless revoked.",
        ))
}

const SELECT_KEYS: &str = "SELECT k.id, k.name, k.preview, k.scopes, k.allowed_domains, k.lifecycle, k.last_used_at,
        k.expires_at, k.created_at, k.created_by, c.name AS created_by_name, k.revoked_at, k.revoked_by,
        r.name AS revoked_by_name, k.revoke_reason, k.replaced_by, k.grace_ends_at, k.replaces, k.rate_limit,
        k.rate_limit_window_seconds
     FROM api_keys k
     JOIN members c ON c.id = k.created_by
     LEFT JOIN members r ON r.id = k.revoked_by";

fn key_from_row(row: &PgRow, now: DateTime<Utc>) -> Result<ApiKeyView, sqlx::Error> {
    let lifecycle: String = row.try_get("lifecycle")?;
    let expires_at: Option<DateTime<Utc>> = row.try_get("expires_at")?;
    let recorded = KeyStatus::parse(&lifecycle)
        .ok_or_else(|| sqlx::Error::Decode(format!("unknown key lifecycle {lifecycle}").into()))?;
    let grace_ends_at: Option<DateTime<Utc>> = row.try_get("grace_ends_at")?;
    let status = KeyStatus::at(recorded, expires_at, grace_ends_at, now);
    let revoked_by: Option<Uuid> = row.try_get("revoked_by")?;
    let revoked_by_name: Option<String> = row.try_get("revoked_by_name")?;
    // Revoked by its grace end but not recorded yet: shown as the sweeper will record it.
    let (revoked_at, revocation_reason) = match (recorded, status) {
        (KeyStatus::Active, KeyStatus::Revoked) => (grace_ends_at, Some(RevocationReason::Rolled.as_str().to_owned())),
        _ => (row.try_get("revoked_at")?, row.try_get("revoke_reason")?),
    };
    Ok(ApiKeyView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        preview: row.try_get("preview")?,
        scopes: row.try_get("scopes")?,
        allowed_domains: row.try_get("allowed_domains")?,
        status,
        last_used_at: row.try_get("last_used_at")?,
        expires_at,
        created_at: row.try_get("created_at")?,
        created_by: MemberRef { id: row.try_get("created_by")?, name: row.try_get("created_by_name")? },
        revoked_at,
        revoked_by: revoked_by.zip(revoked_by_name).map(|(id, name)| MemberRef { id, name }),
        revocation_reason,
        replaced_by: row.try_get("replaced_by")?,
        grace_ends_at,
        replaces: row.try_get("replaces")?,
        rate_limit: rate_limit_from_row(row)?,
    })
}

fn rate_limit_from_row(row: &PgRow) -> Result<Option<RateLimit>, sqlx::Error> {
    stored_rate_limit(row.try_get("rate_limit")?, row.try_get("rate_limit_window_seconds")?)
        .map_err(|e| sqlx::Error::Decode(format!("stored rate limit: {e}").into()))
}

/// A key's rate limit from its two columns in `api_keys` (both null for a key without one).
pub fn stored_rate_limit(
    limit: Option<i32>,
    window_seconds: Option<i32>,
) -> Result<Option<RateLimit>, domain::rate_limit::RateLimitError> {
    match (limit, window_seconds) {
        (Some(limit), Some(window)) => RateLimit::new(limit.into(), window.into()).map(Some),
        _ => Ok(None),
    }
}

/// One key of `firm` (another firm's key is `None`, as if it did not exist), from the pool or
/// from a command's own transaction.
pub async fn api_key<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    firm: FirmId,
    id: ApiKeyId,
    now: DateTime<Utc>,
) -> Result<Option<ApiKeyView>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_KEYS} WHERE k.firm_id = $1 AND k.id = $2"))
        .bind(firm.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(executor)
        .await?;
    row.map(|r| key_from_row(&r, now)).transpose()
}

/// The SQL twin of [`KeyStatus::at`]: true for a row of `api_keys` (as `table`) whose status at
/// `now` (a parameter such as `$4`) is `status`. Never NULL.
pub fn key_status_is(status: KeyStatus, table: &str, now: &str) -> String {
    // Recorded Active but past its expiry. Written so that the partial index `api_keys_expiring`
    // serves it (the sweeper's query), and false rather than NULL for a key that never expires.
    let lapsed =
        format!("({table}.lifecycle = 'active' AND {table}.expires_at IS NOT NULL AND {table}.expires_at <= {now})");
    // Recorded Active, rolled, and past the grace end, which came no later than the expiry (the
    // first to pass decides): Revoked. Served by `api_keys_grace_ending`; never NULL either.
    let graced = format!(
        "({table}.lifecycle = 'active' AND {table}.grace_ends_at IS NOT NULL AND {table}.grace_ends_at <= {now}
          AND ({table}.expires_at IS NULL OR {table}.grace_ends_at <= {table}.expires_at))"
    );
    match status {
        KeyStatus::Active => format!("({table}.lifecycle = 'active' AND NOT {lapsed} AND NOT {graced})"),
        KeyStatus::Expired => format!("({table}.lifecycle = 'expired' OR ({lapsed} AND NOT {graced}))"),
        KeyStatus::Revoked => format!("({table}.lifecycle = 'revoked' OR {graced})"),
    }
}

/// Keys recorded Active whose roll's grace period has ended at `now` (Revoked now), soonest end
/// first, at most `limit`: what the sweeper records as revoked, reason `rolled`.
pub async fn keys_past_grace(
    conn: &mut sqlx::PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
    let revoked = key_status_is(KeyStatus::Revoked, "k", "$1");
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
        "SELECT k.id, k.firm_id FROM api_keys k
         WHERE k.lifecycle = 'active' AND k.grace_ends_at IS NOT NULL AND {revoked}
         ORDER BY k.grace_ends_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(key, firm)| (ApiKeyId::from_uuid(key), FirmId::from_uuid(firm))).collect())
}

/// Keys recorded Active whose expiry has passed at `now`, soonest expiry first, at most `limit`:
/// what the expiry sweeper records as Expired.
pub async fn keys_past_expiry(
    conn: &mut sqlx::PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<(ApiKeyId, FirmId)>, sqlx::Error> {
    let expired = key_status_is(KeyStatus::Expired, "k", "$1");
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(&format!(
        "SELECT k.id, k.firm_id FROM api_keys k WHERE k.lifecycle = 'active' AND {expired}
         ORDER BY k.expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(key, firm)| (ApiKeyId::from_uuid(key), FirmId::from_uuid(firm))).collect())
}

/// The firm and id of each key whose secret hashes to one of `hashes`, in one query.
pub async fn keys_with_hashes(
    conn: &mut sqlx::PgConnection,
    hashes: &[KeyHash],
) -> Result<Vec<(KeyHash, FirmId, ApiKeyId)>, sqlx::Error> {
    let bytes: Vec<&[u8]> = hashes.iter().map(|h| h.as_bytes().as_slice()).collect();
    let rows: Vec<(Vec<u8>, Uuid, Uuid)> =
        sqlx::query_as("SELECT key_hash, firm_id, id FROM api_keys WHERE key_hash = ANY($1)")
            .bind(&bytes)
            .fetch_all(conn)
            .await?;
    rows.into_iter()
        .map(|(hash, firm, id)| {
            let hash = KeyHash::from_slice(&hash)
                .ok_or_else(|| sqlx::Error::Decode(format!("a key hash of {} bytes", hash.len()).into()))?;
            Ok((hash, FirmId::from_uuid(firm), ApiKeyId::from_uuid(id)))
        })
        .collect()
}

/// The keys `member` created that are Active at `now`, by id.
pub async fn active_keys_created_by(
    conn: &mut sqlx::PgConnection,
    member: MemberId,
    now: DateTime<Utc>,
) -> Result<Vec<ApiKeyId>, sqlx::Error> {
    let active = key_status_is(KeyStatus::Active, "k", "$2");
    let ids: Vec<Uuid> =
        sqlx::query_scalar(&format!("SELECT k.id FROM api_keys k WHERE k.created_by = $1 AND {active} ORDER BY k.id"))
            .bind(member.as_uuid())
            .bind(now)
            .fetch_all(conn)
            .await?;
    Ok(ids.into_iter().map(ApiKeyId::from_uuid).collect())
}

/// A page of `firm`'s keys, newest first, optionally only those of one status at `now`.
pub async fn api_keys(
    pool: &PgPool,
    firm: FirmId,
    status: Option<KeyStatus>,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<Page<ApiKeyView>, sqlx::Error> {
    let status_filter = status.map_or_else(|| "TRUE".to_owned(), |status| key_status_is(status, "k", "$4"));
    let (condition, order) = page.sql("k.id", 2);
    let rows = sqlx::query(&format!(
        "{SELECT_KEYS} WHERE k.firm_id = $1 AND {condition} AND {status_filter} ORDER BY {order} LIMIT $3"
    ))
    .bind(firm.as_uuid())
    .bind(page.boundary())
    .bind(page.limit + 1)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let keys = rows.iter().map(|r| key_from_row(r, now)).collect::<Result<Vec<_>, _>>()?;
    Ok(page.page(keys, |k| k.id))
}

/// A member as their firm sees them.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Member)]
pub struct MemberView {
    pub id: Uuid,
    pub name: String,
    /// Their login.
    pub email: String,
    pub role: Role,
    pub firm_id: Uuid,
    /// `active` or `removed`.
    #[schema(schema_with = member_status_schema)]
    pub status: String,
    /// When they were registered or invited.
    #[serde(serialize_with = "time")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
}

fn member_status_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(["active", "removed"])
}

const SELECT_MEMBERS: &str = "SELECT id, name, email, role, firm_id, status, created_at FROM members";

fn member_from_row(row: &PgRow) -> Result<MemberView, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(MemberView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        role: Role::parse(&role).map_err(|e| sqlx::Error::Decode(e.into()))?,
        firm_id: row.try_get("firm_id")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

/// One member of `firm` (another firm's member is `None`).
pub async fn member<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    firm: FirmId,
    id: MemberId,
) -> Result<Option<MemberView>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_MEMBERS} WHERE firm_id = $1 AND id = $2"))
        .bind(firm.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(member_from_row).transpose()
}

/// A page of `firm`'s members, newest first.
pub async fn members(pool: &PgPool, firm: FirmId, page: PageRequest) -> Result<Page<MemberView>, sqlx::Error> {
    let (condition, order) = page.sql("id", 2);
    let rows = sqlx::query(&format!("{SELECT_MEMBERS} WHERE firm_id = $1 AND {condition} ORDER BY {order} LIMIT $3"))
        .bind(firm.as_uuid())
        .bind(page.boundary())
        .bind(page.limit + 1)
        .fetch_all(pool)
        .await?;
    let members = rows.iter().map(member_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(page.page(members, |m| m.id))
}

/// A firm as shown to its members.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Firm)]
pub struct FirmView {
    pub id: Uuid,
    pub name: String,
    /// Its IANA time zone.
    pub time_zone: String,
}

/// One firm.
pub async fn firm<'e>(pool: impl sqlx::PgExecutor<'e>, id: FirmId) -> Result<Option<FirmView>, sqlx::Error> {
    let row: Option<(Uuid, String, String)> = sqlx::query_as("SELECT id, name, time_zone FROM firms WHERE id = $1")
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|(id, name, time_zone)| FirmView { id, name, time_zone }))
}

/// One role's row of the grid.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RolePermissions)]
pub struct RoleView {
    pub role: Role,
    /// What it may do now, in the contract's order.
    #[schema(value_type = domain::PermissionSet)]
    pub permissions: Vec<&'static str>,
}

/// The firm's grid, in the order owner, administrator, attorney, staff.
pub async fn roles<'e>(pool: impl sqlx::PgExecutor<'e>, firm: FirmId) -> Result<Vec<RoleView>, sqlx::Error> {
    let rows: Vec<(String, Vec<String>)> =
        sqlx::query_as("SELECT role, permissions FROM role_permissions WHERE firm_id = $1")
            .bind(firm.as_uuid())
            .fetch_all(pool)
            .await?;
    let grid = domain::Grid::default();
    Ok(Role::ALL
        .into_iter()
        .map(|role| {
            let permissions = match role {
                Role::Owner => grid.permissions(Role::Owner),
                _ => rows
                    .iter()
                    .find(|(r, _)| r == role.as_str())
                    .and_then(|(_, names)| domain::PermissionSet::parse(names).ok())
                    .unwrap_or_default(),
            };
            RoleView { role, permissions: permissions.names() }
        })
        .collect())
}

/// One member by id alone, for the member who just signed in.
pub async fn member_by_id<'e>(
    pool: impl sqlx::PgExecutor<'e>,
    id: MemberId,
) -> Result<Option<MemberView>, sqlx::Error> {
    let row = sqlx::query(&format!("{SELECT_MEMBERS} WHERE id = $1")).bind(id.as_uuid()).fetch_optional(pool).await?;
    row.as_ref().map(member_from_row).transpose()
}
