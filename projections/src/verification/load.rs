//! Loading verification state from Postgres: the whole state from the read models at a node's
//! start, and one key when a node cannot show its state is current.

use super::*;
use domain::{AllowedDomains, Grid, KeyHash, PermissionSet, Role, Timestamp};
use futures::TryStreamExt;
use sqlx::PgPool;
use std::hash::BuildHasher;
use uuid::Uuid;

impl VerificationState {
    /// Loads the state from the read models in one snapshot, with the checkpoint at that
    /// snapshot's horizon: every event below it is reflected; events above it that the snapshot
    /// already saw are skipped by version when the feed delivers them. Keys are streamed
    /// straight into the tables, never collected first.
    pub async fn load(pool: &PgPool) -> Result<VerificationState, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let checkpoint = commands::store::snapshot_horizon(&mut tx).await.map_err(|e| match e {
            commands::store::StoreError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        let mut state = VerificationState { checkpoint, ..Default::default() };
        let firms: Vec<(Uuid, String, i32)> =
            sqlx::query_as("SELECT id, name, version FROM firms").fetch_all(&mut *tx).await?;
        for (id, name, version) in firms {
            let slot = state.firm_slot(id) as usize;
            state.firms[slot] = CachedFirm { id, name: name.into(), grid: Grid::default(), version: version.max(1) };
        }
        let rows: Vec<(Uuid, String, Vec<String>)> =
            sqlx::query_as("SELECT firm_id, role, permissions FROM role_permissions").fetch_all(&mut *tx).await?;
        for (firm, role, permissions) in rows {
            let (Some(&slot), Ok(role), Ok(permissions)) =
                (state.firm_slots.get(&firm), Role::parse(&role), PermissionSet::parse(&permissions))
            else {
                continue;
            };
            let cached = &mut state.firms[slot as usize];
            cached.grid = cached.grid.with(role, permissions).unwrap_or(cached.grid);
        }
        let members: Vec<(Uuid, Uuid, String, String, String, i32)> =
            sqlx::query_as("SELECT id, firm_id, name, role, status, version FROM members").fetch_all(&mut *tx).await?;
        for (id, firm, name, role, status, version) in members {
            let Ok(role) = Role::parse(&role) else { continue };
            let slot = state.member_slot(id, firm) as usize;
            state.members[slot] =
                CachedMember { id, firm, name: name.into(), role, active: status == "active", version: version.max(1) };
        }
        let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM api_keys").fetch_one(&mut *tx).await?;
        let count = usize::try_from(count).unwrap_or_default();
        state.keys.reserve_exact(count);
        let (keys, id_hasher) = (&state.keys, &state.id_hasher);
        state.by_hash.reserve(count, |&s| hash_of(&keys[s as usize].hash));
        state.by_id.reserve(count, |&s| id_hasher.hash_one(keys[s as usize].id));
        {
            let mut rows = sqlx::query_as::<_, KeyRow>(
                "SELECT id, firm_id, created_by, key_hash, name, preview, scopes, allowed_domains, expires_at,
                        created_at, last_used_at, lifecycle, version, replaced_by, grace_ends_at, replaces,
                        rate_limit, rate_limit_window_seconds
                 FROM api_keys",
            )
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                let id = row.id;
                let Some(new) = row.as_new_key() else {
                    tracing::error!(api_key_id = %id, "unreadable key row; the key will not verify");
                    continue;
                };
                state.insert_key(new);
            }
        }
        state.text.shrink_to_fit();
        tx.commit().await?;
        Ok(state)
    }
}

/// One key and its creator's permissions now, read from Postgres: the verification of a node
/// that cannot show its cache is current.
pub async fn load_key(pool: &PgPool, hash: &KeyHash) -> Result<Option<(CachedKey, PermissionSet)>, sqlx::Error> {
    let row: Option<KeyWithCreatorRow> = sqlx::query_as(
        "SELECT k.id, k.firm_id, k.created_by, k.key_hash, k.name, k.preview, k.scopes, k.allowed_domains,
                k.expires_at, k.created_at, k.last_used_at, k.lifecycle, k.version,
                k.replaced_by, k.grace_ends_at, k.replaces, k.rate_limit, k.rate_limit_window_seconds,
                m.role AS creator_role, m.status AS creator_status, rp.permissions AS creator_permissions
         FROM api_keys k
         JOIN members m ON m.id = k.created_by
         LEFT JOIN role_permissions rp ON rp.firm_id = k.firm_id AND rp.role = m.role
         WHERE k.key_hash = $1",
    )
    .bind(hash.as_bytes().as_slice())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let creator_permissions = match Role::parse(&row.creator_role) {
        _ if row.creator_status != "active" => PermissionSet::EMPTY,
        Ok(Role::Owner) => PermissionSet::all(),
        Ok(_) => PermissionSet::parse(&row.creator_permissions.unwrap_or_default()).unwrap_or_default(),
        Err(_) => PermissionSet::EMPTY,
    };
    Ok(row.key.as_new_key().map(|new| {
        let key = CachedKey {
            id: new.id,
            firm: new.firm,
            creator: new.creator,
            scopes: new.scopes,
            allowed_domains: new.allowed_domains,
            expires_at: new.expires_at,
            revoked: new.flags & REVOKED != 0,
            expired_recorded: new.flags & EXPIRED_RECORDED != 0,
            grace_ends_at: new.roll.map(|(_, end)| end),
            rate_limit: new.rate_limit,
            version: new.version,
        };
        (key, creator_permissions)
    }))
}

#[derive(sqlx::FromRow)]
struct KeyWithCreatorRow {
    #[sqlx(flatten)]
    key: KeyRow,
    creator_role: String,
    creator_status: String,
    creator_permissions: Option<Vec<String>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct KeyRow {
    id: Uuid,
    firm_id: Uuid,
    created_by: Uuid,
    key_hash: Vec<u8>,
    name: String,
    preview: String,
    scopes: Vec<String>,
    allowed_domains: Vec<String>,
    expires_at: Option<Timestamp>,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    lifecycle: String,
    version: i32,
    replaced_by: Option<Uuid>,
    grace_ends_at: Option<Timestamp>,
    replaces: Option<Uuid>,
    rate_limit: Option<i32>,
    rate_limit_window_seconds: Option<i32>,
}

impl KeyRow {
    /// The key as verification holds it; `None` for a row that does not parse (logged by the
    /// caller; such a key cannot verify).
    fn as_new_key(&self) -> Option<NewKey<'_>> {
        Some(NewKey {
            id: self.id,
            hash: KeyHash::from_slice(&self.key_hash)?,
            firm: self.firm_id,
            creator: self.created_by,
            name: &self.name,
            preview: &self.preview,
            scopes: PermissionSet::parse(&self.scopes).ok()?,
            allowed_domains: AllowedDomains::parse(&self.allowed_domains).ok()?,
            expires_at: self.expires_at,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            flags: match self.lifecycle.as_str() {
                "revoked" => REVOKED,
                "expired" => EXPIRED_RECORDED,
                _ => 0,
            },
            replaces: self.replaces,
            roll: self.replaced_by.zip(self.grace_ends_at),
            rate_limit: crate::views::stored_rate_limit(self.rate_limit, self.rate_limit_window_seconds).ok()?,
            version: self.version,
        })
    }
}
