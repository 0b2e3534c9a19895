//! The audit log: every firm, member, role and key event (Used events excepted) as an entry that
//! says who did what to which thing, when, with the details an auditor needs.
//!
//! Commands fold it inline, in their own transaction, right after the read models (so a response
//! already reflects it); `esqase projections rebuild audit_log` replays it from the first event.
//! Each firm's entries form a SHA-256 hash chain in feed order: `hash` is the SHA-256 of
//! `previous_hash` followed by the entry's canonical JSON (see [`canonical_json`] and
//! `docs/audit-log.md`). Commands of one firm take turns (the firm's advisory lock), so feed order
//! is commit order and a rebuild gives the same sequences and hashes, byte for byte.
//!
//! Everything an entry holds comes from the log alone (names are read from the event that created
//! the member or key), never from the other read models, so rebuilding either leaves this one
//! exactly as it was. No entry holds a secret or a secret's hash.

use chrono::{DateTime, Utc};
use commands::RecordedEvent;
use domain::{Actor, Event, Role};
use serde::{Serialize, Serializer};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::HashMap;
use uuid::Uuid;

mod chain;
mod queries;

pub use chain::{canonical_json, chain_hash, head, verify, ChainHead, Verification};
pub use queries::{batch, entries, last_sequence, AuditFilter, BATCH};

/// The name under which `projections rebuild` knows this fold.
pub const NAME: &str = "audit_log";

/// The tables this fold owns.
pub const TABLES: &[&str] = &["audit_log", "audit_chain_heads"];

/// The `previous_hash` of a firm's first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every action an entry can record, for the `action` filter.
pub const ACTIONS: [&str; 13] = [
    "firm.created",
    "member.joined",
    "member.invited",
    "member.role_changed",
    "member.removed",
    "member.sign_in_throttled",
    "role.permissions_changed",
    "api_key.created",
    "api_key.domains_updated",
    "api_key.rate_limit_updated",
    "api_key.revoked",
    "api_key.rolled",
    "api_key.expired",
];

/// The schema of an entry's `action`: one of [`ACTIONS`].
pub fn action_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(ACTIONS)
}

fn actor_type_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(["member", "system"])
}

fn target_type_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum(["api_key", "member", "role", "firm"])
}

fn time<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&domain::format_time(t))
}

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditActor)]
pub struct EntryActor {
    /// `member` or `system`.
    #[serde(rename = "type")]
    #[schema(schema_with = actor_type_schema)]
    pub kind: String,
    /// The member's id (null for the system).
    #[schema(required = true)]
    pub id: Option<Uuid>,
    /// The member's name when they acted (null for the system).
    #[schema(required = true)]
    pub name: Option<String>,
}

/// What it was done to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditTarget)]
pub struct EntryTarget {
    /// `api_key`, `member`, `role` or `firm`.
    #[serde(rename = "type")]
    #[schema(schema_with = target_type_schema)]
    pub kind: String,
    /// The key's, member's or firm's id; a role's name.
    pub id: String,
    /// The key's label, the member's name, the role's or the firm's name.
    #[schema(required = true)]
    pub name: Option<String>,
}

/// One entry of a firm's audit log, as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// The id of the event it records.
    pub id: Uuid,
    /// 1, 2, 3… within the firm, in feed order.
    pub sequence: i64,
    /// When the event happened.
    #[serde(serialize_with = "time")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: DateTime<Utc>,
    /// One of [`ACTIONS`].
    #[schema(schema_with = action_schema)]
    pub action: String,
    pub actor: EntryActor,
    /// On what.
    pub target: EntryTarget,
    /// What an auditor needs to know about it.
    #[schema(value_type = Object)]
    pub details: Value,
    /// SHA-256 (lowercase hex) of `previous_hash` followed by the canonical JSON.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub hash: String,
    /// The previous entry's `hash` ([`GENESIS_HASH`] for the first).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub previous_hash: String,
}

impl AuditEntry {
    /// The entry as hashed: everything the API shows but `hash` and `previous_hash`.
    pub fn hashed_fields(&self) -> Value {
        json!({
            "id": self.id,
            "sequence": self.sequence,
            "occurred_at": domain::format_time(&self.occurred_at),
            "action": self.action,
            "actor": self.actor,
            "target": self.target,
            "details": self.details,
        })
    }

