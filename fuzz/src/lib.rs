//! Property checks shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`) and by the stable
//! test `domain/tests/fuzz_corpus.rs`, which replays every committed corpus file through them.
//!
//! Each `check_*` function takes one raw fuzz input and panics (through `assert!`) when a
//! documented rule of `domain::secret` or `domain::allowed_domains` is broken. The rules are
//! restated here independently (a reference model of the key format, of list splitting and of
//! origin matching) rather than read back from the code under test.
//!
//! This file is also compiled as a module of `domain/tests/fuzz_corpus.rs` (through `#[path]`),
//! so it may only use `domain`, the standard library and crates that `domain` itself depends on.

use std::net::IpAddr;

use domain::allowed_domains::{origin_host, AllowedDomains, DomainEntryError, DomainPattern};
use domain::secret::{checksum, ApiKeySecret, BearerToken, KeyHash, SecretFormatError, TokenKind};
use sha2::{Digest, Sha256};

/// The base62 alphabet in digit order, as documented in `domain::secret`.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Both bearer token kinds.
const TOKEN_KINDS: [TokenKind; 2] = [TokenKind::Session, TokenKind::Invitation];

/// Longest normalised hostname (RFC 1035).
const MAX_NAME_LEN: usize = 253;

// --- key parser -------------------------------------------------------------------------

/// `ApiKeySecret::parse` and `BearerToken::parse` on the input (as text), and on a
/// well-formed key and token built from the input so every run also takes the accepting path.
pub fn check_key_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    check_key_text(&text);
    check_token_text(&text);

    // A well-formed key built from the input bytes: it must parse, and every one-character
    // substitution of it must be rejected (CRC-32 detects every error confined to 32 bits).
    let random: String = (0..32).map(|i| base62_digit(data.get(i).copied().unwrap_or(0))).collect();
    let key = format!("esq_{random}{}", reference_checksum(&random));
    assert!(ApiKeySecret::parse(&key).is_ok(), "a well-formed key was rejected");
    check_key_text(&key);
    let position = 4 + data.get(32).map_or(0, |&b| usize::from(b) % 38);
    let mut typo = key.clone().into_bytes();
    typo[position] = substitute(typo[position], data.get(33).copied().unwrap_or(0));
    let typo = String::from_utf8(typo).expect("ASCII stays UTF-8");
    assert_eq!(ApiKeySecret::parse(&typo).err(), Some(SecretFormatError::BadChecksum), "typo accepted");
    // Swapping two different adjacent characters on the same side of the random/checksum
    // boundary is also a burst of at most 16 bits, so it is rejected too.
    if position + 1 < key.len() && position != 35 {
        let mut swapped = key.clone().into_bytes();
        if swapped[position] != swapped[position + 1] {
            swapped.swap(position, position + 1);
            let swapped = String::from_utf8(swapped).expect("ASCII stays UTF-8");
            assert_eq!(ApiKeySecret::parse(&swapped).err(), Some(SecretFormatError::BadChecksum));
        }
    }

    // A well-formed token of each kind built from the input bytes.
    for kind in TOKEN_KINDS {
        let token = format!("{}{random}", kind.prefix());
        check_token_text(&token);
        assert!(BearerToken::parse(kind, &token).is_ok(), "a well-formed token was rejected");
    }
}

