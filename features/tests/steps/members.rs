//! Signing up, sessions, members and the roles-and-permissions grid.

use super::world::{quoted, strings, Answer, Esqase, Person, PASSWORD};
use anyhow::{anyhow, ensure};
use cucumber::{given, then, when};
use reqwest::Method;
use serde_json::{json, Value};

async fn sign_up(w: &mut Esqase, firm: &str, zone: Option<&str>, owner: &str) -> anyhow::Result<Answer> {
    let email = w.email_for(owner);
    let mut body = json!({ "firm_name": firm, "owner": { "name": owner, "email": email, "password": PASSWORD } });
    if let Some(zone) = zone {
        body["time_zone"] = json!(zone);
    }
    w.signup = Some((firm.to_owned(), zone.unwrap_or("UTC").to_owned(), owner.to_owned()));
    let answer = w.call(Method::POST, "/v1/firms", None, Some(body)).await?;
    if answer.status == 201 {
        let j = &answer.body;
        w.firms.insert(firm.to_owned(), zone.unwrap_or("UTC").to_owned());
        if w.main_firm.is_none() {
            w.main_firm = Some(firm.to_owned());
        }
        w.people.insert(
            owner.to_owned(),
            Person {
                name: owner.to_owned(),
                email,
                id: j["member"]["id"].as_str().unwrap_or_default().to_owned(),
                firm: firm.to_owned(),
                role: "owner".into(),
                token: j["session"]["token"].as_str().map(str::to_owned),
                ..Person::default()
            },
        );
    }
    Ok(answer)
}

#[given(regex = r#"^a firm "([^"]+)" in the "([^"]+)" time zone whose owner is (\w+)$"#)]
async fn a_firm_in_zone(w: &mut Esqase, firm: String, zone: String, owner: String) -> anyhow::Result<()> {
    sign_up(w, &firm, Some(&zone), &owner).await?.expect(201)?;
    Ok(())
}

