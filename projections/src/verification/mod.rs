//! The in-memory verification state each node holds: every key by the SHA-256 of its secret,
//! every member's role and status, every firm's grid. It is loaded from the read models as of a
//! known feed position, then kept current by the runner; answering "may this key do this?"
//! touches no database.
//!
//! Layout, for a million keys and more: each key is one fixed-size [`KeyRecord`] (104 bytes) in
//! one vector; two hash tables of `u32` slots find it by the hash of its secret and by its id;
//! names and previews live in one text arena; firms and creators are `u32` slots into small
//! vectors; allowed-domain lists, rate limits and what a roll left (the grace end, the
//! successor, the key replaced), which most keys do not have, sit in side maps that a flag bit
//! guards. About 150
//! bytes a key in all, and the body of `GET /v1/api-keys/current` comes from here too.

use crate::runner::{Projection, ProjectionError};
use crate::views::{ApiKeyView, MemberRef};
use commands::store::{FeedPosition, RecordedEvent};
use domain::api_key::KeyStatus;
use domain::{AllowedDomains, Event, Grid, KeyHash, PermissionSet, RateLimit, Role, StreamKind, Timestamp};
use hashbrown::HashTable;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, RwLock};
use uuid::Uuid;

mod load;

pub use load::load_key;

/// A key, as verification needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedKey {
    pub id: Uuid,
    pub firm: Uuid,
    /// Whose access it inherits.
    pub creator: Uuid,
    pub scopes: PermissionSet,
    /// Where a browser may use it from.
    pub allowed_domains: AllowedDomains,
    /// When it stops working (it is refused from that instant, recorded or not).
    pub expires_at: Option<Timestamp>,
    /// True once revoked, for good.
    pub revoked: bool,
    /// True once the sweeper has recorded its expiry (an event).
    pub expired_recorded: bool,
    /// When a roll's grace period ends (it is refused as revoked from that instant, recorded
    /// or not); `None` unless rolled.
    pub grace_ends_at: Option<Timestamp>,
    /// At most this many requests per window, across every node; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// Its stream's version as applied here.
    pub version: i32,
}

impl CachedKey {
    /// The key's status at `now` (the domain's one rule, [`KeyStatus::at`]).
    pub fn status_at(&self, now: Timestamp) -> KeyStatus {
        let recorded = recorded_status(self.revoked, self.expired_recorded);
        KeyStatus::at(recorded, self.expires_at, self.grace_ends_at, now)
    }

    /// True when the key works at `now`: not revoked, not past its expiry nor its grace end.
    pub fn is_active_at(&self, now: Timestamp) -> bool {
        self.status_at(now) == KeyStatus::Active
    }
}

/// What a key's events so far say of it, before its expiry is compared with the clock.
fn recorded_status(revoked: bool, expired_recorded: bool) -> KeyStatus {
    match (revoked, expired_recorded) {
        (true, _) => KeyStatus::Revoked,
        (false, true) => KeyStatus::Expired,
        (false, false) => KeyStatus::Active,
    }
}

/// A key as `GET /v1/api-keys/current` shows it, with its firm.
#[derive(Clone, Debug)]
pub struct CurrentKey {
    /// The key, as the keys table shows it.
    pub api_key: ApiKeyView,
    pub firm_id: Uuid,
    pub firm_name: String,
}

/// A member, as verification needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CachedMember {
    id: Uuid,
    firm: Uuid,
    /// Shown as a key's creator.
    name: Box<str>,
    role: Role,
    /// False once removed, and for a member only known from a key (not yet from their own
    /// event): either way their keys may do nothing.
    active: bool,
    /// Their stream's version as applied here; 0 while only known from a key.
    version: i32,
}

/// A firm, as verification needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CachedFirm {
    id: Uuid,
    /// Shown by `GET /v1/api-keys/current`.
    name: Box<str>,
    /// What each role may do now.
    grid: Grid,
    /// The firm stream's version as applied here; 0 while only known from a key or member.
    version: i32,
}

/// `expires_at` of a key that never expires, in microseconds.
const NEVER: i64 = i64::MAX;
/// `last_used_at` of a key never used, in microseconds.
const UNUSED: i64 = i64::MIN;

const REVOKED: u8 = 1;
const EXPIRED_RECORDED: u8 = 2;
/// The key was rolled: its successor and grace end are in `VerificationState::rolls`.
const ROLLED: u8 = 4;
/// The key was rolled from another: that key's id is in `VerificationState::replaces`.
const REPLACES: u8 = 8;
/// The key has a rate limit, in `VerificationState::rate_limits`.
const RATE_LIMITED: u8 = 16;

