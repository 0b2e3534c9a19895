//! `POST /v1/secret-scanning/reports`: a secret scanner's signed report of leaked keys. Every
//! report here is signed with keys the test makes (p256 `SigningKey::random`), written to a keys
//! file shaped like GitHub's published list.

use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};
use testkit::*;

const PATH: &str = "/v1/secret-scanning/reports";

/// The scanner: a current key and a retired one, both in the keys file.
struct Scanner {
    current: SigningKey,
    retired: SigningKey,
    _dir: tempfile::TempDir,
    keys_file: std::path::PathBuf,
}

impl Scanner {
    fn new() -> Scanner {
        let (current, retired) =
            (SigningKey::random(&mut rand::rngs::OsRng), SigningKey::random(&mut rand::rngs::OsRng));
        let pem = |key: &SigningKey| key.verifying_key().to_public_key_pem(LineEnding::LF).expect("a PEM");
        let dir = tempfile::tempdir().expect("a temp dir");
        let keys_file = dir.path().join("secret-scanning-keys.json");
        let file = json!({"public_keys": [
            {"key_identifier": "current-id", "key": pem(&current), "is_current": true},
            {"key_identifier": "retired-id", "key": pem(&retired), "is_current": false},
        ]});
        std::fs::write(&keys_file, serde_json::to_vec(&file).expect("JSON")).expect("the keys file is written");
        Scanner { current, retired, _dir: dir, keys_file }
    }
}

