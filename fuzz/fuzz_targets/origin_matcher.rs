//! Fuzzes origin matching: the first `\0`-separated piece is the origin, the rest the list;
//! see `domain_fuzz::check_origin_matcher` for every property checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| domain_fuzz::check_origin_matcher(data));
