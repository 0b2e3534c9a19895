//! Rate limits: set on create (the dialog's "Rate limit" row), changed and removed later, and
//! what a limited key is told on every answer.

use super::world::Esqase;
use anyhow::{anyhow, ensure};
use cucumber::{then, when};
use reqwest::Method;
use serde_json::{json, Value};

/// A limit as the page says it ("100 per minute", "5 per 30 seconds") as the API takes it.
pub fn rate_limit_from_words(words: &str) -> anyhow::Result<Value> {
    let (limit, per) = words.split_once(" per ").ok_or_else(|| anyhow!("{words:?} is not \"N per …\""))?;
    let window_seconds = match per {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        other => other
            .strip_suffix(" seconds")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("{other:?} is not a window"))?,
    };
    let limit: i64 = limit.trim().parse().map_err(|_| anyhow!("{limit:?} is not a number"))?;
    Ok(json!({ "limit": limit, "window_seconds": window_seconds }))
}

async fn put_limit(w: &mut Esqase, who: &str, key: &str, rate_limit: Value) -> anyhow::Result<()> {
    let id = w.key(key)?.id.clone();
    let path = format!("/v1/api-keys/{id}/rate-limit");
    w.call_as(who, Method::PUT, &path, Some(json!({ "rate_limit": rate_limit }))).await?;
    Ok(())
}

#[when(regex = r#"^(\w+) (?:sets|tries to set) the rate limit of "([^"]+)" to (.+)$"#)]
async fn sets(w: &mut Esqase, who: String, key: String, words: String) -> anyhow::Result<()> {
    put_limit(w, &who, &key, rate_limit_from_words(&words)?).await
}

#[when(regex = r#"^(\w+) removes the rate limit of "([^"]+)"$"#)]
async fn removes(w: &mut Esqase, who: String, key: String) -> anyhow::Result<()> {
    put_limit(w, &who, &key, Value::Null).await?;
    w.last()?.expect(200)?;
    Ok(())
}

#[then(regex = r#"^the rate limit of "([^"]+)" is (none|.+ per .+)$"#)]
async fn rate_limit_is(w: &mut Esqase, key: String, words: String) -> anyhow::Result<()> {
    let expected = if words == "none" { Value::Null } else { rate_limit_from_words(&words)? };
    let shown = w.key_as_seen_by_its_firm(&key).await?;
    ensure!(shown["rate_limit"] == expected, "expected {expected}: {shown}");
    Ok(())
}

#[when(regex = r#"^"([^"]+)" lists the contacts (\d+) times$"#)]
async fn lists_times(w: &mut Esqase, key: String, times: usize) -> anyhow::Result<()> {
    let secret = w.key(&key)?.secret.clone();
    for _ in 0..times {
        w.call(Method::GET, "/v1/contacts", Some(&secret), None).await?.expect(200)?;
    }
    Ok(())
}

#[then(regex = r#"^each answer said how many requests were left: (.+)$"#)]
async fn each_said_left(w: &mut Esqase, counts: String) -> anyhow::Result<()> {
    let expected: Vec<String> = counts.split(',').map(|c| c.trim().to_owned()).collect();
    let answers = w.answers.iter().rev().take(expected.len()).rev();
    let told: Vec<String> = answers
        .map(|answer| {
            let field = answer.header("ratelimit");
            field.split(';').find_map(|part| part.strip_prefix("r=")).unwrap_or("(none)").to_owned()
        })
        .collect();
    ensure!(told == expected, "the answers said {told:?} were left");
    let policy = w.last()?.header("ratelimit-policy");
    ensure!(policy.starts_with("\"api-key\";q="), "the policy: {policy:?}");
    Ok(())
}