/// The key rules: the result is exactly the reference model's, and an accepted key
/// round-trips, hashes to the SHA-256 of its text and never shows its random part in `Debug`.
fn check_key_text(text: &str) {
    let parsed = ApiKeySecret::parse(text);
    assert_eq!(parsed.as_ref().err(), expected_key(text).err().as_ref(), "key verdict for {text:?}");
    let Ok(key) = parsed else {
        return;
    };
    assert_eq!(key.expose(), text);
    // The random part's checksum verifies, and the crate's checksum agrees with the reference.
    assert_eq!(checksum(&text[4..36]), &text[36..]);
    assert_eq!(checksum(&text[4..36]), reference_checksum(&text[4..36]));
    // parse → expose → parse is the identity.
    let again = ApiKeySecret::parse(key.expose()).expect("an accepted key re-parses");
    assert_eq!(again.expose(), key.expose());
    assert_eq!(again.hash(), key.hash());
    // The stored hash is the SHA-256 of the full text, and survives hex and JSON.
    assert_eq!(key.hash().as_bytes(), &<[u8; 32]>::from(Sha256::digest(text.as_bytes())));
    let hex = key.hash().to_hex();
    assert!(hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let json = serde_json::to_string(&key.hash()).expect("a hash serializes");
    assert_eq!(serde_json::from_str::<KeyHash>(&json).expect("a hash deserializes"), key.hash());
    // The preview is the prefix, six characters, an ellipsis and the last four characters.
    assert_eq!(key.preview().as_str(), format!("{}\u{2026}{}", &text[..10], &text[38..]));
    let debug = format!("{key:?} {key:#?}");
    assert!(!debug.contains(&text[4..36]), "Debug shows the random part: {debug}");
    // A key is never a bearer token.
    for kind in TOKEN_KINDS {
        assert_eq!(BearerToken::parse(kind, text).err(), Some(SecretFormatError::WrongPrefix));
    }
}

/// The token rules: the result is exactly the reference model's for each kind, and an accepted
/// token round-trips, keeps its kind, is rejected as the other kind and hides its body in `Debug`.
fn check_token_text(text: &str) {
    for kind in TOKEN_KINDS {
        let parsed = BearerToken::parse(kind, text);
        assert_eq!(parsed.as_ref().err(), expected_token(kind, text).err().as_ref(), "{kind:?} verdict for {text:?}");
        let Ok(token) = parsed else {
            continue;
        };
        assert_eq!(token.expose(), text);
        assert_eq!(token.kind(), kind);
        let again = BearerToken::parse(kind, token.expose()).expect("an accepted token re-parses");
        assert_eq!(again.hash(), token.hash());
        assert_eq!(token.hash(), <[u8; 32]>::from(Sha256::digest(text.as_bytes())));
        for other in TOKEN_KINDS.into_iter().filter(|&k| k != kind) {
            assert_eq!(BearerToken::parse(other, text).err(), Some(SecretFormatError::WrongPrefix));
        }
        assert_eq!(ApiKeySecret::parse(text).err(), Some(SecretFormatError::WrongPrefix));
        let body = &text[kind.prefix().len()..];
        let debug = format!("{token:?} {token:#?}");
        assert!(!debug.contains(body), "Debug shows the token: {debug}");
        assert!(debug.contains(&format!("{}{}\u{2026}", kind.prefix(), &body[..4])), "{debug}");
    }
}

/// Reference model of `ApiKeySecret::parse`, from the module documentation: `esq_`, then 38
/// base62 characters of which the last 6 are the checksum of the first 32; errors in that order.
fn expected_key(text: &str) -> Result<(), SecretFormatError> {
    let body = text.strip_prefix("esq_").ok_or(SecretFormatError::WrongPrefix)?;
    if body.len() != 38 {
        return Err(SecretFormatError::WrongLength);
    }
    if !body.bytes().all(|b| BASE62.contains(&b)) {
        return Err(SecretFormatError::InvalidCharacter);
    }
    if reference_checksum(&body[..32]) != body[32..] {
        return Err(SecretFormatError::BadChecksum);
    }
    Ok(())
}

/// Reference model of `BearerToken::parse`: the kind's prefix and 32 base62 characters.
fn expected_token(kind: TokenKind, text: &str) -> Result<(), SecretFormatError> {
    let body = text.strip_prefix(kind.prefix()).ok_or(SecretFormatError::WrongPrefix)?;
    if body.len() != 32 {
        return Err(SecretFormatError::WrongLength);
    }
    if !body.bytes().all(|b| BASE62.contains(&b)) {
        return Err(SecretFormatError::InvalidCharacter);
    }
    Ok(())
}

/// CRC-32 (IEEE) of the bytes in base62, most significant digit first, padded with `0` to 6.
fn reference_checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes());
    let mut digits = Vec::new();
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    digits.resize(6, b'0');
    digits.reverse();
    String::from_utf8(digits).expect("base62 is ASCII")
}