/// Base64 of the DER signature of `body` by `key`.
fn sign(key: &SigningKey, body: &[u8]) -> String {
    let signature: Signature = key.sign(body);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

/// A service that takes reports signed by `scanner`.
async fn spawn(scanner: &Scanner) -> anyhow::Result<TestApp> {
    let mut settings = testkit::isolated_settings();
    settings.secret_scanning_keys = Some(scanner.keys_file.clone());
    TestApp::spawn_with(settings).await
}

/// A service that takes reports, its scanner, a client and a pool on its database.
struct Reporting {
    scanner: Scanner,
    app: TestApp,
    client: Client,
    pool: sqlx::PgPool,
}

impl Reporting {
    async fn start() -> anyhow::Result<Reporting> {
        let scanner = Scanner::new();
        let app = spawn(&scanner).await?;
        let client = Client::new(&app);
        let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
        Ok(Reporting { scanner, app, client, pool })
    }
}

/// Posts `body` (raw bytes) with the given identifier and signature headers.
async fn post_raw(client: &Client, body: Vec<u8>, identifier: Option<&str>, signature: Option<&str>) -> Answer {
    let mut request =
        client.http.post(format!("{}{PATH}", client.base_url)).header("content-type", "application/json").body(body);
    if let Some(identifier) = identifier {
        request = request.header("Github-Public-Key-Identifier", identifier);
    }
    if let Some(signature) = signature {
        request = request.header("Github-Public-Key-Signature", signature);
    }
    Client::answer(request).await
}

/// Posts `report`, signed by the scanner's current key.
async fn report(client: &Client, scanner: &Scanner, report: &Value) -> Answer {
    let body = serde_json::to_vec(report).expect("JSON");
    let signature = sign(&scanner.current, &body);
    post_raw(client, body, Some("current-id"), Some(&signature)).await
}

/// One reported token, as GitHub sends it.
fn found(token: &str) -> Value {
    json!({"token": token, "type": "esqase_api_key", "url": "https://github.com/acme/intake/blob/abc/.env", "source": "content"})
}

/// The labels of an answer, in order.
fn labels(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer
        .body
        .as_array()
        .expect("an array")
        .iter()
        .map(|entry| {
            assert_eq!(entry["token_type"], "esqase_api_key", "{entry}");
            entry["label"].as_str().unwrap_or("").to_owned()
        })
        .collect()
}

/// A firm's owner and an Active key (its whole create body).
async fn firm_with_key(client: &Client, email: &str) -> (Signed, Value) {
    let owner = sign_up(client, "Acme Law", email).await;
    let key = create_key(client, &owner, &key_named("Intake sync")).await;
    (owner, key)
}

fn secret(key: &Value) -> &str {
    key["secret"].as_str().expect("a secret")
}

/// What `/v1/api-keys/current` answers the key with.
async fn use_key(client: &Client, secret: &str) -> Answer {
    Client::answer(client.http.get(format!("{}/v1/api-keys/current", client.base_url)).bearer_auth(secret)).await
}

async fn revocations(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ApiKeyRevoked'").fetch_one(pool).await?)
}

#[tokio::test]
async fn without_the_setting_the_route_answers_the_unknown_route_404() -> anyhow::Result<()> {
    let scanner = Scanner::new();
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    let answer = report(&client, &scanner, &json!([found(secret(&key))])).await;
    answer.assert_problem(404, "not_found");
    assert_eq!(answer.body, client.post("/v1/no-such-route", None, &json!({})).await.body, "the same problem");
    assert_eq!(use_key(&client, secret(&key)).await.status, 200, "the key still works");
    app.stop().await
}

#[tokio::test]
async fn a_missing_unknown_or_wrong_signature_is_401_and_changes_nothing() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool } = Reporting::start().await?;
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    let body = serde_json::to_vec(&json!([found(secret(&key))]))?;
    let good = sign(&scanner.current, &body);
    let stranger = sign(&SigningKey::random(&mut rand::rngs::OsRng), &body);
    let other_body = sign(&scanner.current, b"[]");
    let cases: [(&str, Option<&str>, Option<&str>); 7] = [
        ("no headers", None, None),
        ("no signature", Some("current-id"), None),
        ("no identifier", None, Some(&good)),
        ("an unknown identifier", Some("no-such-id"), Some(&good)),
        ("another key's signature", Some("current-id"), Some(&stranger)),
        ("a signature of another body", Some("current-id"), Some(&other_body)),
        ("not base64 of DER", Some("current-id"), Some("bm90IGEgc2lnbmF0dXJl!!")),
    ];
    for (what, identifier, signature) in cases {
        let answer = post_raw(&client, body.clone(), identifier, signature).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.text);
        answer.assert_problem(401, "invalid_signature");
    }
    // The retired key is not the one that signed with "current-id".
    let retired = sign(&scanner.retired, &body);
    post_raw(&client, body, Some("current-id"), Some(&retired)).await.assert_problem(401, "invalid_signature");
    assert_eq!(revocations(&pool).await?, 0, "nothing was revoked");
    assert_eq!(use_key(&client, secret(&key)).await.status, 200, "the key still works");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn a_wrong_checksum_or_a_string_that_is_no_key_is_a_false_positive() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool } = Reporting::start().await?;
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    let real = secret(&key);
    // The same random part with another checksum, a well-formed key of nobody's, and garbage.
    let last = if real.ends_with('0') { '1' } else { '0' };
    let mistyped = format!("{}{last}", &real[..real.len() - 1]);
    let nobodys = domain::ApiKeySecret::generate().expose().to_owned();
    let tokens = [mistyped.as_str(), nobodys.as_str(), "esq_short", "", "ünïcode"];
    let sent: Vec<Value> = tokens.iter().map(|t| found(t)).collect();
    let answer = report(&client, &scanner, &Value::Array(sent)).await;
    assert_eq!(labels(&answer), vec!["false_positive"; tokens.len()]);
    let raw: Vec<&str> = answer.body.as_array().into_iter().flatten().filter_map(|e| e["token_raw"].as_str()).collect();
    assert_eq!(raw, tokens, "each token answered as sent, in order");
    assert_eq!(revocations(&pool).await?, 0);
    assert_eq!(use_key(&client, real).await.status, 200, "the real key still works");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn an_active_key_is_revoked_at_once_as_leaked_and_the_firm_sees_it() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool: _ } = Reporting::start().await?;
    let (owner, key) = firm_with_key(&client, "olivia@acme.test").await;
    assert_eq!(use_key(&client, secret(&key)).await.status, 200);
    let answer = report(&client, &scanner, &json!([found(secret(&key))])).await;
    assert_eq!(labels(&answer), ["true_positive"]);
    assert_eq!(answer.body[0]["token_raw"], secret(&key));
    use_key(&client, secret(&key)).await.assert_problem(401, "api_key_revoked");

    let id = key["api_key"]["id"].as_str().expect("an id");
    let shown = client.get(&format!("/v1/api-keys/{id}"), &owner.token).await;
    assert_eq!(shown.body["status"], "revoked", "{}", shown.text);
    assert_eq!(shown.body["revocation_reason"], "leaked");
    assert_eq!(shown.body["revoked_by"], Value::Null, "the service revoked it, not a member");

    let log = client.get("/v1/audit-log", &owner.token).await;
    let entry = log.body["data"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["action"] == "api_key.revoked"))
        .unwrap_or_else(|| panic!("an api_key.revoked entry: {}", log.text));
    assert_eq!(entry["actor"]["type"], "system", "{entry}");
    assert_eq!(entry["target"]["id"], id);
    assert_eq!(
        entry["details"],
        json!({"reason": "leaked", "url": "https://github.com/acme/intake/blob/abc/.env", "source": "content"})
    );

    // The keys page: a Revoked row that says it leaked.
    let cookie = browser_sign_in(&client, &owner.email).await;
    let page =
        Client::answer(client.http.get(format!("{}/settings/developers", client.base_url)).header("Cookie", &cookie))
            .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("status-revoked"), "a Revoked row");
    assert!(page.text.contains("Leaked: a secret scanner found it in public"), "{}", page.text);
    app.stop().await
}