#[given(regex = r#"^a firm "([^"]+)" whose owner is (\w+)$"#)]
async fn a_firm(w: &mut Esqase, firm: String, owner: String) -> anyhow::Result<()> {
    sign_up(w, &firm, None, &owner).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^someone signs up the firm "([^"]+)" in the "([^"]+)" time zone with (\w+) as its owner$"#)]
async fn signs_up_in_zone(w: &mut Esqase, firm: String, zone: String, owner: String) -> anyhow::Result<()> {
    sign_up(w, &firm, Some(&zone), &owner).await?;
    Ok(())
}

#[when(regex = r#"^someone signs up the firm "([^"]+)" with (\w+) as its owner$"#)]
async fn signs_up(w: &mut Esqase, firm: String, owner: String) -> anyhow::Result<()> {
    sign_up(w, &firm, None, &owner).await?;
    Ok(())
}

#[when(regex = r#"^someone signs up a firm with (\w+)'s email address$"#)]
async fn signs_up_with_taken_email(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    // The same address in another case is the same address.
    let email = w.person(&who)?.email.to_uppercase();
    let body =
        json!({ "firm_name": "Copycat Law", "owner": { "name": "Copy Cat", "email": email, "password": PASSWORD } });
    w.call(Method::POST, "/v1/firms", None, Some(body)).await?;
    Ok(())
}

#[when(regex = r#"^someone signs up a firm with no firm name, the time zone "([^"]+)" and the password "([^"]*)"$"#)]
async fn signs_up_badly(w: &mut Esqase, zone: String, password: String) -> anyhow::Result<()> {
    let email = w.email_for("hasty");
    let body = json!({ "time_zone": zone, "owner": { "name": "Hasty", "email": email, "password": password } });
    w.call(Method::POST, "/v1/firms", None, Some(body)).await?;
    Ok(())
}

#[then(regex = r#"^the firm "([^"]+)" is created in the "([^"]+)" time zone$"#)]
async fn firm_is_created(w: &mut Esqase, firm: String, zone: String) -> anyhow::Result<()> {
    let answer = w.last()?.clone();
    let body = answer.expect(201)?;
    ensure!(body["firm"]["name"] == firm.as_str(), "firm name: {body}");
    ensure!(body["firm"]["time_zone"] == zone.as_str(), "time zone: {body}");
    ensure!(body["firm"]["id"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()), "firm id: {body}");
    Ok(())
}

#[then(regex = r#"^(\w+) is its owner, signed in with a session$"#)]
async fn is_its_owner(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let body = w.last()?.expect(201)?.clone();
    let person = w.person(&who)?;
    let member = &body["member"];
    ensure!(member["name"] == who.as_str() && member["email"] == person.email.as_str(), "member: {member}");
    ensure!(member["role"] == "owner" && member["status"] == "active", "member: {member}");
    ensure!(member["firm_id"] == body["firm"]["id"], "member's firm: {body}");
    let token = body["session"]["token"].as_str().unwrap_or_default();
    ensure!(token.starts_with("esqs_") && token.len() > 20, "session token: {token}");
    ensure!(body["session"]["expires_at"].is_string(), "session expiry: {body}");
    Ok(())
}

#[then(regex = r#"^(\w+) is listed as an? (active|removed) (\w+) member of the firm$"#)]
async fn is_listed(w: &mut Esqase, who: String, status: String, role: String) -> anyhow::Result<()> {
    let person = w.person(&who)?.clone();
    let owner = w.owner_of(&person.firm)?.name.clone();
    let answer = w.call_as(&owner, Method::GET, "/v1/members?limit=100", None).await?;
    let rows = answer.expect(200)?["data"].as_array().cloned().unwrap_or_default();
    let row = rows
        .iter()
        .find(|m| m["email"] == person.email.as_str())
        .ok_or_else(|| anyhow!("{who} is not in the members list: {}", answer.text))?;
    ensure!(row["role"] == role.as_str() && row["status"] == status.as_str(), "{who}: {row}");
    ensure!(row["name"] == who.as_str() && row["id"] == person.id.as_str(), "{who}: {row}");
    Ok(())
}

#[then(regex = r#"^it is refused with (\d+) (\w+)$"#)]
async fn refused(w: &mut Esqase, status: u16, code: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    ensure!(answer.status == status, "expected {status} {code}, got {}: {}", answer.status, answer.text);
    ensure!(answer.code() == code, "expected code {code}: {}", answer.text);
    let content_type = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    ensure!(content_type.starts_with("application/problem+json"), "content type {content_type}");
    ensure!(answer.body["status"] == status, "problem status: {}", answer.text);
    Ok(())
}

#[then(regex = r#"^it is refused with (\d+) (\w+) listing the fields? (.+)$"#)]
async fn refused_listing(w: &mut Esqase, status: u16, code: String, fields: String) -> anyhow::Result<()> {
    refused(w, status, code).await?;
    let answer = w.last()?;
    let errors = answer.body["errors"].as_array().cloned().unwrap_or_default();
    let mut listed: Vec<String> =
        errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect::<Vec<_>>();
    listed.sort();
    listed.dedup();
    let mut expected = quoted(&fields);
    expected.sort();
    ensure!(listed == expected, "expected errors on {expected:?}, got {}", answer.text);
    ensure!(errors.iter().all(|e| e["message"].as_str().is_some_and(|m| !m.is_empty())), "messages: {}", answer.text);
    Ok(())
}

#[then(regex = r#"^the message on "([^"]+)" mentions "([^"]+)"$"#)]
async fn message_mentions(w: &mut Esqase, field: String, text: String) -> anyhow::Result<()> {
    let answer = w.last()?;
    let errors = answer.body["errors"].as_array().cloned().unwrap_or_default();
    ensure!(
        errors.iter().any(|e| e["field"] == field.as_str() && e["message"].as_str().is_some_and(|m| m.contains(&text))),
        "no message on {field} mentions {text:?}: {}",
        answer.text
    );
    Ok(())
}

async fn log_in(w: &mut Esqase, email: String, password: &str) -> anyhow::Result<Answer> {
    let body = json!({ "email": email, "password": password });
    w.call(Method::POST, "/v1/sessions", None, Some(body)).await
}

#[when(regex = r#"^(\w+) logs in with (?:her|his|their) password$"#)]
async fn logs_in(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let email = w.person(&who)?.email.clone();
    let answer = log_in(w, email, PASSWORD).await?;
    if answer.status == 201 {
        let person = w.person_mut(&who)?;
        person.old_token = person.token.take();
        person.token = answer.body["session"]["token"].as_str().map(str::to_owned);
    }
    Ok(())
}

#[then(regex = r#"^(\w+) can log in with (?:her|his|their) password$"#)]
async fn can_log_in(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    logs_in(w, who.clone()).await?;
    has_new_session(w, who.clone()).await?;
    can_see_members(w, who).await
}

#[when(regex = r#"^someone logs in as (\w+) with a wrong password$"#)]
async fn wrong_password(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let email = w.person(&who)?.email.clone();
    log_in(w, email, "not the right password at all").await?;
    Ok(())
}

#[when(regex = r#"^someone tries (\d+) wrong passwords for (\w+)$"#)]
async fn wrong_passwords(w: &mut Esqase, n: usize, who: String) -> anyhow::Result<()> {
    for _ in 0..n {
        wrong_password(w, who.clone()).await?;
        w.last()?.expect(401)?;
    }
    Ok(())
}

#[then(regex = r#"^the answer says how many seconds to wait$"#)]
async fn says_how_long_to_wait(w: &mut Esqase) -> anyhow::Result<()> {
    let answer = w.last()?;
    let seconds: u64 =
        answer.header("retry-after").parse().map_err(|_| anyhow!("no Retry-After: {:?}", answer.headers))?;
    // The longest wait the service asks for: a key's rate-limit window of an hour (a sign-in
    // waits 15 minutes at most).
    ensure!((1..=3600).contains(&seconds), "Retry-After {seconds}");
    Ok(())
}

#[when(regex = r#"^(\w+) waits that long and logs in with (?:her|his|their) password$"#)]
async fn waits_and_logs_in(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let seconds: u64 = w.last()?.header("retry-after").parse().map_err(|_| anyhow!("no Retry-After to wait for"))?;
    tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    logs_in(w, who).await
}

#[when(regex = r#"^someone logs in with an email address nobody has$"#)]
async fn unknown_email(w: &mut Esqase) -> anyhow::Result<()> {
    let email = w.email_for("nobody");
    log_in(w, email, "not the right password at all").await?;
    Ok(())
}

#[then(regex = r#"^both refusals are the same$"#)]
async fn both_refusals_same(w: &mut Esqase) -> anyhow::Result<()> {
    let n = w.answers.len();
    ensure!(n >= 2, "two answers are needed");
    let (a, b) = (&w.answers[n - 2], &w.answers[n - 1]);
    ensure!(a.status == b.status && a.body == b.body, "the refusals differ:\n{}\n{}", a.text, b.text);
    Ok(())
}

#[then(regex = r#"^(\w+) has a new session$"#)]
async fn has_new_session(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let body = w.last()?.expect(201)?.clone();
    let person = w.person(&who)?;
    let token = body["session"]["token"].as_str().unwrap_or_default();
    ensure!(token.starts_with("esqs_"), "session token: {body}");
    ensure!(person.token.as_deref() == Some(token), "{who}'s token was not kept");
    ensure!(person.old_token.as_deref() != Some(token), "the new session reuses the old token");
    ensure!(body["member"]["email"] == person.email.as_str(), "member: {body}");
    Ok(())
}

#[then(regex = r#"^(\w+) can see the firm's members$"#)]
async fn can_see_members(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let email = w.person(&who)?.email.clone();
    let answer = w.call_as(&who, Method::GET, "/v1/members?limit=100", None).await?;
    let rows = answer.expect(200)?["data"].as_array().cloned().unwrap_or_default();
    ensure!(rows.iter().any(|m| m["email"] == email.as_str()), "{who} is not listed: {}", answer.text);
    Ok(())
}

#[when(regex = r#"^(\w+) logs out$"#)]
async fn logs_out(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    w.call_as(&who, Method::DELETE, "/v1/sessions/current", None).await?.expect(204)?;
    let person = w.person_mut(&who)?;
    person.old_token = person.token.take();
    Ok(())
}

#[then(regex = r#"^(\w+)'s (?:old )?session no longer works$"#)]
async fn session_no_longer_works(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    let person = w.person(&who)?;
    let token = person.old_token.clone().ok_or_else(|| anyhow!("{who} had no session that ended"))?;
    for path in ["/v1/members", "/v1/roles", "/v1/api-keys"] {
        let answer = w.call(Method::GET, path, Some(&token), None).await?;
        ensure!(
            answer.status == 401 && answer.code() == "invalid_session",
            "GET {path} with the ended session: {} {}",
            answer.status,
            answer.text
        );
    }
    Ok(())
}

async fn invite(w: &mut Esqase, inviter: &str, who: &str, role: &str) -> anyhow::Result<Answer> {
    let firm = w.person(inviter)?.firm.clone();
    let email = w.email_for(who);
    let body = json!({ "name": who, "email": email, "role": role });
    let answer = w.call_as(inviter, Method::POST, "/v1/members", Some(body)).await?;
    if answer.status == 201 {
        let j = &answer.body;
        w.people.insert(
            who.to_owned(),
            Person {
                name: who.to_owned(),
                email,
                id: j["member"]["id"].as_str().unwrap_or_default().to_owned(),
                firm,
                role: role.to_owned(),
                invitation: j["invitation_token"].as_str().map(str::to_owned),
                ..Person::default()
            },
        );
    }
    Ok(answer)
}

async fn accept(w: &mut Esqase, who: &str) -> anyhow::Result<Answer> {
    let token = w.person(who)?.invitation.clone().ok_or_else(|| anyhow!("{who} has no invitation"))?;
    ensure!(token.starts_with("esqi_"), "invitation token {token}");
    let answer = w
        .call(Method::POST, "/v1/invitations/accept", None, Some(json!({ "token": token, "password": PASSWORD })))
        .await?;
    if answer.status == 201 {
        let token = answer.body["session"]["token"].as_str().map(str::to_owned);
        let person = w.person_mut(who)?;
        person.old_token = person.token.take();
        person.token = token;
    }
    Ok(answer)
}

fn role_word(role: &str) -> String {
    role.trim_start_matches("an ").trim_start_matches("a ").to_owned()
}

#[given(regex = r#"^(\w+) has invited (\w+) as (an? \w+|\w+)$"#)]
async fn has_invited(w: &mut Esqase, inviter: String, who: String, role: String) -> anyhow::Result<()> {
    invite(w, &inviter, &who, &role_word(&role)).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^(\w+) invites (\w+) as (an? \w+|\w+)$"#)]
async fn invites(w: &mut Esqase, inviter: String, who: String, role: String) -> anyhow::Result<()> {
    let answer = invite(w, &inviter, &who, &role_word(&role)).await?;
    if answer.status == 201 {
        let member = &answer.body["member"];
        ensure!(member["name"] == who.as_str() && member["role"] == role_word(&role).as_str(), "{member}");
        let token = answer.body["invitation_token"].as_str().unwrap_or_default();
        ensure!(token.starts_with("esqi_"), "invitation token: {}", answer.text);
    }
    Ok(())
}

#[given(regex = r#"^(\w+) has accepted the invitation$"#)]
async fn has_accepted(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    accept(w, &who).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^(\w+) accepts the invitation$"#)]
async fn accepts(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    accept(w, &who).await?;
    Ok(())
}

#[given(regex = r#"^(\w+) has joined (\w+)'s firm as (an? \w+|\w+)$"#)]
async fn has_joined(w: &mut Esqase, who: String, inviter: String, role: String) -> anyhow::Result<()> {
    invite(w, &inviter, &who, &role_word(&role)).await?.expect(201)?;
    accept(w, &who).await?.expect(201)?;
    Ok(())
}

#[when(regex = r#"^(\w+) removes (\w+) from the firm$"#)]
async fn removes(w: &mut Esqase, who: String, removed: String) -> anyhow::Result<()> {
    let id = w.person(&removed)?.id.clone();
    let answer = w.call_as(&who, Method::DELETE, &format!("/v1/members/{id}"), None).await?;
    if answer.status == 200 {
        ensure!(answer.body["status"] == "removed", "removed member: {}", answer.text);
        let person = w.person_mut(&removed)?;
        person.old_token = person.token.take();
    }
    Ok(())
}

async fn role_permissions(w: &mut Esqase, who: &str, role: &str) -> anyhow::Result<Vec<String>> {
    let answer = w.call_as(who, Method::GET, "/v1/roles", None).await?;
    let roles = answer.expect(200)?["roles"].as_array().cloned().unwrap_or_default();
    let row = roles.iter().find(|r| r["role"] == role).ok_or_else(|| anyhow!("no role {role}: {}", answer.text))?;
    strings(&row["permissions"])
}

async fn set_permissions(w: &mut Esqase, who: &str, role: &str, permissions: Vec<String>) -> anyhow::Result<Answer> {
    let body = json!({ "permissions": permissions });
    w.call_as(who, Method::PUT, &format!("/v1/roles/{role}/permissions"), Some(body)).await
}

async fn grant(w: &mut Esqase, who: &str, permission: &str, role: &str) -> anyhow::Result<Answer> {
    let mut permissions = role_permissions(w, who, role).await?;
    permissions.push(permission.to_owned());
    set_permissions(w, who, role, permissions).await
}

#[given(regex = r#"^(\w+) has granted the "([^"]+)" permission to the (\w+) role$"#)]
async fn has_granted(w: &mut Esqase, who: String, permission: String, role: String) -> anyhow::Result<()> {
    grant(w, &who, &permission, &role).await?.expect(200)?;
    Ok(())
}

#[when(regex = r#"^(\w+) (?:grants|tries to grant) the "([^"]+)" permission to the (\w+) role$"#)]
async fn grants(w: &mut Esqase, who: String, permission: String, role: String) -> anyhow::Result<()> {
    let answer = grant(w, &who, &permission, &role).await?;
    if answer.status == 200 {
        ensure!(answer.body["role"] == role.as_str(), "{}", answer.text);
        ensure!(strings(&answer.body["permissions"])?.contains(&permission), "{}", answer.text);
    }
    Ok(())
}

#[when(regex = r#"^(\w+) takes the "([^"]+)" permission away from the (\w+) role$"#)]
async fn takes_away(w: &mut Esqase, who: String, permission: String, role: String) -> anyhow::Result<()> {
    let permissions = role_permissions(w, &who, &role).await?.into_iter().filter(|p| *p != permission).collect();
    set_permissions(w, &who, &role, permissions).await?.expect(200)?;
    Ok(())
}

#[when(regex = r#"^(\w+) tries to change the permissions of the owner role$"#)]
async fn change_owner_role(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    set_permissions(w, &who, "owner", vec!["contacts:read".into()]).await?;
    Ok(())
}

fn main_owner(w: &Esqase) -> anyhow::Result<String> {
    let firm = w.main_firm.clone().ok_or_else(|| anyhow!("no firm has signed up"))?;
    Ok(w.owner_of(&firm)?.name.clone())
}

#[then(regex = r#"^the roles are listed in the order (.+)$"#)]
async fn roles_in_order(w: &mut Esqase, order: String) -> anyhow::Result<()> {
    let owner = main_owner(w)?;
    let answer = w.call_as(&owner, Method::GET, "/v1/roles", None).await?;
    let roles: Vec<Value> = answer.expect(200)?["roles"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = roles.iter().filter_map(|r| r["role"].as_str()).collect();
    let expected: Vec<&str> = order.split(',').map(str::trim).collect();
    ensure!(names == expected, "roles in the order {names:?}");
    Ok(())
}

#[then(regex = r#"^the (\w+) role (includes|does not include) (.+)$"#)]
async fn role_includes(w: &mut Esqase, role: String, verb: String, permissions: String) -> anyhow::Result<()> {
    let owner = main_owner(w)?;
    let has = role_permissions(w, &owner, &role).await?;
    for permission in quoted(&permissions) {
        ensure!(
            has.contains(&permission) == (verb == "includes"),
            "the {role} role has {has:?}; expected it {verb} {permission}"
        );
    }
    Ok(())
}

#[then(regex = r#"^(\w+) can open the API keys page$"#)]
async fn can_open_keys_page(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    w.call_as(&who, Method::GET, "/v1/api-keys", None).await?.expect(200)?;
    Ok(())
}

#[then(regex = r#"^(\w+) (?:still )?cannot open the API keys page$"#)]
async fn cannot_open_keys_page(w: &mut Esqase, who: String) -> anyhow::Result<()> {
    w.call_as(&who, Method::GET, "/v1/api-keys", None).await?;
    refused(w, 403, "permission_denied".into()).await
}
