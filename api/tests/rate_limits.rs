//! Rate limits per key: set on create, changed or removed on an Active key, shown on the key,
//! kept by a roll, audited; enforced from memory with the IETF RateLimit fields on every
//! answer; held to the limit by two nodes together.

use serde_json::{json, Value};
use std::time::Duration;
use testkit::*;

/// The `r` (remaining) of a `RateLimit` field value.
fn remaining(answer: &Answer) -> u64 {
    let field = answer.header("ratelimit");
    field
        .split(';')
        .find_map(|part| part.strip_prefix("r="))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no r= in RateLimit {field:?}"))
}

fn limited(name: &str, limit: u32, window_seconds: u32) -> Value {
    json!({"name": name, "scopes": ["contacts:read"], "rate_limit": {"limit": limit, "window_seconds": window_seconds}})
}

#[tokio::test]
async fn a_key_shows_its_rate_limit_and_a_limit_out_of_range_names_its_field() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let created = create_key(&client, &owner, &limited("Intake sync", 100, 60)).await;
    assert_eq!(created["api_key"]["rate_limit"], json!({"limit": 100, "window_seconds": 60}));
    let plain = create_key(&client, &owner, &key_named("No limit")).await;
    assert_eq!(plain["api_key"]["rate_limit"], Value::Null);
    let none =
        create_key(&client, &owner, &json!({"name": "Null", "scopes": ["contacts:read"], "rate_limit": null})).await;
    assert_eq!(none["api_key"]["rate_limit"], Value::Null);

    let refused = client
        .post(
            "/v1/api-keys",
            Some(&owner.token),
            &json!({"name": "Bad", "scopes": ["contacts:read"], "rate_limit": {"limit": 0, "window_seconds": 7200}}),
        )
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["rate_limit.limit", "rate_limit.window_seconds"]);
    let unknown = client
        .post(
            "/v1/api-keys",
            Some(&owner.token),
            &json!({"name": "Bad", "scopes": ["contacts:read"], "rate_limit": {"per": 5}}),
        )
        .await;
    unknown.assert_problem(400, "malformed_request");
    let keys = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(keys.body["data"].as_array().map(Vec::len), Some(3), "nothing refused was created");
    app.stop().await
}

#[tokio::test]
async fn past_its_limit_a_key_is_refused_429_until_the_window_ends_and_every_answer_says_what_is_left(
) -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let key = create_key(&client, &owner, &limited("Five an hour", 5, 3600)).await;
    let secret = key["secret"].as_str().expect("a secret");
    with_time_left_in_the_window(3600, Duration::from_secs(20)).await;

    for left in (0..5).rev() {
        let answer = client.current_key(secret).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.header("ratelimit-policy"), "\"api-key\";q=5;w=3600");
        assert_eq!(remaining(&answer), left);
    }
    let refused = client.current_key(secret).await;
    refused.assert_problem(429, "rate_limited");
    let retry_after: u64 = refused.header("retry-after").parse()?;
    assert!((1..=3600).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(refused.header("ratelimit"), format!("\"api-key\";r=0;t={retry_after}"));
    assert_eq!(refused.header("ratelimit-policy"), "\"api-key\";q=5;w=3600");
    // The data API counts the same way, and a refused request did not count.
    let contacts = client.get("/v1/contacts", secret).await;
    contacts.assert_problem(429, "rate_limited");

    // A key without a limit gets neither field.
    let plain = create_key(&client, &owner, &key_named("No limit")).await;
    let answer = client.current_key(plain["secret"].as_str().expect("a secret")).await;
    assert_eq!(answer.status, 200);
    assert!(answer.headers.get("ratelimit").is_none() && answer.headers.get("ratelimit-policy").is_none());
    app.stop().await
}

#[tokio::test]
async fn a_request_refused_for_its_scope_counts_and_a_short_window_gives_the_quota_back() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let key = create_key(&client, &owner, &limited("Two in two seconds", 2, 2)).await;
    let secret = key["secret"].as_str().expect("a secret");
    with_time_left_in_the_window(2, Duration::from_millis(1500)).await;
    let scope = client.post("/v1/contacts", Some(secret), &json!({"name": "Ann"})).await;
    scope.assert_problem(403, "insufficient_scope");
    assert_eq!(remaining(&scope), 1, "the refusal for its scope counted");
    assert_eq!(client.current_key(secret).await.status, 200);
    let refused = client.current_key(secret).await;
    refused.assert_problem(429, "rate_limited");
    let wait: u64 = refused.header("retry-after").parse()?;
    assert!(wait <= 2, "Retry-After {wait} for a 2-second window");
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = client.current_key(secret).await;
    assert_eq!(again.status, 200, "after Retry-After the next window admits it: {}", again.text);
    app.stop().await
}

