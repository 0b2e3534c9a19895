//! Permissions, roles, the per-firm roles-and-permissions grid, and key scopes.
//!
//! Authorization is one function, [`Grid::allows`], of a member's role, the firm's grid and a
//! permission. A key's scopes are data permissions; a key may use a scope only while its
//! creator's role still holds it (the ceiling).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One thing a role may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    /// Read contacts.
    ContactsRead,
    /// Create, change and delete contacts.
    ContactsWrite,
    /// Read matters.
    MattersRead,
    /// Create, change and delete matters.
    MattersWrite,
    /// Read leads.
    LeadsRead,
    /// Create, change and delete leads.
    LeadsWrite,
    /// Read practice areas.
    PracticeAreasRead,
    /// Create, change and delete practice areas.
    PracticeAreasWrite,
    /// Read matter types.
    MatterTypesRead,
    /// Create, change and delete matter types.
    MatterTypesWrite,
    /// See and manage the firm's API keys.
    ApiKeys,
    /// Read the audit log.
    AuditLog,
    /// Invite and remove members.
    Members,
}

impl Permission {
    /// Every permission, in the contract's order.
    pub const ALL: [Permission; 13] = [
        Permission::ContactsRead,
        Permission::ContactsWrite,
        Permission::MattersRead,
        Permission::MattersWrite,
        Permission::LeadsRead,
        Permission::LeadsWrite,
        Permission::PracticeAreasRead,
        Permission::PracticeAreasWrite,
        Permission::MatterTypesRead,
        Permission::MatterTypesWrite,
        Permission::ApiKeys,
        Permission::AuditLog,
        Permission::Members,
    ];

    /// The wire name, e.g. `contacts:read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::ContactsRead => "contacts:read",
            Permission::ContactsWrite => "contacts:write",
            Permission::MattersRead => "matters:read",
            Permission::MattersWrite => "matters:write",
            Permission::LeadsRead => "leads:read",
            Permission::LeadsWrite => "leads:write",
            Permission::PracticeAreasRead => "practice_areas:read",
            Permission::PracticeAreasWrite => "practice_areas:write",
            Permission::MatterTypesRead => "matter_types:read",
            Permission::MatterTypesWrite => "matter_types:write",
            Permission::ApiKeys => "api_keys",
            Permission::AuditLog => "audit_log",
            Permission::Members => "members",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<Self, UnknownPermission> {
        Self::ALL.into_iter().find(|p| p.as_str() == name).ok_or_else(|| UnknownPermission(name.to_owned()))
    }

    /// True for the `:read`/`:write` permissions on the firm's data: the ones a key may hold.
    pub const fn is_data(self) -> bool {
        !matches!(self, Permission::ApiKeys | Permission::AuditLog | Permission::Members)
    }

    const fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Permission::parse(&name).map_err(serde::de::Error::custom)
    }
}

/// A name that is not one of the permissions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a permission; use one of: {list}", list = Permission::ALL.map(|p| p.as_str()).join(", "))]
pub struct UnknownPermission(pub String);

/// A set of permissions, as a bit set: small and cheap to copy, which matters in the
/// verification cache where every key and every role carries one.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u16);

impl PermissionSet {
    /// No permission.
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission.
    pub fn all() -> Self {
        Permission::ALL.into_iter().collect()
    }

    /// True when `permission` is in the set.
    pub const fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    /// Adds `permission`.
    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    /// The permissions of `self` that `other` also holds.
    pub const fn intersection(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & other.0)
    }

    /// The permissions of `self` that `other` lacks.
    pub const fn difference(self, other: PermissionSet) -> PermissionSet {
        PermissionSet(self.0 & !other.0)
    }

    /// True when empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The permissions in the contract's order.
    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// The wire names in the contract's order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }

    /// Parses wire names, folding duplicates; every unknown name is reported.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, Vec<UnknownPermission>> {
        let mut set = PermissionSet::EMPTY;
        let mut unknown = Vec::new();
        for name in names {
            match Permission::parse(name.as_ref()) {
                Ok(p) => set.insert(p),
                Err(e) => unknown.push(e),
            }
        }
        if unknown.is_empty() {
            Ok(set)
        } else {
            Err(unknown)
        }
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Permission::as_str)).finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

