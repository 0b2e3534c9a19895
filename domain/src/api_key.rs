//! The API key aggregate: created Active; Active is the only state that accepts a domain edit,
//! a revocation, a roll or an expiry; scopes and expiry never change; revoking cannot be undone.
//! A rolled key stays Active until its grace period ends and is Revoked from that instant.

use crate::allowed_domains::AllowedDomains;
use crate::events::{Event, RevocationDetails, RevocationReason};
use crate::names::KeyName;
use crate::permissions::{PermissionSet, Scopes};
use crate::rate_limit::RateLimit;
use crate::secret::{KeyHash, KeyPreview};
use crate::{ApiKeyId, MemberId, Timestamp};

/// A key as its stream tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub name: KeyName,
    /// SHA-256 of the secret.
    pub key_hash: KeyHash,
    pub preview: KeyPreview,
    /// What it may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Where a browser may use it from.
    pub allowed_domains: AllowedDomains,
    /// Whose access it inherits.
    pub created_by: MemberId,
    pub created_at: Timestamp,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// The latest authenticated request, as far as Used events have told.
    pub last_used_at: Option<Timestamp>,
    /// The key this one was rolled from, if it was.
    pub replaces: Option<ApiKeyId>,
    /// Set once the key is rolled: it stops working when the grace period ends.
    pub rolled: Option<Roll>,
    /// At most this many requests per window, across every node; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
}

/// What a roll left on the old key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roll {
    /// The key that took over.
    pub replaced_by: ApiKeyId,
    /// The instant the old key stops working.
    pub grace_ends_at: Timestamp,
}

/// The longest grace period a roll may give the old key: 7 days, in seconds.
pub const MAX_GRACE_PERIOD_SECONDS: u32 = 604_800;

/// How long a rolled key keeps working, checked to be within 0 ..= 7 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GracePeriod(u32);

impl GracePeriod {
    /// What a grace period must be, as a field error says it.
    pub const RULE: &'static str = "must be a whole number of seconds from 0 to 604800 (7 days)";

    /// Accepts 0 (revoked at the roll's instant) up to [`MAX_GRACE_PERIOD_SECONDS`].
    pub fn from_seconds(seconds: i64) -> Result<GracePeriod, &'static str> {
        u32::try_from(seconds).ok().filter(|s| *s <= MAX_GRACE_PERIOD_SECONDS).map(GracePeriod).ok_or(Self::RULE)
    }

    pub const fn seconds(self) -> u32 {
        self.0
    }

    /// When a grace period begun at `now` ends.
    pub fn ends(self, now: Timestamp) -> Timestamp {
        now + chrono::TimeDelta::seconds(i64::from(self.0))
    }
}

/// The recorded state of a key. An Active key past its expiry is [`KeyStatus::Expired`] all the
/// same (see [`ApiKey::status_at`]): the Expired event may not have been written yet.
#[derive(Clone, Debug, PartialEq)]
pub enum Lifecycle {
    /// Working.
    Active,
    /// Turned off by someone, for good.
    Revoked {
        at: Timestamp,
        /// Who (`None` when the service did it, e.g. the creator was removed).
        by: Option<MemberId>,
        reason: RevocationReason,
    },
    /// Past its expiry, as recorded by the sweeper.
    Expired {
        /// When the sweeper recorded it.
        at: Timestamp,
    },
}

/// What the keys table shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    /// Working.
    Active,
    /// Turned off by someone.
    Revoked,
    /// Past its expiry date.
    Expired,
}

impl KeyStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
        }
    }

    /// Parses the wire name.
    pub fn parse(name: &str) -> Option<Self> {
        [KeyStatus::Active, KeyStatus::Revoked, KeyStatus::Expired].into_iter().find(|s| s.as_str() == name)
    }

    /// The status at `now` of a key whose events so far leave it `recorded`: a key recorded
    /// Active is Expired from the instant its expiry passes, and Revoked from the instant a
    /// roll's grace period ends, whether or not the sweeper has written the event yet; when
    /// both have passed, whichever came first (a tie is Revoked), so the status never changes
    /// again once the key has stopped. The one statement of "usable at `now`" (the SQL twin is
    /// `projections::views::key_status_is`).
    pub fn at(
        recorded: KeyStatus,
        expires_at: Option<Timestamp>,
        grace_ends_at: Option<Timestamp>,
        now: Timestamp,
    ) -> KeyStatus {
        match recorded {
            KeyStatus::Active if grace_ended(expires_at, grace_ends_at, now) => KeyStatus::Revoked,
            KeyStatus::Active if is_past(expires_at, now) => KeyStatus::Expired,
            other => other,
        }
    }
}

