//! The API keys page over HTTP: create and show once, list, get, edit allowed domains, revoke;
//! and that the secret is nowhere but the create response.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use testkit::{create_key, join, key_named, sign_up, Answer, Client, Signed, TestApp};

const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `^esq_[0-9A-Za-z]{38}$`.
fn is_secret_shaped(secret: &str) -> bool {
    secret.strip_prefix("esq_").is_some_and(|rest| rest.len() == 38 && rest.chars().all(|c| BASE62.contains(c)))
}

fn key_id(created: &Value) -> String {
    created["api_key"]["id"].as_str().unwrap().to_owned()
}

async fn owner_of_new_firm(client: &Client) -> Signed {
    sign_up(client, "Acme Law", "olivia@acme.test").await
}

#[tokio::test]
async fn creating_a_key_shows_its_secret_once_with_no_store() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let answer = client
        .post(
            "/v1/api-keys",
            Some(&owner.token),
            &json!({
                "name": "  Intake sync  ",
                "scopes": ["contacts:write", "contacts:read", "contacts:write"],
                "expires_at": "2099-03-01",
                "allowed_domains": ["app.example.com", "*.example.com"],
            }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("content-type"), "application/json");
    let secret = answer.body["secret"].as_str().unwrap();
    assert!(is_secret_shaped(secret), "secret {secret:?} is not esq_ + 38 base62 characters");
    let preview = answer.body["api_key"]["preview"].as_str().unwrap();
    assert_eq!(preview, format!("esq_{}\u{2026}{}", &secret[4..10], &secret[secret.len() - 4..]));
    assert_eq!(answer.body["api_key"]["created_by"]["id"].as_str(), Some(owner.member_id.as_str()));
    insta::assert_json_snapshot!(answer.body, {
        ".api_key.id" => "[id]",
        ".api_key.preview" => "[preview]",
        ".api_key.created_at" => "[time]",
        ".api_key.created_by.id" => "[id]",
        ".secret" => "[secret]",
    });

    // Reading it back never shows the secret.
    let shown = client.get(&format!("/v1/api-keys/{}", key_id(&answer.body)), &owner.token).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body, answer.body["api_key"]);
    assert!(!shown.text.contains(secret));
    let listed = client.get("/v1/api-keys", &owner.token).await;
    assert!(!listed.text.contains(secret));
    assert_eq!(listed.body["data"][0], answer.body["api_key"]);
    app.stop().await
}

#[tokio::test]
async fn create_lists_every_invalid_field_in_one_422() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let answer = client
        .post(
            "/v1/api-keys",
            Some(&owner.token),
            &json!({
                "scopes": ["contacts:read", "teleport:write"],
                "expires_at": "2020-01-01",
                "allowed_domains": [
                    "https://app.example.com",
                    "app.example.com/callback",
                    "app.example.com:8443",
                    "*",
                    "a.*.example.com",
                ],
            }),
        )
        .await;
    answer.assert_problem(422, "validation_failed");
    assert_eq!(
        answer.error_fields(),
        [
            "name",
            "scopes",
            "expires_at",
            "allowed_domains",
            "allowed_domains",
            "allowed_domains",
            "allowed_domains",
            "allowed_domains"
        ]
    );
    insta::assert_json_snapshot!("every_field", answer.body);

    let empty = client.post("/v1/api-keys", Some(&owner.token), &json!({"name": " \t ", "scopes": []})).await;
    empty.assert_problem(422, "validation_failed");
    assert_eq!(empty.error_fields(), ["name", "scopes"]);
    insta::assert_json_snapshot!("blank_name_and_no_scopes", empty.body);

    let listed = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(listed.body["data"], json!([]), "nothing was created");
    app.stop().await
}

