//! Keys at work: verification in the contract's order, from each node's memory; revocation on
//! every node; the creator's live ceiling; CORS; usage; expiry.

use reqwest::Method;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use testkit::*;
use tokio::time::Instant;

async fn current(client: &Client, secret: &str, origin: Option<&str>) -> Answer {
    let mut request = client.http.get(format!("{}/v1/api-keys/current", client.base_url)).bearer_auth(secret);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    Client::answer(request).await
}

fn secret_of(created: &serde_json::Value) -> String {
    created["secret"].as_str().expect("a secret").to_owned()
}

#[tokio::test]
async fn a_key_is_checked_in_the_contracts_order_with_its_codes() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let created = create_key(
        &client,
        &owner,
        &json!({"name": "Site", "scopes": ["contacts:read"], "allowed_domains": ["app.example.com"]}),
    )
    .await;
    let secret = secret_of(&created);

    let works = current(&client, &secret, None).await;
    assert_eq!(works.status, 200, "{}", works.text);
    assert_eq!(works.body["api_key"]["id"], created["api_key"]["id"]);
    assert_eq!(works.body["firm"]["id"], json!(owner.firm_id));
    assert_eq!(works.body["effective_permissions"], json!(["contacts:read"]));

    // Malformed, a bad checksum, and a well-formed key nobody has: all invalid_api_key, with the challenge.
    let mut typo = secret.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let unknown = domain::ApiKeySecret::generate();
    for presented in ["esq_short", &String::from_utf8(typo)?, unknown.expose()] {
        let refused = current(&client, presented, None).await;
        refused.assert_problem(401, "invalid_api_key");
        assert_eq!(refused.header("www-authenticate"), "Bearer error=\"invalid_token\"");
    }

    // The browser origin: allowed, another site, `null`; none at all is never restricted.
    assert_eq!(current(&client, &secret, Some("https://app.example.com")).await.status, 200);
    current(&client, &secret, Some("https://evil.test")).await.assert_problem(403, "origin_not_allowed");
    current(&client, &secret, Some("null")).await.assert_problem(403, "origin_not_allowed");

    // A member session on a key-only route.
    client.get("/v1/api-keys/current", &owner.token).await.assert_problem(403, "api_key_required");

    let id = created["api_key"]["id"].as_str().expect("an id");
    assert_eq!(client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await.status, 200);
    let revoked = current(&client, &secret, None).await;
    revoked.assert_problem(401, "api_key_revoked");
    assert_eq!(revoked.header("www-authenticate"), "Bearer error=\"invalid_token\"");
    app.stop().await
}

#[tokio::test]
async fn an_expired_key_stops_working_at_its_instant_and_the_sweeper_records_it() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let expires_at = chrono::Utc::now() + chrono::TimeDelta::seconds(4);
    let created = create_key(
        &client,
        &owner,
        &json!({"name": "Short", "scopes": ["contacts:read"], "expires_at": expires_at.to_rfc3339()}),
    )
    .await;
    let secret = secret_of(&created);
    assert_eq!(current(&client, &secret, None).await.status, 200);
    let wait = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    current(&client, &secret, None).await.assert_problem(401, "api_key_expired");

    let id = created["api_key"]["id"].as_str().expect("an id");
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    eventually("the sweeper records the expiry", async || {
        let expired: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE stream_id = $1::uuid AND event_type = 'ApiKeyExpired'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .ok()?;
        (expired == 1).then_some(())
    })
    .await;
    let shown = client.get(&format!("/v1/api-keys/{id}"), &owner.token).await;
    assert_eq!(shown.body["status"], "expired");
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn a_key_never_exceeds_its_creators_role_as_the_grid_changes() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let admin = join(&client, &owner, "Ada Admin", &format!("a{}@acme.test", random_uuid()), "administrator").await;
    let secret = secret_of(
        &create_key(&client, &admin, &json!({"name": "Sync", "scopes": ["contacts:read", "contacts:write"]})).await,
    );
    let effective = |answer: Answer| answer.body["effective_permissions"].clone();
    assert_eq!(effective(current(&client, &secret, None).await), json!(["contacts:read", "contacts:write"]));

    let roles = client.get("/v1/roles", &owner.token).await;
    let all: Vec<serde_json::Value> = roles.body["roles"][1]["permissions"].as_array().expect("a list").clone();
    let without: Vec<&serde_json::Value> = all.iter().filter(|p| *p != "contacts:write").collect();
    let taken = client.put("/v1/roles/administrator/permissions", &owner.token, &json!({"permissions": without})).await;
    assert_eq!(taken.status, 200, "{}", taken.text);
    assert_eq!(effective(current(&client, &secret, None).await), json!(["contacts:read"]));

    let given = client.put("/v1/roles/administrator/permissions", &owner.token, &json!({"permissions": all})).await;
    assert_eq!(given.status, 200, "{}", given.text);
    assert_eq!(effective(current(&client, &secret, None).await), json!(["contacts:read", "contacts:write"]));
    app.stop().await
}

