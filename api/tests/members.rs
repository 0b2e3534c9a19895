//! Firms, members, sessions and the roles-and-permissions grid, over HTTP.

use serde_json::json;
use testkit::{create_key, join, key_named, random_uuid, sign_up, Client, TestApp, PASSWORD};

#[tokio::test]
async fn signing_up_creates_the_firm_its_owner_and_a_session() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let answer = client
        .post(
            "/v1/firms",
            None,
            &json!({
                "firm_name": "Acme Law",
                "time_zone": "America/New_York",
                "owner": {"name": "Olivia Owner", "email": "Olivia@Acme.test", "password": PASSWORD},
            }),
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.header("cache-control"), "no-store", "a response holding a token is never cached");
    let body = &answer.body;
    assert_eq!(body["member"]["firm_id"], body["firm"]["id"]);
    assert!(body["session"]["token"].as_str().unwrap().starts_with("esqs_"));
    assert!(uuid::Uuid::parse_str(body["firm"]["id"].as_str().unwrap()).is_ok());
    insta::assert_json_snapshot!(body, {
        ".firm.id" => "[id]",
        ".member.id" => "[id]",
        ".member.firm_id" => "[id]",
        ".member.created_at" => "[time]",
        ".session.token" => "[token]",
        ".session.expires_at" => "[time]",
    });
    app.stop().await
}

#[tokio::test]
async fn signup_lists_every_invalid_field_in_one_422_and_creates_nothing() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let answer = client
        .post(
            "/v1/firms",
            None,
            &json!({"time_zone": "Mars/Olympus_Mons", "owner": {"email": "not-an-email", "password": "short"}}),
        )
        .await;
    answer.assert_problem(422, "validation_failed");
    assert_eq!(answer.error_fields(), ["firm_name", "time_zone", "owner.name", "owner.email", "owner.password"]);
    insta::assert_json_snapshot!(answer.body);
    // Nothing was created: the email is still free.
    sign_up(&client, "Acme Law", "not-an-email@acme.test").await;
    app.stop().await
}

#[tokio::test]
async fn a_taken_email_is_409_email_taken_whatever_its_case() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let again = client
        .post(
            "/v1/firms",
            None,
            &json!({"firm_name": "Other Law", "owner": {"name": "O", "email": "OLIVIA@Acme.Test", "password": PASSWORD}}),
        )
        .await;
    again.assert_problem(409, "email_taken");
    insta::assert_json_snapshot!(again.body);
    let invite = client
        .post("/v1/members", Some(&owner.token), &json!({"name": "Dup", "email": "Olivia@ACME.test", "role": "staff"}))
        .await;
    invite.assert_problem(409, "email_taken");
    app.stop().await
}

#[tokio::test]
async fn a_wrong_email_and_a_wrong_password_get_the_same_401_invalid_login() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let wrong_email =
        client.post("/v1/sessions", None, &json!({"email": "nobody@acme.test", "password": PASSWORD})).await;
    let wrong_password =
        client.post("/v1/sessions", None, &json!({"email": "olivia@acme.test", "password": "not the password"})).await;
    wrong_email.assert_problem(401, "invalid_login");
    wrong_password.assert_problem(401, "invalid_login");
    assert_eq!(wrong_email.body, wrong_password.body, "the two failures must be indistinguishable");
    assert_eq!(wrong_email.header("www-authenticate"), wrong_password.header("www-authenticate"));
    insta::assert_json_snapshot!(wrong_email.body);
    // The right password, in another case of email, works.
    let ok = client.post("/v1/sessions", None, &json!({"email": "OLIVIA@acme.test", "password": PASSWORD})).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["member"]["role"], "owner");
    app.stop().await
}

