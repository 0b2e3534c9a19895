//! Keys at work: an integration using a key on the firm's data API, from a server or from a
//! browser page, and what the firm then sees (Last used, the records the key made).

use super::world::{quoted, strings, Answer, Esqase};
use anyhow::{anyhow, bail, ensure};
use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// How long a use may take to show in the keys table (the tests flush usage every 200 ms).
const LAST_USED_DEADLINE: Duration = Duration::from_secs(5);

/// The path of a resource named as the product names it ("practice areas", "matter type").
fn resource_path(resource: &str) -> anyhow::Result<&'static str> {
    Ok(match resource {
        "contacts" | "contact" => "/v1/contacts",
        "matters" | "matter" => "/v1/matters",
        "leads" | "lead" => "/v1/leads",
        "practice areas" | "practice area" => "/v1/practice-areas",
        "matter types" | "matter type" => "/v1/matter-types",
        other => bail!("the data API has no {other:?}"),
    })
}

/// The field that names a record: a matter's title, everything else's name.
fn name_field(resource: &str) -> &'static str {
    if resource.starts_with("matter") && !resource.starts_with("matter type") {
        "title"
    } else {
        "name"
    }
}

/// Sends a request with a bearer token and, as a browser would, an `Origin`; records the answer.
async fn send(
    w: &mut Esqase,
    method: Method,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    let mut request = w.http.request(method.clone(), format!("{}{path}", w.base_url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let answer = super::world::Answer::read(&method, path, request).await?;
    w.answers.push(answer.clone());
    Ok(answer)
}

async fn list_with(w: &mut Esqase, secret: &str, resource: &str, origin: Option<&str>) -> anyhow::Result<Answer> {
    let path = format!("{}?limit=100", resource_path(resource)?);
    send(w, Method::GET, &path, Some(secret), origin, None, &[]).await
}

async fn add_with(
    w: &mut Esqase,
    key: &str,
    resource: &str,
    name: &str,
    origin: Option<&str>,
) -> anyhow::Result<Answer> {
    let secret = w.key(key)?.secret.clone();
    let body = json!({ name_field(resource): name });
    send(w, Method::POST, resource_path(resource)?, Some(&secret), origin, Some(body), &[]).await
}

fn header<'a>(answer: &'a Answer, name: &str) -> &'a str {
    answer.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

#[given(regex = r#"^"([^"]+)" (?:lists|tries to list) the (contacts|matters|leads|practice areas|matter types)$"#)]
#[when(regex = r#"^"([^"]+)" (?:lists|tries to list) the (contacts|matters|leads|practice areas|matter types)$"#)]
async fn key_lists(w: &mut Esqase, key: String, resource: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    list_with(w, &secret, &resource, None).await?;
    Ok(())
}

#[when(
    regex = r#"^"([^"]+)" (?:lists|tries to list) the (contacts|matters|leads|practice areas|matter types) from "([^"]*)"$"#
)]
async fn key_lists_from(w: &mut Esqase, key: String, resource: String, origin: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    list_with(w, &secret, &resource, Some(&origin)).await?;
    Ok(())
}

#[given(regex = r#"^"([^"]+)" (?:adds|tries to add) the (contact|matter|lead|practice area|matter type) "([^"]+)"$"#)]
#[when(regex = r#"^"([^"]+)" (?:adds|tries to add) the (contact|matter|lead|practice area|matter type) "([^"]+)"$"#)]
async fn key_adds(w: &mut Esqase, key: String, resource: String, name: String) -> anyhow::Result<()> {
    add_with(w, &key, &resource, &name, None).await?;
    Ok(())
}

#[when(
    regex = r#"^"([^"]+)" (?:adds|tries to add) the (contact|matter|lead|practice area|matter type) "([^"]+)" from "([^"]*)"$"#
)]
async fn key_adds_from(
    w: &mut Esqase,
    key: String,
    resource: String,
    name: String,
    origin: String,
) -> anyhow::Result<()> {
    add_with(w, &key, &resource, &name, Some(&origin)).await?;
    Ok(())
}

#[when(regex = r#"^"([^"]+)" asks which key it is$"#)]
async fn key_asks_current(w: &mut Esqase, key: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    send(w, Method::GET, "/v1/api-keys/current", Some(&secret), None, None, &[]).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) asks which key (?:she|he|they) (?:is|are) using, with (?:her|his|their) session$"#)]
async fn member_asks_current(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let token = w.token(&who)?;
    send(w, Method::GET, "/v1/api-keys/current", Some(&token), None, None, &[]).await?;
    Ok(())
}

