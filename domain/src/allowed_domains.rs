//! A key's browser allow-list: which `Origin`s may use it.
//!
//! Entries are typed by people (often pasted from a textarea), so parsing is
//! forgiving about layout (commas, newlines, case, a trailing dot, Unicode
//! names) and strict about meaning: anything that is not a bare hostname,
//! wildcard, `localhost` or IP address is rejected with a sentence saying
//! what to type instead. Matching is exact on normalised hosts, with no
//! suffix tricks.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest hostname in ASCII (punycode) form, per RFC 1035.
const MAX_NAME_LEN: usize = 253;

/// Longest label in ASCII (punycode) form, per RFC 1035.
const MAX_LABEL_LEN: usize = 63;

/// Inputs longer than this cannot become a valid name (each code point yields at
/// least one ASCII character), so we reject them before running IDNA on them.
const MAX_RAW_NAME_BYTES: usize = 4 * MAX_NAME_LEN;

/// The example used when we cannot suggest something built from the user's own input.
const EXAMPLE_HOST: &str = "app.example.com";

/// One normalised entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DomainPattern {
    /// An exact hostname in lowercase ASCII (punycode), e.g. `app.example.com` or `localhost`.
    Host(String),
    /// Any subdomain, at any depth, of the suffix (e.g. `example.com`), never the suffix itself.
    Wildcard(String),
    /// An exact IP address.
    Ip(IpAddr),
}

impl DomainPattern {
    /// The entry as it is stored and shown: `*.example.com`, `app.example.com`, `::1`.
    pub fn as_string(&self) -> String {
        match self {
            DomainPattern::Host(host) => host.clone(),
            DomainPattern::Wildcard(suffix) => format!("*.{suffix}"),
            DomainPattern::Ip(ip) => ip.to_string(),
        }
    }

    /// Whether a host (as found in an `Origin`, e.g. from [`origin_host`]) matches this entry.
    ///
    /// The host is normalised first (case, trailing dot, IDNA, IPv6 brackets), so
    /// `App.Example.COM.` matches `app.example.com`; an unparseable host never matches.
    pub fn matches_host(&self, host: &str) -> bool {
        canonical_host(host).is_some_and(|host| self.matches(&host))
    }

    /// Matching against an already-normalised host.
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (DomainPattern::Host(pattern), Host::Name(name)) => pattern == name,
            (DomainPattern::Wildcard(suffix), Host::Name(name)) => {
                // Require a whole-label boundary: `a.example.com` yes,
                // `evilexample.com` and `example.com` itself no. Normalised names
                // have no empty labels, so a non-empty rest is at least one label.
                name.strip_suffix(suffix.as_str())
                    .and_then(|rest| rest.strip_suffix('.'))
                    .is_some_and(|rest| !rest.is_empty())
            }
            (DomainPattern::Ip(pattern), Host::Ip(ip)) => pattern == ip,
            _ => false,
        }
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// The list; empty means Any.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AllowedDomains(Vec<DomainPattern>);

impl AllowedDomains {
    /// The most entries a list may hold (after folding duplicates).
    pub const MAX_ENTRIES: usize = 100;

    /// The empty list, which allows every origin.
    pub fn any() -> Self {
        Self(Vec::new())
    }

    /// Parses what a person typed: each string is also split on commas and newlines,
    /// blank pieces are ignored, entries are normalised and duplicates folded (first
    /// occurrence kept). Every rejected piece is reported, not just the first.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<DomainEntryError>> {
        let mut patterns = Vec::new();
        let mut seen = HashSet::new();
        let mut errors = Vec::new();
        for piece in entries.iter().flat_map(|entry| split_pieces(entry.as_ref())) {
            match normalise(piece) {
                Ok(pattern) => {
                    if seen.insert(pattern.clone()) {
                        patterns.push(pattern);
                    }
                }
                Err(rejection) => {
                    errors.push(DomainEntryError { entry: piece.to_owned(), message: rejection.message() })
                }
            }
        }
        if patterns.len() > Self::MAX_ENTRIES {
            errors.push(DomainEntryError {
                entry: format!("{} entries", patterns.len()),
                message: format!(
                    "At most {} domains are allowed; remove some or use a wildcard such as *.example.com",
                    Self::MAX_ENTRIES
                ),
            });
        }
        if errors.is_empty() {
            Ok(Self(patterns))
        } else {
            Err(errors)
        }
    }

    /// True when the list is empty, i.e. every origin is allowed.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalised entries, in the order first typed.
    pub fn entries(&self) -> &[DomainPattern] {
        &self.0
    }

    /// The entries as strings, in order; parsing these gives back the same list.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(DomainPattern::as_string).collect()
    }

    /// Whether a request with this `Origin` header value may use the key.
    ///
    /// The empty list (Any) allows every origin, including `null` and garbage:
    /// the rule lives here so callers need no special case. Otherwise `null` and
    /// unparseable origins never match, and a parsed host must match an entry.
    pub fn allows_origin(&self, origin: &str) -> bool {
        if self.is_any() {
            return true;
        }
        parse_origin_host(origin).is_some_and(|host| self.0.iter().any(|p| p.matches(&host)))
    }
}

