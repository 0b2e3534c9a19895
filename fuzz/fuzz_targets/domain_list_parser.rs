//! Fuzzes `AllowedDomains::parse` on entries split at `\0`; see
//! `domain_fuzz::check_domain_list` for every property checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| domain_fuzz::check_domain_list(data));