#[tokio::test]
async fn logging_out_stops_the_token_working_at_once() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let other = client.post("/v1/sessions", None, &json!({"email": "olivia@acme.test", "password": PASSWORD})).await;
    let other_token = other.body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(client.get("/v1/members", &owner.token).await.status, 200);
    let out = client.delete("/v1/sessions/current", &owner.token).await;
    assert_eq!(out.status, 204, "{}", out.text);
    let after = client.get("/v1/members", &owner.token).await;
    assert_eq!(after.status, 401, "{}", after.text);
    assert_eq!(after.header("www-authenticate"), r#"Bearer error="invalid_token""#);
    assert_eq!(after.header("content-type"), "application/problem+json");
    assert_eq!(client.delete("/v1/sessions/current", &owner.token).await.status, 401);
    // Only that session ended: the owner's other session still works.
    assert_eq!(client.get("/v1/members", &other_token).await.status, 200);
    app.stop().await
}

#[tokio::test]
async fn an_invited_member_accepts_then_logs_in() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let invited = client
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"name": "Adam Admin", "email": "adam@acme.test", "role": "administrator"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.text);
    assert_eq!(invited.header("cache-control"), "no-store");
    let token = invited.body["invitation_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("esqi_"));
    assert_eq!(invited.body["member"]["role"], "administrator");
    assert_eq!(invited.body["member"]["email"], "adam@acme.test");
    assert_eq!(invited.body["member"]["firm_id"].as_str(), Some(owner.firm_id.as_str()));
    let member_id = invited.body["member"]["id"].as_str().unwrap().to_owned();

    // Before accepting there is no password to log in with.
    let early = client.post("/v1/sessions", None, &json!({"email": "adam@acme.test", "password": PASSWORD})).await;
    early.assert_problem(401, "invalid_login");

    let accepted = client.post("/v1/invitations/accept", None, &json!({"token": token, "password": PASSWORD})).await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);
    assert_eq!(accepted.body["member"]["id"].as_str(), Some(member_id.as_str()));
    assert_eq!(accepted.body["member"]["status"], "active");
    let session = accepted.body["session"]["token"].as_str().unwrap().to_owned();
    assert!(session.starts_with("esqs_"));
    let listed = client.get("/v1/members", &session).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let ids: Vec<&str> = listed.body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [member_id.as_str(), owner.member_id.as_str()], "newest first");

    // The invitation works once.
    let twice = client.post("/v1/invitations/accept", None, &json!({"token": token, "password": PASSWORD})).await;
    twice.assert_problem(401, "invalid_invitation");

    let login = client.post("/v1/sessions", None, &json!({"email": "adam@acme.test", "password": PASSWORD})).await;
    assert_eq!(login.status, 201, "{}", login.text);
    assert_eq!(login.body["member"]["id"].as_str(), Some(member_id.as_str()));
    assert_eq!(login.body["member"]["role"], "administrator");
    app.stop().await
}

#[tokio::test]
async fn the_owner_role_cannot_be_given_by_invitation() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let answer = client
        .post(
            "/v1/members",
            Some(&owner.token),
            &json!({"name": "Second Owner", "email": "o2@acme.test", "role": "owner"}),
        )
        .await;
    answer.assert_problem(422, "validation_failed");
    assert_eq!(answer.error_fields(), ["role"]);
    insta::assert_json_snapshot!(answer.body);
    let members = client.get("/v1/members", &owner.token).await;
    assert_eq!(members.body["data"].as_array().unwrap().len(), 1, "nothing was created");
    app.stop().await
}

