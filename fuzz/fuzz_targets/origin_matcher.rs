//! Fuzzes origin matching: the first `\0`-separated piece is the origin, the rest the
//! list. Never panic; an accepted origin's host must itself match the list.
#![no_main]

use domain::allowed_domains::{origin_host, AllowedDomains};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut pieces = text.split('\0');
    let origin = pieces.next().unwrap_or("");
    let entries: Vec<&str> = pieces.collect();
    let Ok(list) = AllowedDomains::parse(&entries) else {
        return;
    };
    let allowed = list.allows_origin(origin);
    if list.is_any() {
        assert!(allowed);
        return;
    }
    let host = origin_host(origin);
    if allowed {
        // A non-empty list only allows origins with a host, and that host matches an entry.
        let host = host.expect("an allowed origin has a host");
        assert!(list.entries().iter().any(|p| p.matches_host(&host)));
    }
});
