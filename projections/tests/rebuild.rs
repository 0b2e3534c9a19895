//! `projections rebuild` against the machine's Postgres: the rebuilt tables are the tables the
//! commands' inline fold made (every event type, every revocation reason), whether the rebuild
//! runs in one go, in many small chunks, stopped and resumed, or while commands commit; and the
//! swapped-in tables keep their indexes, constraints and grants.

use chrono::{TimeDelta, TimeZone, Utc};
use commands::store::{self, Append, Metadata, RecordedEvent, WriterTx};
use commands::ReadModels;
use domain::events::{RevocationDetails, RevocationReason};
use domain::names::{FirmName, KeyName, PersonName};
use domain::rate_limit::RateLimit;
use domain::{
    Actor, AllowedDomains, ApiKeyId, ApiKeySecret, Event, FirmId, Grid, MemberId, PermissionSet, Role, Scopes,
};
use projections::read_models::PgReadModels;
use projections::rebuild::{self, Options, Outcome, Progress};
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// A database of its own, dropped by [`Db::drop`].
struct Db {
    url: String,
    pool: PgPool,
}

impl Db {
    async fn new() -> Db {
        let base =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let server = base.rsplit_once('/').map_or(base.as_str(), |(server, _)| server).to_owned();
        let url = format!("{server}/esqase_test_{}", Uuid::now_v7().simple());
        let pool = commands::db::connect(&url, 8).await.expect("a database");
        Db { url, pool }
    }

    async fn drop(self) {
        self.pool.close().await;
        commands::db::drop_database(&self.url).await.expect("dropped");
    }
}

/// Commits events the way a command does: appended at the stream's next version and folded
/// into the read models and the audit log inline, in the same transaction.
struct Writer {
    pool: PgPool,
    /// Each event happens a second after the one before, from a fixed instant.
    clock: AtomicU64,
}

impl Writer {
    fn new(pool: &PgPool) -> Writer {
        Writer { pool: pool.clone(), clock: AtomicU64::new(0) }
    }

    fn now(&self) -> chrono::DateTime<Utc> {
        let tick = self.clock.fetch_add(1, Ordering::SeqCst);
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + TimeDelta::seconds(tick as i64)
    }

    async fn commit(&self, firm: FirmId, actor: Actor, streams: Vec<(Uuid, Vec<Event>)>) -> Vec<RecordedEvent> {
        let mut tx = WriterTx::begin(&self.pool, None).await.expect("a writer");
        let mut appends = Vec::new();
        for (stream_id, events) in streams {
            let expected_version: i32 =
                sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1")
                    .bind(stream_id)
                    .fetch_one(&mut *tx)
                    .await
                    .expect("the stream's version");
            appends.push(Append { stream_id, expected_version, events });
        }
        let metadata = Metadata { firm_id: firm, actor, request_id: None, occurred_at: self.now() };
        let recorded = store::append(&mut tx, &metadata, &appends).await.expect("appended");
        PgReadModels.apply(&mut tx, &recorded).await.expect("folded inline");
        tx.commit().await.expect("committed");
        recorded
    }

    async fn one(&self, firm: FirmId, actor: Actor, stream: Uuid, event: Event) -> Vec<RecordedEvent> {
        self.commit(firm, actor, vec![(stream, vec![event])]).await
    }
}

fn key(name: &str, created_by: MemberId, expires_at: Option<chrono::DateTime<Utc>>, domains: &[&str]) -> Event {
    let secret = ApiKeySecret::generate();
    Event::ApiKeyCreated {
        name: KeyName::parse(name).unwrap(),
        key_hash: secret.hash(),
        preview: secret.preview(),
        scopes: Scopes::parse(&["contacts:read", "matters:write"]).unwrap(),
        expires_at,
        allowed_domains: if domains.is_empty() {
            AllowedDomains::any()
        } else {
            AllowedDomains::parse(domains).unwrap()
        },
        created_by,
        replaces: None,
        rate_limit: None,
    }
}