/// The base62 digit for a byte.
fn base62_digit(b: u8) -> char {
    char::from(BASE62[usize::from(b) % 62])
}

/// A base62 character different from `current`, chosen by `pick`.
fn substitute(current: u8, pick: u8) -> u8 {
    let index = BASE62.iter().position(|&c| c == current).expect("a base62 character");
    BASE62[(index + 1 + usize::from(pick) % 61) % 62]
}

// --- domain list parser -----------------------------------------------------------------

/// `AllowedDomains::parse` on the input split into entries at `\0`.
pub fn check_domain_list(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<&str> = text.split('\0').collect();
    check_domain_entries(&entries);
}

/// The list rules: the list is exactly the de-duplicated patterns of its pieces parsed one by
/// one (or the errors are exactly the rejected pieces, plus the size limit); a parsed list
/// re-parses from its own strings, from one textarea of them, and from its JSON.
fn check_domain_entries(entries: &[&str]) {
    let result = AllowedDomains::parse(entries);
    let mut expected: Vec<DomainPattern> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    for piece in reference_pieces(entries) {
        match AllowedDomains::parse(&[piece]) {
            Ok(single) => {
                assert_eq!(single.entries().len(), 1, "{piece:?} gave {single:?}");
                let pattern = &single.entries()[0];
                check_pattern(pattern);
                if !expected.contains(pattern) {
                    expected.push(pattern.clone());
                }
            }
            Err(errors) => {
                assert_eq!(errors.len(), 1, "{piece:?} gave {errors:?}");
                check_error(&errors[0]);
                assert_eq!(errors[0].entry, piece);
                rejected.push(piece.to_owned());
            }
        }
    }
    if expected.len() > AllowedDomains::MAX_ENTRIES {
        rejected.push(format!("{} entries", expected.len()));
    }
    match result {
        Ok(list) => {
            assert!(rejected.is_empty(), "accepted despite {rejected:?}");
            assert_eq!(list.entries(), expected.as_slice());
            assert!(list.entries().len() <= AllowedDomains::MAX_ENTRIES);
            assert_eq!(list.is_any(), expected.is_empty());
            let strings = list.to_strings();
            assert_eq!(AllowedDomains::parse(&strings), Ok(list.clone()), "not idempotent");
            assert_eq!(AllowedDomains::parse(&[strings.join("\n")]), Ok(list.clone()));
            assert_eq!(AllowedDomains::parse(&[strings.join(", ")]), Ok(list.clone()));
            let json = serde_json::to_string(&list).expect("a list serializes");
            assert_eq!(serde_json::from_str::<AllowedDomains>(&json).expect("a list deserializes"), list);
        }
        Err(errors) => {
            let entries: Vec<&str> = errors.iter().map(|e| e.entry.as_str()).collect();
            assert_eq!(entries, rejected, "errors are not exactly the rejected pieces");
            assert!(!errors.is_empty());
            errors.iter().for_each(check_error);
        }
    }
}

/// The documented splitting: each entry on commas and newlines, pieces trimmed, blanks dropped.
fn reference_pieces<'a>(entries: &[&'a str]) -> Vec<&'a str> {
    entries.iter().flat_map(|e| e.split([',', '\n', '\r'])).map(str::trim).filter(|p| !p.is_empty()).collect()
}

/// An error names what was typed and says something.
fn check_error(error: &DomainEntryError) {
    assert!(!error.entry.is_empty());
    assert!(!error.message.trim().is_empty());
    assert_eq!(error.to_string(), format!("{}: {}", error.entry, error.message));
}

