//! The API key aggregate: created Active; Active is the only state that accepts a domain edit,
//! a revocation or an expiry; scopes and expiry never change; revoking cannot be undone.

use crate::allowed_domains::AllowedDomains;
use crate::events::{Event, RevocationDetails, RevocationReason};
use crate::names::KeyName;
use crate::permissions::{PermissionSet, Scopes};
use crate::secret::{KeyHash, KeyPreview};
use crate::{MemberId, Timestamp};

/// A key as its stream tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub name: KeyName,
    /// SHA-256 of the secret.
    pub key_hash: KeyHash,
    /// The masked preview.
    pub preview: KeyPreview,
    /// What it may do.
    pub scopes: Scopes,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Where a browser may use it from.
    pub allowed_domains: AllowedDomains,
    /// Whose access it inherits.
    pub created_by: MemberId,
    /// When it was created.
    pub created_at: Timestamp,
    /// Where it is in its life.
    pub lifecycle: Lifecycle,
    /// The latest authenticated request, as far as Used events have told.
    pub last_used_at: Option<Timestamp>,
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
    /// Active is Expired from the instant its expiry passes, whether or not the sweeper has
    /// written the Expired event yet. The one statement of "usable at `now`" (the SQL twin is
    /// `projections::views::key_status_is`).
    pub fn at(recorded: KeyStatus, expires_at: Option<Timestamp>, now: Timestamp) -> KeyStatus {
        match recorded {
            KeyStatus::Active if is_past(expires_at, now) => KeyStatus::Expired,
            other => other,
        }
    }
}

impl ApiKey {
    /// The status at `now`: Expired from the instant `expires_at` passes.
    pub fn status_at(&self, now: Timestamp) -> KeyStatus {
        let recorded = match self.lifecycle {
            Lifecycle::Revoked { .. } => KeyStatus::Revoked,
            Lifecycle::Expired { .. } => KeyStatus::Expired,
            Lifecycle::Active => KeyStatus::Active,
        };
        KeyStatus::at(recorded, self.expires_at, now)
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
        /// The member creating it.
        created_by: MemberId,
        /// What the creator's role may do now (the ceiling).
        creator_permissions: PermissionSet,
    },
    /// Replace the allowed domains of an Active key.
    UpdateDomains {
        /// The new list.
        allowed_domains: AllowedDomains,
    },
    /// Turn an Active key off for good.
    Revoke { reason: RevocationReason },
    /// Turn an Active key off for good because a secret scanner found it in public.
    RevokeLeaked {
        /// Where it was found, as the report said.
        details: RevocationDetails,
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
                created_by,
                creator_permissions,
            },
        ) => {
            let beyond = scopes.as_set().difference(creator_permissions);
            if !beyond.is_empty() {
                return Err(ApiKeyError::ExceedsCreator(beyond));
            }
            Ok(vec![Event::ApiKeyCreated { name, key_hash, preview, scopes, expires_at, allowed_domains, created_by }])
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
                ApiKeyCommand::Revoke { reason } => Ok(vec![Event::ApiKeyRevoked { reason, details: None }]),
                ApiKeyCommand::RevokeLeaked { details } => {
                    Ok(vec![Event::ApiKeyRevoked { reason: RevocationReason::Leaked, details: Some(details) }])
                }
                ApiKeyCommand::Create { .. } => Err(ApiKeyError::AlreadyExists),
            }
        }
    }
}

/// Decides an expiry: only an Active key whose expiry has passed.
pub fn decide_expire(state: Option<&ApiKey>, now: Timestamp) -> Result<Vec<Event>, ApiKeyError> {
    let key = state.ok_or(ApiKeyError::NotFound)?;
    match key.lifecycle {
        Lifecycle::Active if is_past(key.expires_at, now) => Ok(vec![Event::ApiKeyExpired {}]),
        Lifecycle::Active => Err(ApiKeyError::NotYetExpired),
        Lifecycle::Revoked { .. } => Err(ApiKeyError::NotActive(KeyStatus::Revoked.as_str())),
        Lifecycle::Expired { .. } => Err(ApiKeyError::NotActive(KeyStatus::Expired.as_str())),
    }
}

/// Folds one event of the key's stream into its state. `at` is when it happened and `actor` the
/// member who caused it, if any. Events of other streams leave the state as it is.
pub fn evolve(state: Option<ApiKey>, event: &Event, at: Timestamp, actor: Option<MemberId>) -> Option<ApiKey> {
    match (state, event) {
        (None, Event::ApiKeyCreated { name, key_hash, preview, scopes, expires_at, allowed_domains, created_by }) => {
            Some(ApiKey {
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
            })
        }
        (Some(mut key), Event::ApiKeyDomainsUpdated { after, .. }) => {
            key.allowed_domains = after.clone();
            Some(key)
        }
        (Some(mut key), Event::ApiKeyRevoked { reason, .. }) => {
            key.lifecycle = Lifecycle::Revoked { at, by: reason.revoked_by(actor), reason: *reason };
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
            created_by: MemberId::new(),
            creator_permissions: creator,
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
        assert_eq!(KeyStatus::at(KeyStatus::Active, expiry, now), KeyStatus::Expired);
        assert_eq!(KeyStatus::at(KeyStatus::Active, None, now), KeyStatus::Active);
        assert_eq!(KeyStatus::at(KeyStatus::Revoked, expiry, now), KeyStatus::Revoked);
        assert_eq!(KeyStatus::at(KeyStatus::Expired, None, now), KeyStatus::Expired);
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
    fn usage_keeps_the_latest_time_whatever_the_order() {
        let key = created(None);
        let later = Event::ApiKeyUsed { last_used_at: t("2026-11-28T10:00:00Z"), count: 3 };
        let earlier = Event::ApiKeyUsed { last_used_at: t("2026-11-28T09:00:00Z"), count: 1 };
        let now = t("2026-11-28T10:00:01Z");
        let key = evolve(evolve(Some(key), &later, now, None), &earlier, now, None).expect("a key");
        assert_eq!(key.last_used_at, Some(t("2026-11-28T10:00:00Z")));
    }
}
