//! Rolling a key over HTTP: the new key (the old one's settings, its secret shown once) works
//! at once, on every node; the old one works until its grace period ends and is refused as
//! revoked from that instant; what cannot be rolled; the ceiling; the audit log.

use serde_json::{json, Value};
use testkit::{create_key, eventually, join, sign_up, Client, Signed, TestApp};

fn id_of(key: &Value) -> String {
    key["id"].as_str().unwrap().to_owned()
}

/// The status and code of `GET /v1/api-keys/current` with `secret` (code empty on success).
async fn current(client: &Client, secret: &str) -> (u16, String) {
    let request = client.http.get(format!("{}/v1/api-keys/current", client.base_url)).bearer_auth(secret);
    let answer = Client::answer(request).await;
    (answer.status, answer.code().to_owned())
}

async fn roll(client: &Client, by: &Signed, id: &str, grace: Value) -> testkit::Answer {
    client.post(&format!("/v1/api-keys/{id}/roll"), Some(&by.token), &json!({ "grace_period_seconds": grace })).await
}

/// A firm's owner and a key with every setting a roll must keep.
async fn owner_and_key(client: &Client) -> (Signed, Value) {
    let owner = sign_up(client, "Acme Law", "olivia@acme.test").await;
    let created = create_key(
        client,
        &owner,
        &json!({
            "name": "Intake sync",
            "scopes": ["contacts:read", "contacts:write"],
            "expires_at": "2099-03-01",
            "allowed_domains": ["app.example.com"],
        }),
    )
    .await;
    (owner, created)
}

#[tokio::test]
async fn a_rolled_key_hands_over_its_settings_and_works_until_its_grace_ends() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let (old_id, old_secret) = (id_of(&created["api_key"]), created["secret"].as_str().unwrap().to_owned());

    let answer = roll(&client, &owner, &old_id, json!(2)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), "no-store");
    let (new, old) = (&answer.body["api_key"], &answer.body["replaces"]);
    let new_secret = answer.body["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("esq_") && new_secret != old_secret);
    for field in ["name", "scopes", "allowed_domains", "expires_at"] {
        assert_eq!(new[field], created["api_key"][field], "{field} is kept");
    }
    assert_eq!(new["created_by"]["id"].as_str(), Some(owner.member_id.as_str()));
    assert_eq!(new["replaces"].as_str(), Some(old_id.as_str()));
    assert_eq!((new["replaced_by"].clone(), new["grace_ends_at"].clone()), (Value::Null, Value::Null));
    assert_eq!(new["status"], "active");
    assert_eq!(old["id"].as_str(), Some(old_id.as_str()));
    assert_eq!(old["replaced_by"], new["id"]);
    assert_eq!(old["status"], "active");
    assert!(old["replaces"].is_null());
    let grace_ends_at: chrono::DateTime<chrono::Utc> = old["grace_ends_at"].as_str().unwrap().parse()?;

    // The new key works as soon as the response has returned; the old one still does.
    assert_eq!(current(&client, new_secret).await, (200, String::new()));
    assert_eq!(current(&client, &old_secret).await, (200, String::new()));
    let shown = client.get(&format!("/v1/api-keys/{old_id}"), &owner.token).await;
    assert_eq!(shown.body["grace_ends_at"], old["grace_ends_at"]);

    // From the grace end: refused as revoked, and shown so (before and after the sweeper).
    let refused = eventually("the old key refused", async || {
        let (status, code) = current(&client, &old_secret).await;
        (status != 200).then_some((status, code, chrono::Utc::now()))
    })
    .await;
    assert_eq!((refused.0, refused.1.as_str()), (401, "api_key_revoked"));
    assert!(refused.2 >= grace_ends_at, "refused at {} before the grace end {grace_ends_at}", refused.2);
    let shown = client.get(&format!("/v1/api-keys/{old_id}"), &owner.token).await;
    assert_eq!(shown.body["status"], "revoked");
    assert_eq!(shown.body["revocation_reason"], "rolled");
    assert_eq!(shown.body["revoked_at"], old["grace_ends_at"], "revoked at the grace end, exactly");
    assert!(shown.body["revoked_by"].is_null());
    assert_eq!(current(&client, new_secret).await, (200, String::new()));
    let revoked = client.get("/v1/api-keys?status=revoked", &owner.token).await;
    assert_eq!(revoked.body["data"].as_array().map(Vec::len), Some(1));
    app.stop().await
}