/// A key created with a rate limit.
fn limited_key(name: &str, created_by: MemberId, limit: RateLimit) -> Event {
    match key(name, created_by, None, &[]) {
        Event::ApiKeyCreated {
            rate_limit: _,
            name,
            key_hash,
            preview,
            scopes,
            expires_at,
            allowed_domains,
            created_by,
            replaces,
        } => Event::ApiKeyCreated {
            name,
            key_hash,
            preview,
            scopes,
            expires_at,
            allowed_domains,
            created_by,
            replaces,
            rate_limit: Some(limit),
        },
        other => other,
    }
}

fn revoked(reason: RevocationReason) -> Event {
    let details = (reason == RevocationReason::Leaked)
        .then(|| RevocationDetails { url: Some("https://example.test/leak".into()), source: Some("content".into()) });
    Event::ApiKeyRevoked { reason, details }
}

/// Where each event type falls in the coverage check. A new event type does not compile here
/// until the scenario below records it too.
fn event_type_index(event: &Event) -> usize {
    match event {
        Event::FirmCreated { .. } => 0,
        Event::RolePermissionsChanged { .. } => 1,
        Event::MemberRegistered { .. } => 2,
        Event::MemberInvited { .. } => 3,
        Event::InvitationAccepted {} => 4,
        Event::MemberRoleChanged { .. } => 5,
        Event::MemberRemoved {} => 6,
        Event::MemberSignInThrottled { .. } => 7,
        Event::ApiKeyCreated { .. } => 8,
        Event::ApiKeyDomainsUpdated { .. } => 9,
        Event::ApiKeyRevoked { .. } => 10,
        Event::ApiKeyRolled { .. } => 11,
        Event::ApiKeyUsed { .. } => 12,
        Event::ApiKeyExpired {} => 13,
        Event::ApiKeyRateLimitUpdated { .. } => 14,
    }
}
const EVENT_TYPES: usize = 15;

/// A firm with its owner; returns (firm, owner).
async fn firm(w: &Writer, name: &str, email: &str) -> (FirmId, MemberId) {
    let firm = FirmId::new();
    let owner = MemberId::new();
    let created = Event::FirmCreated {
        name: FirmName::parse(name).unwrap(),
        time_zone: domain::names::FirmTimeZone::parse("America/New_York").unwrap(),
        grid: Grid::default(),
    };
    let registered = Event::MemberRegistered {
        name: PersonName::parse("Olivia Owner").unwrap(),
        email: domain::names::Email::parse(email).unwrap(),
        role: Role::Owner,
    };
    w.commit(firm, Actor::Member(owner), vec![(firm.as_uuid(), vec![created]), (owner.as_uuid(), vec![registered])])
        .await;
    (firm, owner)
}

