//! The audit log over HTTP: every action with its actor and details, filters, pagination, who may
//! read it, tenancy, the hash chain (tampering detected by the API and the CLI), rebuilds that
//! give byte-identical rows, and streaming exports.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::{create_key, eventually, join, key_named, sign_up, Client, Signed, TestApp};

/// Every entry of the firm as `who` sees it, oldest first.
async fn log_of(client: &Client, who: &Signed) -> Vec<Value> {
    let answer = client.get("/v1/audit-log?limit=100", &who.token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.body["next_cursor"].is_null(), "more than 100 entries: {}", answer.text);
    let mut entries = answer.body["data"].as_array().cloned().unwrap_or_default();
    entries.reverse();
    entries
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["action"].as_str().unwrap_or("")).collect()
}

fn is_uuid(value: &Value) -> bool {
    value.as_str().is_some_and(|s| uuid::Uuid::try_parse(s).is_ok())
}

/// An entry with what changes from run to run replaced by placeholders.
fn redacted(entry: &Value) -> Value {
    let mut entry = entry.clone();
    for (field, placeholder) in
        [("id", "[id]"), ("occurred_at", "[time]"), ("hash", "[hash]"), ("previous_hash", "[hash]")]
    {
        entry[field] = json!(placeholder);
    }
    if !entry["actor"]["id"].is_null() {
        entry["actor"]["id"] = json!("[member id]");
    }
    if is_uuid(&entry["target"]["id"]) {
        entry["target"]["id"] = json!("[id]");
    }
    if entry["details"].get("preview").is_some() {
        entry["details"]["preview"] = json!("[preview]");
    }
    if entry["details"].get("expires_at").is_some_and(|t| !t.is_null()) {
        entry["details"]["expires_at"] = json!("[time]");
    }
    if entry["details"].get("email").is_some() {
        entry["details"]["email"] = json!("[email]");
    }
    entry
}

fn snapshot(entry: &Value, name: &str) {
    insta::assert_json_snapshot!(format!("entry_{name}"), redacted(entry));
}

/// Checks each entry's hash from its JSON alone and its link to the entry before.
fn assert_chain(entries: &[Value]) {
    let mut previous = projections::audit::GENESIS_HASH.to_owned();
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["sequence"], json!(i + 1), "sequence of {entry}");
        assert_eq!(entry["previous_hash"], json!(previous), "link of {entry}");
        let mut hashed = entry.clone();
        let object = hashed.as_object_mut().unwrap();
        object.remove("hash");
        object.remove("previous_hash");
        let hash = projections::audit::chain_hash(&previous, &projections::audit::canonical_json(&hashed));
        assert_eq!(entry["hash"], json!(hash), "hash of {entry}");
        previous = hash;
    }
}