#[tokio::test]
async fn the_default_grid_is_listed_in_role_order() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    // Any member may read the grid.
    let answer = client.get("/v1/roles", &staff.token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let roles: Vec<&str> =
        answer.body["roles"].as_array().unwrap().iter().map(|r| r["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["owner", "administrator", "attorney", "staff"]);
    insta::assert_json_snapshot!(answer.body);
    app.stop().await
}

#[tokio::test]
async fn the_owner_changes_a_roles_permissions_and_an_administrator_cannot() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let admin = join(&client, &owner, "Adam Admin", "adam@acme.test", "administrator").await;
    let attorney = join(&client, &owner, "Ann Attorney", "ann@acme.test", "attorney").await;
    client.get("/v1/api-keys", &attorney.token).await.assert_problem(403, "permission_denied");

    let permissions = json!({"permissions": ["contacts:read", "matters:read", "api_keys"]});
    let by_admin = client.put("/v1/roles/attorney/permissions", &admin.token, &permissions).await;
    by_admin.assert_problem(403, "permission_denied");

    let by_owner = client.put("/v1/roles/attorney/permissions", &owner.token, &permissions).await;
    assert_eq!(by_owner.status, 200, "{}", by_owner.text);
    assert_eq!(
        by_owner.body,
        json!({"role": "attorney", "permissions": ["contacts:read", "matters:read", "api_keys"]})
    );
    let roles = client.get("/v1/roles", &admin.token).await;
    assert_eq!(roles.body["roles"][2], by_owner.body);
    // It takes effect at once, for a session that already exists.
    let listed = client.get("/v1/api-keys", &attorney.token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    app.stop().await
}

#[tokio::test]
async fn the_owner_role_is_fixed_and_unknown_permissions_are_refused() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let fixed =
        client.put("/v1/roles/owner/permissions", &owner.token, &json!({"permissions": ["contacts:read"]})).await;
    fixed.assert_problem(409, "owner_role_fixed");
    insta::assert_json_snapshot!("owner_role_fixed", fixed.body);

    let unknown = client
        .put("/v1/roles/staff/permissions", &owner.token, &json!({"permissions": ["contacts:read", "launch_missiles"]}))
        .await;
    unknown.assert_problem(422, "validation_failed");
    assert_eq!(unknown.error_fields(), ["permissions"]);
    insta::assert_json_snapshot!("unknown_permission", unknown.body);

    let before = client.get("/v1/roles", &owner.token).await;
    assert_eq!(
        before.body["roles"][3]["permissions"],
        json!([
            "contacts:read",
            "contacts:write",
            "matters:read",
            "leads:read",
            "leads:write",
            "practice_areas:read",
            "matter_types:read"
        ]),
        "staff keeps its default permissions"
    );
    app.stop().await
}

#[tokio::test]
async fn the_owners_own_role_cannot_be_changed() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    let path = format!("/v1/members/{}", owner.member_id);
    let answer = client.patch(&path, &owner.token, &json!({"role": "administrator"})).await;
    assert_eq!(answer.status, 409, "{}", answer.text);
    answer.assert_problem(409, "owner_role_fixed");
    // A role change of someone else works, and is owner-only.
    let changed =
        client.patch(&format!("/v1/members/{}", staff.member_id), &owner.token, &json!({"role": "attorney"})).await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.body["role"], "attorney");
    let by_staff = client.patch(&path, &staff.token, &json!({"role": "staff"})).await;
    by_staff.assert_problem(403, "permission_denied");
    app.stop().await
}

