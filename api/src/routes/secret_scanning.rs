//! `POST /v1/secret-scanning/reports`: a secret scanner (GitHub's secret scanning partner
//! program) reports strings that look like Esqase keys, found in public; each matching Active key
//! is revoked at once. No Esqase credential: the report is authenticated by an ECDSA P-256
//! signature over its raw body, checked against the scanner's public keys from the file named
//! by `ESQASE_SECRET_SCANNING_KEYS` (without it the route does not exist: 404).

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::extract::RequestId;
use crate::openapi::problems;
use crate::response::json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use domain::secret_scanning::{self, Label, ReportedMatch, TOKEN_TYPE};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The route's path.
pub const PATH: &str = "/v1/secret-scanning/reports";

/// The largest report body accepted: 1,000 tokens with their URLs fit well within it (the rest of
/// the API takes 64 KiB).
pub const REPORT_BODY_LIMIT: usize = 1024 * 1024;

/// The header naming which of the scanner's keys signed the body.
pub const KEY_IDENTIFIER_HEADER: &str = "github-public-key-identifier";

/// The header holding the signature: base64 of the DER-encoded ECDSA signature.
pub const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// The routes of this area.
pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(report))
}

/// The scanner's public keys, by identifier. Every key in the file is accepted, current or not:
/// a report signed with a key being retired is still the scanner's.
pub struct ScannerKeys {
    keys: HashMap<String, VerifyingKey>,
}

/// Why the keys file could not be used (the service does not start with a broken one).
#[derive(Debug, thiserror::Error)]
pub enum KeysFileError {
    /// The file could not be read.
    #[error("could not read the secret scanning keys file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not `{"public_keys": [{"key_identifier", "key", "is_current"}, …]}`.
    #[error("the secret scanning keys file {path} is not shaped like GitHub's list of public keys: {source}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A key is not a P-256 public key in PEM (SubjectPublicKeyInfo).
    #[error("the secret scanning key {identifier:?} in {path} is not an ECDSA P-256 public key in PEM: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The key's `key_identifier`.
        identifier: String,
        /// Why.
        reason: String,
    },
    /// The file lists no key, so no report could ever be accepted.
    #[error("the secret scanning keys file {path} lists no public key")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The keys file, shaped like GitHub's published list.
#[derive(Deserialize)]
struct KeysFile {
    public_keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct KeyEntry {
    key_identifier: String,
    key: String,
    // Read so that the file's shape is checked; not consulted (see [`ScannerKeys`]).
    #[serde(default)]
    #[allow(dead_code)]
    is_current: bool,
}

impl ScannerKeys {
    /// Reads and checks the keys file.
    pub fn load(path: &Path) -> Result<Self, KeysFileError> {
        let text = std::fs::read(path).map_err(|source| KeysFileError::Read { path: path.to_owned(), source })?;
        let file: KeysFile =
            serde_json::from_slice(&text).map_err(|source| KeysFileError::Shape { path: path.to_owned(), source })?;
        let mut keys = HashMap::new();
        for entry in file.public_keys {
            let key = VerifyingKey::from_public_key_pem(entry.key.trim()).map_err(|e| KeysFileError::Key {
                path: path.to_owned(),
                identifier: entry.key_identifier.clone(),
                reason: e.to_string(),
            })?;
            keys.insert(entry.key_identifier, key);
        }
        if keys.is_empty() {
            return Err(KeysFileError::Empty { path: path.to_owned() });
        }
        Ok(ScannerKeys { keys })
    }

    /// True when `signature` (base64 of DER) is the key `identifier`'s ECDSA P-256 / SHA-256
    /// signature of `body`. Anything missing, unknown or malformed is false.
    pub fn verify(&self, identifier: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
        let (Some(identifier), Some(signature)) = (identifier, signature) else { return false };
        let Some(key) = self.keys.get(identifier.trim()) else { return false };
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else { return false };
        let Ok(signature) = Signature::from_der(&der) else { return false };
        key.verify(body, &signature).is_ok()
    }
}

/// One match in a report, as the scanner sends it. Fields other than these are ignored.
#[derive(Deserialize, ToSchema)]
pub struct ReportedToken {
    /// The string found.
    #[schema(examples("esq_…"))]
    token: String,
    /// The scanner's name for the token's type (Esqase registers `esqase_api_key`).
    #[serde(rename = "type")]
    #[schema(required = false, nullable = false)]
    // Documented and accepted, not consulted: the answer always names `esqase_api_key`.
    #[allow(dead_code)]
    token_type: Option<String>,
    /// Where it was found. May be empty or absent; kept up to 2,048 characters.
    #[schema(required = false)]
    url: Option<String>,
    /// What kind of place it was found in, in the scanner's words (GitHub: `content`, `commit`,
    /// `pull_request_title`, `issue_comment`, …). Kept up to 64 characters.
    #[schema(required = false)]
    source: Option<String>,
}

/// The answer for one reported token, in the order they were sent.
#[derive(Serialize, ToSchema)]
pub struct TokenLabel {
    /// The string as it was reported.
    token_raw: String,
    /// Always `esqase_api_key`.
    #[schema(schema_with = token_type_schema)]
    token_type: &'static str,
    /// `true_positive`: one of our keys (now revoked, or already not working);
    /// `false_positive`: no key of ours (a wrong checksum is judged without a lookup).
    #[schema(schema_with = label_schema)]
    label: &'static str,
}

fn token_type_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum([TOKEN_TYPE]).description(Some("Always `esqase_api_key`."))
}

