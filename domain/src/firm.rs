//! The firm aggregate: the tenant, its time zone and its roles-and-permissions grid.

use crate::events::Event;
use crate::names::{FirmName, FirmTimeZone};
use crate::permissions::{Grid, OwnerRoleFixed, PermissionSet, Role};

/// A firm as its stream tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Firm {
    pub name: FirmName,
    /// Where bare expiry dates are read.
    pub time_zone: FirmTimeZone,
    /// What each role may do now.
    pub grid: Grid,
}

/// What can be asked of a firm.
#[derive(Clone, Debug)]
pub enum FirmCommand {
    /// Sign a firm up, with the default grid.
    Create { name: FirmName, time_zone: FirmTimeZone },
    /// Give a role exactly these permissions.
    ChangeRolePermissions {
        /// The role (never `owner`).
        role: Role,
        /// Its new permissions.
        permissions: PermissionSet,
    },
}

/// Why a firm command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FirmError {
    /// A create on an existing stream.
    #[error("the firm already exists")]
    AlreadyExists,
    /// No such firm.
    #[error("no such firm")]
    NotFound,
    /// The owner's permissions are fixed.
    #[error(transparent)]
    OwnerRoleFixed(#[from] OwnerRoleFixed),
}

/// Decides what a command on a firm records.
pub fn decide(state: Option<&Firm>, command: FirmCommand) -> Result<Vec<Event>, FirmError> {
    match (state, command) {
        (None, FirmCommand::Create { name, time_zone }) => {
            Ok(vec![Event::FirmCreated { name, time_zone, grid: Grid::default() }])
        }
        (Some(_), FirmCommand::Create { .. }) => Err(FirmError::AlreadyExists),
        (None, FirmCommand::ChangeRolePermissions { .. }) => Err(FirmError::NotFound),
        (Some(firm), FirmCommand::ChangeRolePermissions { role, permissions }) => {
            let before = firm.grid.permissions(role);
            firm.grid.with(role, permissions)?;
            if before == permissions {
                return Ok(vec![]);
            }
            Ok(vec![Event::RolePermissionsChanged { role, before, after: permissions }])
        }
    }
}

/// Folds one event of the firm's stream into its state.
pub fn evolve(state: Option<Firm>, event: &Event) -> Option<Firm> {
    match (state, event) {
        (None, Event::FirmCreated { name, time_zone, grid }) => {
            Some(Firm { name: name.clone(), time_zone: *time_zone, grid: *grid })
        }
        (Some(mut firm), Event::RolePermissionsChanged { role, after, .. }) => {
            // The event was decided against this grid, so the role is never the owner.
            firm.grid = firm.grid.with(*role, *after).unwrap_or(firm.grid);
            Some(firm)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::Permission;

    fn firm() -> Firm {
        let events = decide(
            None,
            FirmCommand::Create {
                name: FirmName::parse("Acme Law").expect("valid"),
                time_zone: FirmTimeZone::default(),
            },
        )
        .expect("created");
        events.iter().fold(None, evolve).expect("a firm")
    }

    #[test]
    fn a_new_firm_has_the_default_grid() {
        assert_eq!(firm().grid, Grid::default());
    }

    #[test]
    fn granting_api_keys_to_attorneys_takes_effect_in_the_grid() {
        let firm = firm();
        let mut attorney = firm.grid.attorney;
        attorney.insert(Permission::ApiKeys);
        let events =
            decide(Some(&firm), FirmCommand::ChangeRolePermissions { role: Role::Attorney, permissions: attorney })
                .expect("changed");
        let changed = events.iter().fold(Some(firm), evolve).expect("a firm");
        assert!(changed.grid.allows(Role::Attorney, Permission::ApiKeys));
    }

    #[test]
    fn the_owner_row_cannot_change() {
        let refused = decide(
            Some(&firm()),
            FirmCommand::ChangeRolePermissions { role: Role::Owner, permissions: PermissionSet::EMPTY },
        );
        assert_eq!(refused, Err(FirmError::OwnerRoleFixed(OwnerRoleFixed)));
    }
}
