//! The facts the service records. Every change to a firm, a member or a key is one of these,
//! appended to the log; every read model is a fold of them.

use crate::allowed_domains::AllowedDomains;
use crate::names::{Email, FirmName, FirmTimeZone, KeyName, PersonName};
use crate::permissions::{Grid, PermissionSet, Role, Scopes};
use crate::rate_limit::RateLimit;
use crate::secret::{KeyHash, KeyPreview};
use crate::{ApiKeyId, MemberId, Timestamp};
use serde::{Deserialize, Serialize};

/// Which aggregate a stream belongs to; part of each event's NATS subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamKind {
    /// A firm: its name, time zone and roles-and-permissions grid.
    Firm,
    /// One member of a firm.
    Member,
    /// One API key.
    ApiKey,
}

impl StreamKind {
    /// The stored and subject name.
    pub const fn as_str(self) -> &'static str {
        match self {
            StreamKind::Firm => "firm",
            StreamKind::Member => "member",
            StreamKind::ApiKey => "api_key",
        }
    }

    /// Parses the stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [StreamKind::Firm, StreamKind::Member, StreamKind::ApiKey].into_iter().find(|k| k.as_str() == name)
    }
}

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in member (or, for signup, the owner being created).
    Member(MemberId),
    /// The service itself (expiry, usage).
    System,
}

/// Why a key was revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationReason {
    /// A member with the `api_keys` permission revoked it.
    RevokedByMember,
    /// The member who created it was removed from the firm.
    CreatorRemoved,
    /// A secret scanner reported it found in public (GitHub's secret scanning partner program).
    Leaked,
    /// It was rolled and its grace period ended: recorded by the sweeper, after the instant the
    /// key stopped working (`docs/decisions.md`, "Rolling a key").
    Rolled,
}

/// What came with a revocation besides its reason: where a leaked key was found, as the
/// scanner's report said it (`docs/decisions.md`, "Leaked keys").
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RevocationDetails {
    /// Where the key was found (absent or empty in some reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What kind of place it was found in, in the scanner's words (`content`, `commit`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl RevocationReason {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RevocationReason::RevokedByMember => "revoked_by_member",
            RevocationReason::CreatorRemoved => "creator_removed",
            RevocationReason::Leaked => "leaked",
            RevocationReason::Rolled => "rolled",
        }
    }

    /// Who is shown as having revoked the key, given who caused the event: nobody when the
    /// service turned it off because its creator was removed (the member who removed them did
    /// not revoke the key), nor when a scanner reported it leaked, nor when a rolled key's grace
    /// period ran out (the roller chose the end; the service recorded it).
    pub fn revoked_by(self, actor: Option<crate::MemberId>) -> Option<crate::MemberId> {
        match self {
            RevocationReason::RevokedByMember => actor,
            RevocationReason::CreatorRemoved | RevocationReason::Leaked | RevocationReason::Rolled => None,
        }
    }

    /// Every reason, in the contract's order (for the OpenAPI enum).
    pub const ALL: [RevocationReason; 4] = [
        RevocationReason::RevokedByMember,
        RevocationReason::CreatorRemoved,
        RevocationReason::Leaked,
        RevocationReason::Rolled,
    ];
}