#[tokio::test]
async fn browsers_get_preflights_and_only_allowed_requests_are_readable() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let secret = secret_of(
        &create_key(
            &client,
            &owner,
            &json!({"name": "Site", "scopes": ["contacts:read"], "allowed_domains": ["*.example.com"]}),
        )
        .await,
    );
    let preflight = Client::answer(
        client
            .http
            .request(Method::OPTIONS, format!("{}/v1/contacts", client.base_url))
            .header("Origin", "https://anywhere.test")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization, content-type"),
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert!(preflight.header("access-control-allow-methods").contains("POST"));
    assert_eq!(preflight.header("access-control-allow-headers"), "Authorization, Content-Type");
    assert!(!preflight.header("access-control-max-age").is_empty());

    let allowed = current(&client, &secret, Some("https://app.example.com")).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), "https://app.example.com");
    assert_eq!(allowed.header("vary"), "Origin");
    assert_eq!(allowed.header("access-control-allow-credentials"), "");

    let refused = current(&client, &secret, Some("https://example.com.evil.test")).await;
    refused.assert_problem(403, "origin_not_allowed");
    assert_eq!(refused.header("access-control-allow-origin"), "");

    // From an allowed origin, the route's own refusal is readable: the page's developer sees
    // which scope the key lacks. An unknown key's answer is not.
    let lacking = Client::answer(
        client
            .http
            .get(format!("{}/v1/matters", client.base_url))
            .bearer_auth(&secret)
            .header("Origin", "https://app.example.com"),
    )
    .await;
    lacking.assert_problem(403, "insufficient_scope");
    assert_eq!(lacking.header("access-control-allow-origin"), "https://app.example.com");
    let unknown = current(&client, &format!("{}x", &secret[..secret.len() - 1]), Some("https://app.example.com")).await;
    assert_eq!(unknown.status, 401, "{}", unknown.text);
    assert_eq!(unknown.header("access-control-allow-origin"), "");
    app.stop().await
}

#[tokio::test]
async fn last_used_shows_a_use_within_one_flush_interval_without_a_write_per_request() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let created = create_key(&client, &owner, &key_named("Sync")).await;
    let (secret, id) = (secret_of(&created), created["api_key"]["id"].as_str().expect("an id").to_owned());
    assert_eq!(created["api_key"]["last_used_at"], serde_json::Value::Null);
    for _ in 0..50 {
        assert_eq!(current(&client, &secret, None).await.status, 200);
    }
    eventually("last_used_at appears within a flush interval", async || {
        let shown = client.get(&format!("/v1/api-keys/{id}"), &owner.token).await;
        shown.body["last_used_at"].is_string().then_some(())
    })
    .await;
    // Every use is counted, in far fewer events than requests.
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let events = eventually("all 50 uses flushed", async || {
        let (events, uses): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), sum((payload->>'count')::bigint)::bigint FROM events
             WHERE stream_id = $1::uuid AND event_type = 'ApiKeyUsed'",
        )
        .bind(&id)
        .fetch_one(&pool)
        .await
        .ok()?;
        (uses == Some(50)).then_some(events)
    })
    .await;
    assert!(events < 50, "uses are coalesced: {events} Used events for 50 requests");
    pool.close().await;

    // The key's own view (from the node's memory) is the keys table's row (from Postgres), field
    // for field, once the latest flushed use has reached both.
    let own = eventually("the key's own view matches its row", async || {
        let shown = client.get(&format!("/v1/api-keys/{id}"), &owner.token).await;
        let own = current(&client, &secret, None).await;
        (own.body["api_key"] == shown.body).then_some(own)
    })
    .await;
    assert_eq!(own.body["firm"], json!({"id": owner.firm_id, "name": "Acme Law"}));
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_revoke_returns_no_node_accepts_the_key() -> anyhow::Result<()> {
    let first = TestApp::spawn().await?;
    let mut settings = first.settings.clone();
    settings.listen = "127.0.0.1:0".parse()?;
    let second = TestApp::spawn_with(settings).await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let owner = sign_up(&a, "Acme Law", &format!("o{}@acme.test", random_uuid())).await;
    let created = create_key(&a, &owner, &key_named("Sync")).await;
    let (secret, id) = (secret_of(&created), created["api_key"]["id"].as_str().expect("an id").to_owned());
    // A new key works on every node as soon as its create response has returned.
    assert_eq!(current(&b, &secret, None).await.status, 200);

    let revoked_at: Arc<tokio::sync::OnceCell<Instant>> = Arc::new(tokio::sync::OnceCell::new());
    let mut load = Vec::new();
    for node in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let (secret, revoked_at) = (secret.clone(), revoked_at.clone());
        load.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let started = Instant::now();
                let status = current(&node, &secret, None).await.status;
                seen.push((started, status));
                if revoked_at.get().is_some_and(|at| started > *at + Duration::from_millis(300)) {
                    return seen;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let revoke = a.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoke.status, 200, "{}", revoke.text);
    revoked_at.set(Instant::now())?;

    let mut before = 0;
    let mut after = 0;
    for task in load {
        for (started, status) in task.await? {
            if started > *revoked_at.get().expect("set") {
                assert_eq!(status, 401, "a request that started after the revoke returned was accepted");
                after += 1;
            } else if status == 200 {
                before += 1;
            }
        }
    }
    assert!(before > 0 && after > 0, "requests flowed before ({before}) and after ({after}) the revoke");
    second.stop().await?;
    first.stop().await
}