    /// What `hash` must be, given the entry's fields and its `previous_hash`.
    pub fn expected_hash(&self) -> String {
        chain_hash(&self.previous_hash, &canonical_json(&self.hashed_fields()))
    }
}

/// What an event says, before names are looked up and the entry is chained.
struct Draft {
    action: &'static str,
    target_kind: &'static str,
    target_id: String,
    /// The target's name when the event itself carries it.
    target_name: Option<String>,
    details: Value,
}

fn role_grid(grid: &domain::Grid) -> Value {
    let mut roles = serde_json::Map::new();
    for role in [Role::Administrator, Role::Attorney, Role::Staff] {
        roles.insert(role.as_str().to_owned(), json!(grid.permissions(role).names()));
    }
    Value::Object(roles)
}

/// The entry an event makes, if any (Used events make none).
fn draft(e: &RecordedEvent) -> Option<Draft> {
    let stream = e.stream_id.to_string();
    let draft = |action, target_kind, target_name: Option<String>, details| Draft {
        action,
        target_kind,
        target_id: stream.clone(),
        target_name,
        details,
    };
    Some(match &e.event {
        Event::FirmCreated { name, time_zone, grid } => draft(
            "firm.created",
            "firm",
            Some(name.as_str().to_owned()),
            json!({ "time_zone": time_zone.name(), "grid": role_grid(grid) }),
        ),
        Event::RolePermissionsChanged { role, before, after } => Draft {
            action: "role.permissions_changed",
            target_kind: "role",
            target_id: role.as_str().to_owned(),
            target_name: Some(role.as_str().to_owned()),
            details: json!({ "before": before.names(), "after": after.names() }),
        },
        Event::MemberRegistered { name, email, role } => draft(
            "member.joined",
            "member",
            Some(name.as_str().to_owned()),
            json!({ "via": "signup", "email": email.as_str(), "role": role.as_str() }),
        ),
        Event::MemberInvited { name, email, role } => draft(
            "member.invited",
            "member",
            Some(name.as_str().to_owned()),
            json!({ "email": email.as_str(), "role": role.as_str() }),
        ),
        Event::InvitationAccepted {} => draft("member.joined", "member", None, json!({ "via": "invitation" })),
        Event::MemberRoleChanged { before, after } => {
            draft("member.role_changed", "member", None, json!({ "before": before.as_str(), "after": after.as_str() }))
        }
        Event::MemberRemoved {} => draft("member.removed", "member", None, json!({})),
        Event::MemberSignInThrottled { failures } => {
            draft("member.sign_in_throttled", "member", None, json!({ "failures": failures }))
        }
        // The key's hash (`key_hash`) is deliberately left out: no entry holds a secret or its hash.
        Event::ApiKeyCreated {
            name,
            preview,
            scopes,
            expires_at,
            allowed_domains,
            replaces,
            rate_limit,
            key_hash: _,
            created_by: _,
        } => {
            let mut shown = json!({
                "scopes": scopes.as_set().names(),
                "expires_at": expires_at.as_ref().map(domain::format_time),
                "allowed_domains": allowed_domains.to_strings(),
                "preview": preview.as_str(),
            });
            // A key rolled from another names it, and a limited key shows its limit; a key created
            // afresh without one keeps the four fields (so entries made before either existed
            // hash the same on a rebuild).
            if let (Some(replaces), Some(fields)) = (replaces, shown.as_object_mut()) {
                fields.insert("replaces".into(), json!(replaces));
            }
            if let (Some(limit), Some(fields)) = (rate_limit, shown.as_object_mut()) {
                fields.insert("rate_limit".into(), json!(limit));
            }
            draft("api_key.created", "api_key", Some(name.as_str().to_owned()), shown)
        }
        Event::ApiKeyRolled { replaced_by, replaced_by_preview, grace_ends_at } => draft(
            "api_key.rolled",
            "api_key",
            None,
            json!({
                "replaced_by": replaced_by,
                "replaced_by_preview": replaced_by_preview.as_str(),
                "grace_ends_at": domain::format_time(grace_ends_at),
            }),
        ),
        Event::ApiKeyDomainsUpdated { before, after } => draft(
            "api_key.domains_updated",
            "api_key",
            None,
            json!({ "before": before.to_strings(), "after": after.to_strings() }),
        ),
        Event::ApiKeyRateLimitUpdated { before, after } => {
            draft("api_key.rate_limit_updated", "api_key", None, json!({ "before": before, "after": after }))
        }
        Event::ApiKeyRevoked { reason, details } => {
            let mut shown = json!({ "reason": reason.as_str() });
            // A leaked key's entry says where it was found: `url` and `source`, null when the
            // report left them out.
            if let (Some(details), Some(fields)) = (details, shown.as_object_mut()) {
                fields.insert("url".into(), json!(details.url));
                fields.insert("source".into(), json!(details.source));
            }
            draft("api_key.revoked", "api_key", None, shown)
        }
        // Details are filled in from the key's Created event (its `expires_at`).
        Event::ApiKeyExpired {} => draft("api_key.expired", "api_key", None, json!({})),
        Event::ApiKeyUsed { .. } => return None,
    })
}

