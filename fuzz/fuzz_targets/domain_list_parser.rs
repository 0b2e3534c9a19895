//! Fuzzes `AllowedDomains::parse` on entries split by `\0`: never panic, and a parsed
//! list must re-parse to itself (normalisation is idempotent).
#![no_main]

use domain::allowed_domains::AllowedDomains;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let entries: Vec<&str> = text.split('\0').collect();
    if let Ok(list) = AllowedDomains::parse(&entries) {
        assert!(list.entries().len() <= AllowedDomains::MAX_ENTRIES);
        assert_eq!(AllowedDomains::parse(&list.to_strings()), Ok(list));
    }
});