#[tokio::test]
async fn each_action_is_recorded_with_its_actor_and_details() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@audit.test").await;
    let created = create_key(
        &client,
        &owner,
        &json!({
            "name": "Intake sync",
            "scopes": ["contacts:write", "contacts:read"],
            "expires_at": "2099-03-01",
            "allowed_domains": ["app.example.com"],
        }),
    )
    .await;
    let key_id = created["api_key"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();

    // A key at work makes Used events; they are not listed.
    let used = client.get("/v1/api-keys/current", &secret).await;
    assert_eq!(used.status, 200, "{}", used.text);

    let edited = client
        .put(
            &format!("/v1/api-keys/{key_id}/allowed-domains"),
            &owner.token,
            &json!({"allowed_domains": ["app.example.com", "*.example.com"]}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    // The edit's response has returned: the audit log already shows it (read your writes).
    let entries = log_of(&client, &owner).await;
    assert_eq!(entries.last().map(|e| e["action"].clone()), Some(json!("api_key.domains_updated")));

    let revoked = client.post(&format!("/v1/api-keys/{key_id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let grid = client
        .put("/v1/roles/attorney/permissions", &owner.token, &json!({"permissions": ["contacts:read", "audit_log"]}))
        .await;
    assert_eq!(grid.status, 200, "{}", grid.text);
    let adam = join(&client, &owner, "Adam Admin", "adam@audit.test", "administrator").await;
    let adams_key = create_key(&client, &adam, &key_named("Adam's sync")).await;
    let adams_key_id = adams_key["api_key"]["id"].as_str().unwrap().to_owned();
    let role = client.patch(&format!("/v1/members/{}", adam.member_id), &owner.token, &json!({"role": "staff"})).await;
    assert_eq!(role.status, 200, "{}", role.text);
    let removed = client.delete(&format!("/v1/members/{}", adam.member_id), &owner.token).await;
    assert_eq!(removed.status, 200, "{}", removed.text);

    // Once the Used event is flushed (every 200 ms in tests), the log still lists nothing for it.
    testkit::eventually("the key's use to be recorded", async || {
        let shown = client.get(&format!("/v1/api-keys/{key_id}"), &owner.token).await;
        (!shown.body["last_used_at"].is_null()).then_some(())
    })
    .await;

    let entries = log_of(&client, &owner).await;
    assert_eq!(
        actions(&entries),
        [
            "firm.created",
            "member.joined",
            "api_key.created",
            "api_key.domains_updated",
            "api_key.revoked",
            "role.permissions_changed",
            "member.invited",
            "member.joined",
            "api_key.created",
            "member.role_changed",
            "member.removed",
            "api_key.revoked",
        ]
    );
    assert_chain(&entries);
    let olivia = json!({"type": "member", "id": owner.member_id, "name": "Olivia Owner"});
    let adam_actor = json!({"type": "member", "id": adam.member_id, "name": "Adam Admin"});
    let key_target = json!({"type": "api_key", "id": key_id, "name": "Intake sync"});

    let firm = &entries[0];
    assert_eq!(firm["actor"], olivia);
    assert_eq!(firm["target"], json!({"type": "firm", "id": owner.firm_id, "name": "Acme Law"}));
    assert_eq!(firm["details"]["time_zone"], "America/New_York");
    snapshot(firm, "firm_created");

    let joined = &entries[1];
    assert_eq!(joined["actor"], olivia);
    assert_eq!(joined["target"], json!({"type": "member", "id": owner.member_id, "name": "Olivia Owner"}));
    assert_eq!(joined["details"]["via"], "signup");

    let key = &entries[2];
    assert_eq!(key["actor"], olivia);
    assert_eq!(key["target"], key_target);
    assert_eq!(
        key["details"],
        json!({
            "scopes": ["contacts:read", "contacts:write"],
            "expires_at": created["api_key"]["expires_at"],
            "allowed_domains": ["app.example.com"],
            "preview": created["api_key"]["preview"],
        })
    );
    snapshot(key, "api_key_created");

    // "Recorded in your firm's audit log as an update to the key."
    let domains = &entries[3];
    assert_eq!(domains["actor"], olivia);
    assert_eq!(domains["target"], key_target);
    assert_eq!(
        domains["details"],
        json!({"before": ["app.example.com"], "after": ["app.example.com", "*.example.com"]})
    );
    snapshot(domains, "api_key_domains_updated");

    let revoke = &entries[4];
    assert_eq!(revoke["actor"], olivia);
    assert_eq!(revoke["target"], key_target);
    assert_eq!(revoke["details"], json!({"reason": "revoked_by_member"}));
    snapshot(revoke, "api_key_revoked");

    let grid_change = &entries[5];
    assert_eq!(grid_change["actor"], olivia);
    assert_eq!(grid_change["target"], json!({"type": "role", "id": "attorney", "name": "attorney"}));
    assert_eq!(grid_change["details"]["after"], json!(["contacts:read", "audit_log"]));
    assert!(grid_change["details"]["before"].as_array().is_some_and(|b| b.contains(&json!("matters:write"))));
    snapshot(grid_change, "role_permissions_changed");

    let invited = &entries[6];
    assert_eq!(invited["actor"], olivia);
    assert_eq!(invited["target"], json!({"type": "member", "id": adam.member_id, "name": "Adam Admin"}));
    assert_eq!(invited["details"], json!({"email": "adam@audit.test", "role": "administrator"}));
    snapshot(invited, "member_invited");

    let accepted = &entries[7];
    assert_eq!(accepted["actor"], adam_actor);
    assert_eq!(accepted["details"], json!({"via": "invitation"}));
    snapshot(accepted, "member_joined");

    assert_eq!(entries[8]["actor"], adam_actor);
    assert_eq!(entries[8]["target"]["id"], json!(adams_key_id));

    let role_changed = &entries[9];
    assert_eq!(role_changed["actor"], olivia);
    assert_eq!(role_changed["target"]["name"], "Adam Admin");
    assert_eq!(role_changed["details"], json!({"before": "administrator", "after": "staff"}));
    snapshot(role_changed, "member_role_changed");

    let member_removed = &entries[10];
    assert_eq!(member_removed["actor"], olivia);
    assert_eq!(member_removed["target"]["id"], json!(adam.member_id));
    snapshot(member_removed, "member_removed");

    // The creator's removal revoked the key; the owner who removed them caused it.
    let cascade = &entries[11];
    assert_eq!(cascade["actor"], olivia);
    assert_eq!(cascade["target"], json!({"type": "api_key", "id": adams_key_id, "name": "Adam's sync"}));
    assert_eq!(cascade["details"], json!({"reason": "creator_removed"}));

    // No entry holds the secret, its random part or its hash.
    let text = serde_json::to_string(&entries)?;
    let hash = domain::ApiKeySecret::parse(&secret).expect("a well-formed secret").hash().to_hex();
    assert!(!text.contains(&secret) && !text.contains(&secret[4..36]), "a secret in the audit log");
    assert!(!text.contains(&hash) && !text.contains("key_hash"), "a key hash in the audit log");

    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.body, json!({"ok": true, "entries": 12}));
    app.stop().await
}

#[tokio::test]
async fn an_expiry_is_recorded_with_the_system_as_its_actor() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@expiry.test").await;
    let expires_at = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let expires_text = expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let created = create_key(
        &client,
        &owner,
        &json!({"name": "Short lived", "scopes": ["contacts:read"], "expires_at": expires_text}),
    )
    .await;
    let key_id = created["api_key"]["id"].as_str().unwrap().to_owned();
    // The expiry sweeper (every 500 ms in tests) records it soon after the instant passes.
    let expired = eventually("an api_key.expired entry", async || {
        let answer = client.get("/v1/audit-log?action=api_key.expired", &owner.token).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.body["data"].as_array().and_then(|d| d.first()).cloned()
    })
    .await;
    assert_eq!(expired["actor"], json!({"type": "system", "id": null, "name": null}));
    assert_eq!(expired["target"], json!({"type": "api_key", "id": key_id, "name": "Short lived"}));
    assert_eq!(expired["details"], json!({"expires_at": expires_text}));
    snapshot(&expired, "api_key_expired");
    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.body, json!({"ok": true, "entries": 4}));
    app.stop().await
}

#[tokio::test]
async fn filters_combine_and_bad_values_are_invalid_queries() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@filters.test").await;
    let adam = join(&client, &owner, "Adam Admin", "adam@filters.test", "administrator").await;
    let one = create_key(&client, &owner, &key_named("One")).await["api_key"]["id"].as_str().unwrap().to_owned();
    let two = create_key(&client, &adam, &key_named("Two")).await["api_key"]["id"].as_str().unwrap().to_owned();
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for id in [&one, &two] {
        let revoked = client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&adam.token), &json!({})).await;
        assert_eq!(revoked.status, 200, "{}", revoked.text);
    }
    let list = |query: String| {
        let client = client.clone();
        let token = owner.token.clone();
        async move {
            let answer = client.get(&format!("/v1/audit-log?{query}"), &token).await;
            assert_eq!(answer.status, 200, "{query}: {}", answer.text);
            answer.body["data"].as_array().cloned().unwrap_or_default()
        }
    };
    let about_one = list(format!("api_key_id={one}")).await;
    assert_eq!(actions(&about_one), ["api_key.revoked", "api_key.created"]);
    let by_adam = list(format!("actor_id={}", adam.member_id)).await;
    assert_eq!(actions(&by_adam), ["api_key.revoked", "api_key.revoked", "api_key.created", "member.joined"]);
    let adam_on_one = list(format!("actor_id={}&api_key_id={one}", adam.member_id)).await;
    assert_eq!(actions(&adam_on_one), ["api_key.revoked"]);
    let created_by_adam = list(format!("action=api_key.created&actor_id={}", adam.member_id)).await;
    assert_eq!(created_by_adam.len(), 1);
    assert_eq!(created_by_adam[0]["target"]["id"], json!(two));
    let since = domain::format_time(&middle);
    let after_middle = list(format!("since={since}")).await;
    assert_eq!(actions(&after_middle), ["api_key.revoked", "api_key.revoked"]);
    let before_middle = list(format!("until={since}&action=api_key.revoked")).await;
    assert!(before_middle.is_empty());
    let window = list(format!("since={since}&until=2999-01-01T00:00:00Z&api_key_id={two}")).await;
    assert_eq!(actions(&window), ["api_key.revoked"]);
    // A `+` in a time must be sent as %2B in a query string.
    let offset = list("since=2000-01-01T00:00:00%2B01:00&action=firm.created".into()).await;
    assert_eq!(offset.len(), 1);

    for bad in [
        "action=api_key.used",
        "action=",
        "api_key_id=not-a-uuid",
        "actor_id=42",
        "since=yesterday",
        "until=2026-11-27",
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "colour=blue",
        "action=api_key.created&action=api_key.revoked",
    ] {
        client.get(&format!("/v1/audit-log?{bad}"), &owner.token).await.assert_problem(400, "invalid_query");
    }
    app.stop().await
}