#[tokio::test]
async fn removing_a_member_ends_their_sessions_and_revokes_their_active_keys() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let admin = join(&client, &owner, "Adam Admin", "adam@acme.test", "administrator").await;
    let first = create_key(&client, &admin, &key_named("Adam's first")).await;
    let second = create_key(&client, &admin, &key_named("Adam's second")).await;
    let already = create_key(&client, &admin, &key_named("Revoked earlier")).await;
    let owners = create_key(&client, &owner, &key_named("Olivia's")).await;
    let id = |key: &serde_json::Value| key["api_key"]["id"].as_str().unwrap().to_owned();
    let revoked = client.post(&format!("/v1/api-keys/{}/revoke", id(&already)), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);

    let removed = client.delete(&format!("/v1/members/{}", admin.member_id), &owner.token).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["status"], "removed");
    assert_eq!(removed.body["id"].as_str(), Some(admin.member_id.as_str()));

    let after = client.get("/v1/members", &admin.token).await;
    after.assert_problem(401, "invalid_session");
    let login = client.post("/v1/sessions", None, &json!({"email": "adam@acme.test", "password": PASSWORD})).await;
    login.assert_problem(401, "invalid_login");

    for key in [&first, &second] {
        let shown = client.get(&format!("/v1/api-keys/{}", id(key)), &owner.token).await;
        assert_eq!(shown.body["status"], "revoked", "{}", shown.text);
        assert!(shown.body["revoked_at"].is_string());
    }
    let earlier = client.get(&format!("/v1/api-keys/{}", id(&already)), &owner.token).await;
    assert_eq!(earlier.body["revoked_by"]["id"].as_str(), Some(owner.member_id.as_str()), "unchanged");
    let kept = client.get(&format!("/v1/api-keys/{}", id(&owners)), &owner.token).await;
    assert_eq!(kept.body["status"], "active");

    // Each was a Revoked event with reason creator_removed.
    let pool = sqlx::PgPool::connect(&app.settings.database_url).await?;
    let mut reasons: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT stream_id, payload->>'reason' FROM events WHERE event_type = 'ApiKeyRevoked' ORDER BY position",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    reasons.sort();
    let mut expected = vec![
        (id(&already).parse()?, "revoked_by_member".to_owned()),
        (id(&first).parse()?, "creator_removed".to_owned()),
        (id(&second).parse()?, "creator_removed".to_owned()),
    ];
    expected.sort();
    assert_eq!(reasons, expected);

    // Removing twice, or the owner, is refused.
    let twice = client.delete(&format!("/v1/members/{}", admin.member_id), &owner.token).await;
    twice.assert_problem(409, "member_not_active");
    let the_owner = client.delete(&format!("/v1/members/{}", owner.member_id), &owner.token).await;
    the_owner.assert_problem(409, "owner_cannot_be_removed");
    app.stop().await
}

#[tokio::test]
async fn another_firms_member_and_key_ids_are_404_exactly_like_unknown_ids() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner_a = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let admin_a = join(&client, &owner_a, "Adam Admin", "adam@acme.test", "administrator").await;
    let key_a = create_key(&client, &admin_a, &key_named("Acme intake")).await;
    let key_a = key_a["api_key"]["id"].as_str().unwrap().to_owned();
    let owner_b = sign_up(&client, "Beta Law", "bob@beta.test").await;

    let routes: Vec<(reqwest::Method, &str, Option<serde_json::Value>)> = vec![
        (reqwest::Method::GET, "/v1/members/{id}", None),
        (reqwest::Method::PATCH, "/v1/members/{id}", Some(json!({"role": "staff"}))),
        (reqwest::Method::DELETE, "/v1/members/{id}", None),
        (reqwest::Method::GET, "/v1/api-keys/{id}", None),
        (reqwest::Method::PUT, "/v1/api-keys/{id}/allowed-domains", Some(json!({"allowed_domains": ["evil.test"]}))),
        (reqwest::Method::POST, "/v1/api-keys/{id}/revoke", None),
    ];
    for (method, template, body) in &routes {
        let foreign_ids: Vec<&str> = if template.starts_with("/v1/members") {
            vec![&admin_a.member_id, &owner_a.member_id]
        } else {
            vec![&key_a]
        };
        let unknown = client
            .send(method.clone(), &template.replace("{id}", &random_uuid()), Some(&owner_b.token), body.as_ref())
            .await;
        unknown.assert_problem(404, "not_found");
        for foreign in foreign_ids {
            let path = template.replace("{id}", foreign);
            let answer = client.send(method.clone(), &path, Some(&owner_b.token), body.as_ref()).await;
            assert_eq!(answer.status, 404, "{method} {path} by another firm: {}", answer.text);
            assert_eq!(answer.body, unknown.body, "{method} {path}: same body as an unknown id");
            assert_eq!(answer.header("content-type"), unknown.header("content-type"));
        }
    }
    // Nor does firm B's member list show firm A's members.
    let listed = client.get("/v1/members", &owner_b.token).await;
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    let keys = client.get("/v1/api-keys", &owner_b.token).await;
    assert_eq!(keys.body["data"], json!([]));

    // Firm A's member and key are untouched.
    let member = client.get(&format!("/v1/members/{}", admin_a.member_id), &owner_a.token).await;
    assert_eq!((member.body["status"].as_str(), member.body["role"].as_str()), (Some("active"), Some("administrator")));
    let key = client.get(&format!("/v1/api-keys/{key_a}"), &owner_a.token).await;
    assert_eq!(key.body["status"], "active");
    assert_eq!(key.body["allowed_domains"], json!([]));
    assert_eq!(client.get("/v1/members", &admin_a.token).await.status, 200, "A's admin still signed in");
    app.stop().await
}

