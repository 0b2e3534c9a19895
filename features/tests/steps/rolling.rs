//! Rolling a key: a new key with the old one's settings, and a grace period for the old one.

use super::world::{Esqase, Key};
use anyhow::{anyhow, ensure};
use cucumber::{then, when};
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, SystemTime};

/// Rolls `old` as `who`, the old key stopping after `seconds`; the new key is known as `new`.
async fn roll(w: &mut Esqase, who: &str, old: &str, new: &str, seconds: u64) -> anyhow::Result<()> {
    let id = w.key(old)?.id.clone();
    let path = format!("/v1/api-keys/{id}/roll");
    let answer = w.call_as(who, Method::POST, &path, Some(json!({ "grace_period_seconds": seconds }))).await?;
    if answer.status == 201 {
        let key = &answer.body["api_key"];
        let secret = answer.body["secret"].as_str().unwrap_or_default().to_owned();
        let rolled = Key {
            id: key["id"].as_str().unwrap_or_default().to_owned(),
            secret,
            created: key.clone(),
            creator: who.to_owned(),
        };
        w.keys.insert(new.to_owned(), rolled);
        w.expiring.insert(old.to_owned(), SystemTime::now() + Duration::from_secs(seconds));
    }
    Ok(())
}

#[when(
    regex = r#"^(\w+) (?:rolls|tries to roll) the API key "([^"]+)" as "([^"]+)", the old key stopping in (\d+) seconds?$"#
)]
async fn rolls_in(w: &mut Esqase, who: String, old: String, new: String, seconds: u64) -> anyhow::Result<()> {
    roll(w, &who, &old, &new, seconds).await
}

#[when(regex = r#"^(\w+) rolls the API key "([^"]+)" as "([^"]+)", the old key stopping now$"#)]
async fn rolls_now(w: &mut Esqase, who: String, old: String, new: String) -> anyhow::Result<()> {
    roll(w, &who, &old, &new, 0).await
}

#[when(regex = r#"^the grace period of "([^"]+)" has ended$"#)]
async fn grace_ends(w: &mut Esqase, name: String) -> anyhow::Result<()> {
    let at = *w.expiring.get(&name).ok_or_else(|| anyhow!("{name:?} was not rolled"))?;
    let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(300)).await;
    Ok(())
}

#[then(
    regex = r#"^the new key "([^"]+)" is shown once, with the name, scopes, domains, rate limit and expiry of "([^"]+)"$"#
)]
async fn shown_once(w: &mut Esqase, new: String, old: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    let body = answer.expect(201)?;
    ensure!(answer.headers.get("cache-control").is_some_and(|v| v == "no-store"), "the answer may be cached");
    let (new_key, old_key) = (w.key(&new)?, w.key(&old)?);
    ensure!(new_key.secret.starts_with("esq_") && new_key.secret != old_key.secret, "{body}");
    for field in ["name", "scopes", "allowed_domains", "rate_limit", "expires_at"] {
        ensure!(body["api_key"][field] == old_key.created[field], "{field} differs: {body}");
    }
    ensure!(body["api_key"]["replaces"] == old_key.id.as_str(), "{body}");
    ensure!(body["replaces"]["replaced_by"] == new_key.id.as_str(), "{body}");
    Ok(())
}
