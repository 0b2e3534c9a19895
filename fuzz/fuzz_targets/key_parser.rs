//! Fuzzes `ApiKeySecret::parse` and `BearerToken::parse` against a reference model of the
//! key and token formats; see `domain_fuzz::check_key_parser` for every property checked.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| domain_fuzz::check_key_parser(data));