/// The first event of a stream (the one that created the member, key or firm).
async fn first_event(conn: &mut PgConnection, stream: Uuid) -> Result<Option<Event>, sqlx::Error> {
    let row: Option<(String, Value)> =
        sqlx::query_as("SELECT event_type, payload FROM events WHERE stream_id = $1 AND version = 1")
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.and_then(|(event_type, payload)| Event::from_stored(&event_type, payload).ok()))
}

/// The name a member or key was created with. No event renames either, so this is also the
/// name they had whenever they acted or were acted on; and it comes from the log alone, so a
/// rebuild finds the same.
fn name_of(created: Option<&Event>) -> Option<String> {
    match created? {
        Event::MemberRegistered { name, .. } | Event::MemberInvited { name, .. } => Some(name.as_str().to_owned()),
        Event::ApiKeyCreated { name, .. } => Some(name.as_str().to_owned()),
        Event::FirmCreated { name, .. } => Some(name.as_str().to_owned()),
        _ => None,
    }
}

/// Folds one event into its firm's audit log, appending an entry to the firm's chain.
///
/// Called in the transaction that appended the event, which holds the firm's command lock, so
/// no other writer can extend the chain between the read of its head and the insert. Applying
/// an event twice changes nothing.
pub async fn apply(conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), sqlx::Error> {
    let Some(draft) = draft(e) else { return Ok(()) };
    let actor = match e.metadata.actor {
        Actor::Member(id) => Some(id.as_uuid()),
        Actor::System => None,
    };
    let target = draft.target_name.is_none().then_some(e.stream_id);
    // Whether the event has its entry already, the first events of its actor's and its target's
    // streams (where their names are) and the firm's chain head: one round trip.
    let context: EntryContext = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM audit_log WHERE id = $1) AS seen,
                a.event_type AS actor_type, a.payload AS actor_payload,
                t.event_type AS target_type, t.payload AS target_payload,
                h.sequence AS head_sequence, h.hash AS head_hash
         FROM (SELECT 1) AS one
         LEFT JOIN events a ON a.stream_id = $2 AND a.version = 1
         LEFT JOIN events t ON t.stream_id = $3 AND t.version = 1
         LEFT JOIN audit_chain_heads h ON h.firm_id = $4",
    )
    .bind(e.id.as_uuid())
    .bind(actor)
    .bind(target)
    .bind(e.metadata.firm_id.as_uuid())
    .fetch_one(&mut *conn)
    .await?;
    if context.seen {
        return Ok(());
    }
    let stored = |event_type: Option<String>, payload: Option<Value>| Event::from_stored(&event_type?, payload?).ok();
    let actor_created = stored(context.actor_type, context.actor_payload);
    let target_created = stored(context.target_type, context.target_payload);
    let (sequence, hash) = (context.head_sequence, context.head_hash);
    let head = sequence.zip(hash).unwrap_or((0, GENESIS_HASH.to_owned()));
    let entry = entry_for(e, draft, actor_created.as_ref(), target_created.as_ref(), head);
    insert(conn, e.metadata.firm_id.as_uuid(), &[entry]).await
}

/// What folding one event needs besides the event, read in one query.
#[derive(sqlx::FromRow)]
struct EntryContext {
    /// The event has its entry already (a replay).
    seen: bool,
    actor_type: Option<String>,
    actor_payload: Option<Value>,
    target_type: Option<String>,
    target_payload: Option<Value>,
    head_sequence: Option<i64>,
    head_hash: Option<String>,
}

