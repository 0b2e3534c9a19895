//! The Postgres read models (firms, role permissions, members, API keys) as a fold of the log.
//!
//! Commands apply this fold inside their own transaction, so a response already reflects its
//! events; `esqase projections rebuild read_models` replays it from the first event. Every
//! step is idempotent: a row carries its stream's version and an event at or below it is skipped.

use commands::RecordedEvent;
use domain::{ApiKeyId, Event, FirmId, KeyHash, MemberId, Role, Timestamp};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

/// The name under which `projections rebuild` knows this fold.
pub const NAME: &str = "read_models";

/// The tables this fold owns, emptied before a rebuild.
pub const TABLES: &str = "api_keys, members, role_permissions, firms";

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

/// Folds `events` in feed order, as [`apply`] one at a time would, except that each run of
/// consecutive Used events (a usage flush; most of a long-lived log) is one statement.
pub async fn apply_all(conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
    let mut uses = Uses::default();
    for event in events {
        match &event.event {
            Event::ApiKeyUsed { last_used_at, .. } => uses.add(event.stream_id, event.version, *last_used_at),
            _ => {
                uses.write(conn).await?;
                apply(conn, event).await?;
            }
        }
    }
    uses.write(conn).await
}

/// Used events waiting to be written, one entry per key: the latest version and use.
///
/// Writing a run at once is the same as one by one: a Used event only raises `last_used_at`
/// (never lowers it) and the version, so the greatest use of the run is what the row ends
/// with, and one the row already reflects was folded into its `last_used_at` before.
#[derive(Default)]
struct Uses {
    by_key: HashMap<Uuid, (i32, Timestamp)>,
}

impl Uses {
    fn add(&mut self, key: Uuid, version: i32, at: Timestamp) {
        let entry = self.by_key.entry(key).or_insert((version, at));
        *entry = (entry.0.max(version), entry.1.max(at));
    }

