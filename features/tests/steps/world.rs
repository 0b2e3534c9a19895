//! The world of one scenario: a running service, the people and keys named in the scenario, and
//! the last answer the service gave.

use anyhow::{anyhow, bail, ensure, Context as _};
use reqwest::Method;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use testkit::TestApp;
pub use testkit::{Answer, PASSWORD};

/// A person named in a scenario.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub name: String,
    pub email: String,
    pub id: String,
    pub firm: String,
    pub role: String,
    /// The current session token, once signed in.
    pub token: Option<String>,
    /// The session token held before the last log out or removal.
    pub old_token: Option<String>,
    /// An invitation not yet accepted (or accepted once, kept to try again).
    pub invitation: Option<String>,
}

/// A key named in a scenario.
#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub secret: String,
    /// The ApiKey as the create response showed it.
    pub created: Value,
    /// The person who created it.
    pub creator: String,
}

/// The service of one scenario.
pub struct Service(pub Option<TestApp>);

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(app) => write!(f, "Service({})", app.base_url),
            None => write!(f, "Service(stopped)"),
        }
    }
}

/// The world of one scenario.
#[derive(Debug, cucumber::World)]
#[world(init = Self::start)]
pub struct Esqase {
    pub service: Service,
    pub base_url: String,
    pub http: reqwest::Client,
    /// Makes this scenario's email addresses unique across the whole service.
    pub run: String,
    pub people: HashMap<String, Person>,
    /// Firm name → its time zone, as signed up.
    pub firms: HashMap<String, String>,
    /// The first firm signed up in the scenario ("the firm").
    pub main_firm: Option<String>,
    pub keys: HashMap<String, Key>,
    /// Every answer of the scenario, latest last.
    pub answers: Vec<Answer>,
    /// Firm details asked for in the last signup step.
    pub signup: Option<(String, String, String)>,
    /// A list path remembered for Previous and Next (path without query, query).
    pub page_path: Option<String>,
    /// Keys that must stop being Active at a given instant.
    pub expiring: HashMap<String, std::time::SystemTime>,
    /// The secret scanner whose reports the service takes, once a step has said so.
    pub scanner: Option<super::secret_scanning::Scanner>,
}

impl Esqase {
    async fn start() -> anyhow::Result<Self> {
        let app = TestApp::spawn().await.context("starting the service")?;
        Ok(Esqase {
            base_url: app.base_url.clone(),
            service: Service(Some(app)),
            http: reqwest::Client::builder().build()?,
            run: uuid::Uuid::new_v4().simple().to_string(),
            people: HashMap::new(),
            firms: HashMap::new(),
            main_firm: None,
            keys: HashMap::new(),
            answers: Vec::new(),
            signup: None,
            page_path: None,
            expiring: HashMap::new(),
            scanner: None,
        })
    }

    /// Stops the service and drops its database.
    pub async fn stop(&mut self) {
        if let Some(app) = self.service.0.take() {
            if let Err(error) = app.stop().await {
                eprintln!("stopping the service of a scenario failed: {error:#}");
            }
        }
    }

    /// A unique email address for `name` in this scenario.
    pub fn email_for(&self, name: &str) -> String {
        format!("{}.{}@esqase-specs.test", name.to_lowercase(), self.run)
    }

    pub fn person(&self, name: &str) -> anyhow::Result<&Person> {
        self.people.get(name).ok_or_else(|| anyhow!("no one called {name} in this scenario"))
    }

    pub fn person_mut(&mut self, name: &str) -> anyhow::Result<&mut Person> {
        self.people.get_mut(name).ok_or_else(|| anyhow!("no one called {name} in this scenario"))
    }

    pub fn token(&self, name: &str) -> anyhow::Result<String> {
        self.person(name)?.token.clone().ok_or_else(|| anyhow!("{name} is not signed in"))
    }

    pub fn key(&self, name: &str) -> anyhow::Result<&Key> {
        self.keys.get(name).ok_or_else(|| anyhow!("no key called {name:?} in this scenario"))
    }

    /// The owner of `firm`.
    pub fn owner_of(&self, firm: &str) -> anyhow::Result<&Person> {
        self.people
            .values()
            .find(|p| p.firm == firm && p.role == "owner")
            .ok_or_else(|| anyhow!("the firm {firm:?} has no owner in this scenario"))
    }

    /// The latest answer.
    pub fn last(&self) -> anyhow::Result<&Answer> {
        self.answers.last().ok_or_else(|| anyhow!("nothing has been asked yet"))
    }

    /// Sends a request, records the answer and returns it.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = Answer::read(&method, path, request).await?;
        self.answers.push(answer.clone());
        Ok(answer)
    }

    /// Sends a request as `who`.
    pub async fn call_as(
        &mut self,
        who: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Answer> {
        let token = self.token(who)?;
        self.call(method, path, Some(&token), body).await
    }

    /// The firm's whole keys table as `who` sees it.
    pub async fn keys_table(&mut self, who: &str) -> anyhow::Result<Vec<Value>> {
        let answer = self.call_as(who, Method::GET, "/v1/api-keys?limit=100", None).await?;
        let page = answer.expect(200)?;
        ensure!(page["next_cursor"].is_null(), "more than 100 keys in a scenario: {page}");
        Ok(page["data"].as_array().cloned().unwrap_or_default())
    }

    /// The row of `key` in the table `who` sees.
    pub async fn row(&mut self, who: &str, key: &str) -> anyhow::Result<Value> {
        let id = self.key(key)?.id.clone();
        let rows = self.keys_table(who).await?;
        rows.into_iter().find(|row| row["id"] == id.as_str()).ok_or_else(|| anyhow!("{who} sees no row for {key:?}"))
    }

    /// The firm of `who`'s key as its creator's firm owner sees it, by id.
    pub async fn key_as_seen_by_its_firm(&mut self, key: &str) -> anyhow::Result<Value> {
        let key = self.key(key)?.clone();
        let firm = self.person(&key.creator)?.firm.clone();
        let owner = self.owner_of(&firm)?.name.clone();
        let answer = self.call_as(&owner, Method::GET, &format!("/v1/api-keys/{}", key.id), None).await?;
        Ok(answer.expect(200)?.clone())
    }
}

/// Splits "a, b, c" into its items ("" is none).
pub fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Splits `"a", "b"` into its quoted items.
pub fn quoted(text: &str) -> Vec<String> {
    text.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The strings of a JSON array.
pub fn strings(value: &Value) -> anyhow::Result<Vec<String>> {
    let Some(items) = value.as_array() else { bail!("not a list: {value}") };
    items.iter().map(|v| v.as_str().map(str::to_owned).ok_or_else(|| anyhow!("not a string: {v}"))).collect()
}

/// `now + seconds` as an RFC 3339 UTC time.
pub fn rfc3339_in(seconds: u64) -> (String, std::time::SystemTime) {
    let at = std::time::SystemTime::now() + std::time::Duration::from_secs(seconds);
    let secs = at.duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest % 3600 / 60, rest % 60);
    (text, at)
}
