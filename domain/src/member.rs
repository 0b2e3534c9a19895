//! The member aggregate: a person in a firm, with a role, who may be removed.

use crate::events::Event;
use crate::names::{Email, PersonName};
use crate::permissions::Role;
use crate::Timestamp;

/// A member as their stream tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub name: PersonName,
    /// Their login.
    pub email: Email,
    pub role: Role,
    /// False while an invitation is still open.
    pub joined: bool,
    /// False once removed (for good).
    pub active: bool,
    /// When they were registered or invited.
    pub created_at: Timestamp,
}

/// What can be asked of a member.
#[derive(Clone, Debug)]
pub enum MemberCommand {
    /// Create the firm's owner, at signup.
    RegisterOwner {
        name: PersonName,
        /// Their login.
        email: Email,
    },
    /// Invite someone into the firm.
    Invite {
        name: PersonName,
        /// Their login.
        email: Email,
        /// Their role (not `owner`).
        role: Role,
    },
    /// An invited member sets their password.
    AcceptInvitation,
    /// Give a member another role.
    ChangeRole {
        /// The new role (not `owner`).
        role: Role,
    },
    /// Remove a member from the firm.
    Remove,
    /// Record that sign-in to their account now waits after `failures` failures.
    RecordSignInThrottled { failures: u32 },
}

/// Why a member command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// A create on an existing stream.
    #[error("the member already exists")]
    AlreadyExists,
    /// No such member.
    #[error("no such member")]
    NotFound,
    /// The owner role is given only at signup.
    #[error("the owner role cannot be given; choose administrator, attorney or staff")]
    OwnerRoleNotGiven,
    /// The owner's own role is fixed.
    #[error("the owner's role cannot change")]
    OwnerRoleCannotChange,
    /// The owner cannot be removed.
    #[error("the owner cannot be removed")]
    OwnerCannotBeRemoved,
    /// The member was removed already.
    #[error("the member has been removed")]
    Removed,
    /// The invitation was accepted already.
    #[error("the invitation has already been accepted")]
    AlreadyJoined,
}

/// Decides what a command on a member records.
pub fn decide(state: Option<&Member>, command: MemberCommand) -> Result<Vec<Event>, MemberError> {
    match (state, command) {
        (None, MemberCommand::RegisterOwner { name, email }) => {
            Ok(vec![Event::MemberRegistered { name, email, role: Role::Owner }])
        }
        (None, MemberCommand::Invite { role: Role::Owner, .. }) => Err(MemberError::OwnerRoleNotGiven),
        (None, MemberCommand::Invite { name, email, role }) => Ok(vec![Event::MemberInvited { name, email, role }]),
        (Some(_), MemberCommand::RegisterOwner { .. } | MemberCommand::Invite { .. }) => {
            Err(MemberError::AlreadyExists)
        }
        (None, _) => Err(MemberError::NotFound),
        (Some(member), _) if !member.active => Err(MemberError::Removed),
        (Some(member), MemberCommand::AcceptInvitation) if member.joined => Err(MemberError::AlreadyJoined),
        (Some(_), MemberCommand::AcceptInvitation) => Ok(vec![Event::InvitationAccepted {}]),
        (Some(member), MemberCommand::ChangeRole { .. }) if member.role == Role::Owner => {
            Err(MemberError::OwnerRoleCannotChange)
        }
        (Some(_), MemberCommand::ChangeRole { role: Role::Owner }) => Err(MemberError::OwnerRoleNotGiven),
        (Some(member), MemberCommand::ChangeRole { role }) if member.role == role => Ok(vec![]),
        (Some(member), MemberCommand::ChangeRole { role }) => {
            Ok(vec![Event::MemberRoleChanged { before: member.role, after: role }])
        }
        (Some(member), MemberCommand::Remove) if member.role == Role::Owner => Err(MemberError::OwnerCannotBeRemoved),
        (Some(_), MemberCommand::Remove) => Ok(vec![Event::MemberRemoved {}]),
        (Some(_), MemberCommand::RecordSignInThrottled { failures }) => {
            Ok(vec![Event::MemberSignInThrottled { failures }])
        }
    }
}

/// Folds one event of the member's stream into their state.
pub fn evolve(state: Option<Member>, event: &Event, at: Timestamp) -> Option<Member> {
    match (state, event) {
        (None, Event::MemberRegistered { name, email, role }) => Some(Member {
            name: name.clone(),
            email: email.clone(),
            role: *role,
            joined: true,
            active: true,
            created_at: at,
        }),
        (None, Event::MemberInvited { name, email, role }) => Some(Member {
            name: name.clone(),
            email: email.clone(),
            role: *role,
            joined: false,
            active: true,
            created_at: at,
        }),
        (Some(mut member), Event::InvitationAccepted {}) => {
            member.joined = true;
            Some(member)
        }
        (Some(mut member), Event::MemberRoleChanged { after, .. }) => {
            member.role = *after;
            Some(member)
        }
        (Some(mut member), Event::MemberRemoved {}) => {
            member.active = false;
            Some(member)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-27T12:00:00Z".parse().expect("valid")
    }

    fn member(command: MemberCommand) -> Member {
        let events = decide(None, command).expect("created");
        events.iter().fold(None, |s, e| evolve(s, e, now())).expect("a member")
    }

    fn invite(role: Role) -> MemberCommand {
        MemberCommand::Invite {
            name: PersonName::parse("Sam Staff").expect("valid"),
            email: Email::parse("sam@acme.test").expect("valid"),
            role,
        }
    }

    fn owner() -> Member {
        member(MemberCommand::RegisterOwner {
            name: PersonName::parse("Olivia Owner").expect("valid"),
            email: Email::parse("olivia@acme.test").expect("valid"),
        })
    }

    #[test]
    fn the_owner_role_cannot_be_given_by_invitation() {
        assert_eq!(decide(None, invite(Role::Owner)), Err(MemberError::OwnerRoleNotGiven));
    }

    #[test]
    fn the_owners_role_cannot_change_and_the_owner_cannot_be_removed() {
        let owner = owner();
        assert_eq!(
            decide(Some(&owner), MemberCommand::ChangeRole { role: Role::Staff }),
            Err(MemberError::OwnerRoleCannotChange)
        );
        assert_eq!(decide(Some(&owner), MemberCommand::Remove), Err(MemberError::OwnerCannotBeRemoved));
    }

    #[test]
    fn a_removed_member_can_do_nothing_more() {
        let staff = member(invite(Role::Staff));
        let removed = decide(Some(&staff), MemberCommand::Remove)
            .expect("removed")
            .iter()
            .try_fold(staff, |s, e| evolve(Some(s), e, now()))
            .expect("a member");
        assert!(!removed.active);
        assert_eq!(decide(Some(&removed), MemberCommand::AcceptInvitation), Err(MemberError::Removed));
        assert_eq!(
            decide(Some(&removed), MemberCommand::ChangeRole { role: Role::Attorney }),
            Err(MemberError::Removed)
        );
    }

    #[test]
    fn an_invitation_is_accepted_once() {
        let staff = member(invite(Role::Staff));
        assert!(!staff.joined);
        let joined = evolve(Some(staff), &Event::InvitationAccepted {}, now()).expect("a member");
        assert_eq!(decide(Some(&joined), MemberCommand::AcceptInvitation), Err(MemberError::AlreadyJoined));
    }

    #[test]
    fn changing_to_the_same_role_records_nothing() {
        let staff = member(invite(Role::Staff));
        assert_eq!(decide(Some(&staff), MemberCommand::ChangeRole { role: Role::Staff }), Ok(vec![]));
    }
}