/// A log with every event type and every revocation reason, across two firms; returns every
/// event recorded.
async fn every_kind_of_event(w: &Writer) -> Vec<RecordedEvent> {
    let mut log = Vec::new();
    let (acme, owner) = firm(w, "Acme Law", "olivia@acme.test").await;
    let (other, other_owner) = firm(w, "Other Law", "oscar@other.test").await;
    let by_owner = Actor::Member(owner);
    let system = Actor::System;

    // Members: invited and joined, invited only, a role change, throttled sign-ins, a removal.
    let (adam, sam) = (MemberId::new(), MemberId::new());
    for (member, name, email, role) in
        [(adam, "Adam Admin", "adam@acme.test", Role::Attorney), (sam, "Sam Staff", "sam@acme.test", Role::Staff)]
    {
        let invited = Event::MemberInvited {
            name: PersonName::parse(name).unwrap(),
            email: domain::names::Email::parse(email).unwrap(),
            role,
        };
        log.extend(w.one(acme, by_owner, member.as_uuid(), invited).await);
    }
    log.extend(w.one(acme, Actor::Member(adam), adam.as_uuid(), Event::InvitationAccepted {}).await);
    let promoted = Event::MemberRoleChanged { before: Role::Attorney, after: Role::Administrator };
    log.extend(w.one(acme, by_owner, adam.as_uuid(), promoted).await);
    log.extend(w.one(acme, system, adam.as_uuid(), Event::MemberSignInThrottled { failures: 5 }).await);
    let grid = Grid::default();
    for role in [Role::Staff, Role::Attorney] {
        let before = grid.permissions(role);
        let after = PermissionSet::parse(&["contacts:read", "api_keys"]).unwrap();
        let changed = Event::RolePermissionsChanged { role, before, after };
        log.extend(w.one(acme, by_owner, acme.as_uuid(), changed).await);
    }

    // Keys: domains and expiry, edits, uses (one flush carries an earlier use than the last).
    let in_a_year = Some(Utc.with_ymd_and_hms(2027, 12, 1, 5, 0, 0).unwrap());
    let used = |minutes: i64| Event::ApiKeyUsed {
        last_used_at: Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap() + TimeDelta::minutes(minutes),
        count: 3,
    };
    let revoked_by_member = Uuid::now_v7();
    log.extend(
        w.one(acme, by_owner, revoked_by_member, key("Intake", owner, in_a_year, &["app.example.com", "*.acme.test"]))
            .await,
    );
    let edited = Event::ApiKeyDomainsUpdated {
        before: AllowedDomains::parse(&["app.example.com", "*.acme.test"]).unwrap(),
        after: AllowedDomains::parse(&["portal.example.com"]).unwrap(),
    };
    log.extend(w.one(acme, Actor::Member(adam), revoked_by_member, edited).await);
    let limit = RateLimit::new(100, 60).unwrap();
    let limited = Event::ApiKeyRateLimitUpdated { before: None, after: Some(limit) };
    log.extend(w.one(acme, by_owner, revoked_by_member, limited).await);
    // Created with a limit, which is then lifted.
    let lifted = Uuid::now_v7();
    log.extend(w.one(acme, by_owner, lifted, limited_key("Burst", owner, RateLimit::new(10, 1).unwrap())).await);
    let unlimited = Event::ApiKeyRateLimitUpdated { before: Some(RateLimit::new(10, 1).unwrap()), after: None };
    log.extend(w.one(acme, by_owner, lifted, unlimited).await);
    let capped = Uuid::now_v7();
    log.extend(w.one(acme, by_owner, capped, limited_key("Capped", owner, RateLimit::new(5000, 3600).unwrap())).await);
    for minutes in [5, 20, 10] {
        log.extend(w.one(acme, system, revoked_by_member, used(minutes)).await);
    }
    log.extend(w.one(acme, Actor::Member(adam), revoked_by_member, revoked(RevocationReason::RevokedByMember)).await);

    // The creator removed: the member and their key in one commit.
    let sams_key = Uuid::now_v7();
    log.extend(w.one(acme, Actor::Member(sam), sams_key, key("Sam's sync", sam, None, &[])).await);
    log.extend(
        w.commit(
            acme,
            by_owner,
            vec![
                (sam.as_uuid(), vec![Event::MemberRemoved {}]),
                (sams_key, vec![revoked(RevocationReason::CreatorRemoved)]),
            ],
        )
        .await,
    );

    // Leaked, reported by a scanner.
    let leaked = Uuid::now_v7();
    log.extend(w.one(acme, by_owner, leaked, key("Public repo", owner, None, &[])).await);
    log.extend(w.one(acme, system, leaked, used(1)).await);
    log.extend(w.one(acme, system, leaked, revoked(RevocationReason::Leaked)).await);

    // Rolled twice: one grace period over (recorded by the sweeper), one still running.
    for (name, grace_minutes, ended) in [("Billing", 0, true), ("Reports", 60, false)] {
        let old = Uuid::now_v7();
        let new = ApiKeyId::new();
        log.extend(w.one(acme, by_owner, old, key(name, owner, None, &["billing.example.com"])).await);
        let secret = ApiKeySecret::generate();
        let grace_ends_at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap() + TimeDelta::minutes(grace_minutes);
        let rolled = Event::ApiKeyRolled { replaced_by: new, replaced_by_preview: secret.preview(), grace_ends_at };
        let Event::ApiKeyCreated { name, scopes, allowed_domains, .. } =
            key(name, owner, None, &["billing.example.com"])
        else {
            unreachable!("key() makes a creation")
        };
        let successor = Event::ApiKeyCreated {
            name,
            key_hash: secret.hash(),
            preview: secret.preview(),
            scopes,
            expires_at: None,
            allowed_domains,
            created_by: owner,
            replaces: Some(ApiKeyId::from_uuid(old)),
            rate_limit: None,
        };
        log.extend(w.commit(acme, by_owner, vec![(old, vec![rolled]), (new.as_uuid(), vec![successor])]).await);
        if ended {
            log.extend(w.one(acme, system, old, revoked(RevocationReason::Rolled)).await);
        }
    }

    // Expired, and one that lives on in the other firm.
    let expiring = Uuid::now_v7();
    let yesterday = Some(Utc.with_ymd_and_hms(2026, 11, 30, 5, 0, 0).unwrap());
    log.extend(w.one(acme, by_owner, expiring, key("Old import", owner, yesterday, &[])).await);
    log.extend(w.one(acme, system, expiring, Event::ApiKeyExpired {}).await);
    let others = Uuid::now_v7();
    log.extend(w.one(other, Actor::Member(other_owner), others, key("Sync", other_owner, None, &[])).await);
    log.extend(w.one(other, system, others, used(2)).await);

    let all: Vec<RecordedEvent> =
        store::read_all_after(&mut w.pool.acquire().await.unwrap(), store::FeedPosition::START, 10_000)
            .await
            .expect("the log");
    let mut seen = [false; EVENT_TYPES];
    let mut reasons = Vec::new();
    for e in &all {
        seen[event_type_index(&e.event)] = true;
        if let Event::ApiKeyRevoked { reason, .. } = &e.event {
            reasons.push(*reason);
        }
    }
    assert!(seen.iter().all(|s| *s), "the scenario lacks an event type: {seen:?}");
    for reason in RevocationReason::ALL {
        assert!(reasons.contains(&reason), "the scenario lacks revocations for {reason:?}");
    }
    all
}