/// What a roll left on the old key, held beside its record (few keys have one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeldRoll {
    replaced_by: Uuid,
    /// Microseconds, like the record's times.
    grace_ends_at: i64,
}

/// One key, fixed-size. Times are microseconds since the epoch (Postgres' precision).
#[derive(Clone, Debug)]
struct KeyRecord {
    hash: KeyHash,
    id: Uuid,
    expires_at: i64,
    created_at: i64,
    last_used_at: i64,
    /// Where its name, then its preview, start in the text arena.
    text_at: u64,
    /// Slot of its firm.
    firm: u32,
    /// Slot of its creator.
    creator: u32,
    version: i32,
    scopes: PermissionSet,
    name_len: u16,
    preview_len: u8,
    /// `REVOKED` | `EXPIRED_RECORDED` | `ROLLED` | `REPLACES` | `RATE_LIMITED`.
    flags: u8,
}

fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

fn from_micros(m: i64) -> Option<Timestamp> {
    match m {
        NEVER | UNUSED => None,
        m => chrono::DateTime::from_timestamp_micros(m),
    }
}

/// A key's hash is a SHA-256 digest, uniform already: its first 8 bytes are its hash-table
/// hash. Keys are made by the service, so no caller can crowd one bucket; a presented secret
/// only chooses which bucket it looks in.
fn hash_of(hash: &KeyHash) -> u64 {
    let bytes = hash.as_bytes();
    u64::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}

/// The whole verification state of a node.
#[derive(Debug, Default)]
pub struct VerificationState {
    /// Every key; a key keeps its slot for the life of the node (revoked keys stay, to answer
    /// `api_key_revoked`).
    keys: Vec<KeyRecord>,
    /// Slots by the hash of the key's secret: the lookup of every verified request.
    by_hash: HashTable<u32>,
    /// Slots by key id: events name keys by id.
    by_id: HashTable<u32>,
    /// Seeds the hash of `by_id`.
    id_hasher: RandomState,
    /// Key names and previews, appended (names never change).
    text: String,
    /// Allowed domains of the keys (by slot) that have any.
    domains: HashMap<u32, AllowedDomains>,
    /// What a roll left on each rolled key (by slot; flagged `ROLLED`).
    rolls: HashMap<u32, HeldRoll>,
    /// The key each rolled-from key replaces (by slot; flagged `REPLACES`).
    replaces: HashMap<u32, Uuid>,
    /// The rate limit of each key that has one (by slot; flagged `RATE_LIMITED`).
    rate_limits: HashMap<u32, RateLimit>,
    /// Members: the ceiling of their keys, and their names.
    members: Vec<CachedMember>,
    /// Member id to slot.
    member_slots: HashMap<Uuid, u32>,
    /// Firms: their grids and names.
    firms: Vec<CachedFirm>,
    /// Firm id to slot.
    firm_slots: HashMap<Uuid, u32>,
    /// How far the feed is applied.
    checkpoint: FeedPosition,
    /// A feed position this state must reach before it answers again: set when an event that
    /// another node committed could not be folded ahead of the feed (a version missing here).
    behind_until: FeedPosition,
}

impl VerificationState {
    /// The key whose secret hashes to `hash`, with what its creator may do now (empty for a
    /// removed or unknown creator).
    pub fn key(&self, hash: &KeyHash) -> Option<(CachedKey, PermissionSet)> {
        let slot = self.slot_by_hash(hash)?;
        let record = &self.keys[slot as usize];
        let key = CachedKey {
            id: record.id,
            firm: self.firms[record.firm as usize].id,
            creator: self.members[record.creator as usize].id,
            scopes: record.scopes,
            allowed_domains: self.domains.get(&slot).cloned().unwrap_or_else(AllowedDomains::any),
            expires_at: from_micros(record.expires_at),
            revoked: record.flags & REVOKED != 0,
            expired_recorded: record.flags & EXPIRED_RECORDED != 0,
            grace_ends_at: self.roll_of(slot, record).and_then(|roll| from_micros(roll.grace_ends_at)),
            rate_limit: self.rate_limit_of(slot, record),
            version: record.version,
        };
        Some((key, self.ceiling(record)))
    }

