//! The five resources of the data API as one table: paths, tables, permissions and fields.
//! Every table and column name in the SQL comes from here, never from a request.

use domain::Permission;

/// The longest name or title, in characters.
pub(super) const NAME_MAX_CHARS: usize = 200;
/// The longest phone number, in characters.
pub(super) const PHONE_MAX_CHARS: usize = 40;
/// The longest free text (a lead's source), in characters.
pub(super) const TEXT_MAX_CHARS: usize = 200;

/// What a field holds and how a request's value for it is checked. Every field is a JSON string
/// (or `null`) on the wire.
#[derive(Clone, Copy, Debug)]
pub(super) enum Kind {
    /// Required: trimmed, 1 to 200 characters, no control characters.
    Name,
    /// Optional email address, lower-cased.
    Email,
    /// Optional phone number: trimmed, 1 to 40 characters, no control characters.
    Phone,
    /// Optional free text: trimmed, 1 to 200 characters, no control characters.
    Text,
    /// Optional id of a record of the caller's own firm in `table` (a `noun`, for messages).
    Reference { table: &'static str, noun: &'static str },
    /// A matter's status: `open` (the default) or `closed`; never null.
    Status,
}

/// One field of a resource: its JSON name, which is also its column.
#[derive(Debug)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) kind: Kind,
}

/// One resource of the data API.
#[derive(Debug)]
pub(super) struct Resource {
    /// The path segment: `/v1/{path}`.
    pub(super) path: &'static str,
    /// One record, as the OpenAPI document names its schema (`Contact`).
    pub(super) noun: &'static str,
    pub(super) table: &'static str,
    /// What GET needs.
    pub(super) read: Permission,
    /// What POST, PATCH and DELETE need.
    pub(super) write: Permission,
    /// Its fields besides `id`, `created_at`, `updated_at` and `created_by`, in response order.
    pub(super) fields: &'static [Field],
}

pub(super) const fn field(name: &'static str, kind: Kind) -> Field {
    Field { name, kind }
}

pub(super) const CONTACTS: Resource = Resource {
    path: "contacts",
    noun: "Contact",
    table: "contacts",
    read: Permission::ContactsRead,
    write: Permission::ContactsWrite,
    fields: &[field("name", Kind::Name), field("email", Kind::Email), field("phone", Kind::Phone)],
};

pub(super) const LEADS: Resource = Resource {
    path: "leads",
    noun: "Lead",
    table: "leads",
    read: Permission::LeadsRead,
    write: Permission::LeadsWrite,
    fields: &[field("name", Kind::Name), field("email", Kind::Email), field("source", Kind::Text)],
};

pub(super) const PRACTICE_AREAS: Resource = Resource {
    path: "practice-areas",
    noun: "PracticeArea",
    table: "practice_areas",
    read: Permission::PracticeAreasRead,
    write: Permission::PracticeAreasWrite,
    fields: &[field("name", Kind::Name)],
};

pub(super) const PRACTICE_AREA: Kind = Kind::Reference { table: "practice_areas", noun: "practice area" };

pub(super) const MATTER_TYPES: Resource = Resource {
    path: "matter-types",
    noun: "MatterType",
    table: "matter_types",
    read: Permission::MatterTypesRead,
    write: Permission::MatterTypesWrite,
    fields: &[field("name", Kind::Name), field("practice_area_id", PRACTICE_AREA)],
};

pub(super) const MATTERS: Resource = Resource {
    path: "matters",
    noun: "Matter",
    table: "matters",
    read: Permission::MattersRead,
    write: Permission::MattersWrite,
    fields: &[
        field("title", Kind::Name),
        field("contact_id", Kind::Reference { table: "contacts", noun: "contact" }),
        field("practice_area_id", PRACTICE_AREA),
        field("matter_type_id", Kind::Reference { table: "matter_types", noun: "matter type" }),
        field("status", Kind::Status),
    ],
};

pub(super) static RESOURCES: [&Resource; 5] = [&CONTACTS, &MATTERS, &LEADS, &PRACTICE_AREAS, &MATTER_TYPES];