/// Every row of both projections' tables, as text, in a stable order.
async fn rows(pool: &PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for (table, order) in [
        ("firms", "id"),
        ("role_permissions", "firm_id, role"),
        ("members", "id"),
        ("api_keys", "id"),
        ("audit_log", "firm_id, sequence"),
        ("audit_chain_heads", "firm_id"),
    ] {
        let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY {order}"))
            .fetch_all(pool)
            .await
            .unwrap();
        rows.extend(texts.into_iter().map(|row| format!("{table} {row}")));
    }
    rows
}

/// The projections' tables as the catalog describes them: columns, indexes, constraints,
/// grants, owner.
async fn catalog(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname || ': ' || x.what FROM pg_class c
           JOIN LATERAL (
                SELECT 'column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull AS what
                  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                UNION ALL SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = c.oid
                UNION ALL SELECT 'constraint ' || k.conname || ' ' || pg_get_constraintdef(k.oid)
                            FROM pg_constraint k WHERE k.conrelid = c.oid
                UNION ALL SELECT 'acl ' || coalesce(c.relacl::text, 'default') || ' owner ' || c.relowner::regrole::text) x ON true
          WHERE c.relnamespace = 'public'::regnamespace
            AND c.relname IN ('firms', 'role_permissions', 'members', 'api_keys', 'audit_log', 'audit_chain_heads')
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What the semantic checks read of a key's row.
#[derive(Clone, sqlx::FromRow)]
struct KeyShown {
    name: String,
    lifecycle: String,
    revoke_reason: Option<String>,
    revoked_by_member: bool,
    /// `HH24:MI` in UTC.
    revoked_at: Option<String>,
    allowed_domains: Vec<String>,
}

/// The reports a rebuild made.
#[derive(Default)]
struct Reports(Mutex<Vec<(u64, u64)>>);

impl Progress for Reports {
    fn report(&self, replayed: u64, total: u64) {
        self.0.lock().unwrap().push((replayed, total));
    }
}

impl Reports {
    fn first(&self) -> (u64, u64) {
        self.0.lock().unwrap().first().copied().expect("a report")
    }
    fn last(&self) -> (u64, u64) {
        self.0.lock().unwrap().last().copied().expect("a report")
    }
}

fn chunks_of(chunk_events: u64) -> Options {
    Options { chunk_events, ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_makes_the_tables_the_inline_fold_made_in_one_chunk_or_many() {
    let db = Db::new().await;
    let w = Writer::new(&db.pool);
    let log = every_kind_of_event(&w).await;
    let inline = rows(&db.pool).await;
    let described = catalog(&db.pool).await;
    // What the fold makes of the log, in the cases its rules single out.
    let keys: Vec<KeyShown> = sqlx::query_as(
        "SELECT name, lifecycle, revoke_reason, revoked_by IS NOT NULL AS revoked_by_member,
                to_char(revoked_at AT TIME ZONE 'UTC', 'HH24:MI') AS revoked_at, allowed_domains
           FROM api_keys ORDER BY name, created_at",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let key_named = |name: &str| keys.iter().find(|k| k.name == name).cloned().unwrap();
    let named = |name: &str| keys.iter().filter(|k| k.name == name).count();
    // The edited domains; the member who revoked it.
    let intake = key_named("Intake");
    assert_eq!(
        (intake.lifecycle.as_str(), intake.revoke_reason.as_deref(), intake.revoked_by_member),
        ("revoked", Some("revoked_by_member"), true)
    );
    assert_eq!(intake.allowed_domains, vec!["portal.example.com".to_owned()]);
    let sams = key_named("Sam's sync");
    assert_eq!(
        (sams.lifecycle.as_str(), sams.revoke_reason.as_deref(), sams.revoked_by_member),
        ("revoked", Some("creator_removed"), false)
    );
    assert_eq!(key_named("Public repo").revoke_reason.as_deref(), Some("leaked"));
    // A rolled key is revoked from its grace end (12:00), not from when the sweeper recorded it.
    let billing = key_named("Billing");
    assert_eq!(
        (billing.revoke_reason.as_deref(), billing.revoked_by_member, billing.revoked_at.as_deref()),
        (Some("rolled"), false, Some("12:00"))
    );
    assert_eq!((named("Billing"), named("Reports")), (2, 2));
    assert_eq!(key_named("Old import").lifecycle, "expired");
    let limits: Vec<(String, Option<i32>, Option<i32>)> = sqlx::query_as(
        "SELECT name, rate_limit, rate_limit_window_seconds FROM api_keys
          WHERE name IN ('Intake', 'Burst', 'Capped') ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        limits,
        vec![
            ("Burst".into(), None, None),
            ("Capped".into(), Some(5000), Some(3600)),
            ("Intake".into(), Some(100), Some(60))
        ]
    );
    // The latest use, though a later flush carried an earlier one.
    let uses: Vec<String> = sqlx::query_scalar(
        "SELECT to_char(last_used_at AT TIME ZONE 'UTC', 'HH24:MI') FROM api_keys WHERE name = 'Intake'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(uses, vec!["10:20".to_owned()]);
    let members: Vec<(String, String, String, bool)> =
        sqlx::query_as("SELECT name, role, status, joined FROM members ORDER BY name")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert!(members.contains(&("Adam Admin".into(), "administrator".into(), "active".into(), true)), "{members:?}");
    assert!(members.contains(&("Sam Staff".into(), "staff".into(), "removed".into(), false)), "{members:?}");
    let staff: Vec<String> = sqlx::query_scalar(
        "SELECT unnest(permissions) FROM role_permissions r JOIN firms f ON f.id = r.firm_id
          WHERE f.name = 'Acme Law' AND r.role = 'staff' ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(staff, vec!["api_keys".to_owned(), "contacts:read".to_owned()]);

    for options in [Options::default(), chunks_of(1), chunks_of(7)] {
        for name in ["read_models", "audit_log"] {
            let reports = Reports::default();
            let outcome = rebuild::rebuild_with(&db.pool, name, &options, &reports).await.expect("rebuilt");
            assert_eq!(outcome, Outcome::Swapped { replayed: log.len() as u64 });
            assert_eq!(reports.last(), (log.len() as u64, log.len() as u64));
            assert_eq!(rows(&db.pool).await, inline, "{name} rebuilt in chunks of {} differs", options.chunk_events);
        }
    }
    assert_eq!(catalog(&db.pool).await, described, "the swapped tables are not described as the old ones");
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'esqase_rebuild'::regnamespace)
              + (SELECT count(*) FROM checkpoints WHERE name LIKE 'rebuild:%')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(left, 0, "a finished rebuild leaves no shadow table and no checkpoint");

    // Folding the log again inline changes nothing: every step is idempotent.
    let mut tx = db.pool.begin().await.unwrap();
    PgReadModels.apply(&mut tx, &log).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rows(&db.pool).await, inline);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_rebuild_goes_on_from_its_last_chunk_and_ends_as_an_uninterrupted_one() {
    let db = Db::new().await;
    let w = Writer::new(&db.pool);
    let log = every_kind_of_event(&w).await;
    let before = rows(&db.pool).await;

    for name in ["read_models", "audit_log"] {
        let paused = Options { chunk_events: 5, stop_after_chunks: Some(3), ..Options::default() };
        let outcome = rebuild::rebuild_with(&db.pool, name, &paused, &()).await.expect("paused");
        assert_eq!(outcome, Outcome::Paused { replayed: 15 });
        // Readers see the old tables, whole, while the new ones are half built.
        assert_eq!(rows(&db.pool).await, before);
        let checkpoint: i64 = sqlx::query_scalar("SELECT position FROM checkpoints WHERE name = $1")
            .bind(format!("rebuild:{name}"))
            .fetch_one(&db.pool)
            .await
            .expect("a checkpoint");
        assert_eq!(checkpoint, log[14].feed.position);
    }

    // Commands go on meanwhile, into the old tables.
    let (firm, owner) = firm(&w, "Late Law", "lena@late.test").await;
    let late_key = Uuid::now_v7();
    w.one(firm, Actor::Member(owner), late_key, key("Late", owner, None, &[])).await;
    w.one(firm, Actor::Member(owner), late_key, revoked(RevocationReason::RevokedByMember)).await;
    let with_late = rows(&db.pool).await;
    assert_ne!(with_late, before);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();
    let events = events as u64;

    for name in ["read_models", "audit_log"] {
        // Stopped once more, then run to the end: it goes on where it stopped each time.
        let reports = Reports::default();
        let paused = Options { chunk_events: 5, stop_after_chunks: Some(1), ..Options::default() };
        assert_eq!(
            rebuild::rebuild_with(&db.pool, name, &paused, &reports).await.unwrap(),
            Outcome::Paused { replayed: 20 }
        );
        assert_eq!(reports.first(), (15, events), "{name} resumed from its checkpoint");
        let reports = Reports::default();
        let outcome = rebuild::rebuild_with(&db.pool, name, &chunks_of(5), &reports).await.unwrap();
        assert_eq!(outcome, Outcome::Swapped { replayed: events });
        assert_eq!(reports.first().0, 20);
    }
    assert_eq!(rows(&db.pool).await, with_late, "the resumed rebuilds differ from the inline fold");

    // --restart throws a partial rebuild away and starts from the first event.
    let paused = Options { chunk_events: 5, stop_after_chunks: Some(2), ..Options::default() };
    rebuild::rebuild_with(&db.pool, "read_models", &paused, &()).await.unwrap();
    let reports = Reports::default();
    let restart = Options { restart: true, ..Options::default() };
    assert_eq!(
        rebuild::rebuild_with(&db.pool, "read_models", &restart, &reports).await.unwrap(),
        Outcome::Swapped { replayed: events }
    );
    assert_eq!(reports.first().0, 0);
    assert_eq!(rows(&db.pool).await, with_late);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_committed_while_a_rebuild_runs_are_in_its_result() {
    let db = Db::new().await;
    let w = Arc::new(Writer::new(&db.pool));
    let log = every_kind_of_event(&w).await;
    let (firm, owner) = firm(&w, "Busy Law", "bea@busy.test").await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // A writer that keeps committing creations, uses and revocations until told to stop.
    let writer = {
        let (w, done) = (w.clone(), done.clone());
        tokio::spawn(async move {
            let mut committed = 0u64;
            while !done.load(Ordering::SeqCst) {
                let key_id = Uuid::now_v7();
                w.one(firm, Actor::Member(owner), key_id, key("Busy", owner, None, &[])).await;
                w.one(firm, Actor::System, key_id, Event::ApiKeyUsed { last_used_at: w.now(), count: 1 }).await;
                if committed.is_multiple_of(3) {
                    w.one(firm, Actor::Member(owner), key_id, revoked(RevocationReason::RevokedByMember)).await;
                }
                committed += 1;
            }
            committed
        })
    };
    for name in ["read_models", "audit_log"] {
        let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&db.pool).await.unwrap();
        let outcome = rebuild::rebuild_with(&db.pool, name, &chunks_of(3), &()).await.expect("rebuilt");
        assert!(
            outcome.replayed() > events_before as u64,
            "{name} folded the events committed while it ran: {} of {events_before} before it started",
            outcome.replayed()
        );
    }
    done.store(true, Ordering::SeqCst);
    let committed = writer.await.unwrap();
    assert!(committed > 0);
    assert!(rows(&db.pool).await.len() > log.len());

    // What the tables show is what the log says, for every key and every audited event.
    let off: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT stream_id, max(version) AS version,
                                      bool_or(event_type = 'ApiKeyRevoked') AS revoked
                                 FROM events WHERE stream_kind = 'api_key' GROUP BY stream_id) e
           LEFT JOIN api_keys k ON k.id = e.stream_id
          WHERE k.id IS NULL OR k.version <> e.version OR (k.lifecycle = 'revoked') <> e.revoked",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(off, 0, "keys missing, or whose version or revocation differs from their events");
    let (audited, entries): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM events WHERE event_type <> 'ApiKeyUsed'), (SELECT count(*) FROM audit_log)",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(audited, entries, "one audit entry per audited event");
    let firms: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM firms").fetch_all(&db.pool).await.unwrap();
    for firm in firms {
        let verified = projections::audit::verify(&db.pool, FirmId::from_uuid(firm)).await.unwrap();
        assert!(verified.ok, "the chain of firm {firm}: {verified:?}");
    }
    // And a rebuild with nothing committing meanwhile agrees.
    let now = rows(&db.pool).await;
    for name in ["read_models", "audit_log"] {
        rebuild::rebuild(&db.pool, name).await.unwrap();
    }
    assert_eq!(rows(&db.pool).await, now);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_swapped_tables_keep_their_grants_and_one_rebuild_runs_at_a_time() {
    let db = Db::new().await;
    let w = Writer::new(&db.pool);
    every_kind_of_event(&w).await;
    let reader = format!("esqase_test_reader_{}", Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE ROLE {reader}")).execute(&db.pool).await.unwrap();
    sqlx::query(&format!("GRANT SELECT ON api_keys, audit_log TO {reader}")).execute(&db.pool).await.unwrap();
    sqlx::query(&format!("GRANT UPDATE ON members TO {reader} WITH GRANT OPTION")).execute(&db.pool).await.unwrap();
    let described = catalog(&db.pool).await;

    // A rebuild in progress holds its projection: a second one is refused.
    let paused = Options { chunk_events: 5, stop_after_chunks: Some(1), ..Options::default() };
    rebuild::rebuild_with(&db.pool, "read_models", &paused, &()).await.unwrap();
    let mut holder = db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(1702064481, 1919054445)").execute(&mut *holder).await.unwrap();
    let busy = rebuild::rebuild_with(&db.pool, "read_models", &Options::default(), &()).await;
    assert!(matches!(busy, Err(rebuild::RebuildError::Busy("read_models"))), "{busy:?}");
    sqlx::query("SELECT pg_advisory_unlock(1702064481, 1919054445)").execute(&mut *holder).await.unwrap();
    drop(holder);

    for name in ["read_models", "audit_log"] {
        rebuild::rebuild(&db.pool, name).await.unwrap();
    }
    assert_eq!(catalog(&db.pool).await, described);
    let can: bool = sqlx::query_scalar(&format!(
        "SELECT has_table_privilege('{reader}', 'api_keys', 'SELECT') AND has_table_privilege('{reader}', 'members', 'UPDATE WITH GRANT OPTION')"
    ))
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(can, "the grants were carried over");
    sqlx::query(&format!("DROP OWNED BY {reader}")).execute(&db.pool).await.unwrap();
    sqlx::query(&format!("DROP ROLE {reader}")).execute(&db.pool).await.unwrap();
    assert!(matches!(
        rebuild::rebuild(&db.pool, "nothing").await,
        Err(rebuild::RebuildError::Unknown(name)) if name == "nothing"
    ));
    db.drop().await;
}
