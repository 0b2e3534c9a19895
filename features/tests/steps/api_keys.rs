//! The API keys page: create (the full key shown once), the keys table, allowed domains, revoke.
//! (Rate limits have their own module.)

use super::world::{list, quoted, rfc3339_in, strings, Answer, Esqase, Key};
use anyhow::{anyhow, ensure};
use cucumber::gherkin::Step;
use cucumber::{given, then, when};
use reqwest::Method;
use serde_json::{json, Map, Value};

/// What the Create API key dialog sends; `None` leaves a field out.
#[derive(Default)]
struct Dialog {
    name: Option<String>,
    scopes: Option<String>,
    expires: Option<String>,
    domains: Option<String>,
    /// As the page says it: "100 per minute".
    rate_limit: Option<String>,
}

async fn create(w: &mut Esqase, who: &str, dialog: Dialog) -> anyhow::Result<Answer> {
    let mut body = Map::new();
    if let Some(name) = &dialog.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(scopes) = &dialog.scopes {
        body.insert("scopes".into(), json!(list(scopes)));
    }
    if let Some(expires) = &dialog.expires {
        body.insert("expires_at".into(), json!(expires));
    }
    if let Some(domains) = &dialog.domains {
        // The textarea's raw text, as one entry: the API splits it on commas and newlines.
        body.insert("allowed_domains".into(), json!([domains]));
    }
    if let Some(words) = &dialog.rate_limit {
        body.insert("rate_limit".into(), super::rate_limits::rate_limit_from_words(words)?);
    }
    let answer = w.call_as(who, Method::POST, "/v1/api-keys", Some(Value::Object(body))).await?;
    if answer.status == 201 {
        let name = dialog.name.unwrap_or_default();
        let key = &answer.body["api_key"];
        w.keys.insert(
            name,
            Key {
                id: key["id"].as_str().unwrap_or_default().to_owned(),
                secret: answer.body["secret"].as_str().unwrap_or_default().to_owned(),
                created: key.clone(),
                creator: who.to_owned(),
            },
        );
    }
    Ok(answer)
}

fn dialog_from_table(step: &Step) -> anyhow::Result<Dialog> {
    let table = step.table.as_ref().ok_or_else(|| anyhow!("the step needs a table"))?;
    let mut dialog = Dialog::default();
    for row in &table.rows {
        let (field, value) = (row[0].as_str(), row.get(1).cloned().unwrap_or_default());
        match field {
            "Name" => dialog.name = Some(value),
            "Scopes" => dialog.scopes = Some(value),
            "Expires" => dialog.expires = Some(value),
            "Allowed domains" => dialog.domains = Some(value),
            "Rate limit" => dialog.rate_limit = Some(value),
            other => return Err(anyhow!("the dialog has no field {other:?}")),
        }
    }
    Ok(dialog)
}

fn docstring(step: &Step) -> anyhow::Result<String> {
    let text = step.docstring.as_ref().ok_or_else(|| anyhow!("the step needs a doc string"))?;
    Ok(text.trim().to_owned())
}