    /// The rate limit of the key in `slot`; the flag spares the lookup for every other key.
    fn rate_limit_of(&self, slot: u32, record: &KeyRecord) -> Option<RateLimit> {
        if record.flags & RATE_LIMITED == 0 {
            return None;
        }
        self.rate_limits.get(&slot).copied()
    }

    /// What a roll left on the key in `slot`; the flag spares the lookup for every other key.
    fn roll_of(&self, slot: u32, record: &KeyRecord) -> Option<HeldRoll> {
        if record.flags & ROLLED == 0 {
            return None;
        }
        self.rolls.get(&slot).copied()
    }

    /// The key `id` as `GET /v1/api-keys/current` shows it, if it is Active at `now` (otherwise
    /// `None`: the caller reads the keys table, which also knows who revoked it and when).
    pub fn current_key(&self, id: Uuid, now: Timestamp) -> Option<CurrentKey> {
        let slot = self.slot_by_id(id)?;
        let record = &self.keys[slot as usize];
        let expires_at = from_micros(record.expires_at);
        let recorded = recorded_status(record.flags & REVOKED != 0, record.flags & EXPIRED_RECORDED != 0);
        let roll = self.roll_of(slot, record);
        let grace_ends_at = roll.and_then(|roll| from_micros(roll.grace_ends_at));
        if KeyStatus::at(recorded, expires_at, grace_ends_at, now) != KeyStatus::Active {
            return None;
        }
        let replaces = if record.flags & REPLACES == 0 { None } else { self.replaces.get(&slot).copied() };
        let (name, preview) = self.texts(record);
        let creator = &self.members[record.creator as usize];
        let firm = &self.firms[record.firm as usize];
        let api_key = ApiKeyView {
            id: record.id,
            name: name.to_owned(),
            preview: preview.to_owned(),
            scopes: record.scopes.names().into_iter().map(str::to_owned).collect(),
            allowed_domains: self.domains.get(&slot).map(AllowedDomains::to_strings).unwrap_or_default(),
            status: KeyStatus::Active,
            last_used_at: from_micros(record.last_used_at),
            expires_at,
            created_at: from_micros(record.created_at)?,
            created_by: MemberRef { id: creator.id, name: creator.name.to_string() },
            revoked_at: None,
            revoked_by: None,
            revocation_reason: None,
            replaced_by: roll.map(|roll| roll.replaced_by),
            grace_ends_at,
            replaces,
            rate_limit: self.rate_limit_of(slot, record),
        };
        Some(CurrentKey { api_key, firm_id: firm.id, firm_name: firm.name.to_string() })
    }

    /// How far the feed is applied.
    pub fn checkpoint(&self) -> FeedPosition {
        self.checkpoint
    }

    /// How many keys are held.
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// The heap the keys take in this state (records, both tables, names and previews, the
    /// allowed-domain map's table): what `/metrics` reports and the benchmark divides by keys.
    pub fn key_heap_bytes(&self) -> usize {
        self.keys.capacity() * std::mem::size_of::<KeyRecord>()
            + self.by_hash.allocation_size()
            + self.by_id.allocation_size()
            + self.text.capacity()
            + self.domains.capacity() * std::mem::size_of::<(u32, AllowedDomains)>()
            + self.rolls.capacity() * std::mem::size_of::<(u32, HeldRoll)>()
            + self.replaces.capacity() * std::mem::size_of::<(u32, Uuid)>()
            + self.rate_limits.capacity() * std::mem::size_of::<(u32, RateLimit)>()
    }

    fn slot_by_hash(&self, hash: &KeyHash) -> Option<u32> {
        self.by_hash.find(hash_of(hash), |&s| self.keys[s as usize].hash == *hash).copied()
    }

    fn slot_by_id(&self, id: Uuid) -> Option<u32> {
        self.by_id.find(self.id_hasher.hash_one(id), |&s| self.keys[s as usize].id == id).copied()
    }

    /// The key's name and preview.
    fn texts(&self, record: &KeyRecord) -> (&str, &str) {
        // Both were pushed whole at these offsets, so the ranges fall on character boundaries.
        let at = record.text_at as usize;
        let name_end = at + usize::from(record.name_len);
        let preview_end = name_end + usize::from(record.preview_len);
        (self.text.get(at..name_end).unwrap_or_default(), self.text.get(name_end..preview_end).unwrap_or_default())
    }