#[tokio::test]
async fn pages_go_newest_first_with_next_and_previous() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@pages.test").await;
    for i in 0..5 {
        create_key(&client, &owner, &key_named(&format!("Key {i}"))).await;
    }
    // 7 entries: firm.created, member.joined, 5 × api_key.created.
    let first = client.get("/v1/audit-log?limit=3", &owner.token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let sequences = |body: &Value| -> Vec<i64> {
        body["data"].as_array().unwrap().iter().map(|e| e["sequence"].as_i64().unwrap()).collect()
    };
    assert_eq!(sequences(&first.body), [7, 6, 5]);
    assert!(first.body["prev_cursor"].is_null());
    let next = first.body["next_cursor"].as_str().unwrap();
    let second = client.get(&format!("/v1/audit-log?limit=3&cursor={next}"), &owner.token).await;
    assert_eq!(sequences(&second.body), [4, 3, 2]);
    let next = second.body["next_cursor"].as_str().unwrap();
    let third = client.get(&format!("/v1/audit-log?limit=3&cursor={next}"), &owner.token).await;
    assert_eq!(sequences(&third.body), [1]);
    assert!(third.body["next_cursor"].is_null());
    let prev = third.body["prev_cursor"].as_str().unwrap();
    let back = client.get(&format!("/v1/audit-log?limit=3&cursor={prev}"), &owner.token).await;
    assert_eq!(sequences(&back.body), [4, 3, 2]);
    let prev = back.body["prev_cursor"].as_str().unwrap();
    let front = client.get(&format!("/v1/audit-log?limit=3&cursor={prev}"), &owner.token).await;
    assert_eq!(sequences(&front.body), [7, 6, 5]);
    assert!(front.body["prev_cursor"].is_null());

    // Filters and cursors together: only key creations, two at a time.
    let created = client.get("/v1/audit-log?limit=2&action=api_key.created", &owner.token).await;
    assert_eq!(sequences(&created.body), [7, 6]);
    let next = created.body["next_cursor"].as_str().unwrap();
    let more = client.get(&format!("/v1/audit-log?limit=2&action=api_key.created&cursor={next}"), &owner.token).await;
    assert_eq!(sequences(&more.body), [5, 4]);
    app.stop().await
}