/// The entry an event makes, given the first events of its actor's and its target's streams
/// (where their names are) and the firm's chain head (last sequence, last hash).
fn entry_for(
    e: &RecordedEvent,
    draft: Draft,
    actor_created: Option<&Event>,
    target_created: Option<&Event>,
    (last_sequence, previous_hash): (i64, String),
) -> AuditEntry {
    let actor = match e.metadata.actor {
        Actor::Member(id) => EntryActor { kind: "member".into(), id: Some(id.as_uuid()), name: name_of(actor_created) },
        Actor::System => EntryActor { kind: "system".into(), id: None, name: None },
    };
    let mut details = draft.details;
    let target_name = match draft.target_name {
        Some(name) => Some(name),
        None => {
            if let (Event::ApiKeyExpired {}, Some(Event::ApiKeyCreated { expires_at, .. })) = (&e.event, target_created)
            {
                details = json!({ "expires_at": expires_at.as_ref().map(domain::format_time) });
            }
            name_of(target_created)
        }
    };
    let mut entry = AuditEntry {
        id: e.id.as_uuid(),
        sequence: last_sequence + 1,
        occurred_at: e.metadata.occurred_at,
        action: draft.action.to_owned(),
        actor,
        target: EntryTarget { kind: draft.target_kind.to_owned(), id: draft.target_id, name: target_name },
        details,
        hash: String::new(),
        previous_hash,
    };
    entry.hash = entry.expected_hash();
    entry
}