    /// What the creator of `record` may do now.
    fn ceiling(&self, record: &KeyRecord) -> PermissionSet {
        let member = &self.members[record.creator as usize];
        let firm = &self.firms[record.firm as usize];
        if member.active && firm.version > 0 {
            firm.grid.permissions(member.role)
        } else {
            PermissionSet::EMPTY
        }
    }

    /// The slot of firm `id`, made (unknown, granting nothing) if it is not held yet.
    fn firm_slot(&mut self, id: Uuid) -> u32 {
        if let Some(&slot) = self.firm_slots.get(&id) {
            return slot;
        }
        let slot = slot_number(self.firms.len());
        self.firms.push(CachedFirm { id, name: Box::default(), grid: Grid::default(), version: 0 });
        self.firm_slots.insert(id, slot);
        slot
    }

    /// The slot of member `id`, made (unknown, inactive) if they are not held yet: a key's
    /// event can come ahead of its creator's on this node.
    fn member_slot(&mut self, id: Uuid, firm: Uuid) -> u32 {
        if let Some(&slot) = self.member_slots.get(&id) {
            return slot;
        }
        let slot = slot_number(self.members.len());
        self.members.push(CachedMember {
            id,
            firm,
            name: Box::default(),
            role: Role::Staff,
            active: false,
            version: 0,
        });
        self.member_slots.insert(id, slot);
        slot
    }