    async fn write(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.by_key.is_empty() {
            return Ok(());
        }
        let (mut keys, mut versions, mut uses) = (Vec::new(), Vec::new(), Vec::new());
        for (key, (version, at)) in self.by_key.drain() {
            keys.push(key);
            versions.push(version);
            uses.push(at);
        }
        sqlx::query(
            "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at), version = u.version
             FROM unnest($1::uuid[], $2::int[], $3::timestamptz[]) AS u(id, version, at)
             WHERE k.id = u.id AND k.version < u.version",
        )
        .bind(&keys)
        .bind(&versions)
        .bind(&uses)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Moves a row's version from below `version` to it; false when the event was applied before.
async fn advance(conn: &mut PgConnection, table: &str, e: &RecordedEvent) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(&format!("UPDATE {table} SET version = $2 WHERE id = $1 AND version < $2"))
        .bind(e.stream_id)
        .bind(e.version)
        .execute(conn)
        .await?;
    Ok(moved.rows_affected() == 1)
}

/// Folds one event into the read models.
pub async fn apply(conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), sqlx::Error> {
    let at = e.metadata.occurred_at;
    let firm = e.metadata.firm_id.as_uuid();
    match &e.event {
        Event::FirmCreated { name, time_zone, grid } => {
            let inserted = sqlx::query(
                "INSERT INTO firms (id, name, time_zone, created_at, version) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(e.stream_id)
            .bind(name.as_str())
            .bind(time_zone.name())
            .bind(at)
            .bind(e.version)
            .execute(&mut *conn)
            .await?;
            if inserted.rows_affected() == 1 {
                for role in [Role::Administrator, Role::Attorney, Role::Staff] {
                    set_role_permissions(conn, firm, role, grid.permissions(role)).await?;
                }
            }
        }
        Event::RolePermissionsChanged { role, after, .. } => {
            if advance(conn, "firms", e).await? {
                set_role_permissions(conn, firm, *role, *after).await?;
            }
        }
        Event::MemberRegistered { name, email, role } | Event::MemberInvited { name, email, role } => {
            let joined = matches!(e.event, Event::MemberRegistered { .. });
            sqlx::query(
                "INSERT INTO members (id, firm_id, name, email, role, status, joined, created_at, version)
                 VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8) ON CONFLICT (id) DO NOTHING",
            )
            .bind(e.stream_id)
            .bind(firm)
            .bind(name.as_str())
            .bind(email.as_str())
            .bind(role.as_str())
            .bind(joined)
            .bind(at)
            .bind(e.version)
            .execute(&mut *conn)
            .await?;
        }
        Event::InvitationAccepted {} => {
            sqlx::query("UPDATE members SET joined = true, version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .execute(&mut *conn)
                .await?;
        }
        // Only the audit log shows it; the member's row takes its version.
        Event::MemberSignInThrottled { .. } => {
            sqlx::query("UPDATE members SET version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .execute(&mut *conn)
                .await?;
        }
        Event::MemberRoleChanged { after, .. } => {
            sqlx::query("UPDATE members SET role = $3, version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .bind(after.as_str())
                .execute(&mut *conn)
                .await?;
        }
        Event::MemberRemoved {} => {
            sqlx::query("UPDATE members SET status = 'removed', version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .execute(&mut *conn)
                .await?;
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
            sqlx::query(
                "INSERT INTO api_keys (id, firm_id, name, key_hash, preview, scopes, allowed_domains, lifecycle,
                                       expires_at, created_at, created_by, version, replaces, rate_limit,
                                       rate_limit_window_seconds)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(e.stream_id)
            .bind(firm)
            .bind(name.as_str())
            .bind(key_hash.as_bytes().as_slice())
            .bind(preview.as_str())
            .bind(scopes.as_set().names())
            .bind(allowed_domains.to_strings())
            .bind(expires_at)
            .bind(at)
            .bind(created_by.as_uuid())
            .bind(e.version)
            .bind(replaces.map(|id| id.as_uuid()))
            .bind(rate_limit.map(|l| l.limit() as i32))
            .bind(rate_limit.map(|l| l.window_seconds() as i32))
            .execute(&mut *conn)
            .await?;
        }
        Event::ApiKeyRateLimitUpdated { after, .. } => {
            sqlx::query(
                "UPDATE api_keys SET rate_limit = $3, rate_limit_window_seconds = $4, version = $2
                 WHERE id = $1 AND version < $2",
            )
            .bind(e.stream_id)
            .bind(e.version)
            .bind(after.map(|l| l.limit() as i32))
            .bind(after.map(|l| l.window_seconds() as i32))
            .execute(&mut *conn)
            .await?;
        }
        Event::ApiKeyRolled { replaced_by, grace_ends_at, .. } => {
            sqlx::query(
                "UPDATE api_keys SET replaced_by = $3, grace_ends_at = $4, version = $2 WHERE id = $1 AND version < $2",
            )
            .bind(e.stream_id)
            .bind(e.version)
            .bind(replaced_by.as_uuid())
            .bind(grace_ends_at)
            .execute(&mut *conn)
            .await?;
        }
        Event::ApiKeyDomainsUpdated { after, .. } => {
            sqlx::query("UPDATE api_keys SET allowed_domains = $3, version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .bind(after.to_strings())
                .execute(&mut *conn)
                .await?;
        }
        Event::ApiKeyRevoked { reason, .. } => {
            // A rolled key stopped at its grace end, not when the sweeper recorded it.
            sqlx::query(
                "UPDATE api_keys SET lifecycle = 'revoked',
                        revoked_at = CASE WHEN $5 = 'rolled' THEN COALESCE(grace_ends_at, $3) ELSE $3 END,
                        revoked_by = $4, revoke_reason = $5, version = $2
                 WHERE id = $1 AND version < $2",
            )
            .bind(e.stream_id)
            .bind(e.version)
            .bind(at)
            .bind(reason.revoked_by(e.member_actor()).map(|m| m.as_uuid()))
            .bind(reason.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Event::ApiKeyUsed { last_used_at, .. } => {
            sqlx::query(
                "UPDATE api_keys SET last_used_at = GREATEST(last_used_at, $3), version = $2
                 WHERE id = $1 AND version < $2",
            )
            .bind(e.stream_id)
            .bind(e.version)
            .bind(last_used_at)
            .execute(&mut *conn)
            .await?;
        }
        Event::ApiKeyExpired {} => {
            sqlx::query("UPDATE api_keys SET lifecycle = 'expired', version = $2 WHERE id = $1 AND version < $2")
                .bind(e.stream_id)
                .bind(e.version)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

async fn set_role_permissions(
    conn: &mut PgConnection,
    firm: uuid::Uuid,
    role: Role,
    permissions: domain::PermissionSet,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO role_permissions (firm_id, role, permissions) VALUES ($1, $2, $3)
         ON CONFLICT (firm_id, role) DO UPDATE SET permissions = EXCLUDED.permissions",
    )
    .bind(firm)
    .bind(role.as_str())
    .bind(permissions.names())
    .execute(conn)
    .await?;
    Ok(())
}
