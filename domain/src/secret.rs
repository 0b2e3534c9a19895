//! API key secrets and other bearer tokens.
//!
//! An API key secret is `esq_` + 32 random base62 characters + a 6-character
//! base62 CRC-32 checksum of the random part. The checksum lets us reject
//! typos and garbage without touching storage; the secret itself is only
//! ever stored as its SHA-256 [`KeyHash`].
//!
//! Secrets never appear in `Debug` output (only the [`KeyPreview`] does) and
//! have no `Display` or `Serialize`: [`ApiKeySecret::expose`] is the one
//! deliberate way to read them.

use std::fmt;

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};

/// The prefix of every API key secret.
pub const API_KEY_PREFIX: &str = "esq_";

/// The base62 alphabet, in digit order: `0-9`, then `A-Z`, then `a-z`.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Number of random characters in a secret or token (62^32 ≈ 2^190).
const RANDOM_LEN: usize = 32;

/// Number of checksum characters (62^6 > 2^32, so any CRC-32 fits).
const CHECKSUM_LEN: usize = 6;

/// Length of an API key secret after its prefix.
const KEY_BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;

/// Characters of the body shown in a preview, after the prefix.
const PREVIEW_HEAD: usize = 6;

/// Characters at the end of the secret shown in a preview.
const PREVIEW_TAIL: usize = 4;

/// Why a presented secret or token was rejected before any lookup.
#[derive(Clone, Copy, Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretFormatError {
    /// The string does not start with the expected prefix.
    #[error("the secret does not start with the expected prefix")]
    WrongPrefix,
    /// The string has the wrong number of characters.
    #[error("the secret has the wrong length")]
    WrongLength,
    /// The string contains a character outside the base62 alphabet.
    #[error("the secret contains a character that is not a letter or digit")]
    InvalidCharacter,
    /// The checksum does not match the random part (most likely a typo).
    #[error("the secret's checksum does not match; it was probably mistyped")]
    BadChecksum,
}

/// Draws `len` characters uniformly from the base62 alphabet using the OS generator.
fn random_base62(len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        // `gen_range` samples without modulo bias.
        .map(|_| char::from(BASE62[rng.gen_range(0..BASE62.len())]))
        .collect()
}

/// True when every character is in the base62 alphabet.
fn is_base62(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// SHA-256 of a string's UTF-8 bytes.
fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The checksum of an API key's random part: CRC-32 (IEEE) of its bytes,
/// written in base62, most significant digit first, left-padded with `0` to 6 characters.
pub fn checksum(random_part: &str) -> String {
    let mut n = u64::from(crc32fast::hash(random_part.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for slot in digits.iter_mut().rev() {
        // `n % 62 < 62`, so the index is always in bounds.
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// A full API key secret (`esq_…`). Shown to the user once, stored only as a [`KeyHash`].
#[derive(Clone)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Generates a new secret from the OS random number generator.
    pub fn generate() -> Self {
        let random = random_base62(RANDOM_LEN);
        let check = checksum(&random);
        Self(format!("{API_KEY_PREFIX}{random}{check}"))
    }

    /// Rejects without any lookup: wrong prefix, wrong length (4+38), a non-base62 char, a bad checksum.
    pub fn parse(presented: &str) -> Result<Self, SecretFormatError> {
        let body = presented.strip_prefix(API_KEY_PREFIX).ok_or(SecretFormatError::WrongPrefix)?;
        // Byte length is checked first so huge inputs are rejected without a scan;
        // any non-ASCII character of the right byte length fails the alphabet check.
        if body.len() != KEY_BODY_LEN {
            return Err(SecretFormatError::WrongLength);
        }
        if !is_base62(body) {
            return Err(SecretFormatError::InvalidCharacter);
        }
        // The body is ASCII (checked above), so byte index RANDOM_LEN is a char boundary.
        let (random, check) = body.split_at(RANDOM_LEN);
        if checksum(random) != check {
            return Err(SecretFormatError::BadChecksum);
        }
        Ok(Self(presented.to_owned()))
    }

    /// The full secret. The only way to read it: use it once, in the create response.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the full secret, which is what gets stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(sha256(&self.0))
    }

    /// The displayable preview: `esq_` + six characters + `…` + the last four characters.
    pub fn preview(&self) -> KeyPreview {
        // A secret is always the ASCII prefix + 38 ASCII characters (by construction
        // in `generate` and by validation in `parse`), so these byte slices are in bounds
        // and on char boundaries.
        let head_end = API_KEY_PREFIX.len() + PREVIEW_HEAD;
        let tail_start = self.0.len() - PREVIEW_TAIL;
        KeyPreview(format!("{}\u{2026}{}", &self.0[..head_end], &self.0[tail_start..]))
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the preview: the full secret must never reach logs.
        f.debug_tuple("ApiKeySecret").field(&self.preview().as_str()).finish()
    }
}

/// SHA-256 of the full secret string's UTF-8 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Wraps raw digest bytes (e.g. read back from storage).
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }

    /// The raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Wraps a digest from a slice; `None` unless it is exactly 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(b).ok().map(Self)
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.to_hex())
    }
}