    /// Adds a key not held yet; returns false (and holds nothing) if its id or hash is.
    fn insert_key(&mut self, new: NewKey<'_>) -> bool {
        if self.slot_by_id(new.id).is_some() || self.slot_by_hash(&new.hash).is_some() {
            return false;
        }
        let (Ok(name_len), Ok(preview_len)) = (u16::try_from(new.name.len()), u8::try_from(new.preview.len())) else {
            tracing::error!(api_key_id = %new.id, "key name or preview too long to hold; the key will not verify");
            return false;
        };
        let firm = self.firm_slot(new.firm);
        let creator = self.member_slot(new.creator, new.firm);
        let slot = slot_number(self.keys.len());
        let text_at = self.text.len() as u64;
        self.text.push_str(new.name);
        self.text.push_str(new.preview);
        if !new.allowed_domains.is_any() {
            self.domains.insert(slot, new.allowed_domains);
        }
        let mut flags = new.flags;
        if let Some(replaces) = new.replaces {
            self.replaces.insert(slot, replaces);
            flags |= REPLACES;
        }
        if let Some((replaced_by, grace_ends_at)) = new.roll {
            self.rolls.insert(slot, HeldRoll { replaced_by, grace_ends_at: micros(grace_ends_at) });
            flags |= ROLLED;
        }
        if let Some(limit) = new.rate_limit {
            self.rate_limits.insert(slot, limit);
            flags |= RATE_LIMITED;
        }
        self.keys.push(KeyRecord {
            hash: new.hash,
            id: new.id,
            expires_at: new.expires_at.map_or(NEVER, micros),
            created_at: micros(new.created_at),
            last_used_at: new.last_used_at.map_or(UNUSED, micros),
            text_at,
            firm,
            creator,
            version: new.version,
            scopes: new.scopes,
            name_len,
            preview_len,
            flags,
        });
        let keys = &self.keys;
        self.by_hash.insert_unique(hash_of(&new.hash), slot, |&s| hash_of(&keys[s as usize].hash));
        let id_hasher = &self.id_hasher;
        self.by_id.insert_unique(id_hasher.hash_one(new.id), slot, |&s| id_hasher.hash_one(keys[s as usize].id));
        true
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

    /// True unless an event known to be committed is missing here (see [`Self::mark_behind`]).
    pub fn is_current(&self) -> bool {
        self.checkpoint >= self.behind_until
    }

    /// Records that the events up to `position` are committed but not all reflected here: the
    /// state is not current until the feed has been applied that far.
    pub fn mark_behind(&mut self, position: FeedPosition) {
        self.behind_until = self.behind_until.max(position);
    }

    /// True if the state holds `e`'s stream at `e`'s version or later.
    pub fn reflects(&self, e: &RecordedEvent) -> bool {
        let held = match e.stream_kind {
            StreamKind::Firm => self.firm_slots.get(&e.stream_id).map(|&slot| self.firms[slot as usize].version),
            StreamKind::Member => self.member_slots.get(&e.stream_id).map(|&slot| self.members[slot as usize].version),
            StreamKind::ApiKey => self.slot_by_id(e.stream_id).map(|slot| self.keys[slot as usize].version),
        };
        held.is_some_and(|held| held >= e.version)
    }

    /// Folds a just-committed event (this node's, or one another node announced), ahead of the
    /// feed, if it is the very next version of its stream here (otherwise the feed brings it,
    /// in order, soon: see [`Self::reflects`] and [`Self::mark_behind`]). The checkpoint
    /// does not move: the feed still delivers the event, and its version makes that a no-op.
    pub fn apply_own(&mut self, e: &RecordedEvent) {
        self.fold(e, |held, event| held + 1 == event);
    }

    /// Folds `e` into whatever it changes, where `applies(held version, event version)`.
    fn fold(&mut self, e: &RecordedEvent, applies: impl Fn(i32, i32) -> bool) {
        let firm = e.metadata.firm_id.as_uuid();
        match &e.event {
            Event::FirmCreated { name, grid, .. } => {
                let slot = self.firm_slot(e.stream_id) as usize;
                let cached = &mut self.firms[slot];
                if cached.version == 0 {
                    cached.name = name.as_str().into();
                    cached.grid = *grid;
                    cached.version = e.version;
                }
            }
            Event::RolePermissionsChanged { role, after, .. } => {
                let Some(&slot) = self.firm_slots.get(&e.stream_id) else { return };
                let cached = &mut self.firms[slot as usize];
                if cached.version > 0 && applies(cached.version, e.version) {
                    cached.grid = cached.grid.with(*role, *after).unwrap_or(cached.grid);
                    cached.version = e.version;
                }
            }
            Event::MemberRegistered { name, role, .. } | Event::MemberInvited { name, role, .. } => {
                let slot = self.member_slot(e.stream_id, firm) as usize;
                let member = &mut self.members[slot];
                if member.version == 0 {
                    *member = CachedMember {
                        id: e.stream_id,
                        firm,
                        name: name.as_str().into(),
                        role: *role,
                        active: true,
                        version: e.version,
                    };
                }
            }
            Event::MemberRoleChanged { after, .. } => {
                self.update_member(e, &applies, |m| m.role = *after);
            }
            Event::MemberRemoved {} => self.update_member(e, &applies, |m| m.active = false),
            // Neither changes what verification holds, but each is a version of the member's
            // stream: the next event of it only applies on top of this one.
            Event::InvitationAccepted {} | Event::MemberSignInThrottled { .. } => {
                self.update_member(e, &applies, |_| {})
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
                self.insert_key(NewKey {
                    id: e.stream_id,
                    hash: *key_hash,
                    firm,
                    creator: created_by.as_uuid(),
                    name: name.as_str(),
                    preview: preview.as_str(),
                    scopes: scopes.as_set(),
                    allowed_domains: allowed_domains.clone(),
                    expires_at: *expires_at,
                    created_at: e.metadata.occurred_at,
                    last_used_at: None,
                    flags: 0,
                    replaces: replaces.map(|id| id.as_uuid()),
                    roll: None,
                    rate_limit: *rate_limit,
                    version: e.version,
                });
            }
            Event::ApiKeyRateLimitUpdated { after, .. } => {
                let flagged = |k: &mut KeyRecord| match after {
                    Some(_) => k.flags |= RATE_LIMITED,
                    None => k.flags &= !RATE_LIMITED,
                };
                if let Some(slot) = self.update_key(e, &applies, flagged) {
                    match after {
                        Some(limit) => self.rate_limits.insert(slot, *limit),
                        None => self.rate_limits.remove(&slot),
                    };
                }
            }
            Event::ApiKeyRolled { replaced_by, grace_ends_at, .. } => {
                if let Some(slot) = self.update_key(e, &applies, |k| k.flags |= ROLLED) {
                    let roll = HeldRoll { replaced_by: replaced_by.as_uuid(), grace_ends_at: micros(*grace_ends_at) };
                    self.rolls.insert(slot, roll);
                }
            }
            Event::ApiKeyDomainsUpdated { after, .. } => {
                if let Some(slot) = self.update_key(e, &applies, |_| {}) {
                    if after.is_any() {
                        self.domains.remove(&slot);
                    } else {
                        self.domains.insert(slot, after.clone());
                    }
                }
            }
            Event::ApiKeyRevoked { .. } => {
                self.update_key(e, &applies, |k| k.flags |= REVOKED);
            }
            Event::ApiKeyExpired {} => {
                self.update_key(e, &applies, |k| k.flags |= EXPIRED_RECORDED);
            }
            Event::ApiKeyUsed { last_used_at, .. } => {
                self.update_key(e, &applies, |k| k.last_used_at = k.last_used_at.max(micros(*last_used_at)));
            }
        }
    }

    fn update_member(
        &mut self,
        e: &RecordedEvent,
        applies: &impl Fn(i32, i32) -> bool,
        change: impl FnOnce(&mut CachedMember),
    ) {
        let Some(&slot) = self.member_slots.get(&e.stream_id) else { return };
        let member = &mut self.members[slot as usize];
        if member.version > 0 && applies(member.version, e.version) {
            change(member);
            member.version = e.version;
        }
    }

    /// Applies `change` to the key the event names, if the event is due; returns its slot then.
    fn update_key(
        &mut self,
        e: &RecordedEvent,
        applies: &impl Fn(i32, i32) -> bool,
        change: impl FnOnce(&mut KeyRecord),
    ) -> Option<u32> {
        let slot = self.slot_by_id(e.stream_id)?;
        let key = &mut self.keys[slot as usize];
        if !applies(key.version, e.version) {
            return None;
        }
        change(key);
        key.version = e.version;
        Some(slot)
    }
}

/// A slot number for the next element of a vector of `len`: slots are `u32` to keep each key
/// small; four billion keys on one node is beyond any firm's use.
fn slot_number(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 keys, members and firms on one node")
}

/// A key to hold, from its Created event or its read-model row.
struct NewKey<'a> {
    id: Uuid,
    hash: KeyHash,
    firm: Uuid,
    creator: Uuid,
    name: &'a str,
    preview: &'a str,
    scopes: PermissionSet,
    allowed_domains: AllowedDomains,
    expires_at: Option<Timestamp>,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    flags: u8,
    /// The key it was rolled from.
    replaces: Option<Uuid>,
    /// Its successor and grace end, once rolled.
    roll: Option<(Uuid, Timestamp)>,
    rate_limit: Option<RateLimit>,
    version: i32,
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