#[tokio::test]
async fn a_key_revoked_because_its_creator_was_removed_has_no_revoked_by() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let admin = join(&client, &owner, "Adam Admin", "adam@acme.test", "administrator").await;
    let key = create_key(&client, &admin, &key_named("Adam's")).await;
    let path = format!("/v1/api-keys/{}", key["api_key"]["id"].as_str().unwrap());
    let removed = client.delete(&format!("/v1/members/{}", admin.member_id), &owner.token).await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    let shown = client.get(&path, &owner.token).await;
    assert_eq!(shown.body["status"], "revoked");
    assert_eq!(shown.body["revoked_by"], json!(null), "the service revoked it (creator_removed), not a member");
    let listed = client.get("/v1/api-keys?status=revoked", &owner.token).await;
    assert_eq!(listed.body["data"][0]["revoked_by"], json!(null));
    app.stop().await
}

#[tokio::test]
async fn members_without_the_members_permission_cannot_invite_or_remove() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let attorney = join(&client, &owner, "Ann Attorney", "ann@acme.test", "attorney").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    let invite = client
        .post("/v1/members", Some(&attorney.token), &json!({"name": "Eve", "email": "eve@acme.test", "role": "staff"}))
        .await;
    invite.assert_problem(403, "permission_denied");
    let remove = client.delete(&format!("/v1/members/{}", staff.member_id), &attorney.token).await;
    remove.assert_problem(403, "permission_denied");
    let role =
        client.patch(&format!("/v1/members/{}", staff.member_id), &attorney.token, &json!({"role": "attorney"})).await;
    role.assert_problem(403, "permission_denied");
    // Refused before the request is read: a broken body or a bad id is still the same 403, to
    // an attorney on the member routes and to an administrator on the owner's.
    let admin = join(&client, &owner, "Adam Admin", "adam@acme.test", "administrator").await;
    let base = &client.base_url;
    let attempts = [
        (&attorney, client.http.post(format!("{base}/v1/members")).header("content-type", "text/plain").body("x")),
        (&attorney, client.http.post(format!("{base}/v1/members")).json(&json!({"surprise": true}))),
        (&attorney, client.http.delete(format!("{base}/v1/members/not-a-uuid"))),
        (&admin, client.http.patch(format!("{base}/v1/members/not-a-uuid")).json(&json!({"role": 7}))),
        (&admin, client.http.put(format!("{base}/v1/roles/attorney/permissions")).body("{not json")),
    ];
    for (who, attempt) in attempts {
        Client::answer(attempt.bearer_auth(&who.token)).await.assert_problem(403, "permission_denied");
    }
    // Any member may list the firm's members; nothing changed.
    let listed = client.get("/v1/members", &staff.token).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let members = listed.body["data"].as_array().unwrap();
    assert_eq!(members.len(), 4);
    assert!(members.iter().all(|m| m["status"] == "active"));
    assert_eq!(members[0]["role"], "administrator");
    app.stop().await
}