/// Serializes as a JSON array of strings.
impl serde::Serialize for AllowedDomains {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(DomainPattern::as_string))
    }
}

/// Deserializes by parsing, so a stored list round-trips and an invalid one is an error.
impl<'de> serde::Deserialize<'de> for AllowedDomains {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(deserializer)?;
        AllowedDomains::parse(&raw).map_err(|errors| {
            let joined = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
            serde::de::Error::custom(format_args!("invalid allowed domains: {joined}"))
        })
    }
}

/// One rejected entry: `entry` is the input piece as typed (trimmed), `message` is the human sentence saying what to type instead.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct DomainEntryError {
    /// The rejected piece as typed (trimmed), or a summary such as `101 entries`.
    pub entry: String,
    /// What is wrong and what to type instead.
    pub message: String,
}

/// The host of an `Origin` header value, normalised (lowercase, no trailing dot,
/// punycode, IPv6 without brackets); `None` for `null` or anything unparseable.
///
/// `https://App.Example.com:8443` gives `app.example.com`; `https://[::1]:8443` gives `::1`.
pub fn origin_host(origin: &str) -> Option<String> {
    parse_origin_host(origin).map(|host| host.to_string())
}

/// A normalised host from an `Origin` or a caller.
#[derive(Debug, PartialEq, Eq)]
enum Host {
    /// Lowercase ASCII (punycode) name without a trailing dot.
    Name(String),
    /// An IP address.
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Splits a raw string (possibly a whole textarea) into trimmed, non-empty pieces.
fn split_pieces(raw: &str) -> impl Iterator<Item = &str> {
    // Splitting on `\r` and `\n` separately handles `\r\n` too: the empty piece between is dropped.
    raw.split([',', '\n', '\r']).map(str::trim).filter(|piece| !piece.is_empty())
}

/// Why a piece was rejected; the message is built later so the scheme, path and
/// port cases can suggest the hostname the person probably meant.
#[derive(Debug)]
enum Rejection {
    /// A URL scheme such as `https://` was typed.
    Scheme { scheme: String, rest: String },
    /// A path, query or fragment was typed.
    Path { whole: String },
    /// A port was typed.
    Port { whole: String },
    /// Anything else, already phrased.
    Other(String),
}

impl Rejection {
    /// The human sentence saying what to type instead.
    fn message(&self) -> String {
        match self {
            Rejection::Scheme { scheme, rest } => {
                format!("Enter the hostname only, without {scheme}:// — for example {}", suggest_host(rest))
            }
            Rejection::Path { whole } => {
                format!("Enter the hostname only, without a path — for example {}", suggest_host(whole))
            }
            Rejection::Port { whole } => {
                format!("Enter the hostname only, without a port — for example {}", suggest_host(whole))
            }
            Rejection::Other(message) => message.clone(),
        }
    }
}

/// Best-effort hostname from a URL-ish input (scheme already removed), for error messages.
fn suggest_host(rest: &str) -> String {
    let rest = rest.trim_start_matches('/');
    // The end of the authority; after this cut there is no `/`, so no scheme or path remains.
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_once(']').map_or(host_port, |(inside, _)| inside).trim_start_matches('[')
    } else if host_port.matches(':').count() == 1 {
        host_port.split_once(':').map_or(host_port, |(h, _)| h)
    } else {
        host_port
    };
    // `host` has no `/` and at most a bare IPv6's colons, so `normalise` cannot
    // return a scheme, path or port rejection here: no recursion back into this function.
    match normalise(host) {
        Ok(pattern) => pattern.as_string(),
        Err(_) => EXAMPLE_HOST.to_owned(),
    }
}

