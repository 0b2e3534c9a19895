//! The in-memory verification state each node holds: every key by the SHA-256 of its secret,
//! every member's role and status, every firm's grid. It is loaded from the read models as of a
//! known feed position, then kept current by the runner; answering "may this key do this?"
//! touches no database.

use crate::runner::{Projection, ProjectionError};
use commands::store::{FeedPosition, RecordedEvent};
use domain::api_key::is_past;
use domain::{AllowedDomains, Event, Grid, KeyHash, PermissionSet, Role, Timestamp};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// A key, as verification needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedKey {
    /// The key's id.
    pub id: Uuid,
    /// Its firm.
    pub firm: Uuid,
    /// Whose access it inherits.
    pub creator: Uuid,
    /// Its scopes.
    pub scopes: PermissionSet,
    /// Where a browser may use it from.
    pub allowed_domains: AllowedDomains,
    /// When it stops working.
    pub expires_at: Option<Timestamp>,
    /// False once revoked.
    pub revoked: bool,
    /// False once the sweeper recorded its expiry.
    pub expired_recorded: bool,
    /// Its stream's version as applied here.
    pub version: i32,
}

impl CachedKey {
    /// True when the key works at `now`: not revoked, not past its expiry.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        !self.revoked && !self.expired_recorded && !is_past(self.expires_at, now)
    }
}

/// A member, as verification needs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedMember {
    /// Their firm.
    pub firm: Uuid,
    /// Their role now.
    pub role: Role,
    /// False once removed.
    pub active: bool,
    /// Their stream's version as applied here.
    pub version: i32,
}

/// A firm's grid, as verification needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachedFirm {
    /// What each role may do now.
    pub grid: Grid,
    /// The firm stream's version as applied here.
    pub version: i32,
}

/// The whole verification state of a node.
#[derive(Debug, Default)]
pub struct VerificationState {
    /// Keys by the hash of their secret: the lookup of every verified request.
    keys: HashMap<KeyHash, CachedKey>,
    /// Key id to hash: events name keys by id.
    hashes: HashMap<Uuid, KeyHash>,
    /// Members by id: the ceiling of their keys.
    members: HashMap<Uuid, CachedMember>,
    /// Firms by id: their grids.
    firms: HashMap<Uuid, CachedFirm>,
    /// How far the feed is applied.
    checkpoint: FeedPosition,
}

impl VerificationState {
    /// The key whose secret hashes to `hash`.
    pub fn key(&self, hash: &KeyHash) -> Option<&CachedKey> {
        self.keys.get(hash)
    }

    /// What the key's creator may do now (empty for a removed or unknown creator).
    pub fn creator_permissions(&self, key: &CachedKey) -> PermissionSet {
        match (self.members.get(&key.creator), self.firms.get(&key.firm)) {
            (Some(member), Some(firm)) if member.active => firm.grid.permissions(member.role),
            _ => PermissionSet::EMPTY,
        }
    }

    /// How far the feed is applied.
    pub fn checkpoint(&self) -> FeedPosition {
        self.checkpoint
    }

    /// How many keys are held.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Folds one event of the feed, if it is beyond the checkpoint; events already reflected
    /// (by stream version) change nothing.
    pub fn apply(&mut self, e: &RecordedEvent) {
        if e.feed <= self.checkpoint {
            return;
        }
        self.checkpoint = e.feed;
        self.fold(e, |held, event| held < event);
    }

    /// Folds an event this node has just committed, ahead of the feed, if it is the very next
    /// version of its stream here (otherwise the feed brings it, in order, soon). The checkpoint
    /// does not move: the feed still delivers the event, and its version makes that a no-op.
    pub fn apply_own(&mut self, e: &RecordedEvent) {
        self.fold(e, |held, event| held + 1 == event);
    }