/// The scopes of an API key: at least one, each a data permission.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Scopes(PermissionSet);

/// Why a list of scopes was refused; the message says what to send instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopesError {
    /// The list was empty.
    #[error("Tick at least one scope, e.g. contacts:read")]
    Empty,
    /// Names that are not scopes.
    #[error("{names} {verb} not a scope; use one of: {list}", verb = if .0.len() == 1 { "is" } else { "are" }, names = .0.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", "), list = Permission::ALL.iter().filter(|p| p.is_data()).map(|p| p.as_str()).collect::<Vec<_>>().join(", "))]
    Unknown(Vec<String>),
}

impl Scopes {
    /// Parses scope names: at least one, each from the list, duplicates folded.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ScopesError> {
        let mut set = PermissionSet::EMPTY;
        let mut unknown = Vec::new();
        for name in names {
            match Permission::parse(name.as_ref()) {
                Ok(p) if p.is_data() => set.insert(p),
                _ => unknown.push(name.as_ref().to_owned()),
            }
        }
        if !unknown.is_empty() {
            return Err(ScopesError::Unknown(unknown));
        }
        if set.is_empty() {
            return Err(ScopesError::Empty);
        }
        Ok(Scopes(set))
    }

    /// The scopes as a permission set.
    pub const fn as_set(self) -> PermissionSet {
        self.0
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        Scopes::parse(&names).map_err(serde::de::Error::custom)
    }
}

/// A member's role. The set of roles is fixed; what each may do is the firm's [`Grid`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The firm's owner: everything, always.
    Owner,
    /// Administrators: everything by default.
    Administrator,
    /// Attorneys: all data, by default no keys, audit log or members.
    Attorney,
    /// Staff: contacts and leads, read-only elsewhere, by default.
    Staff,
}

impl Role {
    /// Every role, in the contract's order.
    pub const ALL: [Role; 4] = [Role::Owner, Role::Administrator, Role::Attorney, Role::Staff];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Administrator => "administrator",
            Role::Attorney => "attorney",
            Role::Staff => "staff",
        }
    }

    /// Parses a wire name.
    pub fn parse(name: &str) -> Result<Self, UnknownRole> {
        Self::ALL.into_iter().find(|r| r.as_str() == name).ok_or_else(|| UnknownRole(name.to_owned()))
    }

    /// What a new firm gives this role.
    pub fn default_permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            Role::Owner | Role::Administrator => PermissionSet::all(),
            Role::Attorney => Permission::ALL.into_iter().filter(|p| p.is_data()).collect(),
            Role::Staff => {
                [ContactsRead, ContactsWrite, LeadsRead, LeadsWrite, MattersRead, PracticeAreasRead, MatterTypesRead]
                    .into_iter()
                    .collect()
            }
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the roles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a role; use one of: owner, administrator, attorney, staff")]
pub struct UnknownRole(pub String);

/// A firm's roles-and-permissions grid. The owner's row is not stored: it is always everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grid {
    /// What administrators may do.
    pub administrator: PermissionSet,
    /// What attorneys may do.
    pub attorney: PermissionSet,
    /// What staff may do.
    pub staff: PermissionSet,
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            administrator: Role::Administrator.default_permissions(),
            attorney: Role::Attorney.default_permissions(),
            staff: Role::Staff.default_permissions(),
        }
    }
}

impl Grid {
    /// What `role` may do now.
    pub fn permissions(&self, role: Role) -> PermissionSet {
        match role {
            Role::Owner => PermissionSet::all(),
            Role::Administrator => self.administrator,
            Role::Attorney => self.attorney,
            Role::Staff => self.staff,
        }
    }