#[tokio::test]
async fn only_roles_with_the_audit_log_permission_read_it() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@perm.test").await;
    let alice = join(&client, &owner, "Alice Attorney", "alice@perm.test", "attorney").await;
    let adam = join(&client, &owner, "Adam Admin", "adam@perm.test", "administrator").await;
    for path in ["/v1/audit-log", "/v1/audit-log/verify", "/v1/audit-log/export?format=csv"] {
        client.get(path, &alice.token).await.assert_problem(403, "permission_denied");
        assert_eq!(client.get(path, &adam.token).await.status, 200, "{path} as an administrator");
    }
    // Refused before the query is looked at.
    client.get("/v1/audit-log?limit=0", &alice.token).await.assert_problem(403, "permission_denied");
    let granted = client
        .put(
            "/v1/roles/attorney/permissions",
            &owner.token,
            &json!({"permissions": ["contacts:read", "matters:read", "audit_log"]}),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    let answer = client.get("/v1/audit-log", &alice.token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["data"][0]["action"], "role.permissions_changed");
    assert_eq!(client.get("/v1/audit-log/verify", &alice.token).await.status, 200);

    // An API key is not a member session; no credential at all is a 401.
    let key = create_key(&client, &owner, &key_named("Sync")).await;
    client.get("/v1/audit-log", key["secret"].as_str().unwrap()).await.assert_problem(403, "session_required");
    let anonymous = client.send(reqwest::Method::GET, "/v1/audit-log", None, None).await;
    assert_eq!(anonymous.status, 401);
    app.stop().await
}

