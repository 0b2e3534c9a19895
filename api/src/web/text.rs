//! Words and formats the pages share: scopes in words, times in the firm's time zone, safe
//! `next` targets, query strings.

use chrono::{DateTime, Utc};
use domain::names::FirmTimeZone;
use domain::Permission;

/// The data resources a key's scopes are grouped by, in the help page's order: the wire
/// prefix, the words, and the Read and Write permissions.
pub const RESOURCES: [(&str, Permission, Permission); 5] = [
    ("Contacts", Permission::ContactsRead, Permission::ContactsWrite),
    ("Matters", Permission::MattersRead, Permission::MattersWrite),
    ("Leads", Permission::LeadsRead, Permission::LeadsWrite),
    ("Practice areas", Permission::PracticeAreasRead, Permission::PracticeAreasWrite),
    ("Matter types", Permission::MatterTypesRead, Permission::MatterTypesWrite),
];

/// A key's scopes in words, one badge per resource: "Contacts: Read", "Matters: Read, Write".
pub fn scope_badges(scopes: &[String]) -> Vec<String> {
    let held: Vec<Permission> = scopes.iter().filter_map(|s| Permission::parse(s).ok()).collect();
    RESOURCES
        .iter()
        .filter_map(|(words, read, write)| match (held.contains(read), held.contains(write)) {
            (true, true) => Some(format!("{words}: Read, Write")),
            (true, false) => Some(format!("{words}: Read")),
            (false, true) => Some(format!("{words}: Write")),
            (false, false) => None,
        })
        .collect()
}

/// A permission in words, as the roles grid shows it.
pub fn permission_words(permission: Permission) -> String {
    match permission {
        Permission::ApiKeys => "API keys".into(),
        Permission::AuditLog => "Audit log".into(),
        Permission::Members => "Members".into(),
        data => RESOURCES
            .iter()
            .find_map(|(words, read, write)| {
                if *read == data {
                    Some(format!("{words}: Read"))
                } else if *write == data {
                    Some(format!("{words}: Write"))
                } else {
                    None
                }
            })
            .unwrap_or_else(|| data.as_str().to_owned()),
    }
}

/// A role in words.
pub fn role_words(role: domain::Role) -> &'static str {
    match role {
        domain::Role::Owner => "Owner",
        domain::Role::Administrator => "Administrator",
        domain::Role::Attorney => "Attorney",
        domain::Role::Staff => "Staff",
    }
}

/// A date in the firm's time zone: "Mar 1, 2027".
pub fn date(t: &DateTime<Utc>, zone: FirmTimeZone) -> String {
    t.with_timezone(&zone.tz()).format("%b %-d, %Y").to_string()
}

/// A time in the firm's time zone: "Mar 1, 2027, 09:30".
pub fn date_time(t: &DateTime<Utc>, zone: FirmTimeZone) -> String {
    t.with_timezone(&zone.tz()).format("%b %-d, %Y, %H:%M").to_string()
}

/// The time of day in the firm's time zone, with the zone's abbreviation: "09:30 EST".
pub fn time_of_day(t: &DateTime<Utc>, zone: FirmTimeZone) -> String {
    t.with_timezone(&zone.tz()).format("%H:%M %Z").to_string()
}

/// The machine-readable form for `<time datetime>`.
pub fn iso(t: &DateTime<Utc>) -> String {
    domain::format_time(t)
}

/// Where to go after signing in: only a path on this service (`/…`, not `//…` nor `/\…`,
/// which browsers read as another host), else the Settings hub.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.chars().any(|c| c.is_control() || c == '\\') =>
        {
            next.to_owned()
        }
        _ => "/settings".to_owned(),
    }
}

/// Percent-encodes a query parameter's value.
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A query string from pairs, skipping empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_badges_in_words_one_per_resource() {
        let scopes = ["matters:write", "contacts:read", "matters:read"].map(String::from);
        assert_eq!(scope_badges(&scopes), vec!["Contacts: Read", "Matters: Read, Write"]);
        assert_eq!(scope_badges(&["practice_areas:write".into()]), vec!["Practice areas: Write"]);
    }

    #[test]
    fn only_a_path_on_this_service_is_a_next_target() {
        assert_eq!(safe_next(Some("/settings/developers?status=active")), "/settings/developers?status=active");
        for bad in ["https://evil.test/", "//evil.test", "/\\evil.test", "settings", "/a\\b", "/a\nb"] {
            assert_eq!(safe_next(Some(bad)), "/settings", "{bad}");
        }
        assert_eq!(safe_next(None), "/settings");
    }

    #[test]
    fn an_expiry_is_the_date_in_the_firms_zone() {
        let zone = FirmTimeZone::parse("America/New_York").expect("a zone");
        let t = DateTime::parse_from_rfc3339("2027-03-01T05:00:00Z").expect("a time").with_timezone(&Utc);
        assert_eq!(date(&t, zone), "Mar 1, 2027");
        assert_eq!(date(&t, FirmTimeZone::parse("Asia/Tokyo").expect("a zone")), "Mar 1, 2027");
        let late = DateTime::parse_from_rfc3339("2027-03-01T03:00:00Z").expect("a time").with_timezone(&Utc);
        assert_eq!(date(&late, zone), "Feb 28, 2027");
    }

    #[test]
    fn a_query_escapes_and_skips_empty_values() {
        assert_eq!(query(&[("next", "/a?b=c&d"), ("x", "")]), "?next=/a%3Fb%3Dc%26d");
        assert_eq!(query(&[("x", "")]), "");
    }
}
