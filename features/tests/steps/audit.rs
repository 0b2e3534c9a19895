//! The audit log: entries with their actor, target and details; who may read it; the hash chain.

use super::world::Esqase;
use anyhow::{anyhow, ensure, Context as _};
use cucumber::{then, when};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The entries of the last audit log answer, newest first.
fn entries(w: &Esqase) -> anyhow::Result<Vec<Value>> {
    let answer = w.last()?;
    let page = answer.expect(200)?;
    Ok(page["data"].as_array().cloned().unwrap_or_default())
}

/// The entry the last "latest entry is" step found.
fn current_entry(w: &Esqase) -> anyhow::Result<Value> {
    entries(w)?.into_iter().next().ok_or_else(|| anyhow!("the audit log is empty"))
}

#[when(regex = r#"^(\w+) (?:opens|tries to open) the audit log$"#)]
async fn opens(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    w.call_as(&who, Method::GET, "/v1/audit-log?limit=100", None).await?;
    Ok(())
}

fn check_entry(entry: &Value, action: &str, actor: Option<&str>, target: (&str, &str)) -> anyhow::Result<()> {
    ensure!(entry["action"] == action, "expected {action}, the entry is {entry}");
    match actor {
        Some(name) => ensure!(
            entry["actor"]["type"] == "member" && entry["actor"]["name"] == name,
            "expected {name} as the actor: {entry}"
        ),
        None => ensure!(entry["actor"] == json!({"type": "system", "id": null, "name": null}), "{entry}"),
    }
    let (kind, name) = target;
    ensure!(entry["target"]["type"] == kind && entry["target"]["name"] == name, "expected {kind} {name}: {entry}");
    Ok(())
}

#[then(regex = r#"^the latest entry is "([^"]+)" by (\w+) on the API key "([^"]+)"$"#)]
async fn latest_on_key(w: &mut Esqase, action: String, who: String, key: String) -> anyhow::Result<()> {
    let entry = current_entry(w)?;
    check_entry(&entry, &action, Some(&who), ("api_key", &key))?;
    ensure!(entry["target"]["id"] == w.key(&key)?.id.as_str(), "{entry}");
    ensure!(entry["actor"]["id"] == w.person(&who)?.id.as_str(), "{entry}");
    Ok(())
}

#[then(regex = r#"^the latest entry is "([^"]+)" by the system on (\w+)$"#)]
async fn latest_by_system_on_member(w: &mut Esqase, action: String, member: String) -> anyhow::Result<()> {
    let entry = current_entry(w)?;
    let name = w.person(&member)?.name.clone();
    check_entry(&entry, &action, None, ("member", &name))?;
    ensure!(entry["target"]["id"] == w.person(&member)?.id.as_str(), "{entry}");
    Ok(())
}

#[then(regex = r#"^the latest entry is "([^"]+)" by (\w+) on the (\w+) role$"#)]
async fn latest_on_role(w: &mut Esqase, action: String, who: String, role: String) -> anyhow::Result<()> {
    check_entry(&current_entry(w)?, &action, Some(&who), ("role", &role))
}

#[then(regex = r#"^the entry's "([^"]+)" (?:is|are) (.+)$"#)]
async fn detail_is(w: &mut Esqase, field: String, value: String) -> anyhow::Result<()> {
    let expected: Value = serde_json::from_str(&value).with_context(|| format!("{value} is not JSON"))?;
    let entry = current_entry(w)?;
    ensure!(entry["details"][&field] == expected, "expected {field} = {expected}: {entry}");
    Ok(())
}

#[then(regex = r#"^the entry's "([^"]+)" (include|do not include) "([^"]+)"$"#)]
async fn detail_includes(w: &mut Esqase, field: String, includes: String, item: String) -> anyhow::Result<()> {
    let entry = current_entry(w)?;
    let list = entry["details"][&field].as_array().ok_or_else(|| anyhow!("{field} is not a list: {entry}"))?;
    ensure!(list.contains(&json!(item)) == (includes == "include"), "{field} {includes} {item}: {entry}");
    Ok(())
}

#[then(regex = r#"^the audit log soon shows "([^"]+)" by the system on the API key "([^"]+)"$"#)]
async fn soon_shows(w: &mut Esqase, action: String, key: String) -> anyhow::Result<()> {
    // The expiry sweeper records an expiry shortly after the instant passes.
    let owner = w.owner_of(&w.main_firm.clone().unwrap_or_default())?.name.clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let answer = w.call_as(&owner, Method::GET, &format!("/v1/audit-log?action={action}"), None).await?;
        if let Some(entry) = answer.expect(200)?["data"].as_array().and_then(|d| d.first()).cloned() {
            check_entry(&entry, &action, None, ("api_key", &key))?;
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "no {action} entry within 15 seconds");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[then(regex = r#"^the audit log holds no key's secret or hash$"#)]
async fn no_secrets(w: &mut Esqase) -> anyhow::Result<()> {
    let text = w.last()?.text.clone();
    ensure!(!text.contains("key_hash"), "{text}");
    for key in w.keys.values() {
        ensure!(!key.secret.is_empty() && !text.contains(&key.secret), "a secret in the audit log: {text}");
        ensure!(!text.contains(&key.secret[4..36]), "a secret's random part in the audit log: {text}");
    }
    Ok(())
}

#[then(regex = r#"^no entry mentions the API key "([^"]+)"$"#)]
async fn no_mention(w: &mut Esqase, key: String) -> anyhow::Result<()> {
    let id = w.key(&key)?.id.clone();
    let text = w.last()?.text.clone();
    ensure!(w.last()?.status == 200, "{text}");
    ensure!(!text.contains(&id) && !text.contains(&key), "another firm's key in the audit log: {text}");
    Ok(())
}

async fn verify(w: &mut Esqase) -> anyhow::Result<Value> {
    let owner = w.owner_of(&w.main_firm.clone().unwrap_or_default())?.name.clone();
    Ok(w.call_as(&owner, Method::GET, "/v1/audit-log/verify", None).await?.expect(200)?.clone())
}

#[then(regex = r#"^the audit log is intact with (\d+) entries$"#)]
async fn intact(w: &mut Esqase, count: u64) -> anyhow::Result<()> {
    let answer = verify(w).await?;
    ensure!(answer == json!({"ok": true, "entries": count}), "{answer}");
    Ok(())
}

#[then(regex = r#"^the audit log is broken at entry (\d+)$"#)]
async fn broken(w: &mut Esqase, sequence: u64) -> anyhow::Result<()> {
    let answer = verify(w).await?;
    ensure!(answer["ok"] == false && answer["first_broken_sequence"] == sequence, "{answer}");
    Ok(())
}

#[when(regex = r#"^someone edits the details of entry (\d+) directly in the database$"#)]
async fn tampers(w: &mut Esqase, sequence: i64) -> anyhow::Result<()> {
    let owner_id = w.owner_of(&w.main_firm.clone().unwrap_or_default())?.id.clone();
    let url = w.service.0.as_ref().ok_or_else(|| anyhow!("the service has stopped"))?.settings.database_url.clone();
    let pool = sqlx::PgPool::connect(&url).await?;
    let changed = sqlx::query(
        "UPDATE audit_log SET details = details || '{\"tampered\": true}'
         WHERE sequence = $2 AND firm_id = (SELECT firm_id FROM members WHERE id = $1::uuid)",
    )
    .bind(&owner_id)
    .bind(sequence)
    .execute(&pool)
    .await?;
    pool.close().await;
    ensure!(changed.rows_affected() == 1, "no entry {sequence} to edit");
    Ok(())
}