/// Writes entries of one firm, and the firm's new chain head, in one statement (one round trip
/// per command; one per batch in a rebuild).
async fn insert(conn: &mut PgConnection, firm: Uuid, entries: &[AuditEntry]) -> Result<(), sqlx::Error> {
    let Some(newest) = entries.last() else { return Ok(()) };
    let column = |value: fn(&AuditEntry) -> String| entries.iter().map(value).collect::<Vec<_>>();
    sqlx::query(
        "WITH entries AS (
             INSERT INTO audit_log (firm_id, sequence, id, occurred_at, action, actor_type, actor_id, actor_name,
                                    target_type, target_id, target_name, details, previous_hash, hash)
             SELECT $1, u.* FROM unnest($2::int8[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[], $7::uuid[],
                                        $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::text[], $14::text[]) AS u)
         INSERT INTO audit_chain_heads (firm_id, sequence, hash) VALUES ($1, $15, $16)
         ON CONFLICT (firm_id) DO UPDATE SET sequence = excluded.sequence, hash = excluded.hash",
    )
    .bind(firm)
    .bind(entries.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.occurred_at).collect::<Vec<_>>())
    .bind(column(|e| e.action.clone()))
    .bind(column(|e| e.actor.kind.clone()))
    .bind(entries.iter().map(|e| e.actor.id).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.actor.name.clone()).collect::<Vec<_>>())
    .bind(column(|e| e.target.kind.clone()))
    .bind(column(|e| e.target.id.clone()))
    .bind(entries.iter().map(|e| e.target.name.clone()).collect::<Vec<_>>())
    .bind(entries.iter().map(|e| e.details.clone()).collect::<Vec<_>>())
    .bind(column(|e| e.previous_hash.clone()))
    .bind(column(|e| e.hash.clone()))
    .bind(newest.sequence)
    .bind(&newest.hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The audit fold over the log a chunk at a time (a rebuild): the same entries as [`apply`],
/// but what `apply` reads from Postgres for each event is kept in memory: each stream's first
/// event (where the names are), remembered as the fold passes it and read from the log only
/// when an event needs it first; and each firm's chain head, read once per chunk and then the
/// last entry made here. Entries are written in batches, and whatever is pending by
/// [`Rebuild::flush`], before the chunk commits.
#[derive(Default)]
pub struct Rebuild {
    /// Each stream's first event, where it carries a name (members, keys, firms). The log never
    /// changes them, so they stay valid across chunks, committed or not.
    created: HashMap<Uuid, Event>,
    /// Each firm's last sequence and hash in this chunk's transaction.
    heads: HashMap<Uuid, (i64, String)>,
    /// Entries not written yet, by firm.
    pending: HashMap<Uuid, Vec<AuditEntry>>,
}

/// Entries per statement.
const REBUILD_BATCH: usize = 10_000;

impl Rebuild {
    /// Folds `events` (the next ones of the log, in feed order).
    pub async fn apply(&mut self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), sqlx::Error> {
        for e in events {
            if e.version == 1 && name_of(Some(&e.event)).is_some() {
                self.created.insert(e.stream_id, e.event.clone());
            }
            let Some(draft) = draft(e) else { continue };
            let firm = e.metadata.firm_id.as_uuid();
            let actor_created = match e.metadata.actor {
                Actor::Member(id) => self.first_event(conn, id.as_uuid()).await?,
                Actor::System => None,
            };
            let target_created = match draft.target_name {
                Some(_) => None,
                None => self.first_event(conn, e.stream_id).await?,
            };
            let head = match self.heads.get(&firm) {
                Some(head) => head.clone(),
                None => chain::chain_head(conn, firm).await?,
            };
            let entry = entry_for(e, draft, actor_created.as_ref(), target_created.as_ref(), head);
            self.heads.insert(firm, (entry.sequence, entry.hash.clone()));
            let pending = self.pending.entry(firm).or_default();
            pending.push(entry);
            if pending.len() >= REBUILD_BATCH {
                let batch = std::mem::take(pending);
                insert(conn, firm, &batch).await?;
            }
        }
        Ok(())
    }

    /// A stream's first event: from memory when it has been folded already, else from the log
    /// (a firm's owner acts in `FirmCreated`, which comes just before their own first event).
    async fn first_event(&mut self, conn: &mut PgConnection, stream: Uuid) -> Result<Option<Event>, sqlx::Error> {
        if let Some(created) = self.created.get(&stream) {
            return Ok(Some(created.clone()));
        }
        let created = first_event(conn, stream).await?;
        if let Some(created) = &created {
            self.created.insert(stream, created.clone());
        }
        Ok(created)
    }

    /// Writes what is pending; call before the chunk's transaction commits. The chain heads
    /// are read again in the next transaction, so one that rolled back leaves none behind.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        for (firm, entries) in self.pending.drain() {
            for batch in entries.chunks(REBUILD_BATCH) {
                insert(conn, firm, batch).await?;
            }
        }
        self.heads.clear();
        Ok(())
    }

    /// Forgets what a transaction that rolled back was folding.
    pub fn forget(&mut self) {
        self.pending.clear();
        self.heads.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use domain::FirmId;
    use sha2::{Digest, Sha256};

    fn entry(sequence: i64, previous_hash: &str, details: Value) -> AuditEntry {
        let mut entry = AuditEntry {
            id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + sequence as u128),
            sequence,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 27, 15, 45, 18).unwrap() + chrono::TimeDelta::milliseconds(123),
            action: "api_key.revoked".into(),
            actor: EntryActor {
                kind: "member".into(),
                id: Some(Uuid::from_u128(7)),
                name: Some("Olivia Owner".into()),
            },
            target: EntryTarget {
                kind: "api_key".into(),
                id: Uuid::from_u128(9).to_string(),
                name: Some("Sync".into()),
            },
            details,
            hash: String::new(),
            previous_hash: previous_hash.to_owned(),
        };
        entry.hash = entry.expected_hash();
        entry
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let value = json!({"b": 1, "a": {"z": [3, {"y": null, "x": true}], "c": "é/\"\\\n\u{1}"}});
        assert_eq!(canonical_json(&value), r#"{"a":{"c":"é/\"\\\n\u0001","z":[3,{"x":true,"y":null}]},"b":1}"#);
    }

    #[test]
    fn canonical_json_does_not_depend_on_insertion_order() {
        let one = json!({"sequence": 1, "action": "x", "details": {"before": [], "after": ["a"]}});
        let mut other = serde_json::Map::new();
        other.insert("details".into(), json!({"after": ["a"], "before": []}));
        other.insert("action".into(), json!("x"));
        other.insert("sequence".into(), json!(1));
        assert_eq!(canonical_json(&one), canonical_json(&Value::Object(other)));
    }

    #[test]
    fn canonical_json_escapes_exactly_like_json_requires() {
        let text = "tab\t cr\r bs\u{8} ff\u{c} nul\u{0} unit\u{1f} del\u{7f} emoji😀 slash/";
        let canonical = canonical_json(&json!(text));
        assert_eq!(canonical, "\"tab\\t cr\\r bs\\b ff\\f nul\\u0000 unit\\u001f del\u{7f} emoji😀 slash/\"");
        // And it is JSON that reads back as the same string.
        assert_eq!(serde_json::from_str::<String>(&canonical).unwrap(), text);
    }

    #[test]
    fn the_hashed_form_of_an_entry_is_pinned() {
        let first = entry(1, GENESIS_HASH, json!({"reason": "revoked_by_member"}));
        assert_eq!(
            canonical_json(&first.hashed_fields()),
            concat!(
                r#"{"action":"api_key.revoked","actor":{"id":"00000000-0000-0000-0000-000000000007","name":"Olivia Owner","type":"member"},"#,
                r#""details":{"reason":"revoked_by_member"},"id":"01900000-0000-7000-8000-000000000001","occurred_at":"2026-11-27T15:45:18.123Z","#,
                r#""sequence":1,"target":{"id":"00000000-0000-0000-0000-000000000009","name":"Sync","type":"api_key"}}"#
            )
        );
        // SHA-256 over the 64 zeros followed by that text.
        let mut hasher = Sha256::new();
        hasher.update(GENESIS_HASH.as_bytes());
        hasher.update(canonical_json(&first.hashed_fields()).as_bytes());
        assert_eq!(first.hash, hex::encode(hasher.finalize()));
        assert_eq!(first.hash.len(), 64);
    }

    #[test]
    fn an_entry_as_served_can_be_checked_from_its_json_alone() {
        let first = entry(1, GENESIS_HASH, json!({"reason": "revoked_by_member"}));
        let mut served = serde_json::to_value(&first).unwrap();
        let object = served.as_object_mut().unwrap();
        let hash = object.remove("hash").unwrap();
        let previous = object.remove("previous_hash").unwrap();
        assert_eq!(json!(chain_hash(previous.as_str().unwrap(), &canonical_json(&served))), hash);
    }

    #[test]
    fn a_chain_links_each_entry_to_the_one_before_and_any_edit_breaks_it() {
        let first = entry(1, GENESIS_HASH, json!({"reason": "revoked_by_member"}));
        let second = entry(2, &first.hash, json!({"before": [], "after": ["app.example.com"]}));
        assert_eq!(second.previous_hash, first.hash);
        assert_ne!(first.hash, second.hash);
        assert_eq!(second.hash, second.expected_hash());

        let mut tampered = second.clone();
        tampered.details = json!({"before": [], "after": ["evil.example.com"]});
        assert_ne!(tampered.hash, tampered.expected_hash());

        let mut renamed = first.clone();
        renamed.actor.name = Some("Mallory".into());
        assert_ne!(renamed.hash, renamed.expected_hash());

        // Re-hashing a tampered entry does not help: the next entry no longer points at it.
        let mut rehashed = first.clone();
        rehashed.details = json!({"reason": "creator_removed"});
        rehashed.hash = rehashed.expected_hash();
        assert_ne!(second.previous_hash, rehashed.hash);
    }

    #[test]
    fn used_events_make_no_entry_and_a_created_key_keeps_its_hash_out() {
        use commands::store::{FeedPosition, Metadata};
        let secret = domain::ApiKeySecret::generate();
        let event = |event| RecordedEvent {
            feed: FeedPosition::START,
            id: domain::EventId::new(),
            stream_id: Uuid::now_v7(),
            stream_kind: domain::StreamKind::ApiKey,
            version: 1,
            event,
            metadata: Metadata {
                firm_id: FirmId::new(),
                actor: Actor::System,
                request_id: None,
                occurred_at: Utc::now(),
            },
        };
        assert!(draft(&event(Event::ApiKeyUsed { last_used_at: Utc::now(), count: 3 })).is_none());
        let created = event(Event::ApiKeyCreated {
            name: domain::names::KeyName::parse("Sync").unwrap(),
            key_hash: secret.hash(),
            preview: secret.preview(),
            scopes: domain::Scopes::parse(&["contacts:read"]).unwrap(),
            expires_at: None,
            allowed_domains: domain::AllowedDomains::any(),
            created_by: domain::MemberId::new(),
            replaces: None,
            rate_limit: None,
        });
        let details = draft(&created).unwrap().details;
        let text = details.to_string();
        assert!(!text.contains(&secret.hash().to_hex()), "{text}");
        assert!(!text.contains(secret.expose()), "{text}");
        assert_eq!(details["preview"], json!(secret.preview().as_str()));
        assert_eq!(details.as_object().unwrap().keys().count(), 4);
    }
}