/// Every event, tagged by type. The log stores the tag and the payload separately.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    /// A firm signed up.
    FirmCreated {
        name: FirmName,
        /// Where bare expiry dates are read.
        time_zone: FirmTimeZone,
        /// The grid the firm starts with.
        grid: Grid,
    },
    /// The owner changed what a role may do.
    RolePermissionsChanged {
        /// The role changed (never the owner).
        role: Role,
        before: PermissionSet,
        after: PermissionSet,
    },
    /// The owner, created with the firm.
    MemberRegistered {
        name: PersonName,
        /// Their login.
        email: Email,
        /// Always `owner` today.
        role: Role,
    },
    /// A member was invited (the actor is who invited them).
    MemberInvited {
        name: PersonName,
        /// Their login.
        email: Email,
        /// The role they get (never `owner`).
        role: Role,
    },
    /// An invited member set a password and joined.
    InvitationAccepted {},
    /// The owner changed a member's role.
    MemberRoleChanged { before: Role, after: Role },
    /// A member was removed from the firm.
    MemberRemoved {},
    /// Sign-in to a member's account failed `failures` times in a row, so further attempts wait
    /// (see `commands::throttle`). Recorded once per run of failures, when it starts to wait;
    /// it holds no password and no client address.
    MemberSignInThrottled { failures: u32 },
    /// An API key was created. Holds the secret's hash (for verification), never the secret.
    ApiKeyCreated {
        name: KeyName,
        /// SHA-256 of the secret.
        key_hash: KeyHash,
        /// The masked preview.
        preview: KeyPreview,
        /// What the key may do (under its creator's ceiling).
        scopes: Scopes,
        /// When it stops working, if ever.
        expires_at: Option<Timestamp>,
        /// Where a browser may use it from; empty is Any.
        allowed_domains: AllowedDomains,
        /// The member whose access the key inherits.
        created_by: MemberId,
        /// The key this one was rolled from; absent for a key created afresh (and in events
        /// stored before rolling existed, which load as `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<ApiKeyId>,
        /// At most this many requests per window; absent for a key without a limit (and in
        /// events stored before limits existed, which load as `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rate_limit: Option<RateLimit>,
    },
    /// An Active key's allowed domains were edited.
    ApiKeyDomainsUpdated { before: AllowedDomains, after: AllowedDomains },
    /// An Active key's rate limit was set, changed or removed (`None`: no limit).
    ApiKeyRateLimitUpdated { before: Option<RateLimit>, after: Option<RateLimit> },
    /// A key was turned off for good.
    ApiKeyRevoked {
        reason: RevocationReason,
        /// Where a leaked key was found; absent for the other reasons (and in events stored
        /// before it existed, which load as `None`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        details: Option<RevocationDetails>,
    },
    /// An Active key was rolled: `replaced_by` was created with its settings in the same
    /// commit, and this key keeps working until `grace_ends_at`, Revoked from that instant.
    ApiKeyRolled {
        /// The new key.
        replaced_by: ApiKeyId,
        /// The new key's masked preview, so the audit entry names it without another lookup.
        replaced_by_preview: KeyPreview,
        /// The instant this key stops working (the roll's time itself for a grace of 0).
        grace_ends_at: Timestamp,
    },
    /// A key authenticated requests (coalesced: one event per key per flush interval).
    ApiKeyUsed {
        /// The latest request's time.
        last_used_at: Timestamp,
        /// How many requests this event stands for.
        count: u64,
    },
    /// A key passed its expiry and the sweeper recorded it.
    ApiKeyExpired {},
}