#[tokio::test]
async fn a_member_without_api_keys_is_refused_on_every_key_route() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let attorney = join(&client, &owner, "Ann Attorney", "ann@acme.test", "attorney").await;
    let key = key_id(&create_key(&client, &owner, &key_named("Owner's")).await);
    let routes = [
        (Method::GET, "/v1/api-keys".to_owned(), None),
        (Method::GET, "/v1/api-keys?status=active".to_owned(), None),
        (Method::POST, "/v1/api-keys".to_owned(), Some(key_named("Attorney's"))),
        (Method::GET, format!("/v1/api-keys/{key}"), None),
        (Method::PUT, format!("/v1/api-keys/{key}/allowed-domains"), Some(json!({"allowed_domains": ["x.test"]}))),
        (Method::POST, format!("/v1/api-keys/{key}/revoke"), None),
    ];
    for (method, path, body) in routes {
        let answer = client.send(method.clone(), &path, Some(&attorney.token), body.as_ref()).await;
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.text);
        answer.assert_problem(403, "permission_denied");
    }
    // Refused before anything else in the request is judged: a bad query, a body that is not
    // JSON, or JSON of the wrong shape is still the same 403.
    let base = &client.base_url;
    let attempts = [
        client.http.get(format!("{base}/v1/api-keys?limit=0")),
        client.http.get(format!("{base}/v1/api-keys?colour=blue")),
        client.http.post(format!("{base}/v1/api-keys")).header("content-type", "text/plain").body("hello"),
        client.http.post(format!("{base}/v1/api-keys")).header("content-type", "application/json").body("{not json"),
        client.http.post(format!("{base}/v1/api-keys")).json(&json!({"name": 7, "surprise": true})),
        client.http.put(format!("{base}/v1/api-keys/not-a-uuid/allowed-domains")).json(&json!({})),
        client.http.get(format!("{base}/v1/api-keys/not-a-uuid")),
    ];
    for attempt in attempts {
        let answer = Client::answer(attempt.bearer_auth(&attorney.token)).await;
        answer.assert_problem(403, "permission_denied");
    }
    let key = client.get(&format!("/v1/api-keys/{key}"), &owner.token).await;
    assert_eq!((key.body["status"].as_str(), &key.body["allowed_domains"]), (Some("active"), &json!([])));
    let listed = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "the attorney created nothing");
    app.stop().await
}

#[tokio::test]
async fn a_key_cannot_have_a_scope_its_creators_role_lacks() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    let grid = client.get("/v1/roles", &owner.token).await;
    let mut permissions = grid.body["roles"][3]["permissions"].as_array().unwrap().clone();
    permissions.push(json!("api_keys"));
    let granted = client.put("/v1/roles/staff/permissions", &owner.token, &json!({ "permissions": permissions })).await;
    assert_eq!(granted.status, 200, "{}", granted.text);

    let beyond = client
        .post(
            "/v1/api-keys",
            Some(&staff.token),
            &json!({"name": "Too much", "scopes": ["contacts:read", "matters:write"]}),
        )
        .await;
    beyond.assert_problem(422, "validation_failed");
    assert_eq!(beyond.error_fields(), ["scopes"]);
    insta::assert_json_snapshot!(beyond.body);

    let within = client
        .post(
            "/v1/api-keys",
            Some(&staff.token),
            &json!({"name": "Just right", "scopes": ["contacts:read", "matters:read"]}),
        )
        .await;
    assert_eq!(within.status, 201, "{}", within.text);
    assert_eq!(within.body["api_key"]["created_by"]["id"].as_str(), Some(staff.member_id.as_str()));
    app.stop().await
}