    /// A log whose firm "Acme Law" is created.
    fn firm() -> Log {
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
        log
    }

    /// Ada's invitation as an administrator.
    fn ada_invited() -> Event {
        Event::MemberInvited {
            name: PersonName::parse("Ada Admin").expect("valid"),
            email: Email::parse("ada@acme.test").expect("valid"),
            role: Role::Administrator,
        }
    }

    /// The Created event of a key named `name` with one scope.
    fn created(secret: &ApiKeySecret, name: &str, scope: &str, expires_at: Option<Timestamp>, by: MemberId) -> Event {
        Event::ApiKeyCreated {
            name: KeyName::parse(name).expect("valid"),
            key_hash: secret.hash(),
            preview: secret.preview(),
            scopes: Scopes::parse(&[scope]).expect("valid"),
            expires_at,
            allowed_domains: AllowedDomains::any(),
            created_by: by,
            replaces: None,
            rate_limit: None,
        }
    }

    fn firm_with_admin_key() -> (Log, MemberId, KeyHash, Uuid) {
        let mut log = firm();
        let admin = MemberId::new();
        log.apply(admin.as_uuid(), 1, ada_invited());
        let secret = ApiKeySecret::generate();
        let key = Uuid::now_v7();
        log.apply(key, 1, created(&secret, "Intake sync", "contacts:write", None, admin));
        (log, admin, secret.hash(), key)
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("valid")
    }

    #[test]
    fn a_created_key_is_found_by_the_hash_of_its_secret_and_carries_its_creators_ceiling() {
        let (log, _, hash, key) = firm_with_admin_key();
        let (cached, ceiling) = log.state.key(&hash).expect("cached");
        assert_eq!(cached.id, key);
        assert!(cached.is_active_at(at("2026-11-28T00:00:00Z")));
        assert!(ceiling.contains(Permission::ContactsWrite));
        assert!(log.state.key(&ApiKeySecret::generate().hash()).is_none());
    }