    /// The one authorization rule: may a member of `role` do `permission` in this firm now?
    pub fn allows(&self, role: Role, permission: Permission) -> bool {
        self.permissions(role).contains(permission)
    }

    /// The grid with `role` given exactly `permissions`. The owner's row is fixed.
    pub fn with(mut self, role: Role, permissions: PermissionSet) -> Result<Grid, OwnerRoleFixed> {
        match role {
            Role::Owner => return Err(OwnerRoleFixed),
            Role::Administrator => self.administrator = permissions,
            Role::Attorney => self.attorney = permissions,
            Role::Staff => self.staff = permissions,
        }
        Ok(self)
    }
}

/// The owner role's permissions cannot change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the owner role always has every permission and cannot be changed")]
pub struct OwnerRoleFixed;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_permission_round_trips_through_its_wire_name() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Ok(p));
        }
    }

    #[test]
    fn the_default_grid_gives_api_keys_only_to_owner_and_administrator() {
        let grid = Grid::default();
        assert!(grid.allows(Role::Owner, Permission::ApiKeys));
        assert!(grid.allows(Role::Administrator, Permission::ApiKeys));
        assert!(!grid.allows(Role::Attorney, Permission::ApiKeys));
        assert!(!grid.allows(Role::Staff, Permission::ApiKeys));
    }

    #[test]
    fn staff_by_default_write_contacts_and_leads_and_only_read_the_rest() {
        let staff = Grid::default().permissions(Role::Staff);
        assert_eq!(
            staff.names(),
            vec![
                "contacts:read",
                "contacts:write",
                "matters:read",
                "leads:read",
                "leads:write",
                "practice_areas:read",
                "matter_types:read"
            ]
        );
    }

    #[test]
    fn attorneys_by_default_have_every_data_permission_and_nothing_else() {
        let attorney = Grid::default().permissions(Role::Attorney);
        assert_eq!(attorney.iter().count(), 10);
        assert!(attorney.iter().all(Permission::is_data));
    }

    #[test]
    fn the_owner_keeps_everything_whatever_the_grid_says() {
        let grid =
            Grid { administrator: PermissionSet::EMPTY, attorney: PermissionSet::EMPTY, staff: PermissionSet::EMPTY };
        assert!(Permission::ALL.into_iter().all(|p| grid.allows(Role::Owner, p)));
        assert_eq!(Grid::default().with(Role::Owner, PermissionSet::EMPTY), Err(OwnerRoleFixed));
    }

    #[test]
    fn scopes_fold_duplicates_and_refuse_an_empty_list() {
        let scopes = Scopes::parse(&["contacts:write", "contacts:write"]).expect("valid");
        assert_eq!(scopes.as_set().names(), vec!["contacts:write"]);
        assert_eq!(Scopes::parse::<&str>(&[]), Err(ScopesError::Empty));
    }

    #[test]
    fn a_management_permission_is_not_a_scope() {
        assert_eq!(Scopes::parse(&["api_keys", "contacts:read"]), Err(ScopesError::Unknown(vec!["api_keys".into()])));
    }

    #[test]
    fn write_does_not_imply_read() {
        let scopes = Scopes::parse(&["matters:write"]).expect("valid").as_set();
        assert!(!scopes.contains(Permission::MattersRead));
    }

    proptest! {
        #[test]
        fn a_permission_set_serializes_to_its_names_and_back(bits in 0u16..(1 << 13)) {
            let set: PermissionSet = Permission::ALL.into_iter().enumerate().filter(|(i, _)| bits & (1 << i) != 0).map(|(_, p)| p).collect();
            let json = serde_json::to_string(&set).expect("serializes");
            let back: PermissionSet = serde_json::from_str(&json).expect("deserializes");
            prop_assert_eq!(set, back);
        }
    }
}