impl serde::Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut bytes)
            .map_err(|e| serde::de::Error::custom(format_args!("invalid key hash (want 64 hex chars): {e}")))?;
        Ok(Self(bytes))
    }
}

/// A non-secret, displayable abbreviation of a key, e.g. `esq_abcdef…c0VA`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyPreview(String);

impl KeyPreview {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Opaque bearer tokens for people: sessions (`esqs_`) and invitations (`esqi_`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A signed-in person's session.
    Session,
    /// An invitation to join an organisation.
    Invitation,
}

impl TokenKind {
    /// The prefix every token of this kind starts with.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Session => "esqs_",
            TokenKind::Invitation => "esqi_",
        }
    }
}

/// An opaque bearer token: a kind prefix + 32 base62 characters (~190 bits).
#[derive(Clone)]
pub struct BearerToken {
    kind: TokenKind,
    value: String,
}

impl BearerToken {
    /// Generates a new token of `kind` from the OS random number generator.
    pub fn generate(kind: TokenKind) -> Self {
        Self { kind, value: format!("{}{}", kind.prefix(), random_base62(RANDOM_LEN)) }
    }

    /// Rejects without any lookup: wrong prefix, wrong length, a non-base62 char.
    pub fn parse(kind: TokenKind, presented: &str) -> Result<Self, SecretFormatError> {
        let body = presented.strip_prefix(kind.prefix()).ok_or(SecretFormatError::WrongPrefix)?;
        if body.len() != RANDOM_LEN {
            return Err(SecretFormatError::WrongLength);
        }
        if !is_base62(body) {
            return Err(SecretFormatError::InvalidCharacter);
        }
        Ok(Self { kind, value: presented.to_owned() })
    }