#[when(regex = r#"^someone lists the contacts with "([^"]+)" mistyped$"#)]
async fn lists_with_typo(w: &mut Esqase, key: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    // One character of the random part changed, as a person copying the key by hand might.
    let mut typo = secret.into_bytes();
    typo[12] = if typo[12] == b'x' { b'y' } else { b'x' };
    let typo = String::from_utf8(typo)?;
    list_with(w, &typo, "contacts", None).await?;
    Ok(())
}

#[when(regex = r#"^someone lists the contacts with the key "([^"]*)"$"#)]
async fn lists_with_literal(w: &mut Esqase, presented: String) -> anyhow::Result<()> {
    list_with(w, &presented, "contacts", None).await?;
    Ok(())
}

/// CRC-32 (IEEE), as the key's checksum uses.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A key in the right format with a correct checksum that was never issued.
fn well_formed_key_nobody_has() -> String {
    const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let random = uuid::Uuid::new_v4().simple().to_string();
    let mut n = u64::from(crc32(random.as_bytes()));
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    format!("esq_{random}{}", String::from_utf8_lossy(&check))
}

#[when(regex = r#"^someone lists the contacts with a well-formed key nobody has$"#)]
async fn lists_with_unknown(w: &mut Esqase) -> anyhow::Result<()> {
    list_with(w, &well_formed_key_nobody_has(), "contacts", None).await?;
    Ok(())
}

#[when(regex = r#"^a browser on "([^"]+)" asks first whether it may (GET|POST|PATCH|DELETE) (/\S+)$"#)]
async fn preflight(w: &mut Esqase, origin: String, method: String, path: String) -> anyhow::Result<()> {
    let extra = [
        ("Access-Control-Request-Method", method.as_str()),
        ("Access-Control-Request-Headers", "authorization, content-type"),
    ];
    send(w, Method::OPTIONS, &path, None, Some(&origin), None, &extra).await?;
    Ok(())
}

#[then(regex = r#"^it works$"#)]
async fn it_works(w: &mut Esqase) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(matches!(answer.status, 200 | 201), "expected it to work, got {}: {}", answer.status, answer.text);
    Ok(())
}

#[then(regex = r#"^the refusal names the scope "([^"]+)"$"#)]
async fn refusal_names_scope(w: &mut Esqase, scope: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(answer.body["required_scope"] == scope.as_str(), "expected the scope {scope}: {}", answer.text);
    Ok(())
}

#[then(regex = r#"^the refusal asks for a valid token$"#)]
async fn refusal_challenges(w: &mut Esqase) -> anyhow::Result<()> {
    let answer = w.last()?;
    let challenge = header(answer, "www-authenticate");
    ensure!(challenge == r#"Bearer error="invalid_token""#, "WWW-Authenticate: {challenge:?}");
    Ok(())
}

#[then(regex = r#"^the browser on "([^"]+)" may read the answer$"#)]
async fn browser_may_read(w: &mut Esqase, origin: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(
        header(answer, "access-control-allow-origin") == origin,
        "Access-Control-Allow-Origin: {:?}",
        answer.headers
    );
    let vary: Vec<&str> = answer.headers.get_all("vary").iter().filter_map(|v| v.to_str().ok()).collect();
    ensure!(vary.iter().any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("origin"))), "Vary: {vary:?}");
    ensure!(
        answer.headers.get("access-control-allow-credentials").is_none(),
        "credentials allowed: {:?}",
        answer.headers
    );
    Ok(())
}

#[then(regex = r#"^the browser may not read the answer$"#)]
async fn browser_may_not_read(w: &mut Esqase) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(answer.headers.get("access-control-allow-origin").is_none(), "readable: {:?}", answer.headers);
    Ok(())
}