    /// Folds `e` into whatever it changes, where `applies(held version, event version)`.
    fn fold(&mut self, e: &RecordedEvent, applies: impl Fn(i32, i32) -> bool) {
        let firm = e.metadata.firm_id.as_uuid();
        match &e.event {
            Event::FirmCreated { grid, .. } => {
                self.firms.entry(e.stream_id).or_insert(CachedFirm { grid: *grid, version: e.version });
            }
            Event::RolePermissionsChanged { role, after, .. } => {
                if let Some(cached) = self.firms.get_mut(&e.stream_id).filter(|f| applies(f.version, e.version)) {
                    cached.grid = cached.grid.with(*role, *after).unwrap_or(cached.grid);
                    cached.version = e.version;
                }
            }
            Event::MemberRegistered { role, .. } | Event::MemberInvited { role, .. } => {
                self.members.entry(e.stream_id).or_insert(CachedMember {
                    firm,
                    role: *role,
                    active: true,
                    version: e.version,
                });
            }
            Event::MemberRoleChanged { after, .. } => {
                if let Some(member) = self.members.get_mut(&e.stream_id).filter(|m| applies(m.version, e.version)) {
                    member.role = *after;
                    member.version = e.version;
                }
            }
            Event::MemberRemoved {} => {
                if let Some(member) = self.members.get_mut(&e.stream_id).filter(|m| applies(m.version, e.version)) {
                    member.active = false;
                    member.version = e.version;
                }
            }
            Event::InvitationAccepted {} => {
                if let Some(member) = self.members.get_mut(&e.stream_id).filter(|m| applies(m.version, e.version)) {
                    member.version = e.version;
                }
            }
            Event::ApiKeyCreated { key_hash, scopes, expires_at, allowed_domains, created_by, .. } => {
                if let std::collections::hash_map::Entry::Vacant(slot) = self.hashes.entry(e.stream_id) {
                    slot.insert(*key_hash);
                    self.keys.insert(
                        *key_hash,
                        CachedKey {
                            id: e.stream_id,
                            firm,
                            creator: created_by.as_uuid(),
                            scopes: scopes.as_set(),
                            allowed_domains: allowed_domains.clone(),
                            expires_at: *expires_at,
                            revoked: false,
                            expired_recorded: false,
                            version: e.version,
                        },
                    );
                }
            }
            Event::ApiKeyDomainsUpdated { after, .. } => {
                self.update_key(e, &applies, |k| k.allowed_domains = after.clone())
            }
            Event::ApiKeyRevoked { .. } => self.update_key(e, &applies, |k| k.revoked = true),
            Event::ApiKeyExpired {} => self.update_key(e, &applies, |k| k.expired_recorded = true),
            Event::ApiKeyUsed { .. } => self.update_key(e, &applies, |_| {}),
        }
    }

    fn update_key(
        &mut self,
        e: &RecordedEvent,
        applies: &impl Fn(i32, i32) -> bool,
        change: impl FnOnce(&mut CachedKey),
    ) {
        let Some(hash) = self.hashes.get(&e.stream_id) else { return };
        if let Some(key) = self.keys.get_mut(hash).filter(|k| applies(k.version, e.version)) {
            change(key);
            key.version = e.version;
        }
    }