/// One normalised pattern: its stored form is canonical and re-parses to itself, it matches
/// what it should, and no suffix or prefix trick matches it; `*.x` never matches `x`.
fn check_pattern(pattern: &DomainPattern) {
    let stored = pattern.as_string();
    assert_eq!(pattern.to_string(), stored);
    assert_eq!(AllowedDomains::parse(&[stored.as_str()]).map(|l| l.entries().to_vec()), Ok(vec![pattern.clone()]));
    match pattern {
        DomainPattern::Host(name) => {
            check_stored_name(name);
            assert!(pattern.matches_host(name), "{name} does not match itself");
            assert!(pattern.matches_host(&name.to_ascii_uppercase()));
            assert!(pattern.matches_host(&format!("{name}.")));
            for trick in tricks(name).iter().chain([&format!("a.{name}")]) {
                assert!(!pattern.matches_host(trick), "{pattern:?} matches {trick}");
            }
        }
        DomainPattern::Wildcard(suffix) => {
            check_stored_name(suffix);
            assert!(suffix.contains('.'), "a wildcard over one label: {suffix}");
            assert!(!pattern.matches_host(suffix), "{pattern:?} matches its own apex");
            assert!(!pattern.matches_host(&format!("{suffix}.")));
            assert!(!pattern.matches_host(&format!(".{suffix}")));
            // A trick can still be a real subdomain (`evil.test.evil.test` under `*.evil.test`).
            for trick in tricks(suffix).into_iter().filter(|t| !t.ends_with(&format!(".{suffix}"))) {
                assert!(!pattern.matches_host(&trick), "{pattern:?} matches {trick}");
            }
            if suffix.len() + 4 <= MAX_NAME_LEN {
                assert!(pattern.matches_host(&format!("a.{suffix}")), "{pattern:?} misses a.{suffix}");
                assert!(pattern.matches_host(&format!("a.B.{suffix}.")), "{pattern:?} misses a.b.{suffix}");
            }
        }
        DomainPattern::Ip(ip) => {
            assert_eq!(stored.parse::<IpAddr>(), Ok(*ip));
            assert!(pattern.matches_host(&stored));
            if ip.is_ipv6() {
                assert!(pattern.matches_host(&format!("[{stored}]")));
            }
        }
    }
}

/// Hosts that merely start or end with `name` (or glue onto it) and so must not match it.
fn tricks(name: &str) -> [String; 5] {
    [
        format!("{name}.evil.test"),
        format!("evil{name}"),
        format!("evil-{name}"),
        format!("{name}x"),
        format!("{name}-evil.test"),
    ]
}

/// A stored name: lowercase ASCII letters, digits and inner hyphens in 1–63 character labels,
/// at most 253 characters, not an IP address and without an all-digit last label.
fn check_stored_name(name: &str) {
    assert!(!name.is_empty() && name.len() <= MAX_NAME_LEN, "bad length: {name:?}");
    for label in name.split('.') {
        assert!(!label.is_empty() && label.len() <= 63, "bad label in {name:?}");
        assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{name:?}");
        assert!(!label.starts_with('-') && !label.ends_with('-'), "edge hyphen in {name:?}");
    }
    assert!(!name.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())), "{name:?}");
    assert!(name.parse::<IpAddr>().is_err(), "a name that is an IP address: {name:?}");
}

// --- origin matcher ---------------------------------------------------------------------