/// True when a grace period exists, `now` has reached its end, and the key did not expire
/// before it.
fn grace_ended(expires_at: Option<Timestamp>, grace_ends_at: Option<Timestamp>, now: Timestamp) -> bool {
    grace_ends_at.is_some_and(|end| now >= end && expires_at.is_none_or(|expiry| end <= expiry))
}

impl ApiKey {
    /// The status at `now`: Expired from the instant `expires_at` passes, Revoked from the
    /// instant a roll's grace period ends.
    pub fn status_at(&self, now: Timestamp) -> KeyStatus {
        let recorded = match self.lifecycle {
            Lifecycle::Revoked { .. } => KeyStatus::Revoked,
            Lifecycle::Expired { .. } => KeyStatus::Expired,
            Lifecycle::Active => KeyStatus::Active,
        };
        KeyStatus::at(recorded, self.expires_at, self.grace_ends_at(), now)
    }

    /// When a roll's grace period ends, if the key was rolled.
    pub fn grace_ends_at(&self) -> Option<Timestamp> {
        self.rolled.map(|roll| roll.grace_ends_at)
    }

    /// The creation of the key that replaces this one when `by` (whose role may do
    /// `permissions` now) rolls it: the same name, scopes, allowed domains, rate limit and
    /// expiry, under the roller's ceiling. The secret is made by the caller.
    pub fn successor(
        &self,
        key_hash: KeyHash,
        preview: KeyPreview,
        by: MemberId,
        permissions: PermissionSet,
        replaces: ApiKeyId,
    ) -> ApiKeyCommand {
        ApiKeyCommand::Create {
            name: self.name.clone(),
            key_hash,
            preview,
            scopes: self.scopes,
            expires_at: self.expires_at,
            allowed_domains: self.allowed_domains.clone(),
            rate_limit: self.rate_limit,
            created_by: by,
            creator_permissions: permissions,
            replaces: Some(replaces),
        }
    }
}

/// True when an expiry exists and `now` has reached it (the key stops working at that instant).
fn is_past(expires_at: Option<Timestamp>, now: Timestamp) -> bool {
    expires_at.is_some_and(|at| now >= at)
}

/// What can be asked of a key.
#[derive(Clone, Debug)]
pub enum ApiKeyCommand {
    /// Create a key. Its secret is made by the caller; only the hash and preview come here.
    Create {
        name: KeyName,
        /// SHA-256 of the new secret.
        key_hash: KeyHash,
        /// The masked preview of the new secret.
        preview: KeyPreview,
        /// Requested scopes.
        scopes: Scopes,
        /// Parsed expiry, already checked to be in the future.
        expires_at: Option<Timestamp>,
        /// Parsed allowed domains.
        allowed_domains: AllowedDomains,
        /// At most this many requests per window; `None` for no limit.
        rate_limit: Option<RateLimit>,
        created_by: MemberId,
        /// What the creator's role may do now (the ceiling).
        creator_permissions: PermissionSet,
        /// The key it is rolled from, if it is.
        replaces: Option<ApiKeyId>,
    },
    /// Replace the allowed domains of an Active key.
    UpdateDomains { allowed_domains: AllowedDomains },
    /// Set, change or remove (`None`) the rate limit of an Active key.
    UpdateRateLimit { rate_limit: Option<RateLimit> },
    /// Turn an Active key off for good.
    Revoke { reason: RevocationReason },
    /// Turn an Active key off for good because a secret scanner found it in public.
    RevokeLeaked {
        /// Where it was found, as the report said.
        details: RevocationDetails,
    },
    /// Hand an Active key's work to `replaced_by` (created in the same commit) and let it
    /// work for `grace` more.
    Roll {
        replaced_by: ApiKeyId,
        /// The new key's preview, for the audit entry.
        replaced_by_preview: KeyPreview,
        grace: GracePeriod,
    },
}

