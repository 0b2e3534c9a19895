//! Leaked keys: a secret scanner's signed report, and what the firm then sees. The scanner's key
//! is made by the scenario and written to a keys file shaped like GitHub's published list.

use super::world::Esqase;
use anyhow::{ensure, Context as _};
use base64::Engine as _;
use cucumber::{given, then, when};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use reqwest::Method;
use serde_json::json;
use testkit::TestApp;

/// The scanner of a scenario: its signing key, and the folder of its keys file.
pub struct Scanner {
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scanner")
    }
}

#[given(regex = r#"^the service takes reports from a secret scanner$"#)]
async fn takes_reports(w: &mut Esqase) -> anyhow::Result<()> {
    ensure!(w.people.is_empty(), "say this before anyone signs up: the service is started again");
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("secret-scanning-keys.json");
    let pem = key.verifying_key().to_public_key_pem(LineEnding::LF).context("a PEM")?;
    let file = json!({"public_keys": [{"key_identifier": "scanner", "key": pem, "is_current": true}]});
    std::fs::write(&path, serde_json::to_vec(&file)?)?;
    w.stop().await;
    let mut settings = testkit::isolated_settings();
    settings.secret_scanning_keys = Some(path);
    let app = TestApp::spawn_with(settings).await.context("starting the service")?;
    w.base_url = app.base_url.clone();
    w.service.0 = Some(app);
    w.scanner = Some(Scanner { key, _dir: dir });
    Ok(())
}

async fn report(w: &mut Esqase, token: String, source: &str, url: &str) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&json!([{"token": token, "type": "esqase_api_key", "url": url, "source": source}]))?;
    let scanner = w.scanner.as_ref().context("the service takes no reports in this scenario")?;
    let signature: Signature = scanner.key.sign(&body);
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let path = "/v1/secret-scanning/reports";
    let request = w
        .http
        .post(format!("{}{path}", w.base_url))
        .header("content-type", "application/json")
        .header("Github-Public-Key-Identifier", "scanner")
        .header("Github-Public-Key-Signature", signature)
        .body(body);
    let answer = super::world::Answer::read(&Method::POST, path, request).await?;
    w.answers.push(answer);
    Ok(())
}

#[when(regex = r#"^a secret scanner reports the API key "([^"]+)" found in a "([^"]*)" at "([^"]*)"$"#)]
async fn reports_key(w: &mut Esqase, key: String, source: String, url: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    report(w, secret, &source, &url).await
}

#[when(regex = r#"^a secret scanner reports the API key "([^"]+)" with one character changed$"#)]
async fn reports_typo(w: &mut Esqase, key: String) -> anyhow::Result<()> {
    let mut typo = w.key(&key)?.secret.clone().into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    report(w, String::from_utf8(typo)?, "content", "").await
}

#[then(regex = r#"^the scanner is told the key is (ours|not ours)$"#)]
async fn told(w: &mut Esqase, verdict: String) -> anyhow::Result<()> {
    let label = if verdict == "ours" { "true_positive" } else { "false_positive" };
    let answer = w.last()?;
    let entries = answer.expect(200)?;
    ensure!(entries[0]["label"] == label && entries[0]["token_type"] == "esqase_api_key", "{}", answer.text);
    Ok(())
}

#[then(regex = r#"^the API key "([^"]+)" shows it leaked$"#)]
async fn shows_leaked(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let key = w.key_as_seen_by_its_firm(&name).await?;
    ensure!(key["status"] == "revoked" && key["revocation_reason"] == "leaked", "{name}: {key}");
    Ok(())
}