#[given(regex = r#"^(\w+) has created an API key "([^"]*)" for "([^"]*)"$"#)]
async fn has_created(w: &mut Esqase, who: String, name: String, scopes: String) -> anyhow::Result<()> {
    let dialog = Dialog { name: Some(name), scopes: Some(scopes), ..Dialog::default() };
    create(w, &who, dialog).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^(\w+) (?:creates|tries to create) an API key "([^"]*)" for "([^"]*)"$"#)]
async fn creates(w: &mut Esqase, who: String, name: String, scopes: String) -> anyhow::Result<()> {
    let dialog = Dialog { name: Some(name), scopes: Some(scopes), ..Dialog::default() };
    create(w, &who, dialog).await?;
    Ok(())
}

#[given(regex = r#"^(\w+) has created an API key with:$"#)]
async fn has_created_with(w: &mut Esqase, step: &Step, who: String) -> anyhow::Result<()> {
    create(w, &who, dialog_from_table(step)?).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^(\w+) (?:creates|tries to create) an API key with:$"#)]
async fn creates_with(w: &mut Esqase, step: &Step, who: String) -> anyhow::Result<()> {
    create(w, &who, dialog_from_table(step)?).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) creates an API key "([^"]*)" for "([^"]*)" with the allowed domains:$"#)]
async fn creates_with_domains(
    w: &mut Esqase,
    step: &Step,
    who: String,
    name: String,
    scopes: String,
) -> anyhow::Result<()> {
    let dialog =
        Dialog { name: Some(name), scopes: Some(scopes), domains: Some(docstring(step)?), ..Dialog::default() };
    create(w, &who, dialog).await?;
    Ok(())
}

#[given(regex = r#"^(\w+) has created an API key "([^"]*)" for "([^"]*)" that expires in (\d+) seconds$"#)]
async fn has_created_expiring(
    w: &mut Esqase,
    who: String,
    name: String,
    scopes: String,
    seconds: u64,
) -> anyhow::Result<()> {
    let (expires, at) = rfc3339_in(seconds);
    let dialog = Dialog { name: Some(name.clone()), scopes: Some(scopes), expires: Some(expires), ..Dialog::default() };
    create(w, &who, dialog).await?.expect(201)?;
    w.expiring.insert(name, at);
    Ok(())
}

#[when(regex = r#"^the expiry time of "([^"]+)" has passed$"#)]
async fn expiry_passes(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let at = *w.expiring.get(&name).ok_or_else(|| anyhow!("{name:?} has no expiry"))?;
    let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait + std::time::Duration::from_millis(300)).await;
    Ok(())
}

#[then(regex = r#"^the key is created$"#)]
async fn key_is_created(w: &mut Esqase) -> anyhow::Result<()> {
    let body = w.last()?.expect(201)?;
    ensure!(body["api_key"]["status"] == "active", "status: {body}");
    ensure!(body["secret"].as_str().is_some_and(|s| s.starts_with("esq_")), "secret: {body}");
    Ok(())
}

#[then(regex = r#"^the full key starts with "esq_" followed by a long random string$"#)]
async fn full_key_shape(w: &mut Esqase) -> anyhow::Result<()> {
    let body = w.last()?.expect(201)?;
    let secret = body["secret"].as_str().unwrap_or_default();
    let rest = secret.strip_prefix("esq_").ok_or_else(|| anyhow!("the key {secret:?} does not start with esq_"))?;
    ensure!(rest.len() == 38 && rest.chars().all(|c| c.is_ascii_alphanumeric()), "the key {secret:?}");
    Ok(())
}

#[then(regex = r#"^the answer may not be kept in any cache$"#)]
async fn no_store(w: &mut Esqase) -> anyhow::Result<()> {
    let answer = w.last()?;
    let cache = answer.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure!(cache.contains("no-store"), "Cache-Control: {cache:?}");
    Ok(())
}

#[then(regex = r#"^the full key of "([^"]+)" appears nowhere on the API keys page$"#)]
async fn secret_not_in_table(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let key = w.key(&name)?.clone();
    let owner = w.owner_of(&w.person(&key.creator)?.firm.clone())?.name.clone();
    for path in ["/v1/api-keys", "/v1/api-keys?limit=100", "/v1/api-keys?status=active", "/v1/api-keys?status=revoked"]
    {
        let answer = w.call_as(&owner, Method::GET, path, None).await?;
        answer.expect(200)?;
        ensure!(!answer.text.contains(&key.secret), "GET {path} shows the full key");
        ensure!(!answer.text.contains(&key.secret[4..]), "GET {path} shows the key's random part");
    }
    Ok(())
}

#[then(regex = r#"^the full key of "([^"]+)" does not appear when (\w+) opens the key$"#)]
async fn secret_not_in_get(w: &mut Esqase, name: String, who: String) -> anyhow::Result<()> {
    let key = w.key(&name)?.clone();
    let answer = w.call_as(&who, Method::GET, &format!("/v1/api-keys/{}", key.id), None).await?;
    answer.expect(200)?;
    ensure!(!answer.text.contains(&key.secret), "GET /v1/api-keys/{{id}} shows the full key");
    ensure!(!answer.text.contains(&key.secret[4..]), "GET /v1/api-keys/{{id}} shows the key's random part");
    ensure!(answer.body.get("secret").is_none(), "a secret field: {}", answer.text);
    Ok(())
}

#[then(regex = r#"^the answer does not show the full key of "([^"]+)"$"#)]
async fn secret_not_in_answer(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let secret = w.key(&name)?.secret.clone();
    let answer = w.last()?;
    answer.expect(200)?;
    ensure!(!answer.text.contains(&secret), "the answer shows the full key");
    ensure!(answer.body.get("secret").is_none(), "a secret field: {}", answer.text);
    Ok(())
}

#[then(regex = r#"^the full keys of "([^"]+)" and "([^"]+)" are different$"#)]
async fn secrets_differ(w: &mut Esqase, a: String, b: String) -> anyhow::Result<()> {
    let (a, b) = (w.key(&a)?, w.key(&b)?);
    ensure!(a.secret != b.secret && a.secret[4..10] != b.secret[4..10], "two keys share a full key");
    Ok(())
}

#[then(regex = r#"^the Key column of "([^"]+)" shows its masked preview$"#)]
async fn masked_preview(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let key = w.key(&name)?.clone();
    let owner = w.owner_of(&w.person(&key.creator)?.firm.clone())?.name.clone();
    let row = w.row(&owner, &name).await?;
    let secret = &key.secret;
    let expected = format!("esq_{}\u{2026}{}", &secret[4..10], &secret[secret.len() - 4..]);
    ensure!(
        row["preview"] == expected.as_str(),
        "preview {} for the key {secret}; expected {expected}",
        row["preview"]
    );
    ensure!(key.created["preview"] == expected.as_str(), "the create response's preview: {}", key.created);
    Ok(())
}

fn status_word(status: &str) -> String {
    status.to_lowercase()
}

#[then(regex = r#"^(\w+) sees the API key "([^"]+)" as (Active|Revoked|Expired)$"#)]
async fn sees_status(w: &mut Esqase, who: String, name: String, status: String) -> anyhow::Result<()> {
    let row = w.row(&who, &name).await?;
    ensure!(row["status"] == status_word(&status).as_str(), "{name}: {row}");
    let id = w.key(&name)?.id.clone();
    let one = w.call_as(&who, Method::GET, &format!("/v1/api-keys/{id}"), None).await?;
    ensure!(one.expect(200)?["status"] == status_word(&status).as_str(), "{name} opened: {}", one.text);
    Ok(())
}

#[then(regex = r#"^(\w+) sees a row for "([^"]+)" with:$"#)]
async fn sees_row(w: &mut Esqase, step: &Step, who: String, name: String) -> anyhow::Result<()> {
    let row = w.row(&who, &name).await?;
    let table = step.table.as_ref().ok_or_else(|| anyhow!("the step needs a table"))?;
    for cells in &table.rows {
        let (column, expected) = (cells[0].as_str(), cells[1].as_str());
        let ok = match column {
            "Name" => row["name"] == expected,
            "Scopes" => {
                let mut shown = strings(&row["scopes"])?;
                let mut wanted = list(expected);
                shown.sort();
                wanted.sort();
                shown == wanted
            }
            "Allowed domains" if expected == "Any" => row["allowed_domains"] == json!([]),
            "Allowed domains" => strings(&row["allowed_domains"])? == list(expected),
            "Status" => row["status"] == status_word(expected).as_str(),
            "Last used" if expected == "-" => row["last_used_at"].is_null(),
            "Expires" if expected == "-" => row["expires_at"].is_null(),
            "Expires" => row["expires_at"] == expected,
            "Created by" => {
                let id = w.person(expected)?.id.clone();
                row["created_by"]["name"] == expected && row["created_by"]["id"] == id.as_str()
            }
            other => return Err(anyhow!("the table has no column {other:?}")),
        };
        ensure!(ok, "{column} of {name:?} is not {expected:?}: {row}");
    }
    Ok(())
}

#[then(regex = r#"^the API key "([^"]+)" looks the same when (\w+) opens it$"#)]
async fn same_when_opened(w: &mut Esqase, name: String, who: String) -> anyhow::Result<()> {
    let row = w.row(&who, &name).await?;
    let id = w.key(&name)?.id.clone();
    let one = w.call_as(&who, Method::GET, &format!("/v1/api-keys/{id}"), None).await?;
    ensure!(*one.expect(200)? == row, "opened: {}\nrow: {row}", one.text);
    Ok(())
}

#[then(regex = r#"^the API key "([^"]+)" was revoked by no one$"#)]
async fn revoked_by_no_one(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let key = w.key_as_seen_by_its_firm(&name).await?;
    ensure!(key["status"] == "revoked" && key["revoked_at"].is_string(), "{name}: {key}");
    ensure!(key["revoked_by"].is_null(), "{name} names who revoked it: {key}");
    Ok(())
}

#[then(regex = r#"^the API key "([^"]+)" was revoked by (\w+)$"#)]
async fn revoked_by(w: &mut Esqase, name: String, who: String) -> anyhow::Result<()> {
    let key = w.key_as_seen_by_its_firm(&name).await?;
    let id = w.person(&who)?.id.clone();
    ensure!(key["status"] == "revoked" && key["revoked_at"].is_string(), "{name}: {key}");
    ensure!(key["revoked_by"]["id"] == id.as_str() && key["revoked_by"]["name"] == who.as_str(), "{name}: {key}");
    Ok(())
}

#[then(regex = r#"^(\w+)'s API keys page is empty$"#)]
async fn page_is_empty(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let answer = w.call_as(&who, Method::GET, "/v1/api-keys", None).await?;
    let page = answer.expect(200)?;
    ensure!(page["data"] == json!([]), "keys: {page}");
    ensure!(page["next_cursor"].is_null() && page["prev_cursor"].is_null(), "buttons: {page}");
    Ok(())
}

async fn open_page(w: &mut Esqase, who: &str, path: String) -> anyhow::Result<()> {
    w.page_path = Some(path.clone());
    w.call_as(who, Method::GET, &path, None).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) opens the API keys page$"#)]
async fn opens_page(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    open_page(w, &who, "/v1/api-keys?limit=25".into()).await
}

#[when(regex = r#"^(\w+) opens the API keys page showing (\d+) keys per page$"#)]
async fn opens_page_limit(w: &mut Esqase, who: String, limit: u32) -> anyhow::Result<()> {
    open_page(w, &who, format!("/v1/api-keys?limit={limit}")).await
}

#[when(regex = r#"^(\w+) opens the API keys page filtered to (\w+) keys$"#)]
async fn opens_page_filtered(w: &mut Esqase, who: String, status: String) -> anyhow::Result<()> {
    open_page(w, &who, format!("/v1/api-keys?status={status}")).await
}

#[when(regex = r#"^(\w+) clicks (Next|Previous)$"#)]
async fn clicks(w: &mut Esqase, who: String, button: String) -> anyhow::Result<()> {
    let field = if button == "Next" { "next_cursor" } else { "prev_cursor" };
    let page = w.last()?.expect(200)?.clone();
    let cursor = page[field].as_str().ok_or_else(|| anyhow!("there is no {button} button: {page}"))?.to_owned();
    let path = w.page_path.clone().ok_or_else(|| anyhow!("the API keys page is not open"))?;
    w.call_as(&who, Method::GET, &format!("{path}&cursor={cursor}"), None).await?;
    Ok(())
}

#[then(regex = r#"^the page shows (.+)$"#)]
async fn page_shows(w: &mut Esqase, names: String) -> anyhow::Result<()> {
    let page = w.last()?.expect(200)?;
    let shown: Vec<String> =
        page["data"].as_array().into_iter().flatten().filter_map(|k| k["name"].as_str().map(str::to_owned)).collect();
    ensure!(shown == quoted(&names), "the page shows {shown:?}");
    Ok(())
}

#[then(regex = r#"^there is a (Next|Previous) button but no (Next|Previous) button$"#)]
async fn buttons(w: &mut Esqase, shown: String, hidden: String) -> anyhow::Result<()> {
    let page = w.last()?.expect(200)?;
    let cursor = |button: &str| if button == "Next" { &page["next_cursor"] } else { &page["prev_cursor"] };
    ensure!(cursor(&shown).is_string(), "no {shown} button: {page}");
    ensure!(cursor(&hidden).is_null(), "a {hidden} button: {page}");
    Ok(())
}

#[when(regex = r#"^(\w+) opens the API key "([^"]+)"$"#)]
async fn opens_key(w: &mut Esqase, who: String, name: String) -> anyhow::Result<()> {
    let id = w.key(&name)?.id.clone();
    w.call_as(&who, Method::GET, &format!("/v1/api-keys/{id}"), None).await?;
    Ok(())
}

async fn save_domains(w: &mut Esqase, who: &str, name: &str, domains: Value) -> anyhow::Result<Answer> {
    let id = w.key(name)?.id.clone();
    let body = json!({ "allowed_domains": domains });
    w.call_as(who, Method::PUT, &format!("/v1/api-keys/{id}/allowed-domains"), Some(body)).await
}

#[when(regex = r#"^(\w+) (?:saves|tries to save) the allowed domains of "([^"]+)" as:$"#)]
async fn saves_domains(w: &mut Esqase, step: &Step, who: String, name: String) -> anyhow::Result<()> {
    save_domains(w, &who, &name, json!([docstring(step)?])).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) clears the allowed domains of "([^"]+)"$"#)]
