//! The one HTTP client of the tests: a small JSON client over reqwest, and ways to put a firm
//! with members into a freshly spawned service.

use crate::app::TestApp;
use anyhow::{ensure, Context as _};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

/// A password long enough for the contract's 12 characters.
pub const PASSWORD: &str = "correct horse battery staple";

/// An answer from the service: status, headers and the body (as JSON when it is JSON).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The problem's stable code (`""` when the body has none).
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    /// The body, or an error unless the answer has `status` (for steps that report failures
    /// as errors rather than panics).
    pub fn expect(&self, status: u16) -> anyhow::Result<&Value> {
        ensure!(self.status == status, "expected {status}, got {}: {}", self.status, self.text);
        Ok(&self.body)
    }

    /// Sends a prepared request (`method path`, for the error's context) and reads the answer;
    /// the body is `null` unless it is JSON.
    pub async fn read(method: &Method, path: &str, request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.with_context(|| format!("the body of {method} {path}"))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer { status, headers, text, body })
    }

    /// Asserts a problem+json answer with `status` and `code`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "expected {status} {code}, got: {} {}", self.status, self.text);
        assert_eq!(self.code(), code, "expected code {code}, got: {}", self.text);
        assert_eq!(self.header("content-type"), "application/problem+json", "problem content type: {}", self.text);
        assert_eq!(self.body["status"], json!(status), "problem status field: {}", self.text);
    }

    /// The `field` of every listed field error, in order.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or("").to_owned()).collect())
            .unwrap_or_default()
    }
}

/// A JSON client for one running service.
#[derive(Clone)]
pub struct Client {
    pub base_url: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(app: &TestApp) -> Client {
        Client { base_url: app.base_url.clone(), http: reqwest::Client::new() }
    }

    /// Sends `method path` with an optional bearer token and JSON body.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        Answer::read(&method_of(&request), path, request).await.expect("the service answers")
    }

    /// Sends a prepared request and reads the answer.
    pub async fn answer(request: reqwest::RequestBuilder) -> Answer {
        Answer::read(&method_of(&request), "", request).await.expect("the service answers")
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.send(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// `GET /v1/api-keys/current` with the key `secret`: the cheapest request a key makes.
    pub async fn current_key(&self, secret: &str) -> Answer {
        Self::answer(self.http.get(format!("{}/v1/api-keys/current", self.base_url)).bearer_auth(secret)).await
    }

    /// One counter or gauge of the service's `/metrics`.
    pub async fn metric(&self, name: &str) -> u64 {
        let text = Self::answer(self.http.get(format!("{}/metrics", self.base_url))).await.text;
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    }
}

/// Waits, if need be, until the current window of `seconds` (a rate limit's, aligned on the
/// epoch) has at least `needed` left, so a test that counts within one window is not cut by its end.
pub async fn with_time_left_in_the_window(seconds: i64, needed: std::time::Duration) {
    let length_ms = seconds * 1000;
    let left_ms = length_ms - chrono::Utc::now().timestamp_millis().rem_euclid(length_ms);
    let left = std::time::Duration::from_millis(u64::try_from(left_ms).unwrap_or_default());
    if left < needed {
        tokio::time::sleep(left + std::time::Duration::from_millis(20)).await;
    }
}

/// Signs `email` in the way the sign-in page does; returns the `esqase_session` cookie pair.
pub async fn browser_sign_in(client: &Client, email: &str) -> String {
    let answer = Client::answer(
        client
            .http
            .post(format!("{}/v1/sessions", client.base_url))
            .header("Esqase-Session", "cookie")
            .header("Sec-Fetch-Site", "same-origin")
            .json(&json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(answer.status, 201, "sign in: {}", answer.text);
    let cookie = answer.header("set-cookie").to_owned();
    assert!(cookie.starts_with("esqase_session=esqs_"), "{cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "not Secure unless configured: {cookie}");
    cookie.split(';').next().unwrap_or_default().to_owned()
}

/// A member signed in to a firm.
#[derive(Clone, Debug)]
pub struct Signed {
    pub member_id: String,
    pub firm_id: String,
    pub email: String,
    pub token: String,
}

/// Signs up a firm whose owner's email is `email`; returns the owner, signed in.
pub async fn sign_up(client: &Client, firm_name: &str, email: &str) -> Signed {
    let answer = client
        .post(
            "/v1/firms",
            None,
            &json!({
                "firm_name": firm_name,
                "time_zone": "America/New_York",
                "owner": {"name": "Olivia Owner", "email": email, "password": PASSWORD},
            }),
        )
        .await;
    assert_eq!(answer.status, 201, "signup: {}", answer.text);
    Signed {
        member_id: answer.body["member"]["id"].as_str().unwrap().to_owned(),
        firm_id: answer.body["firm"]["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        token: answer.body["session"]["token"].as_str().unwrap().to_owned(),
    }
}

/// Invites `email` with `role` as `by`, accepts the invitation, and returns them signed in.
pub async fn join(client: &Client, by: &Signed, name: &str, email: &str, role: &str) -> Signed {
    let invited =
        client.post("/v1/members", Some(&by.token), &json!({"name": name, "email": email, "role": role})).await;
    assert_eq!(invited.status, 201, "invite: {}", invited.text);
    let token = invited.body["invitation_token"].as_str().unwrap();
    let accepted = client.post("/v1/invitations/accept", None, &json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(accepted.status, 201, "accept: {}", accepted.text);
    Signed {
        member_id: accepted.body["member"]["id"].as_str().unwrap().to_owned(),
        firm_id: accepted.body["member"]["firm_id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        token: accepted.body["session"]["token"].as_str().unwrap().to_owned(),
    }
}

/// Creates a key as `by` with `body`, asserting 201; returns the whole body.
pub async fn create_key(client: &Client, by: &Signed, body: &Value) -> Value {
    let created = client.post("/v1/api-keys", Some(&by.token), body).await;
    assert_eq!(created.status, 201, "create key: {}", created.text);
    created.body
}

/// A key body with just a name and one scope.
pub fn key_named(name: &str) -> Value {
    json!({"name": name, "scopes": ["contacts:read"]})
}

/// A string of 36 hex digits and dashes: a UUID no firm has.
pub fn random_uuid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after 20 s.
pub async fn eventually<T>(what: &str, check: impl AsyncFn() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The method of a prepared request, for messages.
fn method_of(request: &reqwest::RequestBuilder) -> Method {
    request.try_clone().and_then(|r| r.build().ok()).map_or(Method::GET, |r| r.method().clone())
}