/// `allows_origin` and `origin_host` on the input's first `\0`-separated piece (the origin)
/// against a list parsed from the other pieces.
pub fn check_origin_matcher(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut pieces = text.split('\0');
    let origin = pieces.next().unwrap_or("");
    let entries: Vec<&str> = pieces.collect();
    check_origin_host(origin);
    let Ok(list) = AllowedDomains::parse(&entries) else {
        return;
    };
    check_origin(&list, origin);
    for trick in list.entries().iter().filter_map(pattern_name).flat_map(tricks) {
        check_origin(&list, &format!("https://{trick}"));
    }
    // Each entry lets in an origin built for it, with or without a port or trailing slash.
    for pattern in list.entries() {
        let host = match pattern {
            DomainPattern::Host(name) => name.clone(),
            DomainPattern::Wildcard(suffix) if suffix.len() + 2 <= MAX_NAME_LEN => format!("a.{suffix}"),
            DomainPattern::Wildcard(_) => continue,
            DomainPattern::Ip(IpAddr::V4(ip)) => ip.to_string(),
            DomainPattern::Ip(IpAddr::V6(ip)) => format!("[{ip}]"),
        };
        for origin in [format!("https://{host}"), format!("http://{host}:8080"), format!("https://{host}/")] {
            assert!(list.allows_origin(&origin), "{pattern:?} does not allow {origin}");
            check_origin(&list, &origin);
        }
    }
}

/// The name in a host or wildcard pattern.
fn pattern_name(pattern: &DomainPattern) -> Option<&str> {
    match pattern {
        DomainPattern::Host(name) | DomainPattern::Wildcard(name) => Some(name),
        DomainPattern::Ip(_) => None,
    }
}

/// The verdict is the reference model's, and ignores ASCII case.
fn check_origin(list: &AllowedDomains, origin: &str) {
    let allowed = list.allows_origin(origin);
    assert_eq!(allowed, reference_allows(list, origin_host(origin).as_deref()), "{origin:?} against {list:?}");
    assert_eq!(list.allows_origin(&origin.to_ascii_uppercase()), allowed, "case changed the verdict for {origin:?}");
    if !list.is_any() && allowed {
        let host = origin_host(origin).expect("an allowed origin has a host");
        assert!(list.entries().iter().any(|p| p.matches_host(&host)));
    }
}

/// Reference model of `allows_origin`, from the documented rules: the empty list allows
/// everything; otherwise the origin needs a host, and an IP host equals an IP entry, a name
/// equals a host entry or ends with `.` + a wildcard's suffix after at least one more label.
fn reference_allows(list: &AllowedDomains, host: Option<&str>) -> bool {
    if list.entries().is_empty() {
        return true;
    }
    let Some(host) = host else {
        return false;
    };
    match host.parse::<IpAddr>() {
        Ok(ip) => list.entries().contains(&DomainPattern::Ip(ip)),
        Err(_) => list.entries().iter().any(|p| match p {
            DomainPattern::Host(name) => name == host,
            DomainPattern::Wildcard(suffix) => host.len() > suffix.len() + 1 && host.ends_with(&format!(".{suffix}")),
            DomainPattern::Ip(_) => false,
        }),
    }
}

/// `origin_host` gives a normalised host that survives being put back into an origin.
fn check_origin_host(origin: &str) {
    let Some(host) = origin_host(origin) else {
        return;
    };
    assert!(!host.is_empty() && !host.ends_with('.'), "{origin:?} gave {host:?}");
    assert!(!host.contains(['[', ']', ':']) || host.parse::<IpAddr>().is_ok(), "{origin:?} gave {host:?}");
    let bracketed = match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(_)) => format!("[{host}]"),
        Ok(IpAddr::V4(_)) => host.clone(),
        Err(_) => {
            assert!(host.len() <= MAX_NAME_LEN, "{origin:?} gave {host:?}");
            for label in host.split('.') {
                assert!(!label.is_empty(), "{origin:?} gave {host:?}");
                assert!(label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
            }
            host.clone()
        }
    };
    for again in [format!("https://{bracketed}"), format!("HTTP://{bracketed}:443/")] {
        assert_eq!(origin_host(&again).as_deref(), Some(host.as_str()), "{origin:?} gave {host:?}, then {again:?}");
    }
}
