//! The web interface over HTTP: the browser session cookie and its same-origin rule, the pages'
//! headers, and what each page shows (read as HTML text). `tests/browser.rs` walks the same
//! pages in a real browser.

use reqwest::Method;
use serde_json::json;
use testkit::*;

/// Fetches a page with the cookie, following no redirect.
async fn page(app: &TestApp, path: &str, cookie: Option<&str>) -> Answer {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client");
    let mut request = http.get(format!("{}{path}", app.base_url));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    Client::answer(request).await
}

/// Sends a command with the cookie and the given extra headers.
async fn with_cookie(
    client: &Client,
    method: Method,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    body: Option<serde_json::Value>,
) -> Answer {
    let mut request = client.http.request(method, format!("{}{path}", client.base_url)).header("Cookie", cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    Client::answer(request).await
}

#[tokio::test]
async fn an_unsigned_visit_goes_to_sign_in_and_comes_back_after() {
    let app = TestApp::spawn().await.expect("the service starts");
    let answer = page(&app, "/settings/developers?status=active", None).await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location"), "/login?next=/settings/developers%3Fstatus%3Dactive");
    let login = page(&app, "/login?next=/settings/developers%3Fstatus%3Dactive", None).await;
    assert_eq!(login.status, 200);
    assert!(login.text.contains(r#"data-next="/settings/developers?status=active""#), "{}", login.text);
    for label in [">Email<", ">Password<", ">Sign in<"] {
        assert!(login.text.contains(label), "{label}");
    }
    // Only a path on this service is honoured.
    for next in ["//evil.test/", "https://evil.test/", "/%5Cevil.test"] {
        let login = page(&app, &format!("/login?next={next}"), None).await;
        assert!(login.text.contains(r#"data-next="/settings""#), "{next}: {}", login.text);
    }
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn pages_carry_the_security_headers_and_are_never_cached() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;
    for path in ["/login", "/settings", "/settings/developers", "/settings/roles", "/settings/audit-log"] {
        let signed_in = (path != "/login").then_some(cookie.as_str());
        let answer = page(&app, path, signed_in).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert_eq!(answer.header("content-type"), "text/html; charset=utf-8", "{path}");
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
        assert_eq!(
            answer.header("content-security-policy"),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            "{path}"
        );
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(answer.header("referrer-policy"), "no-referrer", "{path}");
        assert!(!answer.text.contains("style=\""), "{path}: no inline style");
        assert!(!answer.text.contains("<script>"), "{path}: no inline script");
    }
    // Signed in, /login goes straight on.
    assert_eq!(page(&app, "/login?next=/settings/roles", Some(&cookie)).await.header("location"), "/settings/roles");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn an_unknown_page_is_a_page_for_a_browser_and_a_problem_for_the_api() {
    let app = TestApp::spawn().await.expect("the service starts");
    let http = reqwest::Client::new();
    let browser = Client::answer(
        http.get(format!("{}/settings/nothing-here", app.base_url)).header("Accept", "text/html,application/xhtml+xml"),
    )
    .await;
    assert_eq!(browser.status, 404);
    assert_eq!(browser.header("content-type"), "text/html; charset=utf-8");
    assert!(browser.text.contains("There is no page at this address."));
    assert_eq!(browser.header("x-content-type-options"), "nosniff");
    page(&app, "/settings/nothing-here", None).await.assert_problem(404, "not_found");
    let api = Client::answer(http.get(format!("{}/v1/nothing-here", app.base_url)).header("Accept", "text/html")).await;
    api.assert_problem(404, "not_found");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn assets_are_served_from_the_binary_with_their_types() {
    let app = TestApp::spawn().await.expect("the service starts");
    for (file, content_type) in [
        ("app.css", "text/css; charset=utf-8"),
        ("keys.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let answer = page(&app, &format!("/assets/{file}"), None).await;
        assert_eq!(answer.status, 200, "{file}");
        assert_eq!(answer.header("content-type"), content_type, "{file}");
        assert_eq!(answer.header("x-content-type-options"), "nosniff", "{file}");
        assert!(!answer.text.is_empty(), "{file}");
    }
    page(&app, "/assets/nothing.js", None).await.assert_problem(404, "not_found");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_settings_hub_shows_the_developers_group_only_to_roles_with_api_keys() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    join(&client, &owner, "Ada Attorney", "ada@acme.test", "attorney").await;
    let olivia = browser_sign_in(&client, "olivia@acme.test").await;
    let ada = browser_sign_in(&client, "ada@acme.test").await;

    let hub = page(&app, "/settings", Some(&olivia)).await;
    assert!(hub.text.contains(">Developers<"), "{}", hub.text);
    assert!(hub.text.contains("Create keys to sync contacts, matters, and leads via the REST API."));
    assert!(hub.text.contains(r#"href="/settings/developers""#));

    let hub = page(&app, "/settings", Some(&ada)).await;
    assert_eq!(hub.status, 200);
    assert!(!hub.text.contains("Create keys to sync contacts"), "{}", hub.text);
    assert!(!hub.text.contains(r#"href="/settings/developers""#), "{}", hub.text);
    let keys = page(&app, "/settings/developers", Some(&ada)).await;
    assert_eq!(keys.status, 403);
    assert_eq!(keys.header("content-type"), "text/html; charset=utf-8");
    assert!(
        keys.text.contains("You don&#39;t have access to this page") || keys.text.contains("You don't have access")
    );

    // The owner grants API keys to attorneys: the card and the page appear at once.
    let granted = client
        .put(
            "/v1/roles/attorney/permissions",
            &owner.token,
            &json!({"permissions": ["contacts:read", "contacts:write", "matters:read", "api_keys"]}),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    assert!(page(&app, "/settings", Some(&ada)).await.text.contains("Create keys to sync contacts"));
    assert_eq!(page(&app, "/settings/developers", Some(&ada)).await.status, 200);
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_keys_table_shows_each_key_in_words() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;

    let empty = page(&app, "/settings/developers", Some(&cookie)).await;
    assert!(empty.text.contains("No API keys yet"), "{}", empty.text);
    assert!(empty.text.contains("Create your first API key"));

    let created = create_key(
        &client,
        &owner,
        &json!({
            "name": "Intake sync",
            "scopes": ["contacts:read", "matters:read", "matters:write"],
            "expires_at": "2099-03-01",
            "allowed_domains": ["app.example.com, *.example.com"],
        }),
    )
    .await;
    let preview = created["api_key"]["preview"].as_str().expect("a preview").to_owned();
    let secret = created["secret"].as_str().expect("a secret").to_owned();
    create_key(&client, &owner, &json!({"name": "<script>alert(1)</script>", "scopes": ["leads:write"]})).await;
    let revoked = create_key(&client, &owner, &key_named("Old import")).await;
    let id = revoked["api_key"]["id"].as_str().expect("an id");
    assert_eq!(client.post(&format!("/v1/api-keys/{id}/revoke"), Some(&owner.token), &json!({})).await.status, 200);

    let table = page(&app, "/settings/developers", Some(&cookie)).await;
    let html = &table.text;
    for header in ["Name", "Key", "Scopes", "Allowed domains", "Status", "Last used", "Expires", "Created by"] {
        assert!(html.contains(&format!("<th scope=\"col\">{header}</th>")), "{header}");
    }
    assert!(html.contains(&preview), "the masked preview");
    assert!(!html.contains(&secret), "never the secret");
    for words in ["Contacts: Read", "Matters: Read, Write", "Leads: Write", "app.example.com", "*.example.com", "Any"] {
        assert!(html.contains(words), "{words}");
    }
    assert!(html.contains(">Active<") && html.contains(">Revoked<"));
    // Midnight of 2099-03-01 in New York, shown as that date.
    assert!(html.contains(">Mar 1, 2099<"), "{html}");
    assert!(html.contains("Olivia Owner"));
    // A name is text, never markup.
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)</script>"));
    // Only Active rows have actions: two Domains buttons for three keys.
    assert_eq!(html.matches("data-edit-domains ").count(), 2, "{html}");
    assert!(html.contains(">Previous<") && html.contains(">Next<"));
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_keys_table_pages_with_previous_and_next_and_filters_by_status() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;
    for name in ["First", "Second", "Third"] {
        create_key(&client, &owner, &key_named(name)).await;
    }
    let first = page(&app, "/settings/developers?limit=2", Some(&cookie)).await;
    assert!(first.text.contains(">Third<") && first.text.contains(">Second<") && !first.text.contains(">First<"));
    let next = first.text.split("rel=\"next\"").next().and_then(|s| s.rsplit("href=\"").next()).expect("a Next link");
    let next = next.trim_end_matches("\" ").replace("&amp;", "&");
    let second = page(&app, &next, Some(&cookie)).await;
    assert!(second.text.contains(">First<") && !second.text.contains(">Third<"), "{next}: {}", second.text);
    assert!(second.text.contains("rel=\"prev\""));

    let revoked = page(&app, "/settings/developers?status=revoked", Some(&cookie)).await;
    assert!(revoked.text.contains("No revoked keys"), "{}", revoked.text);
    let bad = page(&app, "/settings/developers?status=gone", Some(&cookie)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("status must be active, revoked or expired"));
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn a_cookie_command_must_come_from_the_services_own_pages() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;
    let own_origin = app.base_url.clone();
    let body = || Some(key_named("From the page"));

    for headers in [
        vec![],
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Sec-Fetch-Site", "same-site")],
        vec![("Origin", "http://evil.test")],
        vec![("Origin", "null")],
    ] {
        let answer = with_cookie(&client, Method::POST, "/v1/api-keys", &cookie, &headers, body()).await;
        answer.assert_problem(403, "cross_site_request");
    }
    let by_fetch_site =
        with_cookie(&client, Method::POST, "/v1/api-keys", &cookie, &[("Sec-Fetch-Site", "same-origin")], body()).await;
    assert_eq!(by_fetch_site.status, 201, "{}", by_fetch_site.text);
    let by_origin =
        with_cookie(&client, Method::POST, "/v1/api-keys", &cookie, &[("Origin", own_origin.as_str())], body()).await;
    assert_eq!(by_origin.status, 201, "{}", by_origin.text);
    // Safe requests need no proof: the export link works from the page.
    let export = with_cookie(&client, Method::GET, "/v1/audit-log/export?format=csv", &cookie, &[], None).await;
    assert_eq!(export.status, 200, "{}", export.text);
    // Bearer requests are unaffected, whatever the headers say.
    let bearer = Client::answer(
        client
            .http
            .post(format!("{}/v1/api-keys", client.base_url))
            .bearer_auth(&owner.token)
            .header("Origin", "http://evil.test")
            .json(&key_named("From a script")),
    )
    .await;
    assert_eq!(bearer.status, 201, "{}", bearer.text);
    // Asking for the cookie at sign-in from another site is refused before any check.
    let cross = Client::answer(
        client
            .http
            .post(format!("{}/v1/sessions", client.base_url))
            .header("Esqase-Session", "cookie")
            .header("Origin", "http://evil.test")
            .json(&json!({"email": "olivia@acme.test", "password": PASSWORD})),
    )
    .await;
    cross.assert_problem(403, "cross_site_request");
    assert!(cross.header("set-cookie").is_empty());
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;
    let out = with_cookie(
        &client,
        Method::DELETE,
        "/v1/sessions/current",
        &cookie,
        &[("Sec-Fetch-Site", "same-origin")],
        None,
    )
    .await;
    assert_eq!(out.status, 204, "{}", out.text);
    assert!(out.header("set-cookie").starts_with("esqase_session=;"), "{}", out.header("set-cookie"));
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    assert_eq!(page(&app, "/settings", Some(&cookie)).await.header("location"), "/login?next=/settings");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_cookie_is_secure_when_configured() {
    let mut settings = testkit::isolated_settings();
    settings.secure_cookies = true;
    let app = TestApp::spawn_with(settings).await.expect("the service starts");
    let client = Client::new(&app);
    sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let answer = Client::answer(
        client
            .http
            .post(format!("{}/v1/sessions", client.base_url))
            .header("Esqase-Session", "cookie")
            .header("Sec-Fetch-Site", "same-origin")
            .json(&json!({"email": "olivia@acme.test", "password": PASSWORD})),
    )
    .await;
    assert_eq!(answer.status, 201);
    assert!(answer.header("set-cookie").ends_with("; Secure"), "{}", answer.header("set-cookie"));
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_roles_grid_lists_api_keys_under_developers_and_only_the_owner_may_change_it() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    join(&client, &owner, "Adam Admin", "adam@acme.test", "administrator").await;
    let olivia = browser_sign_in(&client, "olivia@acme.test").await;
    let adam = browser_sign_in(&client, "adam@acme.test").await;
    let grid = page(&app, "/settings/roles", Some(&olivia)).await.text;
    let developers = grid.find(">Developers<").expect("a Developers group");
    let api_keys = grid.find(">API keys</th>").expect("an API keys row");
    assert!(api_keys > developers);
    assert!(grid.contains(r#"aria-label="Attorney: API keys""#));
    // The owner's own column never changes; the others are the owner's to change.
    assert!(grid.contains(r#"aria-label="Administrator: API keys" checked>"#), "{grid}");
    let theirs = page(&app, "/settings/roles", Some(&adam)).await.text;
    assert!(theirs.contains("Only the firm&#39;s owner can change this") || theirs.contains("Only the firm's owner"));
    assert!(theirs.contains(r#"aria-label="Administrator: API keys" checked disabled>"#), "{theirs}");
    app.stop().await.expect("stops");
}

#[tokio::test]
async fn the_audit_log_page_lists_entries_verifies_the_chain_and_links_exports() {
    let app = TestApp::spawn().await.expect("the service starts");
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    join(&client, &owner, "Ada Attorney", "ada@acme.test", "attorney").await;
    create_key(&client, &owner, &key_named("Intake sync")).await;
    let cookie = browser_sign_in(&client, "olivia@acme.test").await;
    let log = page(&app, "/settings/audit-log", Some(&cookie)).await;
    assert_eq!(log.status, 200);
    let rows = log.text.split("<tbody>").nth(1).expect("the entries");
    let created = rows.find(">api_key.created<").expect("the key's entry");
    let firm = rows.find(">firm.created<").expect("the firm's entry");
    assert!(created < firm, "newest first");
    assert!(log.text.contains("Chain verified."));
    assert!(log.text.contains(r#"href="/v1/audit-log/export?format=csv""#));
    assert!(log.text.contains(r#"href="/v1/audit-log/export?format=jsonl""#));

    let filtered = page(&app, "/settings/audit-log?action=api_key.created&since=&until=", Some(&cookie)).await;
    let rows = filtered.text.split("<tbody>").nth(1).expect("the entries");
    assert!(rows.contains(">api_key.created<") && !rows.contains(">firm.created<"));
    assert!(filtered.text.contains(r#"href="/v1/audit-log/export?format=csv&amp;action=api_key.created""#));
    let bad = page(&app, "/settings/audit-log?since=yesterday", Some(&cookie)).await;
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("since must be an RFC 3339 time"));

    let ada = browser_sign_in(&client, "ada@acme.test").await;
    let refused = page(&app, "/settings/audit-log", Some(&ada)).await;
    assert_eq!(refused.status, 403);
    assert!(refused.text.contains("have access to this page"));
    app.stop().await.expect("stops");
}
