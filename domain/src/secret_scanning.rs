//! Reports from secret scanners: strings that look like Esqase API keys, found in public (GitHub's
//! secret scanning partner program sends them). Parsing a report is pure: each reported string is
//! judged by the key format alone ([`ApiKeySecret::parse`]: prefix, length, alphabet, checksum),
//! so a string whose checksum is wrong is a false positive before any lookup. Whether a
//! well-formed one is a key of ours is for the write side to find out.

use crate::events::RevocationDetails;
use crate::secret::{ApiKeySecret, SecretFormatError};

/// The most tokens one report may hold (GitHub sets no limit; see `docs/decisions.md`).
pub const MAX_TOKENS: usize = 1_000;

/// The most characters of a report's `url` that are kept (longer ones are cut, never refused:
/// a leaked key must be revoked whatever came with it).
pub const MAX_URL_CHARS: usize = 2_048;

/// The most characters of a report's `source` that are kept (GitHub's values, such as
/// `pull_request_comment`, are far shorter).
pub const MAX_SOURCE_CHARS: usize = 64;

/// The token type Esqase answers with (`token_type`).
pub const TOKEN_TYPE: &str = "esqase_api_key";

/// One match as the scanner sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportedMatch {
    /// The string found.
    pub token: String,
    /// Where it was found, if the scanner said.
    pub url: Option<String>,
    /// What kind of place it was found in, in the scanner's words.
    pub source: Option<String>,
}

/// One match, judged by its format.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The string as it was sent, to be answered back as `token_raw`.
    pub token: String,
    /// The key secret it is, or why it cannot be one (then it is a false positive).
    pub secret: Result<ApiKeySecret, SecretFormatError>,
    /// Where it was found: the `url` and `source`, trimmed, empty as absent, cut to length.
    pub details: RevocationDetails,
}

/// The answer for one match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// The string is one of our keys (revoked now, or already not working).
    TruePositive,
    /// The string is no key of ours.
    FalsePositive,
}

impl Label {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Label::TruePositive => "true_positive",
            Label::FalsePositive => "false_positive",
        }
    }
}

/// Why a report was refused whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// More than [`MAX_TOKENS`] matches.
    #[error("a report holds at most 1,000 tokens; this one holds {0}: send it in parts")]
    TooManyTokens(usize),
}

/// Judges every match of a report by its format, in order (one finding per match, duplicates
/// included, so the answer lists one entry per token sent).
pub fn parse_report(matches: Vec<ReportedMatch>) -> Result<Vec<Finding>, ReportError> {
    if matches.len() > MAX_TOKENS {
        return Err(ReportError::TooManyTokens(matches.len()));
    }
    Ok(matches
        .into_iter()
        .map(|m| Finding {
            secret: ApiKeySecret::parse(&m.token),
            details: RevocationDetails { url: clip(m.url, MAX_URL_CHARS), source: clip(m.source, MAX_SOURCE_CHARS) },
            token: m.token,
        })
        .collect())
}