async fn clears_domains(w: &mut Esqase, who: String, name: String) -> anyhow::Result<()> {
    save_domains(w, &who, &name, json!([])).await?;
    Ok(())
}

#[then(regex = r#"^the domains are saved$"#)]
async fn domains_saved(w: &mut Esqase) -> anyhow::Result<()> {
    let body = w.last()?.expect(200)?;
    ensure!(body["status"] == "active", "{body}");
    Ok(())
}

#[then(regex = r#"^the allowed domains of "([^"]+)" are "([^"]*)"$"#)]
async fn allowed_domains_are(w: &mut Esqase, name: String, expected: String) -> anyhow::Result<()> {
    let key = w.key_as_seen_by_its_firm(&name).await?;
    let expected = if expected == "Any" { Vec::new() } else { list(&expected) };
    ensure!(strings(&key["allowed_domains"])? == expected, "{name}: {key}");
    Ok(())
}

#[then(regex = r#"^the scopes and expiry of "([^"]+)" are unchanged$"#)]
async fn scopes_and_expiry_unchanged(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let created = w.key(&name)?.created.clone();
    let key = w.key_as_seen_by_its_firm(&name).await?;
    ensure!(key["scopes"] == created["scopes"], "scopes: {key}\nwas: {created}");
    ensure!(key["expires_at"] == created["expires_at"], "expiry: {key}\nwas: {created}");
    ensure!(key["name"] == created["name"] && key["preview"] == created["preview"], "{key}\nwas: {created}");
    Ok(())
}

async fn revoke(w: &mut Esqase, who: &str, name: &str) -> anyhow::Result<Answer> {
    let id = w.key(name)?.id.clone();
    w.call_as(who, Method::POST, &format!("/v1/api-keys/{id}/revoke"), None).await
}

#[given(regex = r#"^(\w+) has revoked the API key "([^"]+)"$"#)]
async fn has_revoked(w: &mut Esqase, who: String, name: String) -> anyhow::Result<()> {
    revoke(w, &who, &name).await?.expect(200)?;
    Ok(())
}

#[when(regex = r#"^(\w+) (?:revokes|tries to revoke) the API key "([^"]+)"$"#)]
async fn revokes(w: &mut Esqase, who: String, name: String) -> anyhow::Result<()> {
    revoke(w, &who, &name).await?;
    Ok(())
}

#[then(regex = r#"^the key is revoked by (\w+)$"#)]
async fn key_is_revoked_by(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let id = w.person(&who)?.id.clone();
    let key = w.last()?.expect(200)?;
    ensure!(key["status"] == "revoked" && key["revoked_at"].is_string(), "{key}");
    ensure!(key["revoked_by"]["id"] == id.as_str() && key["revoked_by"]["name"] == who.as_str(), "{key}");
    Ok(())
}