fn label_schema() -> utoipa::openapi::schema::ObjectBuilder {
    domain::schema::string_enum([Label::TruePositive.as_str(), Label::FalsePositive.as_str()]).description(Some(
        "`true_positive`: one of our keys (now revoked, or already not working); `false_positive`: no key of ours \
         (a wrong checksum is judged without a lookup).",
    ))
}

problems!(
    /// What a report can answer besides success.
    ReportProblems = [&[
        ApiError::Malformed(String::new()),
        ApiError::InvalidSignature,
        ApiError::NotFound,
        ApiError::ReportTooLarge(String::new()),
        ApiError::Unavailable,
    ]]
);

/// Revokes the leaked keys a secret scanner reports.
///
/// Each token is judged in order: a string whose checksum is wrong, or that is no key of ours,
/// is a `false_positive`; one of our keys is a `true_positive`, and if it was Active it is revoked
/// (reason `leaked`, actor `system`, with the report's `url` and `source`) on every node before
/// this answers. A key already revoked or expired is a `true_positive` and changes nothing, so
/// the same report twice revokes once and answers the same. At most 1,000 tokens per report.
/// Without `ESQASE_SECRET_SCANNING_KEYS` this route answers 404.
#[utoipa::path(
    post,
    path = "/v1/secret-scanning/reports",
    tag = "secret_scanning",
    operation_id = "report_leaked_tokens",
    params(
        ("Github-Public-Key-Identifier" = String, Header,
            description = "Which of the scanner's public keys signed the body (any key in the keys file, current or not)."),
        ("Github-Public-Key-Signature" = String, Header,
            description = "Base64 of the DER-encoded ECDSA P-256 signature, with SHA-256, of the raw body."),
    ),
    request_body(content = Vec<ReportedToken>, content_type = "application/json",
        description = "The tokens found, at most 1,000."),
    responses(
        (status = 200, description = "One answer per token, in the order sent.", body = Vec<TokenLabel>),
        ReportProblems,
    )
)]
async fn report(
    State(state): State<Arc<AppState>>,
    RequestId(request_id): RequestId,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let Some(keys) = state.secret_scanning.as_ref() else { return Err(ApiError::NotFound) };
    let body = read_body(body).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !keys.verify(header(KEY_IDENTIFIER_HEADER), header(SIGNATURE_HEADER), &body) {
        tracing::warn!("a secret scanning report with a missing, unknown or wrong signature was refused");
        return Err(ApiError::InvalidSignature);
    }
    let sent: Vec<ReportedToken> =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("the report is not valid: {e}")))?;
    let matches = sent.into_iter().map(|t| ReportedMatch { token: t.token, url: t.url, source: t.source }).collect();
    let findings = secret_scanning::parse_report(matches).map_err(|e| ApiError::ReportTooLarge(e.to_string()))?;
    let labels = state.commands.revoke_reported_keys(&findings, request_id).await?;
    let answer: Vec<TokenLabel> = findings
        .into_iter()
        .zip(labels)
        .map(|(finding, label)| TokenLabel { token_raw: finding.token, token_type: TOKEN_TYPE, label: label.as_str() })
        .collect();
    Ok(json(StatusCode::OK, &answer))
}

/// The raw body (the signature is over its exact bytes), up to [`REPORT_BODY_LIMIT`].
async fn read_body(body: Body) -> ApiResult<Bytes> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, REPORT_BODY_LIMIT).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::Malformed("the request body could not be read".into())),
    }
}

/// The answer to a body over [`REPORT_BODY_LIMIT`].
pub fn too_large() -> ApiError {
    ApiError::ReportTooLarge("a report body is at most 1 MiB".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    fn keys_file(dir: &Path, contents: &str) -> PathBuf {
        let path = dir.join("keys.json");
        std::fs::write(&path, contents).expect("written");
        path
    }

    #[test]
    fn a_broken_keys_file_is_named_with_what_is_wrong() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let missing = ScannerKeys::load(&dir.path().join("nope.json")).err().map(|e| e.to_string());
        assert!(missing.is_some_and(|m| m.contains("could not read")));
        let shape = ScannerKeys::load(&keys_file(dir.path(), r#"{"keys": []}"#)).err();
        assert!(matches!(shape, Some(KeysFileError::Shape { .. })), "{shape:?}");
        let empty = ScannerKeys::load(&keys_file(dir.path(), r#"{"public_keys": []}"#)).err();
        assert!(matches!(empty, Some(KeysFileError::Empty { .. })), "{empty:?}");
        let bad = r#"{"public_keys": [{"key_identifier": "k1", "key": "not a key", "is_current": true}]}"#;
        let bad = ScannerKeys::load(&keys_file(dir.path(), bad)).err().map(|e| e.to_string());
        assert!(bad.is_some_and(|m| m.contains("\"k1\"") && m.contains("P-256")));
    }

    #[test]
    fn a_signature_verifies_only_for_its_key_and_body() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let key = SigningKey::random(&mut rand::rngs::OsRng);
        let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).expect("a PEM");
        let file = serde_json::json!({"public_keys": [{"key_identifier": "k1", "key": pem, "is_current": false}]});
        let keys = ScannerKeys::load(&keys_file(dir.path(), &file.to_string())).expect("a keys file");
        let body = br#"[{"token":"esq_x"}]"#;
        let signature: Signature = key.sign(body);
        let encoded = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
        assert!(keys.verify(Some("k1"), Some(&encoded), body), "a key that is not current still verifies");
        assert!(!keys.verify(Some("k2"), Some(&encoded), body));
        assert!(!keys.verify(Some("k1"), Some(&encoded), b"[]"));
        assert!(!keys.verify(Some("k1"), None, body));
        assert!(!keys.verify(Some("k1"), Some("%%%"), body));
    }
}
