//! Fuzzes `ApiKeySecret::parse` and `BearerToken::parse`: never panic, and anything
//! accepted must round-trip and keep its preview free of the random part.
#![no_main]

use domain::secret::{ApiKeySecret, BearerToken, TokenKind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = ApiKeySecret::parse(text) {
        assert_eq!(key.expose(), text);
        assert!(!format!("{key:?}").contains(&text[4..36]));
    }
    for kind in [TokenKind::Session, TokenKind::Invitation] {
        if let Ok(token) = BearerToken::parse(kind, text) {
            assert_eq!(token.expose(), text);
        }
    }
});