#[then(regex = r#"^the browser is told it may send the (GET|POST|PATCH|DELETE) with its key$"#)]
async fn preflight_answered(w: &mut Esqase, method: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(answer.status == 204, "the preflight got {}: {}", answer.status, answer.text);
    let methods: Vec<&str> = header(answer, "access-control-allow-methods").split(',').map(str::trim).collect();
    ensure!(methods.contains(&method.as_str()), "methods: {:?}", answer.headers);
    ensure!(header(answer, "access-control-allow-headers") == "Authorization, Content-Type", "{:?}", answer.headers);
    ensure!(!header(answer, "access-control-max-age").is_empty(), "no max age: {:?}", answer.headers);
    ensure!(answer.headers.get("access-control-allow-credentials").is_none(), "credentials: {:?}", answer.headers);
    Ok(())
}

#[then(regex = r#"^"([^"]+)" lists the contacts from these sites:$"#)]
async fn lists_from_sites(w: &mut Esqase, step: &Step, key: String) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    let table = step.table.as_ref().ok_or_else(|| anyhow!("the step needs a table"))?;
    for row in table.rows.iter().skip(1) {
        let (site, expected) = (row[0].as_str(), row[1].as_str());
        let answer = list_with(w, &secret, "contacts", Some(site)).await?;
        let shown = match answer.code() {
            "" if answer.status == 200 => "works".to_owned(),
            "" => answer.status.to_string(),
            code => format!("{} {code}", answer.status),
        };
        ensure!(shown == expected, "from {site}: expected {expected}, got {shown}: {}", answer.text);
        if answer.status == 200 {
            ensure!(header(&answer, "access-control-allow-origin") == site, "from {site}: {:?}", answer.headers);
        } else {
            ensure!(answer.headers.get("access-control-allow-origin").is_none(), "from {site}: {:?}", answer.headers);
        }
    }
    Ok(())
}

#[then(
    regex = r#"^(\w+) still finds the (contact|matter|lead|practice area|matter type) "([^"]+)" made by "([^"]+)"$"#
)]
async fn still_finds(w: &mut Esqase, who: String, resource: String, name: String, key: String) -> anyhow::Result<()> {
    let key_id = w.key(&key)?.id.clone();
    let path = resource_path(&resource)?;
    let answer = w.call_as(&who, Method::GET, &format!("{path}?limit=100"), None).await?;
    let records = answer.expect(200)?["data"].as_array().cloned().unwrap_or_default();
    let field = name_field(&resource);
    let record = records
        .into_iter()
        .find(|r| r[field] == name.as_str())
        .ok_or_else(|| anyhow!("{who} finds no {resource} {name:?}: {}", answer.text))?;
    ensure!(record["created_by"] == json!({ "type": "api_key", "id": key_id }), "made by: {record}");
    let id = record["id"].as_str().ok_or_else(|| anyhow!("no id: {record}"))?;
    let one = w.call_as(&who, Method::GET, &format!("{path}/{id}"), None).await?;
    ensure!(*one.expect(200)? == record, "opened: {}\nlisted: {record}", one.text);
    Ok(())
}

#[then(regex = r#"^(\w+) soon sees when "([^"]+)" was last used$"#)]
async fn soon_sees_last_used(w: &mut Esqase, who: String, key: String) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + LAST_USED_DEADLINE;
    loop {
        let row = w.row(&who, &key).await?;
        if let Some(used) = row["last_used_at"].as_str() {
            let created = row["created_at"].as_str().unwrap_or_default();
            // Both are the service's RFC 3339 UTC text with milliseconds, so they sort as times.
            ensure!(used.len() == created.len() && used >= created, "last used {used} before created {created}");
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{key:?} still shows no Last used after {LAST_USED_DEADLINE:?}: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[then(regex = r#"^the answer names the key "([^"]+)" of the firm "([^"]+)" with the permissions (.+)$"#)]
async fn current_names(w: &mut Esqase, key: String, firm: String, permissions: String) -> anyhow::Result<()> {
    let id = w.key(&key)?.id.clone();
    let body = w.last()?.expect(200)?.clone();
    ensure!(body["api_key"]["id"] == id.as_str() && body["api_key"]["name"] == key.as_str(), "key: {body}");
    ensure!(body["api_key"]["status"] == "active", "key: {body}");
    ensure!(body["firm"]["name"] == firm.as_str() && body["firm"]["id"].is_string(), "firm: {body}");
    let mut shown = strings(&body["effective_permissions"])?;
    let mut wanted = quoted(&permissions);
    shown.sort();
    wanted.sort();
    ensure!(shown == wanted, "effective permissions {shown:?}, expected {wanted:?}");
    Ok(())
}