#[tokio::test]
async fn a_limit_is_changed_and_removed_on_an_active_key_audited_and_kept_by_a_roll() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let key = create_key(&client, &owner, &key_named("Sync")).await;
    let id = key["api_key"]["id"].as_str().expect("an id");
    let path = format!("/v1/api-keys/{id}/rate-limit");

    let set = client.put(&path, &owner.token, &json!({"rate_limit": {"limit": 10, "window_seconds": 60.0}})).await;
    assert_eq!(set.status, 200, "{}", set.text);
    assert_eq!(set.body["rate_limit"], json!({"limit": 10, "window_seconds": 60}));
    let missing = client.put(&path, &owner.token, &json!({})).await;
    missing.assert_problem(422, "validation_failed");
    assert_eq!(missing.error_fields(), ["rate_limit"]);
    let out_of_range =
        client.put(&path, &owner.token, &json!({"rate_limit": {"limit": "ten", "window_seconds": 0}})).await;
    assert_eq!(out_of_range.error_fields(), ["rate_limit.limit", "rate_limit.window_seconds"]);

    let rolled =
        client.post(&format!("/v1/api-keys/{id}/roll"), Some(&owner.token), &json!({"grace_period_seconds": 60})).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text);
    assert_eq!(rolled.body["api_key"]["rate_limit"], json!({"limit": 10, "window_seconds": 60}), "a roll keeps it");

    let removed = client.put(&path, &owner.token, &json!({"rate_limit": null})).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["rate_limit"], Value::Null);
    let revoked = client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200);
    let after = client.put(&path, &owner.token, &json!({"rate_limit": null})).await;
    after.assert_problem(409, "api_key_not_active");

    let entries =
        client.get(&format!("/v1/audit-log?action=api_key.rate_limit_updated&api_key_id={id}"), &owner.token).await;
    let details: Vec<&Value> =
        entries.body["data"].as_array().expect("entries").iter().map(|e| &e["details"]).collect();
    assert_eq!(
        details,
        [
            &json!({"before": {"limit": 10, "window_seconds": 60}, "after": null}),
            &json!({"before": null, "after": {"limit": 10, "window_seconds": 60}}),
        ],
        "newest first, one entry per change: {}",
        entries.text
    );
    app.stop().await
}

#[tokio::test]
async fn a_member_without_the_api_keys_permission_cannot_change_a_limit() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    let key = create_key(&client, &owner, &key_named("Sync")).await;
    let id = key["api_key"]["id"].as_str().expect("an id");
    let refused = client.put(&format!("/v1/api-keys/{id}/rate-limit"), &staff.token, &json!({"not": "read"})).await;
    refused.assert_problem(403, "permission_denied");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_together_never_admit_more_than_the_limit_and_a_change_binds_both_at_once() -> anyhow::Result<()> {
    let first = TestApp::spawn().await?;
    let second = first.spawn_beside().await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let owner = sign_up(&a, "Acme Law", "olivia@acme.test").await;
    const LIMIT: usize = 300;
    let key = create_key(&a, &owner, &limited("Shared", LIMIT as u32, 3600)).await;
    let secret = key["secret"].as_str().expect("a secret").to_owned();
    let id = key["api_key"]["id"].as_str().expect("an id").to_owned();
    with_time_left_in_the_window(3600, Duration::from_secs(20)).await;

    // Eight clients on each node, 1,000 requests in all, three times the limit.
    let mut load = Vec::new();
    for n in 0..16 {
        let (client, secret) = (if n % 2 == 0 { a.clone() } else { b.clone() }, secret.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..(1000 / 16) {
                statuses.push(client.current_key(&secret).await.status);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for task in load {
        statuses.extend(task.await?);
    }
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(admitted + refused, statuses.len(), "only 200s and 429s: {statuses:?}");
    assert!(admitted <= LIMIT, "the two nodes admitted {admitted} of a limit of {LIMIT}");
    assert!(admitted * 10 >= LIMIT * 9, "quota left unused by the nodes' reservations: {admitted} of {LIMIT}");

    // Removing the limit through one node lets the key through on the other at once.
    let removed = a.put(&format!("/v1/api-keys/{id}/rate-limit"), &owner.token, &json!({"rate_limit": null})).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(b.current_key(&secret).await.status, 200, "the other node no longer limits it");
    // And a limit set again is counted there at once (its window's count is still over it).
    let set = a
        .put(
            &format!("/v1/api-keys/{id}/rate-limit"),
            &owner.token,
            &json!({"rate_limit": {"limit": 10, "window_seconds": 3600}}),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text);
    b.current_key(&secret).await.assert_problem(429, "rate_limited");

    second.stop().await?;
    first.stop().await
}