/// Normalises one trimmed, non-empty piece into a pattern.
fn normalise(piece: &str) -> Result<DomainPattern, Rejection> {
    let lower = piece.to_lowercase();
    if let Some((scheme, rest)) = lower.split_once("://") {
        return Err(Rejection::Scheme { scheme: scheme.to_owned(), rest: rest.to_owned() });
    }
    if lower.contains(['/', '?', '#', '\\']) {
        return Err(Rejection::Path { whole: lower });
    }
    if let Some(bracketed) = lower.strip_prefix('[') {
        let Some((inside, after)) = bracketed.split_once(']') else {
            return Err(invalid_ipv6());
        };
        if after.starts_with(':') {
            return Err(Rejection::Port { whole: lower });
        }
        if !after.is_empty() {
            return Err(invalid_ipv6());
        }
        return inside.parse::<Ipv6Addr>().map(|ip| DomainPattern::Ip(IpAddr::V6(ip))).map_err(|_| invalid_ipv6());
    }
    match lower.matches(':').count() {
        0 => {}
        1 => return Err(Rejection::Port { whole: lower }),
        _ => return lower.parse::<Ipv6Addr>().map(|ip| DomainPattern::Ip(IpAddr::V6(ip))).map_err(|_| invalid_ipv6()),
    }
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() {
        return Err(Rejection::Other(format!("Enter a hostname, for example {EXAMPLE_HOST}")));
    }
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Ok(DomainPattern::Ip(IpAddr::V4(ip)));
    }
    if name == "*" {
        return Err(Rejection::Other("To allow any domain, leave the list empty".to_owned()));
    }
    if name.contains('*') {
        let Some(suffix) = name.strip_prefix("*.").filter(|s| !s.contains('*')) else {
            return Err(Rejection::Other(
                "Only the whole first label may be *, followed by a dot — for example *.example.com".to_owned(),
            ));
        };
        let suffix = entry_name_to_ascii(suffix)?;
        if !suffix.contains('.') {
            return Err(Rejection::Other(
                "A wildcard needs at least two labels after *., for example *.example.com".to_owned(),
            ));
        }
        return Ok(DomainPattern::Wildcard(suffix));
    }
    entry_name_to_ascii(name).map(DomainPattern::Host)
}

/// The message for a malformed IPv6 address.
fn invalid_ipv6() -> Rejection {
    Rejection::Other(
        "Enter a valid IPv6 address, for example ::1 or [2001:db8::1], or a hostname such as app.example.com"
            .to_owned(),
    )
}

/// Converts a lowercased typed name to validated ASCII (punycode), with a specific
/// message for each way it can be wrong.
fn entry_name_to_ascii(name: &str) -> Result<String, Rejection> {
    let too_long = || {
        Rejection::Other(format!(
            "A hostname can be at most {MAX_NAME_LEN} characters; enter a shorter one, for example {EXAMPLE_HOST}"
        ))
    };
    if name.len() > MAX_RAW_NAME_BYTES {
        return Err(too_long());
    }
    // Check the typed ASCII first so messages point at what was typed, before
    // IDNA mapping changes it.
    check_labels(name)?;
    let ascii = idna::domain_to_ascii(name).map_err(|_| {
        Rejection::Other(
            "Enter a valid international domain name, for example bücher.example or app.example.com".to_owned(),
        )
    })?;
    // IDNA may map characters (e.g. full-width forms) into new ASCII, so check again.
    check_labels(&ascii)?;
    if !ascii.is_ascii() {
        // Unreachable for a successful to-ASCII conversion; kept as a safe guard.
        return Err(invalid_character_message('?'));
    }
    if ascii.len() > MAX_NAME_LEN {
        return Err(too_long());
    }
    if ascii.split('.').any(|label| label.len() > MAX_LABEL_LEN) {
        return Err(Rejection::Other(format!(
            "Each part between dots can be at most {MAX_LABEL_LEN} characters; enter a shorter hostname, for example {EXAMPLE_HOST}"
        )));
    }
    if ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        // Browsers read a numeric last label as an IPv4 address (`1.2.3` is `1.2.0.3`),
        // so such a "hostname" would never match what they send.
        return Err(Rejection::Other(
            "Enter an IPv4 address as four numbers from 0 to 255, for example 192.0.2.10, or a hostname such as app.example.com"
                .to_owned(),
        ));
    }
    Ok(ascii)
}

/// Checks labels are non-empty and ASCII characters are letters, digits or
/// hyphens with no hyphen at either end of a label. Non-ASCII is left to IDNA.
fn check_labels(name: &str) -> Result<(), Rejection> {
    for label in name.split('.') {
        if label.is_empty() {
            return Err(Rejection::Other(format!(
                "Remove the empty part between dots, for example {EXAMPLE_HOST} instead of app..example.com"
            )));
        }
        if let Some(bad) = label.chars().find(|c| c.is_ascii() && !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(invalid_character_message(bad));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(Rejection::Other(format!(
                "A part between dots cannot start or end with a hyphen; enter a hostname such as app-1.example.com or {EXAMPLE_HOST}"
            )));
        }
    }
    Ok(())
}