fn names(page: &Answer) -> Vec<String> {
    page.body["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap().to_owned()).collect()
}

fn cursor(page: &Answer, which: &str) -> Option<String> {
    page.body[which].as_str().map(str::to_owned)
}

#[tokio::test]
async fn the_keys_list_pages_newest_first_in_both_directions() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    for n in 1..=5 {
        create_key(&client, &owner, &key_named(&format!("key {n}"))).await;
    }
    let first = client.get("/v1/api-keys?limit=2", &owner.token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(names(&first), ["key 5", "key 4"]);
    assert_eq!(cursor(&first, "prev_cursor"), None);
    insta::assert_json_snapshot!("first_page", first.body, {
        ".data[].id" => "[id]",
        ".data[].preview" => "[preview]",
        ".data[].created_at" => "[time]",
        ".data[].created_by.id" => "[id]",
        ".next_cursor" => "[cursor]",
    });

    let next = cursor(&first, "next_cursor").expect("a next cursor on the first page");
    let second = client.get(&format!("/v1/api-keys?limit=2&cursor={next}"), &owner.token).await;
    assert_eq!(names(&second), ["key 3", "key 2"]);
    let next = cursor(&second, "next_cursor").expect("a next cursor on the second page");
    let third = client.get(&format!("/v1/api-keys?limit=2&cursor={next}"), &owner.token).await;
    assert_eq!(names(&third), ["key 1"]);
    assert_eq!(cursor(&third, "next_cursor"), None, "the last page has no next");

    let prev = cursor(&third, "prev_cursor").expect("a previous cursor on the last page");
    let back = client.get(&format!("/v1/api-keys?limit=2&cursor={prev}"), &owner.token).await;
    assert_eq!(names(&back), ["key 3", "key 2"], "previous shows the page before, newest first");
    assert!(cursor(&back, "next_cursor").is_some());
    let prev = cursor(&back, "prev_cursor").expect("a previous cursor on the middle page");
    let front = client.get(&format!("/v1/api-keys?limit=2&cursor={prev}"), &owner.token).await;
    assert_eq!(names(&front), ["key 5", "key 4"]);
    assert_eq!(cursor(&front, "prev_cursor"), None, "the first page has no previous");
    assert!(cursor(&front, "next_cursor").is_some());

    let all = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(names(&all), ["key 5", "key 4", "key 3", "key 2", "key 1"]);
    assert_eq!((cursor(&all, "next_cursor"), cursor(&all, "prev_cursor")), (None, None));

    for bad in ["limit=0", "limit=101", "limit=ten", "cursor=garbage", "cursor=", "limit=2&limit=3"] {
        let answer = client.get(&format!("/v1/api-keys?{bad}"), &owner.token).await;
        answer.assert_problem(400, "invalid_query");
    }
    let answer = client.get("/v1/api-keys?cursor=garbage", &owner.token).await;
    insta::assert_json_snapshot!("bad_cursor", answer.body);
    app.stop().await
}

#[tokio::test]
async fn the_keys_list_filters_by_status() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    // Long enough for the checks before it passes, even on a busy machine.
    let expiry = chrono::Utc::now() + chrono::TimeDelta::seconds(4);
    let soon = expiry.to_rfc3339();
    create_key(&client, &owner, &json!({"name": "expiring", "scopes": ["contacts:read"], "expires_at": soon})).await;
    let revoked = key_id(&create_key(&client, &owner, &key_named("revoked")).await);
    create_key(&client, &owner, &key_named("active")).await;
    let answer = client.post(&format!("/v1/api-keys/{revoked}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(names(&client.get("/v1/api-keys?status=active", &owner.token).await), ["active", "expiring"]);

    let left = (expiry - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(200)).await;
    for (status, expected) in [("active", "active"), ("revoked", "revoked"), ("expired", "expiring")] {
        let page = client.get(&format!("/v1/api-keys?status={status}"), &owner.token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        assert_eq!(names(&page), [expected], "?status={status}");
        assert_eq!(page.body["data"][0]["status"], status);
    }
    let all = client.get("/v1/api-keys", &owner.token).await;
    let statuses: Vec<&str> =
        all.body["data"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["active", "revoked", "expired"]);

    let bad = client.get("/v1/api-keys?status=paused", &owner.token).await;
    bad.assert_problem(400, "invalid_query");
    insta::assert_json_snapshot!("bad_status", bad.body);
    client.get("/v1/api-keys?colour=red", &owner.token).await.assert_problem(400, "invalid_query");
    app.stop().await
}

#[tokio::test]
async fn allowed_domains_from_a_textarea_are_normalised() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let key = key_id(&create_key(&client, &owner, &key_named("Web form")).await);
    let path = format!("/v1/api-keys/{key}/allowed-domains");
    let edited = client
        .put(&path, &owner.token, &json!({"allowed_domains": ["App.Example.com.\n*.example.com, app.example.com"]}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["allowed_domains"], json!(["app.example.com", "*.example.com"]));
    assert_eq!(edited.body["scopes"], json!(["contacts:read"]), "scopes never change");
    let shown = client.get(&format!("/v1/api-keys/{key}"), &owner.token).await;
    assert_eq!(shown.body, edited.body);

    let bad =
        client.put(&path, &owner.token, &json!({"allowed_domains": ["ok.example.com", "https://x.example.com"]})).await;
    bad.assert_problem(422, "validation_failed");
    assert_eq!(bad.error_fields(), ["allowed_domains"]);
    let missing = client.put(&path, &owner.token, &json!({})).await;
    missing.assert_problem(422, "validation_failed");
    let unchanged = client.get(&format!("/v1/api-keys/{key}"), &owner.token).await;
    assert_eq!(unchanged.body["allowed_domains"], json!(["app.example.com", "*.example.com"]));

    let any = client.put(&path, &owner.token, &json!({"allowed_domains": []})).await;
    assert_eq!(any.status, 200, "{}", any.text);
    assert_eq!(any.body["allowed_domains"], json!([]));
    app.stop().await
}

#[tokio::test]
async fn a_revoked_key_cannot_be_edited_or_revoked_again() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let key = key_id(&create_key(&client, &owner, &key_named("Old sync")).await);
    let revoked = client.post(&format!("/v1/api-keys/{key}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    assert_eq!(revoked.body["status"], "revoked");
    assert!(revoked.body["revoked_at"].is_string());
    assert_eq!(revoked.body["revoked_by"], json!({"id": owner.member_id, "name": "Olivia Owner"}));

    let edit = client
        .put(&format!("/v1/api-keys/{key}/allowed-domains"), &owner.token, &json!({"allowed_domains": ["a.test"]}))
        .await;
    edit.assert_problem(409, "api_key_not_active");
    insta::assert_json_snapshot!("edit_revoked", edit.body);
    let again = client.post(&format!("/v1/api-keys/{key}/revoke"), Some(&owner.token), &json!({})).await;
    again.assert_problem(409, "api_key_not_active");
    let shown = client.get(&format!("/v1/api-keys/{key}"), &owner.token).await;
    assert_eq!(shown.body, revoked.body, "nothing changed");
    app.stop().await
}

#[tokio::test]
async fn fifty_concurrent_revokes_give_one_200_and_forty_nine_409s() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let key = key_id(&create_key(&client, &owner, &key_named("Contested")).await);
    let path = format!("/v1/api-keys/{key}/revoke");
    let empty = json!({});
    let answers = join_all((0..50).map(|_| client.post(&path, Some(&owner.token), &empty))).await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let not_active = answers.iter().filter(|a| a.status == 409 && a.code() == "api_key_not_active").count();
    let others: Vec<String> = answers
        .iter()
        .filter(|a| a.status != 200 && a.code() != "api_key_not_active")
        .map(|a| a.text.clone())
        .collect();
    assert_eq!((ok, not_active), (1, 49), "unexpected answers: {others:?}");

    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let revocations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE stream_id = $1::uuid AND event_type = 'ApiKeyRevoked'")
            .bind(&key)
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    assert_eq!(revocations, 1);
    app.stop().await
}

#[tokio::test]
async fn concurrent_domain_edits_are_each_applied_or_refused_never_lost() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let key = key_id(&create_key(&client, &owner, &key_named("Busy")).await);
    let path = format!("/v1/api-keys/{key}/allowed-domains");
    let lists: Vec<Value> =
        (0..20).map(|n| json!([format!("d{n}.example.com"), format!("*.e{n}.example.com")])).collect();
    let bodies: Vec<Value> = lists.iter().map(|list| json!({ "allowed_domains": list })).collect();
    let answers = join_all(bodies.iter().map(|body| client.put(&path, &owner.token, body))).await;
    let mut applied = Vec::new();
    for (list, answer) in lists.iter().zip(&answers) {
        match answer.status {
            200 => applied.push(list.clone()),
            409 => {}
            _ => panic!("an edit answered neither 200 nor 409: {}", answer.text),
        }
    }
    assert!(!applied.is_empty(), "at least one edit applies");
    let shown = client.get(&format!("/v1/api-keys/{key}"), &owner.token).await;
    assert!(applied.contains(&shown.body["allowed_domains"]), "final {} is none of the applied lists", shown.body);

    // Every 200 is a DomainsUpdated event in the log: none was lost silently.
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let changes: Vec<(Value, Value)> = sqlx::query_as(
        "SELECT payload->'before', payload->'after' FROM events
         WHERE stream_id = $1::uuid AND event_type = 'ApiKeyDomainsUpdated' ORDER BY version",
    )
    .bind(&key)
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    assert_eq!(changes.len(), applied.len(), "one event per 200");
    let mut current = json!([]);
    for (before, after) in &changes {
        assert_eq!(before, &current, "each edit applied on the latest version");
        assert!(applied.contains(after));
        current = after.clone();
    }
    assert_eq!(current, shown.body["allowed_domains"], "the latest event is the final state");
    app.stop().await
}

/// An in-memory log sink shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every row of every table of the public schema, as text.
async fn every_row(pool: &sqlx::PgPool) -> anyhow::Result<Vec<(String, String)>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT table_name::text FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    assert!(tables.iter().any(|t| t == "events") && tables.iter().any(|t| t == "api_keys"), "tables: {tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let texts: Vec<String> =
            sqlx::query_scalar(&format!(r#"SELECT t::text FROM public."{table}" t"#)).fetch_all(pool).await?;
        rows.extend(texts.into_iter().map(|text| (table.clone(), text)));
    }
    Ok(rows)
}

/// Every message of the deployment's JetStream stream (subject, headers and payload), as text,
/// once the relay has published every event of the log.
async fn every_message(app: &TestApp, events: i64) -> anyhow::Result<Vec<String>> {
    let client = async_nats::connect(&app.settings.nats_url).await?;
    let jetstream = async_nats::jetstream::new(client);
    let name = format!("{}_events", app.settings.nats_prefix);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut stream = loop {
        if let Ok(mut stream) = jetstream.get_stream(&name).await {
            let info = stream.info().await?;
            if i64::try_from(info.state.messages)? >= events {
                break stream;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the relay did not publish all {events} events in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let state = stream.info().await?.state.clone();
    let mut messages = Vec::new();
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream.get_raw_message(sequence).await?;
        messages.push(format!(
            "{} {:?} {}",
            message.subject,
            message.headers,
            String::from_utf8_lossy(&message.payload)
        ));
    }
    Ok(messages)
}

#[tokio::test(flavor = "current_thread")]
async fn the_secret_is_in_no_table_no_stream_message_and_no_log_line() -> anyhow::Result<()> {
    // The service runs on this one thread, so a thread-local subscriber sees all its logs.
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,hyper=debug,hyper_util=debug,reqwest=debug,h2=debug",
        ))
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary may have registered the service's log call sites while no
    // subscriber was listening, caching "never"; have every call site ask again.
    tracing::callsite::rebuild_interest_cache();

    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let bodies = [
        json!({"name": "Intake sync", "scopes": ["contacts:write"], "allowed_domains": ["app.example.com"]}),
        json!({"name": "Reporting", "scopes": ["matters:read", "leads:read"], "expires_at": "2099-01-01"}),
        json!({"name": "To revoke", "scopes": ["contacts:read"]}),
    ];
    let mut secrets = Vec::new();
    let mut previews = Vec::new();
    for body in &bodies {
        let created = create_key(&client, &owner, body).await;
        secrets.push(created["secret"].as_str().unwrap().to_owned());
        previews.push(created["api_key"]["preview"].as_str().unwrap().to_owned());
        let id = key_id(&created);
        let edit = client
            .put(&format!("/v1/api-keys/{id}/allowed-domains"), &owner.token, &json!({"allowed_domains": ["b.test"]}))
            .await;
        assert_eq!(edit.status, 200, "{}", edit.text);
    }
    let last = client.get("/v1/api-keys?limit=1", &owner.token).await;
    let id = last.body["data"][0]["id"].as_str().unwrap();
    assert_eq!(client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await.status, 200);
    // The service is also shown each secret as a bearer token (on a member route, refused).
    for secret in &secrets {
        let answer = client.get("/v1/members", secret).await;
        assert!(answer.status == 401 || answer.status == 403, "{}", answer.text);
        assert!(!answer.text.contains(secret.as_str()));
    }
    let listed = client.get("/v1/api-keys", &owner.token).await;

    let needles: Vec<(&str, String)> = secrets
        .iter()
        .flat_map(|secret| [("secret", secret.clone()), ("random part", secret[4..36].to_owned())])
        .collect();
    let found =
        |haystack: &str| needles.iter().find(|(_, needle)| haystack.contains(needle.as_str())).map(|(what, _)| *what);

    assert_eq!(found(&listed.text), None, "the keys list shows a secret");

    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let rows = every_row(&pool).await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await?;
    pool.close().await;
    assert!(rows.iter().any(|(table, _)| table == "api_keys"), "the keys table was searched");
    for (table, row) in &rows {
        assert_eq!(found(row), None, "table {table} holds a secret: {row}");
    }
    assert!(rows.iter().any(|(_, row)| row.contains(&previews[0])), "the preview is stored, so the search works");

    let messages = every_message(&app, events).await?;
    assert_eq!(i64::try_from(messages.len())?, events);
    for message in &messages {
        assert_eq!(found(message), None, "a JetStream message holds a secret: {message}");
    }

    app.stop().await?;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone())?;
    assert_eq!(found(&logs), None, "the logs hold a secret");
    for preview in &previews {
        assert!(logs.contains(preview.as_str()), "the logs name each key by its preview, and the capture works");
    }
    Ok(())
}

/// Every row of the read models' tables, as text, in a stable order.
async fn read_model_rows(pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let mut rows = Vec::new();
    for (table, order) in
        [("firms", "id"), ("role_permissions", "firm_id, role"), ("members", "id"), ("api_keys", "id")]
    {
        let sql = format!("SELECT t::text FROM {table} t ORDER BY {order}");
        let texts: Vec<String> = sqlx::query_scalar(&sql).fetch_all(pool).await?;
        rows.extend(texts.into_iter().map(|row| format!("{table} {row}")));
    }
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_the_read_models_gives_the_same_rows_uses_included_while_the_service_runs() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = owner_of_new_firm(&client).await;
    let mut secrets = Vec::new();
    for n in 0..4 {
        let created = create_key(&client, &owner, &key_named(&format!("Sync {n}"))).await;
        secrets.push(created["secret"].as_str().unwrap().to_owned());
        let edit = client
            .put(
                &format!("/v1/api-keys/{}/allowed-domains", key_id(&created)),
                &owner.token,
                &json!({"allowed_domains": ["a.test"]}),
            )
            .await;
        assert_eq!(edit.status, 200, "{}", edit.text);
    }
    // Several rounds of use, each flushed as Used events (every 200 ms in tests), between which
    // one key is revoked: runs of Used events with other events in between.
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let used = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ApiKeyUsed'")
            .fetch_one(&pool)
            .await
            .expect("count Used events")
    };
    for round in 0..3 {
        let before_round = used().await;
        for secret in &secrets {
            let answer =
                Client::answer(client.http.get(format!("{}/v1/api-keys/current", client.base_url)).bearer_auth(secret))
                    .await;
            assert!(answer.status == 200 || answer.status == 401, "{}", answer.text);
        }
        testkit::eventually("the round's uses to be flushed", async || (used().await > before_round).then_some(()))
            .await;
        if round == 1 {
            let listed = client.get("/v1/api-keys?limit=1", &owner.token).await;
            let id = listed.body["data"][0]["id"].as_str().unwrap();
            assert_eq!(
                client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await.status,
                200
            );
        }
    }
    let used_keys: i64 =
        sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE last_used_at IS NOT NULL").fetch_one(&pool).await?;
    assert!(used_keys >= 3, "the keys show their uses ({used_keys})");
    // A rebuild stopped after two chunks (as by Ctrl-C): the service goes on serving and
    // changing the old tables, and what it commits meanwhile is in the rebuilt ones.
    let paused = projections::rebuild::Options { chunk_events: 5, stop_after_chunks: Some(2), ..Default::default() };
    let outcome = projections::rebuild::rebuild_with(&pool, "read_models", &paused, &()).await?;
    assert_eq!(outcome, projections::rebuild::Outcome::Paused { replayed: 10 });
    let late = key_id(&create_key(&client, &owner, &key_named("Made during the rebuild")).await);
    let listed = client.get("/v1/api-keys", &owner.token).await;
    assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(5), "{}", listed.text);
    let before = read_model_rows(&pool).await?;
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await?;
    let replayed = projections::rebuild::rebuild(&pool, "read_models").await?;
    assert_eq!(replayed, logged as u64, "every event of the log is replayed");
    assert_eq!(read_model_rows(&pool).await?, before, "a rebuild changed the read models");
    // The service's connections find the new tables: it lists, creates and verifies as before.
    let after = create_key(&client, &owner, &key_named("Made after the swap")).await;
    let listed = client.get("/v1/api-keys", &owner.token).await;
    let ids: Vec<&str> =
        listed.body["data"].as_array().into_iter().flatten().filter_map(|k| k["id"].as_str()).collect();
    assert!(ids.contains(&late.as_str()) && ids.contains(&key_id(&after).as_str()), "{}", listed.text);
    let current = Client::answer(
        client
            .http
            .get(format!("{}/v1/api-keys/current", client.base_url))
            .bearer_auth(after["secret"].as_str().unwrap_or_default()),
    )
    .await;
    assert_eq!(current.status, 200, "{}", current.text);
    // And what both show is what the log says: each key's latest use, its last version.
    let off: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys k
         WHERE k.last_used_at IS DISTINCT FROM (SELECT max((e.payload->>'last_used_at')::timestamptz) FROM events e
                                                 WHERE e.stream_id = k.id AND e.event_type = 'ApiKeyUsed')
            OR k.version <> (SELECT max(e.version) FROM events e WHERE e.stream_id = k.id)",
    )
    .fetch_one(&pool)
    .await?;
    assert_eq!(off, 0, "keys whose last use or version differs from their events");
    pool.close().await;
    app.stop().await
}