/// Trimmed, `None` when empty, and at most `max_chars` characters.
fn clip(value: Option<String>, max_chars: usize) -> Option<String> {
    let value = value?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return None;
    }
    Some(match trimmed.char_indices().nth(max_chars) {
        Some((cut, _)) => trimmed[..cut].to_owned(),
        None => trimmed.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reported(token: &str) -> ReportedMatch {
        ReportedMatch { token: token.to_owned(), url: None, source: None }
    }

    fn only(token: &str) -> Finding {
        let mut findings = parse_report(vec![reported(token)]).expect("one token is allowed");
        findings.pop().expect("one finding per match")
    }

    #[test]
    fn a_report_of_more_than_a_thousand_tokens_is_refused_whole() {
        assert_eq!(parse_report(vec![ReportedMatch::default(); MAX_TOKENS]).map(|f| f.len()), Ok(MAX_TOKENS));
        assert_eq!(
            parse_report(vec![ReportedMatch::default(); MAX_TOKENS + 1]).err(),
            Some(ReportError::TooManyTokens(MAX_TOKENS + 1))
        );
    }

    #[test]
    fn a_wrong_checksum_is_judged_without_a_lookup() {
        let key = ApiKeySecret::generate();
        let body = &key.expose()[..36];
        let mistyped = format!("{body}{}", if key.expose().ends_with("000000") { "000001" } else { "000000" });
        assert_eq!(only(&mistyped).secret.err(), Some(SecretFormatError::BadChecksum));
    }

    #[test]
    fn url_and_source_are_trimmed_empty_is_absent_and_long_ones_are_cut() {
        let findings = parse_report(vec![
            ReportedMatch { token: "x".into(), url: Some("  ".into()), source: Some(" commit ".into()) },
            ReportedMatch {
                token: "x".into(),
                url: Some("é".repeat(MAX_URL_CHARS + 5)),
                source: Some("s".repeat(500)),
            },
        ])
        .expect("two tokens");
        assert_eq!(findings[0].details, RevocationDetails { url: None, source: Some("commit".into()) });
        assert_eq!(findings[1].details.url.as_deref().map(|u| u.chars().count()), Some(MAX_URL_CHARS));
        assert_eq!(findings[1].details.source.as_deref().map(str::len), Some(MAX_SOURCE_CHARS));
    }

    #[test]
    fn every_match_gets_a_finding_in_order_duplicates_included() {
        let key = ApiKeySecret::generate();
        let findings =
            parse_report(vec![reported(key.expose()), reported("nope"), reported(key.expose())]).expect("three");
        let tokens: Vec<&str> = findings.iter().map(|f| f.token.as_str()).collect();
        assert_eq!(tokens, [key.expose(), "nope", key.expose()]);
    }

    /// Any string, any URL and any source: the shapes a hostile or broken scanner can send.
    fn any_match() -> impl Strategy<Value = ReportedMatch> {
        (any::<String>(), proptest::option::of(any::<String>()), proptest::option::of(any::<String>()))
            .prop_map(|(token, url, source)| ReportedMatch { token, url, source })
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_answers_each_match_with_its_own_string(
            matches in proptest::collection::vec(any_match(), 0..20),
        ) {
            let findings = parse_report(matches.clone()).expect("under the cap");
            prop_assert_eq!(findings.len(), matches.len());
            for (finding, sent) in findings.iter().zip(&matches) {
                prop_assert_eq!(&finding.token, &sent.token);
                prop_assert!(finding.details.url.as_deref().is_none_or(|u| u.chars().count() <= MAX_URL_CHARS));
                prop_assert!(finding.details.source.as_deref().is_none_or(|s| s.chars().count() <= MAX_SOURCE_CHARS));
            }
        }

        #[test]
        fn a_string_with_a_valid_checksum_round_trips(url in proptest::option::of("[ -~]{0,80}")) {
            let key = ApiKeySecret::generate();
            let finding = only_with(key.expose(), url);
            let parsed = finding.secret.expect("a generated key is well-formed");
            prop_assert_eq!(parsed.expose(), key.expose());
            prop_assert_eq!(parsed.hash(), key.hash());
        }

        #[test]
        fn any_corruption_of_a_key_is_a_false_positive(
            i in 0..42usize,
            replacement in any::<char>(),
            cut in 0..42usize,
            extra in "[0-9A-Za-z]{1,4}",
        ) {
            let key = ApiKeySecret::generate();
            let mut chars: Vec<char> = key.expose().chars().collect();
            prop_assume!(chars[i] != replacement);
            chars[i] = replacement;
            let substituted: String = chars.into_iter().collect();
            prop_assert!(only(&substituted).secret.is_err(), "{}", substituted);
            prop_assert!(only(&key.expose()[..cut]).secret.is_err());
            let longer = format!("{}{extra}", key.expose());
            prop_assert!(only(&longer).secret.is_err());
        }
    }

    fn only_with(token: &str, url: Option<String>) -> Finding {
        let mut findings =
            parse_report(vec![ReportedMatch { token: token.to_owned(), url, source: None }]).expect("one token");
        findings.pop().expect("one finding")
    }
}