    #[test]
    fn a_revoked_key_stops_being_active_and_a_replay_changes_nothing() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        let revoked =
            log.apply(key, 2, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember, details: None });
        let before = log.state.key(&hash);
        log.state.apply(&revoked);
        assert_eq!(log.state.key(&hash), before);
        assert!(!before.expect("cached").0.is_active_at(at("2026-11-28T00:00:00Z")));
    }

    #[test]
    fn an_event_already_reflected_by_version_is_skipped() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        // As after loading a snapshot that already saw version 2: a late copy of version 2 changes nothing.
        let domains = AllowedDomains::parse(&["app.example.com"]).expect("valid");
        log.apply(key, 2, Event::ApiKeyDomainsUpdated { before: AllowedDomains::any(), after: domains.clone() });
        log.apply(key, 2, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember, details: None });
        let (cached, _) = log.state.key(&hash).expect("cached");
        assert_eq!(cached.allowed_domains, domains);
        assert!(!cached.revoked);
    }

    #[test]
    fn clearing_a_keys_domains_lets_it_be_used_from_any_site_again() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        let domains = AllowedDomains::parse(&["app.example.com"]).expect("valid");
        log.apply(key, 2, Event::ApiKeyDomainsUpdated { before: AllowedDomains::any(), after: domains.clone() });
        log.apply(key, 3, Event::ApiKeyDomainsUpdated { before: domains, after: AllowedDomains::any() });
        assert!(log.state.key(&hash).expect("cached").0.allowed_domains.is_any());
        assert!(log.state.domains.is_empty(), "no side entry is kept for a key without domains");
    }

    #[test]
    fn a_rate_limit_is_held_changed_and_removed_with_its_key() {
        let (mut log, _, hash, key) = firm_with_admin_key();
        assert_eq!(log.state.key(&hash).expect("cached").0.rate_limit, None);
        let limit = RateLimit::new(100, 60).ok();
        log.apply(key, 2, Event::ApiKeyRateLimitUpdated { before: None, after: limit });
        assert_eq!(log.state.key(&hash).expect("cached").0.rate_limit, limit);
        let current = log.state.current_key(key, at("2026-11-28T00:00:00Z")).expect("active");
        assert_eq!(current.api_key.rate_limit, limit);
        log.apply(key, 3, Event::ApiKeyRateLimitUpdated { before: limit, after: None });
        assert_eq!(log.state.key(&hash).expect("cached").0.rate_limit, None);
        assert!(log.state.rate_limits.is_empty(), "no side entry is kept for a key without a limit");
    }

    #[test]
    fn the_creators_ceiling_follows_the_grid_and_their_removal() {
        let (mut log, admin, hash, _) = firm_with_admin_key();
        let firm = log.firm.as_uuid();
        let without =
            Role::Administrator.default_permissions().difference([Permission::ContactsWrite].into_iter().collect());
        log.apply(
            firm,
            2,
            Event::RolePermissionsChanged { role: Role::Administrator, before: PermissionSet::all(), after: without },
        );
        assert!(!log.state.key(&hash).expect("cached").1.contains(Permission::ContactsWrite));
        log.apply(admin.as_uuid(), 2, Event::MemberRemoved {});
        assert!(log.state.key(&hash).expect("cached").1.is_empty());
    }

    #[test]
    fn a_key_whose_creator_is_not_known_yet_may_do_nothing_until_their_event_arrives() {
        let mut log = firm();
        let admin = MemberId::new();
        let secret = ApiKeySecret::generate();
        let created = log.record(Uuid::now_v7(), 1, created(&secret, "Early", "contacts:read", None, admin));
        log.state.apply_own(&created);
        assert!(log.state.key(&secret.hash()).expect("cached").1.is_empty());
        log.apply(admin.as_uuid(), 1, ada_invited());
        assert!(log.state.key(&secret.hash()).expect("cached").1.contains(Permission::ContactsRead));
        let current = log.state.current_key(created.stream_id, at("2026-11-28T00:00:00Z")).expect("active");
        assert_eq!(current.api_key.created_by.name, "Ada Admin");
    }

    #[test]
    fn the_current_key_shows_its_name_preview_creator_firm_and_latest_use() {
        let (mut log, admin, _, key) = firm_with_admin_key();
        let now = at("2026-11-28T00:00:00Z");
        let current = log.state.current_key(key, now).expect("active");
        assert_eq!(current.api_key.name, "Intake sync");
        assert!(current.api_key.preview.starts_with("esq_") && current.api_key.preview.contains('…'));
        assert_eq!(current.api_key.scopes, ["contacts:write"]);
        assert_eq!(current.api_key.created_by.id, admin.as_uuid());
        assert_eq!(current.api_key.created_at, at("2026-11-27T12:00:00Z"));
        assert_eq!(current.api_key.last_used_at, None);
        assert_eq!((current.firm_id, current.firm_name.as_str()), (log.firm.as_uuid(), "Acme Law"));

        log.apply(key, 2, Event::ApiKeyUsed { last_used_at: at("2026-11-27T13:00:00.123456Z"), count: 3 });
        log.apply(key, 3, Event::ApiKeyUsed { last_used_at: at("2026-11-27T12:30:00Z"), count: 1 });
        let used = log.state.current_key(key, now).expect("active");
        assert_eq!(used.api_key.last_used_at, Some(at("2026-11-27T13:00:00.123456Z")), "the latest use, exactly");

        log.apply(key, 4, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember, details: None });
        assert!(log.state.current_key(key, now).is_none(), "a revoked key is shown from the keys table");
    }

    #[test]
    fn a_key_past_its_expiry_is_not_current_even_before_the_sweeper_records_it() {
        let (mut log, admin, _, _) = firm_with_admin_key();
        let secret = ApiKeySecret::generate();
        let id = Uuid::now_v7();
        log.apply(id, 1, created(&secret, "Short lived", "contacts:read", Some(at("2026-12-01T00:00:00Z")), admin));
        assert!(log.state.current_key(id, at("2026-11-30T23:59:59.999Z")).is_some());
        assert!(log.state.current_key(id, at("2026-12-01T00:00:00Z")).is_none());
        let (cached, _) = log.state.key(&secret.hash()).expect("cached");
        assert!(!cached.is_active_at(at("2026-12-01T00:00:00Z")));
    }

    #[test]
    fn every_one_of_many_keys_is_found_by_hash_and_by_id_and_a_duplicate_is_not_held_twice() {
        let (mut log, admin, _, _) = firm_with_admin_key();
        let mut made = Vec::new();
        for i in 0..5_000 {
            let secret = ApiKeySecret::generate();
            let id = Uuid::now_v7();
            let recorded = log.apply(id, 1, created(&secret, &format!("Key {i}"), "matters:read", None, admin));
            made.push((secret, id, recorded));
        }
        let count = log.state.key_count();
        for (secret, id, recorded) in &made {
            assert_eq!(log.state.key(&secret.hash()).expect("found by hash").0.id, *id);
            assert!(log.state.current_key(*id, at("2026-11-28T00:00:00Z")).is_some());
            log.state.apply_own(recorded);
        }
        assert_eq!(log.state.key_count(), count, "a second copy of a Created event adds nothing");
        assert!(log.state.key_heap_bytes() > count * std::mem::size_of::<KeyRecord>());
    }

    #[test]
    fn a_key_record_stays_small() {
        // The per-key budget (docs/benchmarks.md): the record is most of it.
        assert!(std::mem::size_of::<KeyRecord>() <= 104, "{}", std::mem::size_of::<KeyRecord>());
    }

    #[test]
    fn a_rolled_key_verifies_until_its_grace_ends_and_its_successor_names_it() {
        let (mut log, admin, hash, key) = firm_with_admin_key();
        let successor = ApiKeySecret::generate();
        let new_id = Uuid::now_v7();
        let mut created = created(&successor, "Intake sync", "contacts:write", None, admin);
        if let Event::ApiKeyCreated { replaces, .. } = &mut created {
            *replaces = Some(domain::ApiKeyId::from_uuid(key));
        }
        log.apply(new_id, 1, created);
        let end = at("2026-11-28T01:00:00Z");
        let rolled = Event::ApiKeyRolled {
            replaced_by: domain::ApiKeyId::from_uuid(new_id),
            replaced_by_preview: successor.preview(),
            grace_ends_at: end,
        };
        log.apply(key, 2, rolled);
        let (old, _) = log.state.key(&hash).expect("cached");
        assert_eq!(old.grace_ends_at, Some(end));
        assert!(old.is_active_at(at("2026-11-28T00:59:59.999Z")));
        assert_eq!(old.status_at(end), KeyStatus::Revoked, "refused as revoked from the instant, unrecorded");
        let current = log.state.current_key(key, at("2026-11-28T00:00:00Z")).expect("in its grace period");
        assert_eq!((current.api_key.replaced_by, current.api_key.grace_ends_at), (Some(new_id), Some(end)));
        assert!(log.state.current_key(key, end).is_none());
        let new = log.state.current_key(new_id, end).expect("the successor works");
        assert_eq!(new.api_key.replaces, Some(key));
        assert_eq!(log.state.key(&successor.hash()).expect("cached").0.grace_ends_at, None);
    }
}