#[tokio::test]
async fn a_grace_of_zero_revokes_the_old_key_at_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let old_id = id_of(&created["api_key"]);
    let answer = roll(&client, &owner, &old_id, json!(0)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.body["replaces"]["status"], "revoked");
    assert_eq!(answer.body["replaces"]["revocation_reason"], "rolled");
    let old_secret = created["secret"].as_str().unwrap();
    assert_eq!(current(&client, old_secret).await, (401, "api_key_revoked".into()));
    assert_eq!(current(&client, answer.body["secret"].as_str().unwrap()).await, (200, String::new()));
    // A revoked key cannot be rolled again.
    let again = roll(&client, &owner, &old_id, json!(0)).await;
    again.assert_problem(409, "api_key_not_active");
    app.stop().await
}

#[tokio::test]
async fn the_grace_period_is_a_whole_number_of_seconds_up_to_7_days() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let id = id_of(&created["api_key"]);
    for bad in [json!(-1), json!(604_801), json!(1.5), json!("60"), Value::Null] {
        let answer = roll(&client, &owner, &id, bad.clone()).await;
        answer.assert_problem(422, "validation_failed");
        assert_eq!(answer.error_fields(), ["grace_period_seconds"], "{bad}");
    }
    let missing = client.post(&format!("/v1/api-keys/{id}/roll"), Some(&owner.token), &json!({})).await;
    missing.assert_problem(422, "validation_failed");
    // Nothing was rolled by any of them; the longest grace is accepted, written as JSON Schema
    // allows an integer to be written.
    let answer = roll(&client, &owner, &id, json!(604_800.0)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let (start, end): (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = (
        answer.body["api_key"]["created_at"].as_str().unwrap().parse()?,
        answer.body["replaces"]["grace_ends_at"].as_str().unwrap().parse()?,
    );
    assert_eq!(end - start, chrono::TimeDelta::days(7));
    app.stop().await
}

#[tokio::test]
async fn only_an_active_key_not_already_in_its_grace_period_can_be_rolled() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let id = id_of(&created["api_key"]);
    let first = roll(&client, &owner, &id, json!(3600)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    roll(&client, &owner, &id, json!(3600)).await.assert_problem(409, "api_key_already_rolled");
    // The successor can be rolled in its turn.
    let successor = id_of(&first.body["api_key"]);
    assert_eq!(roll(&client, &owner, &successor, json!(60)).await.status, 201);

    let other = create_key(&client, &owner, &json!({"name": "Other", "scopes": ["contacts:read"]})).await;
    let other_id = id_of(&other["api_key"]);
    let revoked = client.post(&format!("/v1/api-keys/{other_id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    roll(&client, &owner, &other_id, json!(60)).await.assert_problem(409, "api_key_not_active");
    roll(&client, &owner, &testkit::random_uuid(), json!(60)).await.assert_problem(404, "not_found");
    app.stop().await
}

#[tokio::test]
async fn the_roller_needs_the_api_keys_permission_and_every_scope_of_the_key() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let id = id_of(&created["api_key"]);
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    roll(&client, &staff, &id, json!(60)).await.assert_problem(403, "permission_denied");

    let granted = client
        .put("/v1/roles/staff/permissions", &owner.token, &json!({"permissions": ["api_keys", "contacts:read"]}))
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let refused = roll(&client, &staff, &id, json!(60)).await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.error_fields(), ["scopes"]);
    // Nothing changed: the key can still be rolled, and there is no second key.
    let keys = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(keys.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(keys.body["data"][0]["replaced_by"], Value::Null);
    app.stop().await
}

#[tokio::test]
async fn the_audit_log_tells_the_roll_the_new_key_and_the_end_of_the_grace() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, created) = owner_and_key(&client).await;
    let old_id = id_of(&created["api_key"]);
    let answer = roll(&client, &owner, &old_id, json!(1)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let new = &answer.body["api_key"];

    let rolled = client.get("/v1/audit-log?action=api_key.rolled", &owner.token).await;
    let entry = &rolled.body["data"][0];
    assert_eq!(entry["target"]["id"].as_str(), Some(old_id.as_str()));
    assert_eq!(entry["target"]["name"], "Intake sync");
    assert_eq!(entry["actor"]["id"].as_str(), Some(owner.member_id.as_str()));
    assert_eq!(entry["details"]["replaced_by"], new["id"]);
    assert_eq!(entry["details"]["replaced_by_preview"], new["preview"]);
    assert_eq!(entry["details"]["grace_ends_at"], answer.body["replaces"]["grace_ends_at"]);

    let created_entries = client.get("/v1/audit-log?action=api_key.created", &owner.token).await;
    let newest = &created_entries.body["data"][0];
    assert_eq!(newest["target"]["id"], new["id"]);
    assert_eq!(newest["details"]["replaces"].as_str(), Some(old_id.as_str()));
    assert_eq!(newest["actor"]["id"].as_str(), Some(owner.member_id.as_str()));

    let revoked = eventually("the end of the grace recorded", async || {
        let answer = client.get("/v1/audit-log?action=api_key.revoked", &owner.token).await;
        answer.body["data"].as_array().and_then(|entries| entries.first().cloned())
    })
    .await;
    assert_eq!(revoked["target"]["id"].as_str(), Some(old_id.as_str()));
    assert_eq!(revoked["actor"]["type"], "system");
    assert_eq!(revoked["details"], json!({"reason": "rolled"}));
    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.body["ok"], true, "{}", verified.text);
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_new_key_works_on_another_node_as_soon_as_the_roll_answers() -> anyhow::Result<()> {
    let first = TestApp::spawn().await?;
    let mut settings = first.settings.clone();
    settings.listen = "127.0.0.1:0".parse()?;
    let second = TestApp::spawn_with(settings).await?;
    let (a, b) = (Client::new(&first), Client::new(&second));
    let (owner, created) = owner_and_key(&a).await;
    let old_secret = created["secret"].as_str().unwrap().to_owned();
    // Both nodes hold the old key before the roll.
    eventually("node B knows the key", async || (current(&b, &old_secret).await.0 == 200).then_some(())).await;
    let answer = roll(&a, &owner, &id_of(&created["api_key"]), json!(0)).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let new_secret = answer.body["secret"].as_str().unwrap();
    assert_eq!(current(&b, new_secret).await, (200, String::new()), "the very next request on node B");
    assert_eq!(current(&b, &old_secret).await, (401, "api_key_revoked".into()));
    second.stop().await?;
    first.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_and_a_node_started_later_tell_the_rolls_the_same() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let (owner, stopped) = owner_and_key(&client).await;
    let in_grace = create_key(&client, &owner, &json!({"name": "Billing", "scopes": ["matters:read"]})).await;
    assert_eq!(roll(&client, &owner, &id_of(&stopped["api_key"]), json!(0)).await.status, 201);
    let rolled = roll(&client, &owner, &id_of(&in_grace["api_key"]), json!(3600)).await;
    assert_eq!(rolled.status, 201, "{}", rolled.text);
    eventually("the end of the first grace recorded", async || {
        let answer = client.get("/v1/audit-log?action=api_key.revoked", &owner.token).await;
        answer.body["data"].as_array().is_some_and(|entries| !entries.is_empty()).then_some(())
    })
    .await;

    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let rows = async || -> Vec<String> {
        sqlx::query_scalar("SELECT t::text FROM api_keys t ORDER BY id").fetch_all(&pool).await.expect("rows")
    };
    let before = rows().await;
    projections::rebuild::rebuild(&pool, "read_models").await?;
    assert_eq!(rows().await, before, "a rebuild changed the keys");

    // A node started now loads its verification state from the read models.
    let mut settings = app.settings.clone();
    settings.listen = "127.0.0.1:0".parse()?;
    let later = TestApp::spawn_with(settings).await?;
    let other = Client::new(&later);
    assert_eq!(current(&other, stopped["secret"].as_str().unwrap()).await, (401, "api_key_revoked".into()));
    let old = Client::answer(
        other
            .http
            .get(format!("{}/v1/api-keys/current", other.base_url))
            .bearer_auth(in_grace["secret"].as_str().unwrap()),
    )
    .await;
    assert_eq!(old.status, 200, "{}", old.text);
    assert_eq!(old.body["api_key"]["replaced_by"], rolled.body["api_key"]["id"]);
    assert_eq!(old.body["api_key"]["grace_ends_at"], rolled.body["replaces"]["grace_ends_at"]);
    let new = Client::answer(
        other
            .http
            .get(format!("{}/v1/api-keys/current", other.base_url))
            .bearer_auth(rolled.body["secret"].as_str().unwrap()),
    )
    .await;
    assert_eq!(new.body["api_key"]["replaces"], in_grace["api_key"]["id"]);
    later.stop().await?;
    app.stop().await
}