impl Event {
    /// The stored type name, e.g. `ApiKeyCreated`.
    pub const fn event_type(&self) -> &'static str {
        match self {
            Event::FirmCreated { .. } => "FirmCreated",
            Event::RolePermissionsChanged { .. } => "RolePermissionsChanged",
            Event::MemberRegistered { .. } => "MemberRegistered",
            Event::MemberInvited { .. } => "MemberInvited",
            Event::InvitationAccepted {} => "InvitationAccepted",
            Event::MemberRoleChanged { .. } => "MemberRoleChanged",
            Event::MemberRemoved {} => "MemberRemoved",
            Event::MemberSignInThrottled { .. } => "MemberSignInThrottled",
            Event::ApiKeyCreated { .. } => "ApiKeyCreated",
            Event::ApiKeyDomainsUpdated { .. } => "ApiKeyDomainsUpdated",
            Event::ApiKeyRateLimitUpdated { .. } => "ApiKeyRateLimitUpdated",
            Event::ApiKeyRevoked { .. } => "ApiKeyRevoked",
            Event::ApiKeyRolled { .. } => "ApiKeyRolled",
            Event::ApiKeyUsed { .. } => "ApiKeyUsed",
            Event::ApiKeyExpired {} => "ApiKeyExpired",
        }
    }

    /// The kind of stream this event belongs to.
    pub const fn stream_kind(&self) -> StreamKind {
        match self {
            Event::FirmCreated { .. } | Event::RolePermissionsChanged { .. } => StreamKind::Firm,
            Event::MemberRegistered { .. }
            | Event::MemberInvited { .. }
            | Event::InvitationAccepted {}
            | Event::MemberRoleChanged { .. }
            | Event::MemberRemoved {}
            | Event::MemberSignInThrottled { .. } => StreamKind::Member,
            Event::ApiKeyCreated { .. }
            | Event::ApiKeyDomainsUpdated { .. }
            | Event::ApiKeyRateLimitUpdated { .. }
            | Event::ApiKeyRevoked { .. }
            | Event::ApiKeyRolled { .. }
            | Event::ApiKeyUsed { .. }
            | Event::ApiKeyExpired {} => StreamKind::ApiKey,
        }
    }

    /// The payload as stored (the variant's fields, without the tag).
    pub fn payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("data").unwrap_or(serde_json::Value::Null),
            // Every variant is a struct variant of plain data, so it always serializes to an object.
            _ => serde_json::Value::Null,
        }
    }

    /// Rebuilds an event from its stored type and payload.
    pub fn from_stored(event_type: &str, payload: serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": payload }))
    }

    /// [`Event::from_stored`] from the payload's JSON text, parsed straight into the event:
    /// reading the log, building a `Value` first cost more than the rest of decoding a row.
    pub fn from_stored_json(event_type: &str, payload: &[u8]) -> Result<Self, serde_json::Error> {
        // The tag first, so that the payload is read straight into its variant's fields.
        let mut tagged = Vec::with_capacity(payload.len() + event_type.len() + 20);
        tagged.extend_from_slice(b"{\"type\":");
        serde_json::to_writer(&mut tagged, event_type)?;
        tagged.extend_from_slice(b",\"data\":");
        tagged.extend_from_slice(payload);
        tagged.push(b'}');
        serde_json::from_slice(&tagged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_through_its_stored_type_and_payload() {
        let event = Event::MemberRoleChanged { before: Role::Staff, after: Role::Attorney };
        let back = Event::from_stored(event.event_type(), event.payload()).expect("round trip");
        assert_eq!(back, event);
        let text = event.payload().to_string();
        assert_eq!(Event::from_stored_json(event.event_type(), text.as_bytes()).expect("round trip"), event);
        assert!(Event::from_stored_json("MemberRoleChanged\",\"data\":{}}", text.as_bytes()).is_err());
    }

    #[test]
    fn a_key_turned_off_because_its_creator_left_was_revoked_by_nobody() {
        let remover = Some(crate::MemberId::new());
        assert_eq!(RevocationReason::CreatorRemoved.revoked_by(remover), None);
        assert_eq!(RevocationReason::RevokedByMember.revoked_by(remover), remover);
    }

    #[test]
    fn a_revocation_stored_before_details_existed_still_loads_and_stores_the_same() {
        let old = serde_json::json!({"reason": "revoked_by_member"});
        let event = Event::from_stored("ApiKeyRevoked", old.clone()).expect("an old revocation loads");
        assert_eq!(event, Event::ApiKeyRevoked { reason: RevocationReason::RevokedByMember, details: None });
        assert_eq!(event.payload(), old);
        let leaked = Event::ApiKeyRevoked {
            reason: RevocationReason::Leaked,
            details: Some(RevocationDetails { url: Some("https://example.test/a".into()), source: None }),
        };
        assert_eq!(
            leaked.payload(),
            serde_json::json!({"reason": "leaked", "details": {"url": "https://example.test/a"}})
        );
        assert_eq!(Event::from_stored("ApiKeyRevoked", leaked.payload()).ok(), Some(leaked));
    }

    #[test]
    fn a_key_created_before_rolling_existed_still_loads_and_stores_the_same() {
        let secret = crate::ApiKeySecret::generate();
        let created = Event::ApiKeyCreated {
            name: KeyName::parse("Sync").expect("valid"),
            key_hash: secret.hash(),
            preview: secret.preview(),
            scopes: Scopes::parse(&["contacts:read"]).expect("valid"),
            expires_at: None,
            allowed_domains: AllowedDomains::any(),
            created_by: MemberId::new(),
            replaces: None,
            rate_limit: None,
        };
        let stored = created.payload();
        assert!(stored.get("replaces").is_none(), "a fresh key stores no replaces field");
        assert!(stored.get("rate_limit").is_none(), "nor a rate_limit field when it has none");
        assert_eq!(Event::from_stored("ApiKeyCreated", stored).ok(), Some(created));
    }

    #[test]
    fn an_empty_event_stores_an_empty_object() {
        assert_eq!(Event::MemberRemoved {}.payload(), serde_json::json!({}));
        assert_eq!(Event::from_stored("MemberRemoved", serde_json::json!({})).ok(), Some(Event::MemberRemoved {}));
    }

    #[test]
    fn actors_serialize_with_their_type() {
        assert_eq!(serde_json::to_value(Actor::System).ok(), Some(serde_json::json!({"type": "system"})));
    }
}
