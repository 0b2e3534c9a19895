//! Hostile callers, route by route: every route refuses a missing, malformed, ended, expired,
//! revoked and other-firm credential, and changes nothing when it does; problem bodies never
//! show internals; bodies over 64 KiB are refused; no response but the create response holds a
//! key's secret.

use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;
use testkit::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Which credential a route admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admits {
    /// A member session only.
    Member,
    /// An API key only.
    Key,
    /// Either (the firm's data API).
    Either,
}

/// One route with concrete ids of firm A and a body that would be valid.
#[derive(Clone, Debug)]
struct Route {
    method: Method,
    path: String,
    body: Option<Value>,
    admits: Admits,
}

impl Route {
    fn new(method: Method, path: impl Into<String>, body: Option<Value>, admits: Admits) -> Route {
        Route { method, path: path.into(), body, admits }
    }

    /// True when the route names one of firm A's records by id.
    fn names_an_id(&self, ids: &FirmA) -> bool {
        ids.all().iter().any(|id| self.path.contains(id.as_str()))
    }
}

/// Firm A's records, whose ids the routes name.
struct FirmA {
    owner: Signed,
    member: String,
    key: String,
    records: Vec<(&'static str, String)>,
}

impl FirmA {
    fn all(&self) -> Vec<String> {
        let mut ids = vec![self.member.clone(), self.key.clone()];
        ids.extend(self.records.iter().map(|(_, id)| id.clone()));
        ids
    }
}

const RESOURCES: [(&str, &str); 5] = [
    ("contacts", "contacts"),
    ("matters", "matters"),
    ("leads", "leads"),
    ("practice-areas", "practice_areas"),
    ("matter-types", "matter_types"),
];

/// Every route that needs a credential, naming firm A's records.
fn routes(a: &FirmA) -> Vec<Route> {
    use Admits::*;
    let (member, key) = (&a.member, &a.key);
    let mut routes = vec![
        Route::new(Method::DELETE, "/v1/sessions/current", None, Member),
        Route::new(Method::GET, "/v1/members", None, Member),
        Route::new(
            Method::POST,
            "/v1/members",
            Some(json!({"name": "Eve", "email": "eve@x.test", "role": "staff"})),
            Member,
        ),
        Route::new(Method::GET, format!("/v1/members/{member}"), None, Member),
        Route::new(Method::PATCH, format!("/v1/members/{member}"), Some(json!({"role": "administrator"})), Member),
        Route::new(Method::DELETE, format!("/v1/members/{member}"), None, Member),
        Route::new(Method::GET, "/v1/roles", None, Member),
        Route::new(Method::PUT, "/v1/roles/attorney/permissions", Some(json!({"permissions": ["api_keys"]})), Member),
        Route::new(Method::GET, "/v1/api-keys", None, Member),
        Route::new(Method::POST, "/v1/api-keys", Some(json!({"name": "Eve's", "scopes": ["contacts:read"]})), Member),
        Route::new(Method::GET, format!("/v1/api-keys/{key}"), None, Member),
        Route::new(
            Method::PUT,
            format!("/v1/api-keys/{key}/allowed-domains"),
            Some(json!({"allowed_domains": ["evil.test"]})),
            Member,
        ),
        Route::new(Method::POST, format!("/v1/api-keys/{key}/revoke"), Some(json!({})), Member),
        Route::new(Method::GET, "/v1/api-keys/current", None, Key),
        Route::new(Method::GET, "/v1/audit-log", None, Member),
        Route::new(Method::GET, "/v1/audit-log/verify", None, Member),
        Route::new(Method::GET, "/v1/audit-log/export?format=csv", None, Member),
        Route::new(Method::GET, "/v1/audit-log/export?format=jsonl", None, Member),
    ];
    for (resource, _) in RESOURCES {
        let id = &a.records.iter().find(|(r, _)| *r == resource).expect("a record of each resource").1;
        let body = match resource {
            "matters" => json!({"title": "Changed"}),
            _ => json!({"name": "Changed"}),
        };
        routes.push(Route::new(Method::GET, format!("/v1/{resource}"), None, Either));
        routes.push(Route::new(Method::POST, format!("/v1/{resource}"), Some(body.clone()), Either));
        routes.push(Route::new(Method::GET, format!("/v1/{resource}/{id}"), None, Either));
        routes.push(Route::new(Method::PATCH, format!("/v1/{resource}/{id}"), Some(body), Either));
        routes.push(Route::new(Method::DELETE, format!("/v1/{resource}/{id}"), None, Either));
    }
    routes
}

/// What a problem body must never show: queries, the database, source paths, panics.
const INTERNALS: [&str; 14] = [
    "select ",
    "insert ",
    "update ",
    "sqlx",
    "postgres",
    "constraint",
    "relation \"",
    "panicked",
    "backtrace",
    ".rs:",
    "/src/",
    "thread '",
    "tokio",
    "axum",
];

#[track_caller]
fn assert_no_internals(answer: &Answer, what: &str) {
    let lower = answer.text.to_lowercase();
    for internal in INTERNALS {
        assert!(!lower.contains(internal), "{what}: the answer shows {internal:?}: {}", answer.text);
    }
    if answer.status >= 400 {
        assert_eq!(answer.header("content-type"), "application/problem+json", "{what}: {}", answer.text);
        assert!(answer.body["code"].is_string(), "{what}: a stable code: {}", answer.text);
    }
    assert_ne!(answer.status, 500, "{what}: {}", answer.text);
}

/// Everything firm A holds, as its owner sees it: nothing a refused request did may show here.
async fn state_of(client: &Client, a: &FirmA, pool: &sqlx::PgPool) -> anyhow::Result<Vec<String>> {
    let firm: uuid::Uuid = a.owner.firm_id.parse()?;
    // The sweeper records the short-lived key's expiry on its own schedule; uses are not changes.
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE firm_id = $1 AND event_type NOT IN ('ApiKeyUsed', 'ApiKeyExpired')",
    )
    .bind(firm)
    .fetch_one(pool)
    .await?;
    let mut state = vec![format!("events {events}")];
    for path in ["/v1/members", "/v1/roles", "/v1/api-keys"]
        .into_iter()
        .map(str::to_owned)
        .chain(RESOURCES.iter().map(|(resource, _)| format!("/v1/{resource}")))
    {
        let answer = client.get(&path, &a.owner.token).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        state.push(format!("{path} {}", answer.body));
    }
    Ok(state)
}