    /// Loads the state from the read models in one snapshot, with the checkpoint at that
    /// snapshot's horizon: every event below it is reflected; events above it that the snapshot
    /// already saw are skipped by version when the feed delivers them.
    pub async fn load(pool: &PgPool) -> Result<VerificationState, sqlx::Error> {
        let mut tx = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let checkpoint = commands::store::feed_horizon(&mut tx).await.map_err(|e| match e {
            commands::store::StoreError::Database(e) => e,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        let mut state = VerificationState { checkpoint, ..Default::default() };
        let firms: Vec<(Uuid, i32)> = sqlx::query_as("SELECT id, version FROM firms").fetch_all(&mut *tx).await?;
        for (id, version) in firms {
            state.firms.insert(id, CachedFirm { grid: Grid::default(), version });
        }
        let rows: Vec<(Uuid, String, Vec<String>)> =
            sqlx::query_as("SELECT firm_id, role, permissions FROM role_permissions").fetch_all(&mut *tx).await?;
        for (firm, role, permissions) in rows {
            let (Some(cached), Ok(role), Ok(permissions)) =
                (state.firms.get_mut(&firm), Role::parse(&role), PermissionSet::parse(&permissions))
            else {
                continue;
            };
            cached.grid = cached.grid.with(role, permissions).unwrap_or(cached.grid);
        }
        let members: Vec<(Uuid, Uuid, String, String, i32)> =
            sqlx::query_as("SELECT id, firm_id, role, status, version FROM members").fetch_all(&mut *tx).await?;
        for (id, firm, role, status, version) in members {
            let Ok(role) = Role::parse(&role) else { continue };
            state.members.insert(id, CachedMember { firm, role, active: status == "active", version });
        }
        let keys: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, firm_id, created_by, key_hash, scopes, allowed_domains, expires_at, lifecycle, version
                 FROM api_keys",
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in keys {
            let id = row.id;
            let Some((hash, key)) = row.into_cached() else {
                tracing::error!(api_key_id = %id, "unreadable key row; the key will not verify");
                continue;
            };
            state.hashes.insert(id, hash);
            state.keys.insert(hash, key);
        }
        tx.commit().await?;
        Ok(state)
    }
}

/// One key and its creator's permissions now, read from Postgres: the verification of a node
/// that cannot show its cache is current.
pub async fn load_key(pool: &PgPool, hash: &KeyHash) -> Result<Option<(CachedKey, PermissionSet)>, sqlx::Error> {
    let row: Option<KeyWithCreatorRow> = sqlx::query_as(
        "SELECT k.id, k.firm_id, k.created_by, k.key_hash, k.scopes, k.allowed_domains, k.expires_at, k.lifecycle,
                k.version, m.role AS creator_role, m.status AS creator_status, rp.permissions AS creator_permissions
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
    Ok(row.key.into_cached().map(|(_, key)| (key, creator_permissions)))
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
struct KeyRow {
    id: Uuid,
    firm_id: Uuid,
    created_by: Uuid,
    key_hash: Vec<u8>,
    scopes: Vec<String>,
    allowed_domains: Vec<String>,
    expires_at: Option<Timestamp>,
    lifecycle: String,
    version: i32,
}

impl KeyRow {
    /// The key as verification holds it, with the hash it is found by; `None` for a row that
    /// does not parse (logged by the caller; such a key cannot verify).
    fn into_cached(self) -> Option<(KeyHash, CachedKey)> {
        let hash = KeyHash::from_slice(&self.key_hash)?;
        let scopes = PermissionSet::parse(&self.scopes).ok()?;
        let allowed_domains = AllowedDomains::parse(&self.allowed_domains).ok()?;
        Some((
            hash,
            CachedKey {
                id: self.id,
                firm: self.firm_id,
                creator: self.created_by,
                scopes,
                allowed_domains,
                expires_at: self.expires_at,
                revoked: self.lifecycle == "revoked",
                expired_recorded: self.lifecycle == "expired",
                version: self.version,
            },
        ))
    }
}

/// The node's verification state, shared by request handlers (readers) and the runner (writer).
pub type SharedVerification = Arc<RwLock<VerificationState>>;

/// The verification state as a projection for the runner.
pub struct VerificationProjection {
    /// The state it keeps current.
    pub state: SharedVerification,
}

/// The name of the verification projection.
pub const NAME: &str = "verification";

#[async_trait::async_trait]
impl Projection for VerificationProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn checkpoint(&self) -> FeedPosition {
        self.state.read().map(|s| s.checkpoint).unwrap_or_else(|poisoned| poisoned.into_inner().checkpoint)
    }

    async fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for event in events {
            state.apply(event);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commands::store::Metadata;
    use domain::events::RevocationReason;
    use domain::names::{Email, FirmName, FirmTimeZone, KeyName, PersonName};
    use domain::{Actor, ApiKeySecret, EventId, FirmId, MemberId, Permission, Scopes};

    struct Log {
        firm: FirmId,
        next: i64,
        state: VerificationState,
    }

    impl Log {
        fn new() -> Log {
            Log { firm: FirmId::new(), next: 1, state: VerificationState::default() }
        }

        fn record(&mut self, stream_id: Uuid, version: i32, event: Event) -> RecordedEvent {
            let feed = FeedPosition { tx_id: self.next, position: self.next };
            self.next += 1;
            RecordedEvent {
                feed,
                id: EventId::new(),
                stream_id,
                stream_kind: event.stream_kind(),
                version,
                event,
                metadata: Metadata {
                    firm_id: self.firm,
                    actor: Actor::System,
                    request_id: None,
                    occurred_at: "2026-11-27T12:00:00Z".parse().expect("valid"),
                },
            }
        }

        fn apply(&mut self, stream_id: Uuid, version: i32, event: Event) -> RecordedEvent {
            let recorded = self.record(stream_id, version, event);
            self.state.apply(&recorded);
            recorded
        }
    }

    fn firm_with_admin_key() -> (Log, MemberId, KeyHash, Uuid) {
        let mut log = Log::new();
        let firm = log.firm.as_uuid();
        log.apply(
            firm,
            1,
            Event::FirmCreated {
                name: FirmName::parse("Acme Law").expect("valid"),
                time_zone: FirmTimeZone::default(),
                grid: Grid::default(),
            },
        );
        let admin = MemberId::new();
        log.apply(
            admin.as_uuid(),
            1,
            Event::MemberInvited {
                name: PersonName::parse("Ada Admin").expect("valid"),
                email: Email::parse("ada@acme.test").expect("valid"),
                role: Role::Administrator,
            },
        );
        let secret = ApiKeySecret::generate();
        let key = Uuid::now_v7();
        log.apply(
            key,
            1,
            Event::ApiKeyCreated {
                name: KeyName::parse("Intake sync").expect("valid"),
                key_hash: secret.hash(),
                preview: secret.preview(),
                scopes: Scopes::parse(&["contacts:write"]).expect("valid"),
                expires_at: None,
                allowed_domains: AllowedDomains::any(),
                created_by: admin,
            },
        );
        (log, admin, secret.hash(), key)
    }

    #[test]
    fn a_created_key_is_found_by_the_hash_of_its_secret() {
        let (log, _, hash, key) = firm_with_admin_key();
        let cached = log.state.key(&hash).expect("cached");
        assert_eq!(cached.id, key);
        assert!(cached.is_active_at("2026-11-28T00:00:00Z".parse().expect("valid")));
    }

    #[test]
    fn a_revoked_key_stops_being_active_and_a_replay_changes_nothing() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        let revoked = log.apply(key, 2, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember });
        let before = log.state.key(&hash).cloned();
        log.state.apply(&revoked);
        assert_eq!(log.state.key(&hash).cloned(), before);
        assert!(!before.expect("cached").is_active_at("2026-11-28T00:00:00Z".parse().expect("valid")));
    }

    #[test]
    fn an_event_already_reflected_by_version_is_skipped() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        // As after loading a snapshot that already saw version 2: a late copy of version 2 changes nothing.
        let domains = AllowedDomains::parse(&["app.example.com"]).expect("valid");
        log.apply(key, 2, Event::ApiKeyDomainsUpdated { before: AllowedDomains::any(), after: domains.clone() });
        log.apply(key, 2, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember });
        let cached = log.state.key(&hash).expect("cached");
        assert_eq!(cached.allowed_domains, domains);
        assert!(!cached.revoked);
    }

    #[test]
    fn the_creators_ceiling_follows_the_grid_and_their_removal() {
        let (mut log, admin, hash, _) = firm_with_admin_key();
        let firm = log.firm.as_uuid();
        let key = log.state.key(&hash).cloned().expect("cached");
        assert!(log.state.creator_permissions(&key).contains(Permission::ContactsWrite));
        let without =
            Role::Administrator.default_permissions().difference([Permission::ContactsWrite].into_iter().collect());
        log.apply(
            firm,
            2,
            Event::RolePermissionsChanged { role: Role::Administrator, before: PermissionSet::all(), after: without },
        );
        assert!(!log.state.creator_permissions(&key).contains(Permission::ContactsWrite));
        log.apply(admin.as_uuid(), 2, Event::MemberRemoved {});
        assert!(log.state.creator_permissions(&key).is_empty());
    }
}