#[tokio::test]
async fn a_key_already_revoked_or_expired_is_a_true_positive_and_nothing_changes() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool } = Reporting::start().await?;
    let (owner, revoked) = firm_with_key(&client, "olivia@acme.test").await;
    let id = revoked["api_key"]["id"].as_str().expect("an id");
    let answer = client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1500)).to_rfc3339();
    let expiring =
        create_key(&client, &owner, &json!({"name": "Short", "scopes": ["contacts:read"], "expires_at": soon})).await;
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    use_key(&client, secret(&expiring)).await.assert_problem(401, "api_key_expired");
    let before = revocations(&pool).await?;

    let answer = report(&client, &scanner, &json!([found(secret(&revoked)), found(secret(&expiring))])).await;
    assert_eq!(labels(&answer), ["true_positive", "true_positive"]);
    assert_eq!(revocations(&pool).await?, before, "no second revocation, and the expired key is left expired");
    let shown = client.get(&format!("/v1/api-keys/{id}"), &owner.token).await;
    assert_eq!(shown.body["revocation_reason"], "revoked_by_member", "{}", shown.text);
    let expired_id = expiring["api_key"]["id"].as_str().expect("an id");
    assert_eq!(client.get(&format!("/v1/api-keys/{expired_id}"), &owner.token).await.body["status"], "expired");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn the_same_report_twice_revokes_once_and_answers_the_same() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool } = Reporting::start().await?;
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    let nobodys = domain::ApiKeySecret::generate().expose().to_owned();
    // The key twice in one report, too: one answer per token sent.
    let sent = json!([found(secret(&key)), found(&nobodys), found(secret(&key))]);
    let first = report(&client, &scanner, &sent).await;
    assert_eq!(labels(&first), ["true_positive", "false_positive", "true_positive"]);
    let second = report(&client, &scanner, &sent).await;
    assert_eq!(second.body, first.body, "the same answer");
    assert_eq!(revocations(&pool).await?, 1, "revoked once");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn a_report_signed_with_a_key_that_is_not_current_is_accepted() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool: _ } = Reporting::start().await?;
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    // GitHub's own shape: `url` empty, another `source`, a field Esqase does not know.
    let body = serde_json::to_vec(&json!([
        {"token": secret(&key), "type": "esqase_api_key", "url": "", "source": "pull_request_title", "extra": 1}
    ]))?;
    let signature = sign(&scanner.retired, &body);
    let answer = post_raw(&client, body, Some("retired-id"), Some(&signature)).await;
    assert_eq!(labels(&answer), ["true_positive"]);
    use_key(&client, secret(&key)).await.assert_problem(401, "api_key_revoked");
    app.stop().await
}

#[tokio::test]
async fn a_report_of_more_than_a_thousand_tokens_or_one_mib_is_refused_whole() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool } = Reporting::start().await?;
    let (_, key) = firm_with_key(&client, "olivia@acme.test").await;
    let nobodys = domain::ApiKeySecret::generate().expose().to_owned();

    // 1,000 tokens (well over the 64 KiB the rest of the API takes) are answered.
    let thousand: Vec<Value> = (0..1000).map(|_| found(&nobodys)).collect();
    assert!(serde_json::to_vec(&thousand)?.len() > 64 * 1024);
    assert_eq!(labels(&report(&client, &scanner, &Value::Array(thousand.clone())).await).len(), 1000);

    // 1,001, the real key among them: refused, and nothing is revoked.
    let mut over = thousand;
    over.push(found(secret(&key)));
    let answer = report(&client, &scanner, &Value::Array(over)).await;
    answer.assert_problem(413, "report_too_large");
    assert!(answer.body["detail"].as_str().is_some_and(|d| d.contains("1,000")), "{}", answer.text);

    // Over 1 MiB.
    let huge = json!([{"token": secret(&key), "url": "x".repeat(1024 * 1024)}]);
    report(&client, &scanner, &huge).await.assert_problem(413, "report_too_large");
    assert_eq!(revocations(&pool).await?, 0);
    assert_eq!(use_key(&client, secret(&key)).await.status, 200, "the key still works");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn a_signed_body_that_is_not_a_list_of_tokens_is_400() -> anyhow::Result<()> {
    let Reporting { scanner, app, client, pool: _ } = Reporting::start().await?;
    for body in [json!({"token": "esq_x"}), json!([{"url": "https://x.test"}]), json!([{"token": 7}])] {
        report(&client, &scanner, &body).await.assert_problem(400, "malformed_request");
    }
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reported_key_is_refused_on_every_node_before_the_report_is_answered() -> anyhow::Result<()> {
    let scanner = Scanner::new();
    let a = spawn(&scanner).await?;
    let mut settings = a.settings.clone();
    settings.listen = "127.0.0.1:0".parse()?;
    let b = TestApp::spawn_with(settings).await?;
    let (node_a, node_b) = (Client::new(&a), Client::new(&b));
    let (_, key) = firm_with_key(&node_a, "olivia@acme.test").await;
    // Node B knows the key, from memory.
    eventually("node B to accept the key", async || (use_key(&node_b, secret(&key)).await.status == 200).then_some(()))
        .await;
    let answer = report(&node_a, &scanner, &json!([found(secret(&key))])).await;
    assert_eq!(labels(&answer), ["true_positive"]);
    use_key(&node_b, secret(&key)).await.assert_problem(401, "api_key_revoked");
    b.stop().await?;
    a.stop().await
}