async fn firm_with_records(client: &Client, name: &str) -> FirmA {
    let owner = sign_up(client, name, &format!("o{}@acme.test", random_uuid())).await;
    let member = join(client, &owner, "Sam Staff", &format!("s{}@acme.test", random_uuid()), "staff").await;
    let key = create_key(client, &owner, &key_named("Intake")).await;
    let mut records = Vec::new();
    let area = client.post("/v1/practice-areas", Some(&owner.token), &json!({"name": "Family"})).await;
    let area_id = area.body["id"].as_str().expect("an id").to_owned();
    let kind = client
        .post("/v1/matter-types", Some(&owner.token), &json!({"name": "Divorce", "practice_area_id": area_id}))
        .await;
    for (resource, body) in [
        ("contacts", json!({"name": "Jane Client"})),
        ("leads", json!({"name": "Joe Lead"})),
        ("matters", json!({"title": "Smith v Smith"})),
    ] {
        let made = client.post(&format!("/v1/{resource}"), Some(&owner.token), &body).await;
        assert_eq!(made.status, 201, "{resource}: {}", made.text);
        records.push((resource, made.body["id"].as_str().expect("an id").to_owned()));
    }
    records.push(("practice-areas", area_id));
    records.push(("matter-types", kind.body["id"].as_str().expect("an id").to_owned()));
    FirmA { owner, member: member.member_id, key: key["api_key"]["id"].as_str().expect("an id").to_owned(), records }
}

fn all_scopes() -> Value {
    let scopes: Vec<String> = RESOURCES.iter().flat_map(|(_, p)| [format!("{p}:read"), format!("{p}:write")]).collect();
    json!(scopes)
}