/// Why a key command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// The key exists already (a create on an existing stream).
    #[error("the API key already exists")]
    AlreadyExists,
    /// No such key.
    #[error("no such API key")]
    NotFound,
    /// Revoked or expired: nothing left to change or turn off.
    #[error("the API key is {0}, and only an Active key can be changed")]
    NotActive(&'static str),
    /// The creator's role lacks some requested scopes.
    #[error("your role does not include {}; a key cannot have access that its creator lacks", .0.names().join(", "))]
    ExceedsCreator(PermissionSet),
    /// An expiry requested for a key that has not reached it.
    #[error("the API key has not reached its expiry")]
    NotYetExpired,
    /// A roll of a key already rolled and still in its grace period.
    #[error("the API key has been rolled already and is in its grace period; roll its replacement instead")]
    AlreadyRolled,
    /// The end of a grace period recorded for a key whose grace has not ended (or that was
    /// never rolled).
    #[error("the API key's grace period has not ended")]
    GraceNotEnded,
}

/// Decides what a command on a key records, given the key's state and the time.
pub fn decide(state: Option<&ApiKey>, command: ApiKeyCommand, now: Timestamp) -> Result<Vec<Event>, ApiKeyError> {
    match (state, command) {
        (
            None,
            ApiKeyCommand::Create {
                name,
                key_hash,
                preview,
                scopes,
                expires_at,
                allowed_domains,
                rate_limit,
                created_by,
                creator_permissions,
                replaces,
            },
        ) => {
            let beyond = scopes.as_set().difference(creator_permissions);
            if !beyond.is_empty() {
                return Err(ApiKeyError::ExceedsCreator(beyond));
            }
            Ok(vec![Event::ApiKeyCreated {
                name,
                key_hash,
                preview,
                scopes,
                expires_at,
                allowed_domains,
                created_by,
                replaces,
                rate_limit,
            }])
        }
        (Some(_), ApiKeyCommand::Create { .. }) => Err(ApiKeyError::AlreadyExists),
        (None, _) => Err(ApiKeyError::NotFound),
        (Some(key), command) => {
            let status = key.status_at(now);
            if status != KeyStatus::Active {
                return Err(ApiKeyError::NotActive(status.as_str()));
            }
            match command {
                ApiKeyCommand::UpdateDomains { allowed_domains } if allowed_domains == key.allowed_domains => {
                    Ok(vec![])
                }
                ApiKeyCommand::UpdateDomains { allowed_domains } => Ok(vec![Event::ApiKeyDomainsUpdated {
                    before: key.allowed_domains.clone(),
                    after: allowed_domains,
                }]),
                ApiKeyCommand::UpdateRateLimit { rate_limit } if rate_limit == key.rate_limit => Ok(vec![]),
                ApiKeyCommand::UpdateRateLimit { rate_limit } => {
                    Ok(vec![Event::ApiKeyRateLimitUpdated { before: key.rate_limit, after: rate_limit }])
                }
                ApiKeyCommand::Revoke { reason } => Ok(vec![Event::ApiKeyRevoked { reason, details: None }]),
                ApiKeyCommand::RevokeLeaked { details } => {
                    Ok(vec![Event::ApiKeyRevoked { reason: RevocationReason::Leaked, details: Some(details) }])
                }
                // Active and rolled: still in its grace period.
                ApiKeyCommand::Roll { .. } if key.rolled.is_some() => Err(ApiKeyError::AlreadyRolled),
                ApiKeyCommand::Roll { replaced_by, replaced_by_preview, grace } => {
                    Ok(vec![Event::ApiKeyRolled { replaced_by, replaced_by_preview, grace_ends_at: grace.ends(now) }])
                }
                ApiKeyCommand::Create { .. } => Err(ApiKeyError::AlreadyExists),
            }
        }
    }
}

/// Decides an expiry: only a key recorded Active whose status is Expired now (past its
/// expiry, and not stopped earlier by the end of a roll's grace period).
pub fn decide_expire(state: Option<&ApiKey>, now: Timestamp) -> Result<Vec<Event>, ApiKeyError> {
    let key = state.ok_or(ApiKeyError::NotFound)?;
    match (&key.lifecycle, key.status_at(now)) {
        (Lifecycle::Active, KeyStatus::Expired) => Ok(vec![Event::ApiKeyExpired {}]),
        (Lifecycle::Active, KeyStatus::Active) => Err(ApiKeyError::NotYetExpired),
        (_, status) => Err(ApiKeyError::NotActive(status.as_str())),
    }
}