/// The message for a character that cannot appear in a hostname.
fn invalid_character_message(bad: char) -> Rejection {
    let shown = if bad.is_ascii_graphic() { format!("“{bad}”") } else { format!("{:?}", bad) };
    Rejection::Other(format!(
        "A hostname may contain only letters, digits, hyphens and dots (remove {shown}); for example {EXAMPLE_HOST}"
    ))
}

/// Parses an `Origin` header value (`scheme://host[:port]`) into its normalised host.
fn parse_origin_host(origin: &str) -> Option<Host> {
    let origin = origin.trim_matches(|c: char| c.is_ascii_whitespace());
    if origin.eq_ignore_ascii_case("null") {
        return None;
    }
    let (scheme, rest) = origin.split_once("://")?;
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    // Tolerate one trailing slash from non-browser clients; anything else after the host is not an origin.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inside, after) = bracketed.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        let ip = inside.parse::<Ipv6Addr>().ok()?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        (canonical_name_or_ipv4(host)?, port)
    };
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok();
        if !valid {
            return None;
        }
    }
    Some(host)
}

/// Normalises a bare host as a caller might pass it: a name, IPv4, or IPv6 with or without brackets.
fn canonical_host(host: &str) -> Option<Host> {
    let host = host.trim_matches(|c: char| c.is_ascii_whitespace());
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inside.parse::<Ipv6Addr>().ok().map(|ip| Host::Ip(IpAddr::V6(ip)));
    }
    if host.contains(':') {
        return host.parse::<Ipv6Addr>().ok().map(|ip| Host::Ip(IpAddr::V6(ip)));
    }
    canonical_name_or_ipv4(host)
}