#[tokio::test]
async fn another_firms_entries_are_never_visible() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let acme = sign_up(&client, "Acme Law", "olivia@acme-tenancy.test").await;
    let other = sign_up(&client, "Other Law", "oscar@other-tenancy.test").await;
    let acme_key =
        create_key(&client, &acme, &key_named("Acme sync")).await["api_key"]["id"].as_str().unwrap().to_owned();
    create_key(&client, &other, &key_named("Other sync")).await;

    let acme_entries = log_of(&client, &acme).await;
    let other_entries = log_of(&client, &other).await;
    assert_eq!(acme_entries.len(), 3);
    assert_eq!(other_entries.len(), 3);
    // Each firm's chain starts at 1 on its own.
    assert_chain(&acme_entries);
    assert_chain(&other_entries);
    assert!(other_entries.iter().all(|e| e["target"]["name"] != "Acme sync" && e["target"]["name"] != "Acme Law"));
    let filtered = client.get(&format!("/v1/audit-log?api_key_id={acme_key}"), &other.token).await;
    assert_eq!(filtered.body["data"], json!([]));
    let by_olivia = client.get(&format!("/v1/audit-log?actor_id={}", acme.member_id), &other.token).await;
    assert_eq!(by_olivia.body["data"], json!([]));
    // A cursor made from another firm's entry leads nowhere.
    let acme_page = client.get("/v1/audit-log?limit=1", &acme.token).await;
    let cursor = acme_page.body["next_cursor"].as_str().unwrap();
    let crossed = client.get(&format!("/v1/audit-log?cursor={cursor}"), &other.token).await;
    assert_eq!(crossed.status, 200);
    assert_eq!(crossed.body["data"], json!([]));
    let export = client.get("/v1/audit-log/export?format=jsonl", &other.token).await;
    assert!(!export.text.contains("Acme"), "{}", export.text);
    assert_eq!(client.get("/v1/audit-log/verify", &other.token).await.body, json!({"ok": true, "entries": 3}));
    app.stop().await
}