/// Decides the end of a roll's grace period: only a key recorded Active whose status is
/// Revoked now because its grace period ended; it records the revocation (reason `rolled`).
pub fn decide_end_of_grace(state: Option<&ApiKey>, now: Timestamp) -> Result<Vec<Event>, ApiKeyError> {
    let key = state.ok_or(ApiKeyError::NotFound)?;
    match (&key.lifecycle, key.status_at(now)) {
        (Lifecycle::Active, KeyStatus::Revoked) => {
            Ok(vec![Event::ApiKeyRevoked { reason: RevocationReason::Rolled, details: None }])
        }
        (Lifecycle::Active, KeyStatus::Active) => Err(ApiKeyError::GraceNotEnded),
        (_, status) => Err(ApiKeyError::NotActive(status.as_str())),
    }
}

/// Folds one event of the key's stream into its state. `at` is when it happened and `actor` the
/// member who caused it, if any. Events of other streams leave the state as it is.
pub fn evolve(state: Option<ApiKey>, event: &Event, at: Timestamp, actor: Option<MemberId>) -> Option<ApiKey> {
    match (state, event) {
        (
            None,
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
            },
        ) => Some(ApiKey {
            name: name.clone(),
            key_hash: *key_hash,
            preview: preview.clone(),
            scopes: *scopes,
            expires_at: *expires_at,
            allowed_domains: allowed_domains.clone(),
            created_by: *created_by,
            created_at: at,
            lifecycle: Lifecycle::Active,
            last_used_at: None,
            replaces: *replaces,
            rolled: None,
            rate_limit: *rate_limit,
        }),
        (Some(mut key), Event::ApiKeyDomainsUpdated { after, .. }) => {
            key.allowed_domains = after.clone();
            Some(key)
        }
        (Some(mut key), Event::ApiKeyRateLimitUpdated { after, .. }) => {
            key.rate_limit = *after;
            Some(key)
        }
        (Some(mut key), Event::ApiKeyRevoked { reason, .. }) => {
            // A rolled key stopped at its grace end, not when the sweeper got to it.
            let at = match (reason, key.rolled) {
                (RevocationReason::Rolled, Some(roll)) => roll.grace_ends_at,
                _ => at,
            };
            key.lifecycle = Lifecycle::Revoked { at, by: reason.revoked_by(actor), reason: *reason };
            Some(key)
        }
        (Some(mut key), Event::ApiKeyRolled { replaced_by, grace_ends_at, .. }) => {
            key.rolled = Some(Roll { replaced_by: *replaced_by, grace_ends_at: *grace_ends_at });
            Some(key)
        }
        (Some(mut key), Event::ApiKeyExpired {}) => {
            key.lifecycle = Lifecycle::Expired { at };
            Some(key)
        }
        (Some(mut key), Event::ApiKeyUsed { last_used_at, .. }) => {
            // Several nodes flush their own counts: keep the latest time, whatever the order.
            key.last_used_at = key.last_used_at.max(Some(*last_used_at));
            Some(key)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{Permission, Role};
    use crate::secret::ApiKeySecret;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("valid time")
    }

    fn create(expires_at: Option<Timestamp>, creator: PermissionSet) -> ApiKeyCommand {
        let secret = ApiKeySecret::generate();
        ApiKeyCommand::Create {
            name: KeyName::parse("Intake sync").expect("valid"),
            key_hash: secret.hash(),
            preview: secret.preview(),
            scopes: Scopes::parse(&["contacts:write"]).expect("valid"),
            expires_at,
            allowed_domains: AllowedDomains::any(),
            rate_limit: None,
            created_by: MemberId::new(),
            creator_permissions: creator,
            replaces: None,
        }
    }

    fn created(expires_at: Option<Timestamp>) -> ApiKey {
        let events =
            decide(None, create(expires_at, PermissionSet::all()), t("2026-11-27T00:00:00Z")).expect("created");
        events.iter().fold(None, |s, e| evolve(s, e, t("2026-11-27T00:00:00Z"), None)).expect("a key")
    }

    #[test]
    fn a_new_key_is_active() {
        assert_eq!(created(None).status_at(t("2030-01-01T00:00:00Z")), KeyStatus::Active);
    }

    #[test]
    fn a_key_never_exceeds_its_creator() {
        let staff = Role::Staff.default_permissions().difference([Permission::ContactsWrite].into_iter().collect());
        let refused = decide(None, create(None, staff), t("2026-11-27T00:00:00Z"));
        assert_eq!(refused, Err(ApiKeyError::ExceedsCreator([Permission::ContactsWrite].into_iter().collect())));
    }

    #[test]
    fn a_key_is_expired_from_the_instant_its_expiry_passes() {
        let key = created(Some(t("2027-03-01T05:00:00Z")));
        assert_eq!(key.status_at(t("2027-03-01T04:59:59.999Z")), KeyStatus::Active);
        assert_eq!(key.status_at(t("2027-03-01T05:00:00Z")), KeyStatus::Expired);
    }

    #[test]
    fn only_a_key_recorded_active_lapses_and_a_revoked_one_stays_revoked_past_its_expiry() {
        let (expiry, now) = (Some(t("2027-03-01T05:00:00Z")), t("2027-03-02T00:00:00Z"));
        assert_eq!(KeyStatus::at(KeyStatus::Active, expiry, None, now), KeyStatus::Expired);
        assert_eq!(KeyStatus::at(KeyStatus::Active, None, None, now), KeyStatus::Active);
        assert_eq!(KeyStatus::at(KeyStatus::Revoked, expiry, None, now), KeyStatus::Revoked);
        assert_eq!(KeyStatus::at(KeyStatus::Expired, None, None, now), KeyStatus::Expired);
    }

    #[test]
    fn revoking_cannot_be_undone_nor_repeated() {
        let now = t("2026-11-28T00:00:00Z");
        let key = created(None);
        let events = decide(Some(&key), ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember }, now)
            .expect("revoked");
        let revoked = events.iter().try_fold(key, |s, e| evolve(Some(s), e, now, None)).expect("a key");
        assert_eq!(revoked.status_at(now), KeyStatus::Revoked);
        let again = decide(Some(&revoked), ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember }, now);
        assert_eq!(again, Err(ApiKeyError::NotActive("revoked")));
        let domains =
            decide(Some(&revoked), ApiKeyCommand::UpdateDomains { allowed_domains: AllowedDomains::any() }, now);
        assert_eq!(domains, Err(ApiKeyError::NotActive("revoked")));
    }

    #[test]
    fn a_leaked_key_is_revoked_by_nobody_and_a_revoked_one_is_not_revoked_again() {
        let now = t("2026-11-28T00:00:00Z");
        let key = created(None);
        let leaked =
            || ApiKeyCommand::RevokeLeaked { details: RevocationDetails { url: None, source: Some("commit".into()) } };
        let events = decide(Some(&key), leaked(), now).expect("revoked");
        let revoked = events.iter().try_fold(key, |s, e| evolve(Some(s), e, now, None)).expect("a key");
        assert_eq!(revoked.lifecycle, Lifecycle::Revoked { at: now, by: None, reason: RevocationReason::Leaked });
        assert_eq!(decide(Some(&revoked), leaked(), now), Err(ApiKeyError::NotActive("revoked")));
    }

    #[test]
    fn an_expired_key_accepts_no_change_even_before_the_sweeper_runs() {
        let key = created(Some(t("2027-01-01T00:00:00Z")));
        let later = t("2027-06-01T00:00:00Z");
        let refused = decide(Some(&key), ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember }, later);
        assert_eq!(refused, Err(ApiKeyError::NotActive("expired")));
        assert_eq!(decide_expire(Some(&key), later).map(|e| e.len()), Ok(1));
        assert_eq!(decide_expire(Some(&key), t("2026-12-01T00:00:00Z")), Err(ApiKeyError::NotYetExpired));
    }

    #[test]
    fn editing_domains_to_the_same_list_records_nothing() {
        let key = created(None);
        let same = decide(
            Some(&key),
            ApiKeyCommand::UpdateDomains { allowed_domains: AllowedDomains::any() },
            t("2026-11-28T00:00:00Z"),
        );
        assert_eq!(same, Ok(vec![]));
    }

    #[test]
    fn a_rate_limit_is_set_changed_and_removed_on_an_active_key_only() {
        let now = t("2026-11-28T00:00:00Z");
        let limit = RateLimit::new(100, 60).ok();
        let key = created(None);
        let set = decide(Some(&key), ApiKeyCommand::UpdateRateLimit { rate_limit: limit }, now).expect("set");
        assert_eq!(set, vec![Event::ApiKeyRateLimitUpdated { before: None, after: limit }]);
        let limited = set.iter().try_fold(key, |s, e| evolve(Some(s), e, now, None)).expect("a key");
        assert_eq!(limited.rate_limit, limit);
        let same = decide(Some(&limited), ApiKeyCommand::UpdateRateLimit { rate_limit: limit }, now);
        assert_eq!(same, Ok(vec![]), "setting the same limit records nothing");
        let removed = decide(Some(&limited), ApiKeyCommand::UpdateRateLimit { rate_limit: None }, now);
        assert_eq!(removed, Ok(vec![Event::ApiKeyRateLimitUpdated { before: limit, after: None }]));
        let revoke = ApiKeyCommand::Revoke { reason: RevocationReason::RevokedByMember };
        let revoked = decide(Some(&limited), revoke, now)
            .expect("revoked")
            .iter()
            .try_fold(limited, |s, e| evolve(Some(s), e, now, None))
            .expect("a key");
        let refused = decide(Some(&revoked), ApiKeyCommand::UpdateRateLimit { rate_limit: None }, now);
        assert_eq!(refused, Err(ApiKeyError::NotActive("revoked")));
    }

    #[test]
    fn usage_keeps_the_latest_time_whatever_the_order() {
        let key = created(None);
        let later = Event::ApiKeyUsed { last_used_at: t("2026-11-28T10:00:00Z"), count: 3 };
        let earlier = Event::ApiKeyUsed { last_used_at: t("2026-11-28T09:00:00Z"), count: 1 };
        let now = t("2026-11-28T10:00:01Z");
        let key = evolve(evolve(Some(key), &later, now, None), &earlier, now, None).expect("a key");
        assert_eq!(key.last_used_at, Some(t("2026-11-28T10:00:00Z")));
    }

    fn roll(key: &ApiKey, seconds: i64, now: Timestamp) -> Result<ApiKey, ApiKeyError> {
        let successor = ApiKeySecret::generate();
        let command = ApiKeyCommand::Roll {
            replaced_by: ApiKeyId::new(),
            replaced_by_preview: successor.preview(),
            grace: GracePeriod::from_seconds(seconds).expect("a valid grace"),
        };
        let events = decide(Some(key), command, now)?;
        Ok(events.iter().try_fold(key.clone(), |s, e| evolve(Some(s), e, now, None)).expect("a key"))
    }

    #[test]
    fn a_grace_period_is_0_to_7_days() {
        assert_eq!(GracePeriod::from_seconds(0).map(GracePeriod::seconds), Ok(0));
        assert_eq!(GracePeriod::from_seconds(604_800).map(GracePeriod::seconds), Ok(604_800));
        assert!(GracePeriod::from_seconds(604_801).is_err());
        assert!(GracePeriod::from_seconds(-1).is_err());
    }

    #[test]
    fn a_rolled_key_works_until_its_grace_ends_and_is_revoked_from_that_instant() {
        let now = t("2026-11-28T00:00:00Z");
        let rolled = roll(&created(None), 3600, now).expect("rolled");
        assert_eq!(rolled.grace_ends_at(), Some(t("2026-11-28T01:00:00Z")));
        assert_eq!(rolled.status_at(t("2026-11-28T00:59:59.999Z")), KeyStatus::Active);
        assert_eq!(rolled.status_at(t("2026-11-28T01:00:00Z")), KeyStatus::Revoked);
        let zero = roll(&created(None), 0, now).expect("rolled");
        assert_eq!(zero.status_at(now), KeyStatus::Revoked, "a grace of 0 revokes at the roll's instant");
    }

    #[test]
    fn a_key_in_its_grace_period_cannot_be_rolled_again_and_one_past_it_is_not_active() {
        let now = t("2026-11-28T00:00:00Z");
        let rolled = roll(&created(None), 60, now).expect("rolled");
        assert_eq!(roll(&rolled, 60, t("2026-11-28T00:00:30Z")).err(), Some(ApiKeyError::AlreadyRolled));
        assert_eq!(roll(&rolled, 60, t("2026-11-28T00:01:00Z")).err(), Some(ApiKeyError::NotActive("revoked")));
        let expired = created(Some(t("2026-11-27T12:00:00Z")));
        assert_eq!(roll(&expired, 60, now).err(), Some(ApiKeyError::NotActive("expired")));
    }

    #[test]
    fn the_end_of_a_grace_is_recorded_once_as_a_rolled_revocation_at_the_grace_end() {
        let now = t("2026-11-28T00:00:00Z");
        let rolled = roll(&created(None), 60, now).expect("rolled");
        assert_eq!(decide_end_of_grace(Some(&rolled), now), Err(ApiKeyError::GraceNotEnded));
        let later = t("2026-11-28T00:05:00Z");
        let events = decide_end_of_grace(Some(&rolled), later).expect("due");
        assert_eq!(events, vec![Event::ApiKeyRevoked { reason: RevocationReason::Rolled, details: None }]);
        let revoked = events.iter().try_fold(rolled, |s, e| evolve(Some(s), e, later, None)).expect("a key");
        let stopped = t("2026-11-28T00:01:00Z");
        assert_eq!(revoked.lifecycle, Lifecycle::Revoked { at: stopped, by: None, reason: RevocationReason::Rolled });
        assert_eq!(decide_end_of_grace(Some(&revoked), later), Err(ApiKeyError::NotActive("revoked")));
        assert_eq!(decide_expire(Some(&revoked), later), Err(ApiKeyError::NotActive("revoked")));
    }

    #[test]
    fn when_expiry_and_grace_end_have_both_passed_the_first_one_decides_and_never_changes() {
        let (expiry, grace) = (Some(t("2027-03-01T05:00:00Z")), Some(t("2027-03-01T06:00:00Z")));
        let after_both = t("2027-03-02T00:00:00Z");
        assert_eq!(KeyStatus::at(KeyStatus::Active, expiry, grace, after_both), KeyStatus::Expired);
        assert_eq!(KeyStatus::at(KeyStatus::Active, grace, expiry, after_both), KeyStatus::Revoked);
        assert_eq!(KeyStatus::at(KeyStatus::Active, expiry, expiry, after_both), KeyStatus::Revoked, "a tie");
        assert_eq!(KeyStatus::at(KeyStatus::Expired, None, grace, after_both), KeyStatus::Expired);
        // The sweepers agree: an expiry is not recorded for a key its grace end stopped first.
        let key = created(Some(t("2026-11-28T02:00:00Z")));
        let rolled = roll(&key, 60, t("2026-11-28T00:00:00Z")).expect("rolled");
        let later = t("2026-11-28T03:00:00Z");
        assert_eq!(decide_expire(Some(&rolled), later), Err(ApiKeyError::NotActive("revoked")));
        assert!(decide_end_of_grace(Some(&rolled), later).is_ok());
    }

    #[test]
    fn the_successor_keeps_every_setting_under_the_rollers_ceiling() {
        let mut key = created(Some(t("2027-01-01T00:00:00Z")));
        key.rate_limit = RateLimit::new(500, 3600).ok();
        let secret = ApiKeySecret::generate();
        let (roller, old) = (MemberId::new(), ApiKeyId::new());
        let command = key.successor(secret.hash(), secret.preview(), roller, PermissionSet::all(), old);
        let events = decide(None, command, t("2026-11-28T00:00:00Z")).expect("created");
        let new = events.iter().fold(None, |s, e| evolve(s, e, t("2026-11-28T00:00:00Z"), None)).expect("a key");
        assert_eq!((new.name, new.scopes, new.expires_at), (key.name.clone(), key.scopes, key.expires_at));
        assert_eq!(new.rate_limit, key.rate_limit, "a roll keeps the rate limit");
        assert_eq!((new.created_by, new.replaces), (roller, Some(old)));
        let without = PermissionSet::all().difference([Permission::ContactsWrite].into_iter().collect());
        let command = key.successor(secret.hash(), secret.preview(), roller, without, old);
        assert!(matches!(decide(None, command, t("2026-11-28T00:00:00Z")), Err(ApiKeyError::ExceedsCreator(_))));
    }
}