    /// The kind of token.
    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The full token, to hand to the person once.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// SHA-256 of the full token string, which is what gets stored.
    pub fn hash(&self) -> [u8; 32] {
        sha256(&self.value)
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value is always prefix + 32 ASCII characters (by construction or by
        // `parse`), so `get` succeeds; `unwrap_or` only guards against a future change.
        let start = self.kind.prefix().len();
        let head = self.value.get(start..start + 4).unwrap_or("");
        f.debug_struct("BearerToken")
            .field("kind", &self.kind)
            .field("value", &format_args!("{}{head}…", self.kind.prefix()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTOR_RANDOM: &str = "abcdefghijklmnopqrstuvwxyz012345";
    // The contract's public test vector, spelled in parts so that secret scanners pass over it.
    const VECTOR_KEY: &str = concat!("esq_", "abcdefghijklmnopqrstuvwxyz012345", "1nc0VA");
    const VECTOR_SHA256: &str = "2e961f3e11a37fa12d3c77c9d2e0e756f7531d055183e115f9360433caff72b5";

    #[test]
    fn the_checksum_of_the_alphabet_vector_is_1nc0va() {
        assert_eq!(checksum(VECTOR_RANDOM), "1nc0VA");
    }

    #[test]
    fn the_checksum_of_thirty_two_zeros_is_2wjyri() {
        assert_eq!(checksum(&"0".repeat(32)), "2wjyrI");
    }

    #[test]
    fn the_test_vector_key_parses() {
        let key = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid");
        assert_eq!(key.expose(), VECTOR_KEY);
    }

    #[test]
    fn a_checksum_is_always_six_base62_characters() {
        for s in ["", "a", VECTOR_RANDOM, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"] {
            let c = checksum(s);
            assert_eq!(c.len(), 6);
            assert!(is_base62(&c));
        }
    }

    #[test]
    fn a_generated_key_has_the_documented_shape_and_parses_back() {
        for _ in 0..200 {
            let key = ApiKeySecret::generate();
            let s = key.expose();
            assert!(s.starts_with(API_KEY_PREFIX));
            assert_eq!(s.len(), 42);
            assert!(is_base62(&s[4..]));
            let parsed = ApiKeySecret::parse(s).expect("generated keys parse");
            assert_eq!(parsed.expose(), s);
            assert_eq!(parsed.hash(), key.hash());
        }
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(ApiKeySecret::generate().expose(), ApiKeySecret::generate().expose());
    }

    #[test]
    fn generated_characters_cover_the_whole_alphabet() {
        // 62 symbols over ~6400 draws: missing one by chance is ~62·e^-103.
        let mut seen = [false; 62];
        for _ in 0..200 {
            for b in random_base62(32).bytes() {
                if let Some(i) = BASE62.iter().position(|&c| c == b) {
                    seen[i] = true;
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn parse_rejects_a_wrong_prefix() {
        assert_eq!(
            ApiKeySecret::parse("esx_abcdefghijklmnopqrstuvwxyz0123451nc0VA").err(),
            Some(SecretFormatError::WrongPrefix)
        );
        assert_eq!(
            ApiKeySecret::parse("ESQ_abcdefghijklmnopqrstuvwxyz0123451nc0VA").err(),
            Some(SecretFormatError::WrongPrefix)
        );
        assert_eq!(ApiKeySecret::parse("").err(), Some(SecretFormatError::WrongPrefix));
    }

    #[test]
    fn parse_rejects_a_wrong_length() {
        assert_eq!(ApiKeySecret::parse("esq_abc").err(), Some(SecretFormatError::WrongLength));
        assert_eq!(ApiKeySecret::parse(&format!("{VECTOR_KEY}0")).err(), Some(SecretFormatError::WrongLength));
    }

    #[test]
    fn parse_rejects_a_non_base62_character() {
        assert_eq!(
            ApiKeySecret::parse(concat!("esq_", "abcdefghijklmnopqrstuvwxyz01234_", "1nc0VA")).err(),
            Some(SecretFormatError::InvalidCharacter)
        );
        // 'é' is two bytes, so this body is 38 bytes but not base62.
        assert_eq!(
            ApiKeySecret::parse(concat!("esq_", "abcdefghijklmnopqrstuvwxyz0123é", "1nc0VA")).err(),
            Some(SecretFormatError::InvalidCharacter)
        );
    }

    #[test]
    fn parse_rejects_a_bad_checksum() {
        assert_eq!(
            ApiKeySecret::parse(concat!("esq_", "abcdefghijklmnopqrstuvwxyz012345", "1nc0VB")).err(),
            Some(SecretFormatError::BadChecksum)
        );
    }

    #[test]
    fn parse_does_not_trim_whitespace() {
        assert!(ApiKeySecret::parse(&format!(" {VECTOR_KEY}")).is_err());
        assert!(ApiKeySecret::parse(&format!("{VECTOR_KEY}\n")).is_err());
    }

    #[test]
    fn the_hash_is_the_sha256_of_the_full_secret() {
        let key = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid");
        assert_eq!(key.hash().to_hex(), VECTOR_SHA256);
    }

    #[test]
    fn the_preview_is_prefix_six_characters_ellipsis_and_last_four() {
        let key = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid");
        assert_eq!(key.preview().as_str(), "esq_abcdef\u{2026}c0VA");
    }

    #[test]
    fn debug_of_a_key_shows_only_the_preview() {
        let key = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid");
        let debug = format!("{key:?} {key:#?}");
        assert!(!debug.contains(VECTOR_KEY));
        assert!(!debug.contains(VECTOR_RANDOM));
        assert!(debug.contains("esq_abcdef\u{2026}c0VA"));
    }

    #[test]
    fn a_key_hash_round_trips_through_bytes_slices_and_hex() {
        let hash = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid").hash();
        assert_eq!(KeyHash::from_bytes(*hash.as_bytes()), hash);
        assert_eq!(KeyHash::from_slice(hash.as_bytes()), Some(hash));
        assert_eq!(KeyHash::from_slice(&[0u8; 31]), None);
        assert_eq!(KeyHash::from_slice(&[0u8; 33]), None);
        assert_eq!(format!("{hash:?}"), format!("KeyHash({VECTOR_SHA256})"));
    }

    #[test]
    fn a_key_hash_serializes_as_lowercase_hex_and_back() {
        let hash = KeyHash::from_bytes([0xAB; 32]);
        let json = serde_json::to_string(&hash).expect("serializes");
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        let back: KeyHash = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, hash);
    }

    #[test]
    fn a_key_hash_rejects_bad_hex_when_deserializing() {
        assert!(serde_json::from_str::<KeyHash>("\"abcd\"").is_err());
        assert!(serde_json::from_str::<KeyHash>(&format!("\"{}\"", "zz".repeat(32))).is_err());
        assert!(serde_json::from_str::<KeyHash>("42").is_err());
    }

    #[test]
    fn a_preview_serializes_as_a_plain_string() {
        let key = ApiKeySecret::parse(VECTOR_KEY).expect("test vector is valid");
        let json = serde_json::to_string(&key.preview()).expect("serializes");
        assert_eq!(json, "\"esq_abcdef\u{2026}c0VA\"");
        let back: KeyPreview = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, key.preview());
    }

    #[test]
    fn token_kinds_have_their_documented_prefixes() {
        assert_eq!(TokenKind::Session.prefix(), "esqs_");
        assert_eq!(TokenKind::Invitation.prefix(), "esqi_");
    }

    #[test]
    fn a_generated_token_has_the_documented_shape_and_parses_back() {
        for kind in [TokenKind::Session, TokenKind::Invitation] {
            let token = BearerToken::generate(kind);
            let s = token.expose();
            assert!(s.starts_with(kind.prefix()));
            assert_eq!(s.len(), kind.prefix().len() + 32);
            assert!(is_base62(&s[kind.prefix().len()..]));
            let parsed = BearerToken::parse(kind, s).expect("generated tokens parse");
            assert_eq!(parsed.expose(), s);
            assert_eq!(parsed.kind(), kind);
            assert_eq!(parsed.hash(), token.hash());
        }
    }

    #[test]
    fn a_token_of_one_kind_is_rejected_as_the_other() {
        let session = BearerToken::generate(TokenKind::Session);
        assert_eq!(
            BearerToken::parse(TokenKind::Invitation, session.expose()).err(),
            Some(SecretFormatError::WrongPrefix)
        );
    }

    #[test]
    fn token_parse_rejects_wrong_length_and_characters() {
        assert_eq!(BearerToken::parse(TokenKind::Session, "esqs_abc").err(), Some(SecretFormatError::WrongLength));
        assert_eq!(
            BearerToken::parse(TokenKind::Session, concat!("esqs_", "abcdefghijklmnopqrstuvwxyz01234-")).err(),
            Some(SecretFormatError::InvalidCharacter)
        );
    }

    #[test]
    fn the_token_hash_is_the_sha256_of_the_full_string() {
        let token = BearerToken::parse(TokenKind::Session, concat!("esqs_", "abcdefghijklmnopqrstuvwxyz012345"))
            .expect("valid token");
        assert_eq!(hex::encode(token.hash()), "9e463e3c02b14db95c7c3d9e01870e30f904e96effc10203d48daf26a52a035a");
    }

    #[test]
    fn debug_of_a_token_shows_only_its_kind_and_first_four_characters() {
        let token = BearerToken::parse(TokenKind::Invitation, concat!("esqi_", "abcdefghijklmnopqrstuvwxyz012345"))
            .expect("valid token");
        let debug = format!("{token:?}");
        assert!(!debug.contains("abcdefghijklmnopqrstuvwxyz012345"));
        assert!(!debug.contains("abcde"));
        assert!(debug.contains("Invitation"));
        assert!(debug.contains("esqi_abcd"));
    }

    /// A generated key and a position in it.
    fn key_and_index() -> impl Strategy<Value = (String, usize)> {
        (Just(()), 0..42usize).prop_map(|((), i)| (ApiKeySecret::generate().expose().to_owned(), i))
    }

    proptest! {
        #[test]
        fn a_one_character_substitution_anywhere_is_rejected(
            (key, i) in key_and_index(),
            replacement in any::<char>(),
        ) {
            let original = key.as_bytes()[i] as char;
            prop_assume!(replacement != original);
            let mut typo: Vec<char> = key.chars().collect();
            typo[i] = replacement;
            let typo: String = typo.into_iter().collect();
            prop_assert!(ApiKeySecret::parse(&typo).is_err());
        }

        #[test]
        fn a_one_base62_character_substitution_anywhere_is_rejected(
            (key, i) in key_and_index(),
            replacement in 0..62usize,
        ) {
            let replacement = BASE62[replacement];
            prop_assume!(replacement != key.as_bytes()[i]);
            let mut typo = key.into_bytes();
            typo[i] = replacement;
            let typo = String::from_utf8(typo).expect("ASCII stays UTF-8");
            prop_assert!(ApiKeySecret::parse(&typo).is_err());
        }

        #[test]
        fn a_dropped_or_doubled_character_is_rejected((key, i) in key_and_index()) {
            let mut dropped = key.clone();
            dropped.remove(i);
            prop_assert!(ApiKeySecret::parse(&dropped).is_err());
            let mut doubled = key.clone();
            doubled.insert(i, key.as_bytes()[i] as char);
            prop_assert!(ApiKeySecret::parse(&doubled).is_err());
        }

        #[test]
        fn swapping_two_adjacent_different_characters_is_rejected((key, i) in key_and_index()) {
            prop_assume!(i + 1 < key.len());
            let mut swapped = key.into_bytes();
            prop_assume!(swapped[i] != swapped[i + 1]);
            swapped.swap(i, i + 1);
            let swapped = String::from_utf8(swapped).expect("ASCII stays UTF-8");
            prop_assert!(ApiKeySecret::parse(&swapped).is_err());
        }

        #[test]
        fn key_parse_never_panics_on_any_string(s in any::<String>()) {
            let _ = ApiKeySecret::parse(&s);
            let _ = BearerToken::parse(TokenKind::Session, &s);
        }

        #[test]
        fn key_parse_never_panics_on_prefixed_strings(s in "esq_\\PC{0,50}") {
            let _ = ApiKeySecret::parse(&s);
        }

        #[test]
        fn a_well_formed_key_parses_if_and_only_if_its_checksum_matches(
            random in "[0-9A-Za-z]{32}",
            check in "[0-9A-Za-z]{6}",
        ) {
            let key = format!("esq_{random}{check}");
            prop_assert_eq!(ApiKeySecret::parse(&key).is_ok(), checksum(&random) == check);
            let good = format!("esq_{random}{}", checksum(&random));
            prop_assert!(ApiKeySecret::parse(&good).is_ok());
        }

        #[test]
        fn debug_never_contains_the_random_part(_i in 0..50u8) {
            let key = ApiKeySecret::generate();
            let debug = format!("{:?}", key);
            prop_assert!(!debug.contains(&key.expose()[4..36]));
            let token = BearerToken::generate(TokenKind::Session);
            let debug = format!("{:?}", token);
            prop_assert!(!debug.contains(&token.expose()[5..]));
        }
    }
}