/// Normalises a host name or IPv4 address from an origin. More lenient than entry
/// parsing (underscores and edge hyphens occur in real hosts) but still requires
/// non-empty labels, so label-boundary matching stays sound.
fn canonical_name_or_ipv4(host: &str) -> Option<Host> {
    let lower = host.to_lowercase();
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    if name.is_empty() || name.len() > MAX_RAW_NAME_BYTES {
        return None;
    }
    if let Ok(ip) = name.parse::<Ipv4Addr>() {
        return Some(Host::Ip(IpAddr::V4(ip)));
    }
    let ascii = idna::domain_to_ascii(name).ok()?;
    let labels_ok = ascii.split('.').all(|label| {
        !label.is_empty()
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    let numeric_tld = ascii.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if !labels_ok || numeric_tld || ascii.len() > MAX_NAME_LEN {
        return None;
    }
    Some(Host::Name(ascii))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses a list expected to be valid.
    fn ok(entries: &[&str]) -> AllowedDomains {
        match AllowedDomains::parse(entries) {
            Ok(list) => list,
            Err(errors) => panic!("expected {entries:?} to parse, got {errors:?}"),
        }
    }

    /// Parses a single entry expected to be rejected and returns its one error.
    fn rejected(entry: &str) -> DomainEntryError {
        match AllowedDomains::parse(&[entry]) {
            Ok(list) => panic!("expected {entry:?} to be rejected, got {list:?}"),
            Err(mut errors) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                errors.remove(0)
            }
        }
    }

    fn host(s: &str) -> DomainPattern {
        DomainPattern::Host(s.to_owned())
    }

    fn wildcard(s: &str) -> DomainPattern {
        DomainPattern::Wildcard(s.to_owned())
    }

    // --- normalisation ---

    #[test]
    fn a_hostname_is_kept_as_typed_when_already_normal() {
        assert_eq!(ok(&["app.example.com"]).entries(), [host("app.example.com")]);
    }

    #[test]
    fn entries_are_lowercased_and_trimmed() {
        assert_eq!(ok(&["  App.Example.COM \t"]).entries(), [host("app.example.com")]);
    }

    #[test]
    fn a_trailing_dot_is_stripped() {
        assert_eq!(ok(&["app.example.com."]).entries(), [host("app.example.com")]);
        assert_eq!(ok(&["*.example.com."]).entries(), [wildcard("example.com")]);
    }

    #[test]
    fn an_international_name_is_stored_in_punycode() {
        assert_eq!(ok(&["bücher.example"]).entries(), [host("xn--bcher-kva.example")]);
        assert_eq!(ok(&["BÜCHER.example"]).entries(), [host("xn--bcher-kva.example")]);
        assert_eq!(ok(&["*.bücher.example"]).entries(), [wildcard("xn--bcher-kva.example")]);
    }

    #[test]
    fn a_punycode_name_is_accepted_unchanged() {
        assert_eq!(ok(&["xn--bcher-kva.example"]).entries(), [host("xn--bcher-kva.example")]);
    }

    #[test]
    fn localhost_is_a_host_entry() {
        assert_eq!(ok(&["LocalHost"]).entries(), [host("localhost")]);
    }

    #[test]
    fn a_wildcard_stores_its_suffix() {
        let list = ok(&["*.example.com"]);
        assert_eq!(list.entries(), [wildcard("example.com")]);
        assert_eq!(list.to_strings(), ["*.example.com"]);
    }

    #[test]
    fn an_ipv4_address_is_an_ip_entry() {
        assert_eq!(ok(&["192.0.2.10"]).entries(), [DomainPattern::Ip("192.0.2.10".parse().expect("valid IPv4"))]);
    }

    #[test]
    fn an_ipv6_address_is_accepted_bare_or_bracketed_and_stored_canonically() {
        let list = ok(&["::1", "[::1]", "[2001:DB8:0:0::1]", "2001:db8::0:1"]);
        assert_eq!(list.to_strings(), ["::1", "2001:db8::1"]);
    }

    #[test]
    fn a_textarea_with_commas_and_every_kind_of_newline_is_split() {
        let text = "app.example.com, *.example.org\nlocalhost\r\n::1\r192.0.2.1,,\n\n  \n";
        assert_eq!(ok(&[text]).to_strings(), ["app.example.com", "*.example.org", "localhost", "::1", "192.0.2.1"]);
    }

    #[test]
    fn blank_pieces_are_ignored_and_an_all_blank_input_is_any() {
        let list = ok(&["", "  ", ",\n,", "\r\n"]);
        assert!(list.is_any());
    }

    #[test]
    fn duplicates_are_folded_after_normalisation_keeping_first_order() {
        let list = ok(&[
            "b.example.com",
            "a.example.com",
            "B.EXAMPLE.COM.",
            "*.example.com",
            "a.example.com",
            "*.Example.com",
            "bücher.example",
            "xn--bcher-kva.example",
        ]);
        assert_eq!(list.to_strings(), ["b.example.com", "a.example.com", "*.example.com", "xn--bcher-kva.example"]);
    }

    #[test]
    fn one_hundred_entries_are_allowed() {
        let entries: Vec<String> = (0..100).map(|i| format!("h{i}.example.com")).collect();
        assert_eq!(AllowedDomains::parse(&entries).map(|l| l.entries().len()), Ok(100));
    }

    #[test]
    fn duplicates_do_not_count_towards_the_limit() {
        let mut entries: Vec<String> = (0..100).map(|i| format!("h{i}.example.com")).collect();
        entries.push("H0.example.com".to_owned());
        assert!(AllowedDomains::parse(&entries).is_ok());
    }

    #[test]
    fn more_than_one_hundred_entries_are_rejected_with_advice() {
        let entries: Vec<String> = (0..101).map(|i| format!("h{i}.example.com")).collect();
        let errors = AllowedDomains::parse(&entries).expect_err("too many");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].entry, "101 entries");
        assert!(errors[0].message.contains("At most 100"));
        assert!(errors[0].message.contains("*.example.com"));
    }

    // --- rejections ---

    #[test]
    fn a_scheme_is_rejected_suggesting_the_bare_hostname() {
        let e = rejected("https://App.example.com/");
        assert_eq!(e.entry, "https://App.example.com/");
        assert_eq!(e.message, "Enter the hostname only, without https:// — for example app.example.com");
        let e = rejected("http://localhost:3000/x");
        assert!(e.message.contains("without http://"), "{}", e.message);
        assert!(e.message.ends_with("for example localhost"), "{}", e.message);
    }

    #[test]
    fn a_path_is_rejected_suggesting_the_bare_hostname() {
        let e = rejected("app.example.com/x");
        assert!(e.message.contains("without a path"), "{}", e.message);
        assert!(e.message.ends_with("for example app.example.com"), "{}", e.message);
        assert!(rejected("app.example.com?q").message.contains("without a path"));
        assert!(rejected("//app.example.com").message.contains("without a path"));
    }

    #[test]
    fn a_port_is_rejected_suggesting_the_bare_hostname() {
        let e = rejected("app.example.com:8443");
        assert!(e.message.contains("without a port"), "{}", e.message);
        assert!(e.message.ends_with("for example app.example.com"), "{}", e.message);
        let e = rejected("[::1]:8443");
        assert!(e.message.contains("without a port"), "{}", e.message);
        assert!(e.message.ends_with("for example ::1"), "{}", e.message);
    }

    #[test]
    fn a_bare_star_says_to_leave_the_list_empty() {
        assert_eq!(rejected("*").message, "To allow any domain, leave the list empty");
    }

    #[test]
    fn a_star_anywhere_but_the_whole_first_label_is_rejected() {
        for entry in ["*foo.example.com", "app.*.example.com", "*.*.example.com", "a*.example.com", "example.*"] {
            let e = rejected(entry);
            assert!(e.message.contains("first label"), "{entry}: {}", e.message);
            assert!(e.message.contains("*.example.com"), "{entry}: {}", e.message);
        }
    }

    #[test]
    fn a_wildcard_over_a_single_label_is_rejected() {
        for entry in ["*.com", "*.localhost"] {
            let e = rejected(entry);
            assert!(e.message.contains("at least two labels"), "{entry}: {}", e.message);
            assert!(e.message.contains("*.example.com"), "{entry}: {}", e.message);
        }
    }

    #[test]
    fn an_empty_label_is_rejected() {
        for entry in ["app..example.com", ".example.com", "*..example.com", "example.com.."] {
            let e = rejected(entry);
            assert!(e.message.contains("empty part between dots"), "{entry}: {}", e.message);
        }
    }

    #[test]
    fn a_label_over_63_characters_is_rejected() {
        let entry = format!("{}.example.com", "a".repeat(64));
        let e = rejected(&entry);
        assert!(e.message.contains("63"), "{}", e.message);
        assert!(e.message.contains("app.example.com"), "{}", e.message);
        let ok_entry = format!("{}.example.com", "a".repeat(63));
        assert!(AllowedDomains::parse(&[ok_entry]).is_ok());
    }

    #[test]
    fn a_name_over_253_characters_is_rejected() {
        // 4 × 63 + 3 dots = 255 characters.
        let label = "a".repeat(63);
        let entry = [label.as_str(); 4].join(".");
        let e = rejected(&entry);
        assert!(e.message.contains("253"), "{}", e.message);
        // 3 × 63 + 61 + 3 dots = 253 characters.
        let fits = format!("{label}.{label}.{label}.{}", "b".repeat(61));
        assert_eq!(fits.len(), 253);
        assert!(AllowedDomains::parse(&[fits]).is_ok());
    }

    #[test]
    fn an_enormous_entry_is_rejected_as_too_long() {
        let e = rejected(&"a".repeat(100_000));
        assert!(e.message.contains("253"), "{}", e.message);
    }

    #[test]
    fn invalid_hostname_characters_are_rejected_naming_the_character() {
        for (entry, bad) in [
            ("my_app.example.com", "_"),
            ("app!.example.com", "!"),
            ("app example.com", "' '"),
            ("user@example.com", "@"),
        ] {
            let e = rejected(entry);
            assert!(e.message.contains("only letters, digits, hyphens"), "{entry}: {}", e.message);
            assert!(e.message.contains(bad), "{entry}: {}", e.message);
        }
    }

    #[test]
    fn a_label_starting_or_ending_with_a_hyphen_is_rejected() {
        for entry in ["-app.example.com", "app-.example.com", "*.-example.com"] {
            let e = rejected(entry);
            assert!(e.message.contains("hyphen"), "{entry}: {}", e.message);
        }
        assert!(AllowedDomains::parse(&["a-b.example.com"]).is_ok());
    }

    #[test]
    fn an_invalid_ip_address_is_rejected() {
        assert!(rejected("256.1.1.1").message.contains("IPv4"));
        assert!(rejected("1.2.3").message.contains("IPv4"));
        assert!(rejected("[::1").message.contains("IPv6"));
        assert!(rejected("[zz::1]").message.contains("IPv6"));
        assert!(rejected("1::2::3").message.contains("IPv6"));
        assert!(rejected("[::1]x").message.contains("IPv6"));
    }

    #[test]
    fn invalid_punycode_is_rejected() {
        let e = rejected("xn--a.example");
        assert!(e.message.contains("international"), "{}", e.message);
    }

    #[test]
    fn every_failure_is_reported_not_just_the_first() {
        let errors = AllowedDomains::parse(&["https://a.example.com, ok.example.com\n*\nb..c", "x:1"])
            .expect_err("several bad entries");
        let entries: Vec<&str> = errors.iter().map(|e| e.entry.as_str()).collect();
        assert_eq!(entries, ["https://a.example.com", "*", "b..c", "x:1"]);
    }

    #[test]
    fn an_error_displays_as_entry_then_message() {
        let e = rejected("*");
        assert_eq!(e.to_string(), "*: To allow any domain, leave the list empty");
    }

    // --- matching ---

    #[test]
    fn a_hostname_entry_matches_exactly() {
        let p = host("app.example.com");
        assert!(p.matches_host("app.example.com"));
        assert!(p.matches_host("APP.example.com."));
        assert!(!p.matches_host("example.com"));
        assert!(!p.matches_host("x.app.example.com"));
    }

    #[test]
    fn a_wildcard_matches_subdomains_at_any_depth() {
        let p = wildcard("example.com");
        assert!(p.matches_host("a.example.com"));
        assert!(p.matches_host("a.b.example.com"));
    }

    #[test]
    fn a_wildcard_never_matches_its_own_apex() {
        let p = wildcard("example.com");
        assert!(!p.matches_host("example.com"));
        assert!(!p.matches_host("example.com."));
        assert!(!p.matches_host(".example.com"));
    }

    #[test]
    fn suffix_tricks_never_match() {
        for p in [host("example.com"), wildcard("example.com")] {
            for h in ["example.com.evil.test", "evilexample.com", "xexample.com", "example.comx", "a.example.co"] {
                assert!(!p.matches_host(h), "{p:?} matched {h}");
            }
        }
    }

    #[test]
    fn an_ip_entry_matches_the_same_address_in_any_spelling() {
        let list = ok(&["::1", "192.0.2.10"]);
        assert!(list.allows_origin("https://[::1]:8443"));
        assert!(list.allows_origin("http://[0:0:0:0:0:0:0:1]"));
        assert!(list.allows_origin("http://192.0.2.10:3000"));
        assert!(!list.allows_origin("http://192.0.2.11"));
        assert!(!list.allows_origin("http://[::2]"));
        assert!(DomainPattern::Ip("::1".parse().expect("valid IPv6")).matches_host("[::1]"));
    }

    #[test]
    fn an_international_origin_matches_its_punycode_entry() {
        let list = ok(&["bücher.example"]);
        assert!(list.allows_origin("https://xn--bcher-kva.example"));
        assert!(list.allows_origin("https://BÜCHER.example"));
    }

    #[test]
    fn the_empty_list_allows_every_origin_including_null() {
        let any = AllowedDomains::any();
        assert!(any.is_any());
        assert!(any.allows_origin("https://anything.test"));
        assert!(any.allows_origin("null"));
        assert!(any.allows_origin("garbage"));
    }

    #[test]
    fn null_and_unparseable_origins_never_match_a_non_empty_list() {
        let list = ok(&["app.example.com", "localhost"]);
        for origin in [
            "null",
            "NULL",
            "",
            "app.example.com",
            "https://",
            "://app.example.com",
            "1https://app.example.com",
            "https://app.example.com/path",
            "https://app.example.com:",
            "https://app.example.com:99999",
            "https://app.example.com:12ab",
            "https://user@app.example.com",
            "https://app..example.com",
            "https://localhost:3000:1",
        ] {
            assert!(!list.allows_origin(origin), "{origin:?} was allowed");
        }
    }

    #[test]
    fn typical_origins_match() {
        let list = ok(&["app.example.com", "localhost", "*.example.org"]);
        assert!(list.allows_origin("https://app.example.com"));
        assert!(list.allows_origin("http://localhost:3000"));
        assert!(list.allows_origin("https://deep.sub.example.org"));
        assert!(list.allows_origin("https://app.example.com/"));
        assert!(!list.allows_origin("https://example.org"));
        assert!(!list.allows_origin("https://other.example.com"));
    }

    #[test]
    fn origin_host_extracts_a_normalised_host() {
        assert_eq!(origin_host("https://App.Example.com:8443").as_deref(), Some("app.example.com"));
        assert_eq!(origin_host("https://app.example.com.").as_deref(), Some("app.example.com"));
        assert_eq!(origin_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(origin_host("http://127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(origin_host("https://bücher.example").as_deref(), Some("xn--bcher-kva.example"));
        assert_eq!(origin_host("null"), None);
        assert_eq!(origin_host("https://[::1"), None);
    }

    #[test]
    fn the_list_serializes_as_an_array_of_strings_and_parses_back() {
        let list = ok(&["app.example.com", "*.example.org", "::1"]);
        let json = serde_json::to_string(&list).expect("serializes");
        assert_eq!(json, r#"["app.example.com","*.example.org","::1"]"#);
        let back: AllowedDomains = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, list);
        let any: AllowedDomains = serde_json::from_str("[]").expect("deserializes");
        assert!(any.is_any());
    }

    #[test]
    fn an_invalid_stored_list_fails_to_deserialize() {
        let err = serde_json::from_str::<AllowedDomains>(r#"["*"]"#).expect_err("invalid");
        assert!(err.to_string().contains("leave the list empty"), "{err}");
        assert!(serde_json::from_str::<AllowedDomains>(r#""app.example.com""#).is_err());
    }

    // --- properties ---

    /// A valid hostname label (not an `xn--` label, which would need valid punycode).
    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?".prop_filter("not punycode", |l| !l.starts_with("xn--"))
    }

    /// A valid hostname of two to four labels with an alphabetic top-level label.
    fn hostname() -> impl Strategy<Value = String> {
        (prop::collection::vec(label(), 1..4), "[a-z]{2,6}")
            .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
    }

    /// Entries as people might type them, valid or not.
    fn typed_entry() -> impl Strategy<Value = String> {
        prop_oneof![
            hostname(),
            hostname().prop_map(|h| format!("*.{h}")),
            hostname().prop_map(|h| format!(" {}. ", h.to_uppercase())),
            any::<std::net::IpAddr>().prop_map(|ip| ip.to_string()),
            any::<std::net::Ipv6Addr>().prop_map(|ip| format!("[{ip}]")),
            prop::sample::select(vec![
                "bücher.example",
                "MÜNCHEN.de",
                "例え.テスト",
                "localhost",
                "ｅｘａｍｐｌｅ.com"
            ])
            .prop_map(str::to_owned),
            "[a-zA-Z0-9.*:\\[\\]/ _-]{0,30}",
        ]
    }

    /// Turns parse errors into a property-test failure.
    fn fail(errors: Vec<DomainEntryError>) -> TestCaseError {
        TestCaseError::fail(format!("{errors:?}"))
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_input(entries in prop::collection::vec(any::<String>(), 0..5)) {
            let _ = AllowedDomains::parse(&entries);
        }

        #[test]
        fn parse_never_panics_on_domain_like_input(
            entries in prop::collection::vec("[a-zA-Z0-9.*:\\[\\]/?#@_ ,\\r\\n\u{fc}\u{3002}\u{ff0e}-]{0,40}", 0..5)
        ) {
            let _ = AllowedDomains::parse(&entries);
        }

        #[test]
        fn normalisation_is_idempotent(entries in prop::collection::vec(typed_entry(), 0..8)) {
            if let Ok(list) = AllowedDomains::parse(&entries) {
                let again = AllowedDomains::parse(&list.to_strings());
                prop_assert_eq!(again, Ok(list));
            }
        }

        #[test]
        fn generated_hostnames_and_wildcards_parse(h in hostname()) {
            prop_assert_eq!(
                AllowedDomains::parse(&[h.clone(), format!("*.{h}")]).map(|l| l.to_strings()),
                Ok(vec![h.clone(), format!("*.{h}")])
            );
        }

        #[test]
        fn a_wildcard_matches_any_subdomain_and_never_its_apex(h in hostname(), l in label(), m in label()) {
            let list = AllowedDomains::parse(&[format!("*.{h}")]).map_err(fail)?;
            let p = &list.entries()[0];
            let one_deep = format!("{l}.{h}");
            let two_deep = format!("{m}.{l}.{h}");
            let glued = format!("x{h}");
            let suffixed = format!("{l}.{h}.evil.test");
            prop_assert!(p.matches_host(&one_deep));
            prop_assert!(p.matches_host(&two_deep));
            prop_assert!(!p.matches_host(&h));
            prop_assert!(!p.matches_host(&glued));
            prop_assert!(!p.matches_host(&suffixed));
        }

        #[test]
        fn a_hostname_never_matches_a_longer_or_shifted_name(h in hostname()) {
            let list = AllowedDomains::parse(&[h.as_str()]).map_err(fail)?;
            let p = &list.entries()[0];
            prop_assert!(p.matches_host(&h));
            for other in [format!("{h}x"), format!("x{h}"), format!("{h}.evil.test"), format!("a.{h}")] {
                prop_assert!(!p.matches_host(&other), "{} matched {}", h, other);
            }
        }

        #[test]
        fn origin_matching_ignores_scheme_and_port(
            h in hostname(),
            scheme in "[a-z][a-z0-9+.-]{0,8}",
            port in 1..=65535u16,
        ) {
            let list = AllowedDomains::parse(&[h.as_str()]).map_err(fail)?;
            let bare = format!("{scheme}://{h}");
            let with_port = format!("{scheme}://{h}:{port}");
            let other = format!("{scheme}://x{h}:{port}");
            prop_assert!(list.allows_origin(&bare));
            prop_assert!(list.allows_origin(&with_port));
            prop_assert_eq!(origin_host(&with_port), Some(h.clone()));
            prop_assert!(!list.allows_origin(&other));
        }

        #[test]
        fn origin_matching_never_panics(origin in any::<String>(), h in hostname()) {
            let list = AllowedDomains::parse(&[h]).map_err(fail)?;
            let _ = list.allows_origin(&origin);
            let _ = origin_host(&origin);
        }
    }
}