/// Runs `esqase audit verify --firm ID` against the app's database.
fn cli_verify(app: &TestApp, firm: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_esqase"))
        .args(["audit", "verify", "--firm", firm])
        .env("DATABASE_URL", &app.settings.database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the esqase binary runs")
}

#[tokio::test]
async fn tampering_with_an_entry_is_detected_and_named() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@tamper.test").await;
    let key = create_key(&client, &owner, &key_named("Sync")).await;
    let key_id = key["api_key"]["id"].as_str().unwrap();
    let revoked = client.post(&format!("/v1/api-keys/{key_id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200);
    create_key(&client, &owner, &key_named("Later")).await;
    let intact = cli_verify(&app, &owner.firm_id);
    assert!(intact.status.success(), "{intact:?}");
    assert_eq!(serde_json::from_slice::<Value>(&intact.stdout)?, json!({"ok": true, "entries": 5}));

    let entries = log_of(&client, &owner).await;
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    // Someone with database access rewrites why the key was revoked (entry 4).
    let changed = sqlx::query(
        "UPDATE audit_log SET details = '{\"reason\": \"creator_removed\"}'
         WHERE firm_id = $1::uuid AND sequence = 4",
    )
    .bind(&owner.firm_id)
    .execute(&pool)
    .await?;
    assert_eq!(changed.rows_affected(), 1);
    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.status, 200);
    assert_eq!(verified.body, json!({"ok": false, "entries": 5, "first_broken_sequence": 4}));
    let broken = cli_verify(&app, &owner.firm_id);
    assert!(!broken.status.success(), "the CLI exits non-zero on a broken chain");
    assert_eq!(
        serde_json::from_slice::<Value>(&broken.stdout)?,
        json!({"ok": false, "entries": 5, "first_broken_sequence": 4})
    );
    assert!(String::from_utf8_lossy(&broken.stderr).contains("broken at sequence 4"), "{broken:?}");

    // Re-hashing the edited entry does not hide it: the next entry no longer points at it.
    let mut edited = entries[3].clone();
    edited["details"] = json!({"reason": "creator_removed"});
    edited.as_object_mut().unwrap().remove("hash");
    edited.as_object_mut().unwrap().remove("previous_hash");
    let rehash = projections::audit::chain_hash(
        entries[3]["previous_hash"].as_str().unwrap(),
        &projections::audit::canonical_json(&edited),
    );
    sqlx::query("UPDATE audit_log SET hash = $2 WHERE firm_id = $1::uuid AND sequence = 4")
        .bind(&owner.firm_id)
        .bind(&rehash)
        .execute(&pool)
        .await?;
    let verified = client.get("/v1/audit-log/verify", &owner.token).await;
    assert_eq!(verified.body["first_broken_sequence"], 5);

    // A removed entry is named by its missing sequence.
    sqlx::query("UPDATE audit_log SET hash = $2 WHERE firm_id = $1::uuid AND sequence = 4")
        .bind(&owner.firm_id)
        .bind(entries[3]["hash"].as_str().unwrap())
        .execute(&pool)
        .await?;
    sqlx::query("UPDATE audit_log SET details = $2 WHERE firm_id = $1::uuid AND sequence = 4")
        .bind(&owner.firm_id)
        .bind(&entries[3]["details"])
        .execute(&pool)
        .await?;
    assert_eq!(client.get("/v1/audit-log/verify", &owner.token).await.body, json!({"ok": true, "entries": 5}));
    sqlx::query("DELETE FROM audit_log WHERE firm_id = $1::uuid AND sequence = 2")
        .bind(&owner.firm_id)
        .execute(&pool)
        .await?;
    assert_eq!(
        client.get("/v1/audit-log/verify", &owner.token).await.body,
        json!({"ok": false, "entries": 4, "first_broken_sequence": 2})
    );

    // A log whose newest entries were deleted still hashes as a chain; its head, kept apart
    // from the entries, names the first one missing, and the export says where it should end.
    projections::rebuild::rebuild(&pool, "audit_log").await?;
    sqlx::query("DELETE FROM audit_log WHERE firm_id = $1::uuid AND sequence >= 4")
        .bind(&owner.firm_id)
        .execute(&pool)
        .await?;
    assert_eq!(
        client.get("/v1/audit-log/verify", &owner.token).await.body,
        json!({"ok": false, "entries": 3, "first_broken_sequence": 4})
    );
    let truncated = cli_verify(&app, &owner.firm_id);
    assert!(String::from_utf8_lossy(&truncated.stderr).contains("broken at sequence 4"), "{truncated:?}");
    let export = client.get("/v1/audit-log/export?format=jsonl", &owner.token).await;
    assert_eq!(export.text.lines().count(), 3);
    assert_eq!(
        export.header("esqase-audit-chain-head"),
        format!("sequence=5; hash={}", entries[4]["hash"].as_str().unwrap())
    );

    // A rebuild from the log restores the chain exactly.
    projections::rebuild::rebuild(&pool, "audit_log").await?;
    assert_eq!(client.get("/v1/audit-log/verify", &owner.token).await.body, json!({"ok": true, "entries": 5}));
    assert_eq!(log_of(&client, &owner).await, entries);
    pool.close().await;
    app.stop().await
}

async fn all_rows(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT row_to_json(a)::text FROM audit_log a ORDER BY firm_id, sequence")
        .fetch_all(pool)
        .await?)
}