#[tokio::test]
async fn every_route_refuses_every_bad_credential_and_changes_nothing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let a = firm_with_records(&client, "Acme Law").await;

    // Credentials of firm A that no longer work.
    let expires_at = chrono::Utc::now() + chrono::TimeDelta::seconds(2);
    let expiring = create_key(
        &client,
        &a.owner,
        &json!({"name": "Short", "scopes": all_scopes(), "expires_at": expires_at.to_rfc3339()}),
    )
    .await;
    let revoked = create_key(&client, &a.owner, &json!({"name": "Gone", "scopes": all_scopes()})).await;
    let revoked_id = revoked["api_key"]["id"].as_str().expect("an id");
    let answer = client.post(&format!("/v1/api-keys/{revoked_id}/revoke"), Some(&a.owner.token), &json!({})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let logged_out = sign_in(&client, &a.owner.email).await;
    assert_eq!(client.send(Method::DELETE, "/v1/sessions/current", Some(&logged_out), None).await.status, 204);
    let lapsed = sign_in(&client, &a.owner.email).await;
    let lapsed_hash = sha2_of(&lapsed);
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash = $1")
        .bind(lapsed_hash.as_slice())
        .execute(&pool)
        .await?;
    let wait = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(100)).await;

    // Firm B: real, valid credentials of another firm.
    let b_owner = sign_up(&client, "Bolt Legal", &format!("b{}@bolt.test", random_uuid())).await;
    let b_key = create_key(&client, &b_owner, &json!({"name": "B's", "scopes": all_scopes()})).await;
    let b_secret = b_key["secret"].as_str().expect("a secret").to_owned();

    let before = state_of(&client, &a, &pool).await?;
    let malformed_key = format!("esq_{}", "0".repeat(38));
    let mut refusals = 0;
    for route in routes(&a) {
        let what = format!("{} {}", route.method, route.path);
        let send = |token: Option<String>| {
            let (client, route) = (client.clone(), route.clone());
            async move { client.send(route.method.clone(), &route.path, token.as_deref(), route.body.as_ref()).await }
        };

        // Nothing, or something that is no credential at all.
        for token in [None, Some("not-a-token".to_owned()), Some("ghp_0123456789abcdef".to_owned())] {
            let answer = send(token).await;
            answer.assert_problem(401, "invalid_credentials");
            assert_eq!(answer.header("www-authenticate"), r#"Bearer error="invalid_token""#, "{what}");
            assert_no_internals(&answer, &what);
            refusals += 1;
        }
        // Sessions: malformed, ended by logout, past their expiry.
        for token in ["esqs_short".to_owned(), logged_out.clone(), lapsed.clone()] {
            let answer = send(Some(token)).await;
            // Judged as a session first, on every route (a key-only route included).
            answer.assert_problem(401, "invalid_session");
            assert_no_internals(&answer, &what);
            refusals += 1;
        }
        // Keys: malformed (bad checksum), revoked, expired.
        let keys = [
            (malformed_key.clone(), "invalid_api_key"),
            (revoked["secret"].as_str().expect("a secret").to_owned(), "api_key_revoked"),
            (expiring["secret"].as_str().expect("a secret").to_owned(), "api_key_expired"),
        ];
        for (token, code) in keys {
            let answer = send(Some(token)).await;
            match route.admits {
                Admits::Member => answer.assert_problem(403, "session_required"),
                _ => answer.assert_problem(401, code),
            }
            assert_no_internals(&answer, &what);
            refusals += 1;
        }
        // Another firm's valid credentials: firm A's ids do not exist for them.
        if route.names_an_id(&a) {
            let mut tokens = vec![b_owner.token.clone()];
            if route.admits == Admits::Either {
                tokens.push(b_secret.clone());
            }
            for token in tokens {
                let answer = send(Some(token)).await;
                answer.assert_problem(404, "not_found");
                assert_no_internals(&answer, &what);
                refusals += 1;
            }
        }
    }
    assert!(refusals > 300, "the matrix ran: {refusals} refusals");

    // Firm B's lists hold nothing of firm A's.
    for path in ["/v1/members", "/v1/api-keys", "/v1/audit-log", "/v1/audit-log/export?format=jsonl"]
        .into_iter()
        .map(str::to_owned)
        .chain(RESOURCES.iter().map(|(resource, _)| format!("/v1/{resource}")))
    {
        let answer = client.get(&path, &b_owner.token).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        for id in a.all() {
            assert!(!answer.text.contains(&id), "{path} shows firm A's {id} to firm B");
        }
    }
    let b_data = client.get("/v1/contacts", &b_secret).await;
    assert_eq!(b_data.body["data"], json!([]), "{}", b_data.text);

    assert_eq!(state_of(&client, &a, &pool).await?, before, "no refused request changed anything");
    pool.close().await;
    app.stop().await
}

/// A fresh session for the owner.
async fn sign_in(client: &Client, email: &str) -> String {
    let answer = client.post("/v1/sessions", None, &json!({"email": email, "password": PASSWORD})).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    answer.body["session"]["token"].as_str().expect("a token").to_owned()
}

