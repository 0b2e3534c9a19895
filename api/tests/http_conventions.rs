//! The contract's HTTP conventions: problem+json everywhere, limits, request ids, credentials,
//! and the operations routes.

use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use testkit::{sign_up, Client, TestApp};

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_as_problem_json() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;

    let unknown = client.send(Method::GET, "/v1/nothing-here", None, None).await;
    unknown.assert_problem(404, "not_found");
    insta::assert_json_snapshot!("not_found", unknown.body);
    client.get("/v1/nothing-here", &owner.token).await.assert_problem(404, "not_found");
    client.get("/v1/api-keys/not-a-uuid", &owner.token).await.assert_problem(404, "not_found");

    let wrong = client.send(Method::DELETE, "/v1/roles", Some(&owner.token), None).await;
    wrong.assert_problem(405, "method_not_allowed");
    insta::assert_json_snapshot!("method_not_allowed", wrong.body);
    for (method, path) in
        [(Method::PUT, "/healthz"), (Method::GET, "/v1/sessions"), (Method::GET, "/v1/api-keys/x/revoke")]
    {
        let answer = client.send(method.clone(), path, None, None).await;
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.text);
        answer.assert_problem(405, "method_not_allowed");
    }
    app.stop().await
}

#[tokio::test]
async fn bad_bodies_are_400_malformed_request_and_huge_ones_413() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let raw = |path: &str, body: String, token: Option<&str>| {
        let mut request = client
            .http
            .post(format!("{}{path}", client.base_url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Client::answer(request)
    };

    let malformed = raw("/v1/firms", r#"{"firm_name": "Acme", "owner": {"#.to_owned(), None).await;
    malformed.assert_problem(400, "malformed_request");
    assert!(!malformed.header("content-type").starts_with("text/plain"));
    let malformed = raw("/v1/api-keys", r#"{"name": "x",, }"#.to_owned(), Some(&owner.token)).await;
    malformed.assert_problem(400, "malformed_request");
    insta::assert_json_snapshot!("malformed_json", malformed.body, { ".detail" => "[detail]" });

    let wrong_type =
        client.post("/v1/api-keys", Some(&owner.token), &json!({"name": 5, "scopes": ["contacts:read"]})).await;
    wrong_type.assert_problem(400, "malformed_request");
    let wrong_type = client.post("/v1/firms", None, &json!({"firm_name": ["Acme"], "owner": "me"})).await;
    wrong_type.assert_problem(400, "malformed_request");
    let not_an_object = client.put("/v1/roles/staff/permissions", &owner.token, &json!("contacts:read")).await;
    not_an_object.assert_problem(400, "malformed_request");

    let huge = format!(r#"{{"firm_name": "{}"}}"#, "a".repeat(1024 * 1024));
    let too_large = raw("/v1/firms", huge, None).await;
    too_large.assert_problem(413, "payload_too_large");
    insta::assert_json_snapshot!("payload_too_large", too_large.body);

    // None of it changed anything: the owner is still the firm's only member and has no keys.
    assert_eq!(client.get("/v1/members", &owner.token).await.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(client.get("/v1/api-keys", &owner.token).await.body["data"], json!([]));
    app.stop().await
}

#[tokio::test]
async fn every_response_carries_a_request_id_echoing_only_valid_ones() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let with_id = |path: &str, id: &str| {
        Client::answer(client.http.get(format!("{}{path}", client.base_url)).header("x-request-id", id))
    };

    for path in ["/healthz", "/v1/nothing-here", "/v1/members"] {
        let answer = client.send(Method::GET, path, None, None).await;
        let id = answer.header("x-request-id");
        assert!(!id.is_empty(), "GET {path} ({}) has no X-Request-Id", answer.status);
    }
    let first = client.send(Method::GET, "/healthz", None, None).await;
    let second = client.send(Method::GET, "/healthz", None, None).await;
    assert_ne!(first.header("x-request-id"), second.header("x-request-id"), "each request gets its own id");

    let valid = "req-2026_11.27:abc";
    assert_eq!(with_id("/healthz", valid).await.header("x-request-id"), valid);
    assert_eq!(with_id("/v1/members", valid).await.header("x-request-id"), valid, "errors echo it too");

    let too_long = "a".repeat(300);
    for invalid in [too_long.as_str(), "has spaces in it", "semi;colon"] {
        let answer = with_id("/healthz", invalid).await;
        let id = answer.header("x-request-id");
        assert!(!id.is_empty() && id != invalid, "{invalid:?} was echoed");
        assert!(id.len() <= 128);
    }
    app.stop().await
}

#[tokio::test]
async fn missing_or_unknown_credentials_are_401_with_www_authenticate() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;

    let missing = client.send(Method::GET, "/v1/members", None, None).await;
    missing.assert_problem(401, "invalid_credentials");
    assert_eq!(missing.header("www-authenticate"), r#"Bearer error="invalid_token""#);
    insta::assert_json_snapshot!("invalid_credentials", missing.body);

    for token in ["ghp_0123456789abcdef", "esqx_abc", "not-a-token"] {
        let answer = client.get("/v1/members", token).await;
        answer.assert_problem(401, "invalid_credentials");
        assert_eq!(answer.header("www-authenticate"), r#"Bearer error="invalid_token""#);
    }
    let basic = Client::answer(
        client
            .http
            .get(format!("{}/v1/members", client.base_url))
            .header("authorization", format!("Basic {}", owner.token)),
    )
    .await;
    basic.assert_problem(401, "invalid_credentials");

    let unknown_session = client.get("/v1/members", &format!("esqs_{}", "A".repeat(42))).await;
    assert_eq!(unknown_session.status, 401, "{}", unknown_session.text);
    assert_eq!(unknown_session.header("www-authenticate"), r#"Bearer error="invalid_token""#);
    assert_eq!(client.get("/v1/members", &owner.token).await.status, 200);
    app.stop().await
}

#[tokio::test]
async fn the_operations_routes_report_health_readiness_and_metrics() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let health = client.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, 200, "{}", health.text);

    // NATS connects in the background: ready within a few seconds of starting.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let ready = loop {
        let ready = client.send(Method::GET, "/readyz", None, None).await;
        if ready.status == 200 || tokio::time::Instant::now() > deadline {
            break ready;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!((&ready.body["postgres"], &ready.body["nats"]), (&json!(true), &json!(true)));
    assert_eq!(ready.body["status"], "ready");

    sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let metrics = client.send(Method::GET, "/metrics", None, None).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").starts_with("text/plain"), "{}", metrics.header("content-type"));
    let appended = metrics
        .text
        .lines()
        .find_map(|line| line.strip_prefix("esqase_events_appended_total "))
        .expect("esqase_events_appended_total is exported");
    assert!(appended.parse::<u64>()? >= 2, "the signup's events are counted: {appended}");
    assert!(metrics.text.contains("# TYPE esqase_events_appended_total counter"));
    for line in metrics.text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').expect("a sample is a name and a value");
        assert!(name.starts_with("esqase_") && value.parse::<f64>().is_ok(), "not Prometheus text: {line}");
    }
    app.stop().await
}