#[tokio::test]
async fn rebuilding_from_the_log_gives_byte_identical_rows() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let acme = sign_up(&client, "Acme Law", "olivia@rebuild.test").await;
    let other = sign_up(&client, "Other Law", "oscar@rebuild.test").await;
    let adam = join(&client, &acme, "Adam Admin", "adam@rebuild.test", "administrator").await;
    // Commands of two firms, interleaved and concurrent.
    let mut work = Vec::new();
    for i in 0..6 {
        for who in [&acme, &other, &adam] {
            let client = client.clone();
            let who = who.clone();
            work.push(tokio::spawn(async move { create_key(&client, &who, &key_named(&format!("Key {i}"))).await }));
        }
    }
    let mut keys = Vec::new();
    for handle in work {
        keys.push(handle.await?["api_key"]["id"].as_str().unwrap().to_owned());
    }
    for id in keys.iter().step_by(3) {
        let edited = client
            .put(&format!("/v1/api-keys/{id}/allowed-domains"), &acme.token, &json!({"allowed_domains": ["x.test"]}))
            .await;
        assert_eq!(edited.status, 200, "{}", edited.text);
    }
    let removed = client.delete(&format!("/v1/members/{}", adam.member_id), &acme.token).await;
    assert_eq!(removed.status, 200);

    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let before = all_rows(&pool).await?;
    assert!(before.len() > 30, "{} rows", before.len());
    let replayed = projections::rebuild::rebuild(&pool, "audit_log").await?;
    assert!(replayed as usize >= before.len());
    let after = all_rows(&pool).await?;
    assert_eq!(before, after, "a rebuild changed the audit log");
    // Rebuilding the other read models leaves the audit log untouched too.
    projections::rebuild::rebuild(&pool, "read_models").await?;
    assert_eq!(all_rows(&pool).await?, before);
    for firm in [&acme, &other] {
        assert_eq!(client.get("/v1/audit-log/verify", &firm.token).await.body["ok"], true);
    }
    pool.close().await;
    app.stop().await
}