/// The SHA-256 a token is stored as.
fn sha2_of(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

#[tokio::test]
async fn hostile_bodies_and_paths_get_clear_problems_never_internals() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let a = firm_with_records(&client, "Acme Law").await;
    let key = create_key(&client, &a.owner, &json!({"name": "All", "scopes": all_scopes()})).await;
    let secret = key["secret"].as_str().expect("a secret").to_owned();
    let token = a.owner.token.clone();
    let nul = "a\u{0}b";

    let mut cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, "/v1/api-keys".into(), Some(json!({"name": nul, "scopes": ["contacts:read"]}))),
        (Method::POST, "/v1/api-keys".into(), Some(json!({"name": "x", "scopes": [nul]}))),
        (
            Method::POST,
            "/v1/api-keys".into(),
            Some(json!({"name": "x", "scopes": ["contacts:read"], "allowed_domains": [nul]})),
        ),
        (
            Method::POST,
            "/v1/api-keys".into(),
            Some(json!({"name": "x", "scopes": ["contacts:read"], "expires_at": nul})),
        ),
        (
            Method::POST,
            "/v1/api-keys".into(),
            Some(json!({"name": "x", "scopes": ["contacts:read"], "expires_at": "99999-01-01"})),
        ),
        (Method::POST, "/v1/members".into(), Some(json!({"name": nul, "email": nul, "role": nul}))),
        (Method::PATCH, format!("/v1/members/{}", a.member), Some(json!({"role": 12}))),
        (Method::PUT, "/v1/roles/owner%00/permissions".into(), Some(json!({"permissions": []}))),
        (Method::GET, "/v1/members/not-a-uuid".into(), None),
        (Method::GET, "/v1/api-keys/00000000-0000-0000-0000-00000000000%".into(), None),
        (Method::GET, format!("/v1/api-keys?cursor={}", "A".repeat(500)), None),
        (Method::GET, "/v1/api-keys?limit=99999999999999999999".into(), None),
        (Method::GET, "/v1/audit-log?since=yesterday&until=%00".into(), None),
        (Method::GET, "/v1/audit-log/export?format=xml".into(), None),
    ];
    for (resource, _) in RESOURCES {
        let body = match resource {
            "matters" => json!({"title": nul, "status": nul, "contact_id": nul}),
            "matter-types" => json!({"name": nul, "practice_area_id": "not-a-uuid"}),
            _ => json!({"name": nul, "email": nul, "phone": nul, "source": nul}),
        };
        cases.push((Method::POST, format!("/v1/{resource}"), Some(body)));
        cases.push((Method::POST, format!("/v1/{resource}"), Some(json!({"name": 1e308, "title": [[[[]]]]}))));
        cases.push((Method::GET, format!("/v1/{resource}/{}", "9".repeat(40)), None));
        cases.push((Method::GET, format!("/v1/{resource}?limit=0&cursor=%ff"), None));
    }
    let mut problems = 0;
    for (method, path, body) in &cases {
        // The data API takes either credential; every other route a member session only.
        let is_data_route = RESOURCES.iter().any(|(resource, _)| path.starts_with(&format!("/v1/{resource}")));
        for credential in [&token, &secret] {
            if credential == &secret && !is_data_route {
                continue;
            }
            let answer = client.send(method.clone(), path, Some(credential), body.as_ref()).await;
            let what = format!("{method} {path} {body:?}");
            assert!(
                (400..500).contains(&answer.status),
                "{what}: a client error, got {} {}",
                answer.status,
                answer.text
            );
            assert_no_internals(&answer, &what);
            problems += 1;
        }
    }

    // The routes that need no credential: a NUL (which Postgres text cannot hold) anywhere.
    let public: [(&str, Value); 3] = [
        ("/v1/sessions", json!({"email": format!("olivia{nul}@acme.test"), "password": PASSWORD})),
        ("/v1/invitations/accept", json!({"token": nul, "password": PASSWORD})),
        (
            "/v1/firms",
            json!({"firm_name": nul, "time_zone": nul, "owner": {"name": nul, "email": nul, "password": nul}}),
        ),
    ];
    for (path, body) in &public {
        let answer = client.post(path, None, body).await;
        assert!((400..500).contains(&answer.status), "{path}: a client error, got {} {}", answer.status, answer.text);
        assert_no_internals(&answer, path);
        problems += 1;
    }
    client
        .post("/v1/sessions", None, &json!({"email": format!("{}{nul}", a.owner.email), "password": PASSWORD}))
        .await
        .assert_problem(401, "invalid_login");

    // Raw bodies: not JSON, not UTF-8, nested past any sane depth, the wrong content type.
    let raw: [(&str, Vec<u8>); 4] = [
        ("application/json", b"{\"name\": ".to_vec()),
        ("application/json", vec![b'{', b'"', b'n', b'"', b':', b'"', 0xff, 0xfe, b'"', b'}']),
        ("application/json", format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes()),
        ("text/plain", b"{\"name\": \"x\"}".to_vec()),
    ];
    for (content_type, bytes) in raw {
        let answer = Client::answer(
            client
                .http
                .post(format!("{}/v1/contacts", client.base_url))
                .bearer_auth(&token)
                .header("content-type", content_type)
                .body(bytes),
        )
        .await;
        assert!(matches!(answer.status, 400 | 415), "{content_type}: {} {}", answer.status, answer.text);
        assert_no_internals(&answer, content_type);
        problems += 1;
    }
    assert!(problems > 40, "{problems} problems checked");
    app.stop().await
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_on_every_route_that_takes_one() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let a = firm_with_records(&client, "Acme Law").await;
    let before = state_of(&client, &a, &pool).await?;
    let huge = "x".repeat(65 * 1024);

    let mut refused = 0;
    for route in routes(&a).into_iter().filter(|r| r.body.is_some()) {
        let mut body = route.body.clone().unwrap_or_default();
        body["padding"] = json!(huge);
        let answer = client.send(route.method.clone(), &route.path, Some(&a.owner.token), Some(&body)).await;
        answer.assert_problem(413, "payload_too_large");
        refused += 1;
    }
    // Public routes too, and a body sent in chunks, with no Content-Length to judge it by.
    for path in ["/v1/firms", "/v1/sessions", "/v1/invitations/accept"] {
        let answer = client.post(path, None, &json!({"padding": huge})).await;
        answer.assert_problem(413, "payload_too_large");
        refused += 1;
    }
    let chunked = chunked_post(&app, "/v1/contacts", &a.owner.token, &huge).await?;
    assert!(chunked.starts_with("HTTP/1.1 413"), "a chunked 65 KiB body: {}", chunked.lines().next().unwrap_or(""));
    assert!(chunked.contains("payload_too_large"), "{chunked}");
    assert!(refused >= 19, "{refused} routes checked");

    assert_eq!(state_of(&client, &a, &pool).await?, before, "no refused body changed anything");
    pool.close().await;
    app.stop().await
}