#[tokio::test]
async fn exports_stream_the_filtered_log_as_csv_and_json_lines() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@export.test").await;
    let tricky = create_key(&client, &owner, &key_named("Sync, \"main\"")).await;
    let tricky_id = tricky["api_key"]["id"].as_str().unwrap().to_owned();
    create_key(&client, &owner, &key_named("Plain")).await;
    let revoked = client.post(&format!("/v1/api-keys/{tricky_id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200);

    let jsonl = client.get("/v1/audit-log/export?format=jsonl", &owner.token).await;
    assert_eq!(jsonl.status, 200, "{}", jsonl.text);
    assert_eq!(jsonl.header("content-type"), "application/x-ndjson");
    assert!(jsonl.header("content-disposition").starts_with("attachment"));
    let lines: Vec<Value> = jsonl.text.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    // Oldest first, the same entries the list shows, and verifiable from the file alone.
    assert_eq!(lines, log_of(&client, &owner).await);
    assert_chain(&lines);

    let csv = client.get(&format!("/v1/audit-log/export?format=csv&api_key_id={tricky_id}"), &owner.token).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header("content-type").starts_with("text/csv"), "{}", csv.header("content-type"));
    let mut rows = csv.text.split("\r\n");
    assert_eq!(
        rows.next(),
        Some(
            "id,sequence,occurred_at,action,actor_type,actor_id,actor_name,target_type,target_id,target_name,\
             details,hash,previous_hash"
        )
    );
    let rows: Vec<&str> = rows.filter(|r| !r.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{}", csv.text);
    assert!(rows[0].contains(",api_key.created,"), "{}", rows[0]);
    assert!(rows[0].contains(",\"Sync, \"\"main\"\"\","), "{}", rows[0]);
    assert!(
        rows[1].contains(",api_key.revoked,") && rows[1].contains("\"{\"\"reason\"\":\"\"revoked_by_member\"\"}\"")
    );

    // A name a spreadsheet would run as a formula is neutralised in the CSV, kept exact in JSON lines.
    let formula = create_key(&client, &owner, &key_named("=HYPERLINK(\"https://evil.test\")")).await;
    let formula_id = formula["api_key"]["id"].as_str().unwrap().to_owned();
    let csv = client.get(&format!("/v1/audit-log/export?format=csv&api_key_id={formula_id}"), &owner.token).await;
    assert!(csv.text.contains(",\"'=HYPERLINK(\"\"https://evil.test\"\")\","), "{}", csv.text);
    let jsonl = client.get(&format!("/v1/audit-log/export?format=jsonl&api_key_id={formula_id}"), &owner.token).await;
    let exact: Value = serde_json::from_str(jsonl.text.trim())?;
    assert_eq!(exact["target"]["name"], "=HYPERLINK(\"https://evil.test\")");

    let filtered = client
        .get("/v1/audit-log/export?format=jsonl&action=api_key.created&since=2000-01-01T00:00:00Z", &owner.token)
        .await;
    assert_eq!(filtered.text.lines().count(), 3);

    for bad in ["", "?format=xml", "?format=csv&action=nope", "?format=csv&since=today", "?format=csv&limit=5"] {
        client.get(&format!("/v1/audit-log/export{bad}"), &owner.token).await.assert_problem(400, "invalid_query");
    }
    app.stop().await
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_export_of_100k_entries_streams_in_little_memory() -> anyhow::Result<()> {
    // The real binary in its own process, so its memory is its own.
    let settings = testkit::isolated_settings();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_esqase"))
        .arg("serve")
        .env("DATABASE_URL", &settings.database_url)
        .env("NATS_URL", &settings.nats_url)
        .env("ESQASE_NATS_PREFIX", &settings.nats_prefix)
        .env("ESQASE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let pid = server.id().unwrap_or_default();
    let base_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(format!("{base_url}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = Client { base_url: base_url.clone(), http: http.clone() };
    let owner = sign_up(&client, "Big Law", "olivia@big.test").await;
    let pool = sqlx::PgPool::connect(&settings.database_url).await?;
    // Cheap filler: 100k entries past the real ones (their hashes are not a chain; export does
    // not check them).
    sqlx::query(
        "INSERT INTO audit_log (firm_id, sequence, id, occurred_at, action, actor_type, actor_id, actor_name,
                                target_type, target_id, target_name, details, previous_hash, hash)
         SELECT $1::uuid, 2 + n, gen_random_uuid(), now(), 'api_key.domains_updated', 'member', $2::uuid,
                'Olivia Owner', 'api_key', gen_random_uuid()::text, 'Filler key',
                jsonb_build_object('before', jsonb_build_array('a.example.com'),
                                   'after', jsonb_build_array('a.example.com', 'b.example.com')),
                repeat('0', 64), repeat('f', 64)
         FROM generate_series(1, 100000) AS n",
    )
    .bind(&owner.firm_id)
    .bind(&owner.member_id)
    .execute(&pool)
    .await?;
    let warm = http.get(format!("{base_url}/v1/audit-log?limit=100")).bearer_auth(&owner.token).send().await?;
    assert_eq!(warm.status(), 200);
    let before = rss_kib(pid);
    let response =
        http.get(format!("{base_url}/v1/audit-log/export?format=jsonl")).bearer_auth(&owner.token).send().await?;
    assert_eq!(response.status(), 200);
    let mut response = response;
    let (mut lines, mut bytes, mut peak) = (0usize, 0usize, before);
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len();
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        peak = peak.max(rss_kib(pid));
    }
    assert_eq!(lines, 100_002);
    let growth_mib = peak.saturating_sub(before) / 1024;
    let body_mib = bytes / (1024 * 1024);
    assert!(
        growth_mib < 32 && growth_mib * 2 < body_mib as u64,
        "the server grew by {growth_mib} MiB while exporting {body_mib} MiB"
    );
    pool.close().await;
    server.kill().await?;
    commands::db::drop_database(&settings.database_url).await?;
    if let Ok(nats) = async_nats::connect(&settings.nats_url).await {
        let names = commands::nats::NatsNames::new(&settings.nats_prefix)?;
        let js = async_nats::jetstream::new(nats);
        let _ = commands::nats::delete_all(&js, &names).await;
    }
    Ok(())
}