/// POSTs `{"name": "<padding>"}` with `Transfer-Encoding: chunked` over a raw connection and
/// returns the raw answer.
async fn chunked_post(app: &TestApp, path: &str, token: &str, padding: &str) -> anyhow::Result<String> {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await?;
    let body = format!("{{\"name\": \"{padding}\"}}");
    for chunk in body.as_bytes().chunks(8 * 1024) {
        // The server may answer and close before the last chunk: that is the refusal.
        if stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.is_err()
            || stream.write_all(chunk).await.is_err()
            || stream.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn no_response_but_the_create_response_holds_a_keys_secret() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let a = firm_with_records(&client, "Acme Law").await;
    let created = create_key(
        &client,
        &a.owner,
        &json!({"name": "Site", "scopes": ["contacts:read", "contacts:write"], "allowed_domains": ["app.example.com"]}),
    )
    .await;
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    let id = created["api_key"]["id"].as_str().expect("an id").to_owned();
    // Every way the key shows up: its row, the list, its own view, its records, the audit log.
    let contact = client.post("/v1/contacts", Some(&secret), &json!({"name": "Made by a key"})).await;
    assert_eq!(contact.status, 201, "{}", contact.text);
    let mut answers = vec![contact];
    for (token, path) in [
        (&a.owner.token, format!("/v1/api-keys/{id}")),
        (&a.owner.token, "/v1/api-keys".to_owned()),
        (&a.owner.token, "/v1/audit-log".to_owned()),
        (&a.owner.token, "/v1/audit-log/export?format=csv".to_owned()),
        (&a.owner.token, "/v1/audit-log/export?format=jsonl".to_owned()),
        (&a.owner.token, "/v1/contacts".to_owned()),
        (&secret, "/v1/api-keys/current".to_owned()),
        (&secret, "/v1/contacts".to_owned()),
    ] {
        answers.push(client.get(&path, token).await);
    }
    answers.push(
        client
            .put(&format!("/v1/api-keys/{id}/allowed-domains"), &a.owner.token, &json!({"allowed_domains": []}))
            .await,
    );
    answers.push(client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&a.owner.token), &json!({})).await);
    answers.push(client.get("/v1/api-keys/current", &secret).await);
    let metrics = Client::answer(client.http.get(format!("{}/metrics", client.base_url))).await;
    answers.push(metrics);
    // The secret's body and its hash, in every form a leak could take.
    let body = &secret["esq_".len()..];
    let hash = hex::encode(sha2_of(&secret));
    for answer in &answers {
        assert!(answer.status < 500, "{}", answer.text);
        for leak in [secret.as_str(), body, hash.as_str()] {
            assert!(!answer.text.contains(leak), "a response holds the secret or its hash: {}", answer.text);
        }
        for (name, value) in &answer.headers {
            let value = value.to_str().unwrap_or_default();
            assert!(!value.contains(body), "header {name} holds the secret");
        }
    }
    app.stop().await
}
