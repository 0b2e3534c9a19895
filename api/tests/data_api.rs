//! The firm's data API over HTTP: contacts, matters, leads, practice areas and matter types, for
//! members under their role and for API keys under their scopes; records scoped by firm.

use serde_json::{json, Value};
use testkit::{create_key, join, random_uuid, sign_up, Answer, Client, Signed, TestApp};

/// Every resource, with a body that creates one (no references).
const SIMPLE: [(&str, &str); 3] =
    [("contacts", r#"{"name": "Ada"}"#), ("leads", r#"{"name": "Lee"}"#), ("practice-areas", r#"{"name": "Tax"}"#)];

/// Creates a record as `by`, asserting 201; returns it.
async fn create(client: &Client, by: &str, resource: &str, body: Value) -> Value {
    let created = client.post(&format!("/v1/{resource}"), Some(by), &body).await;
    assert_eq!(created.status, 201, "create {resource}: {}", created.text);
    assert_eq!(created.header("content-type"), "application/json");
    created.body
}

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

/// Asserts a record's bookkeeping fields: a UUID v7 id, times, and who made it.
#[track_caller]
fn assert_made_by(record: &Value, kind: &str, author: &str) {
    let parsed = uuid::Uuid::parse_str(id(record)).expect("a UUID id");
    assert_eq!(parsed.get_version_num(), 7, "{record}");
    assert_eq!(record["created_by"], json!({"type": kind, "id": author}), "{record}");
    let created_at = record["created_at"].as_str().unwrap();
    assert!(created_at.ends_with('Z') && created_at.len() == 24, "time {created_at} is not RFC 3339 ms UTC");
    assert!(record["updated_at"].as_str().unwrap() >= created_at);
}

#[tokio::test]
async fn an_owner_creates_reads_updates_lists_and_deletes_every_resource() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let token = owner.token.as_str();

    let area = create(&client, token, "practice-areas", json!({"name": "  Family law "})).await;
    assert_eq!(area["name"], "Family law");
    assert_made_by(&area, "member", &owner.member_id);
    let kind = create(&client, token, "matter-types", json!({"name": "Divorce", "practice_area_id": id(&area)})).await;
    assert_eq!(kind["practice_area_id"], area["id"]);
    let contact = create(
        &client,
        token,
        "contacts",
        json!({"name": "Ada Lovelace", "email": "Ada@Example.COM", "phone": "+1 555"}),
    )
    .await;
    assert_eq!(contact["email"], "ada@example.com");
    let lead = create(&client, token, "leads", json!({"name": "Lee", "source": "Website"})).await;
    assert_eq!((&lead["email"], &lead["source"]), (&Value::Null, &json!("Website")));
    let matter = create(
        &client,
        token,
        "matters",
        json!({"title": "Lovelace divorce", "contact_id": id(&contact), "practice_area_id": id(&area),
               "matter_type_id": id(&kind)}),
    )
    .await;
    assert_eq!(matter["status"], "open", "the default status");
    let fields: Vec<&str> = matter.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "id",
            "title",
            "contact_id",
            "practice_area_id",
            "matter_type_id",
            "status",
            "created_at",
            "updated_at",
            "created_by"
        ]
    );

    for (resource, record) in [
        ("practice-areas", &area),
        ("matter-types", &kind),
        ("contacts", &contact),
        ("leads", &lead),
        ("matters", &matter),
    ] {
        let shown = client.get(&format!("/v1/{resource}/{}", id(record)), token).await;
        assert_eq!((shown.status, &shown.body), (200, record), "{resource}: {}", shown.text);
        let listed = client.get(&format!("/v1/{resource}"), token).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(listed.body, json!({"data": [record], "next_cursor": null, "prev_cursor": null}));
    }

    // PATCH changes only what is sent; null clears an optional field.
    let patched = client.patch(&format!("/v1/contacts/{}", id(&contact)), token, &json!({"email": null})).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["email"], Value::Null);
    assert_eq!((&patched.body["name"], &patched.body["phone"]), (&contact["name"], &contact["phone"]));
    assert_eq!(patched.body["created_at"], contact["created_at"]);
    assert!(patched.body["updated_at"].as_str() >= contact["updated_at"].as_str());
    let closed = client
        .patch(&format!("/v1/matters/{}", id(&matter)), token, &json!({"status": "closed", "contact_id": null}))
        .await;
    assert_eq!(closed.status, 200, "{}", closed.text);
    assert_eq!((&closed.body["status"], &closed.body["contact_id"]), (&json!("closed"), &Value::Null));
    assert_eq!(closed.body["matter_type_id"], matter["matter_type_id"]);
    let unchanged = client.patch(&format!("/v1/leads/{}", id(&lead)), token, &json!({})).await;
    assert_eq!((unchanged.status, &unchanged.body), (200, &lead));
    let shown = client.get(&format!("/v1/matters/{}", id(&matter)), token).await;
    assert_eq!(shown.body, closed.body, "reads reflect the update");

    // Delete, children first; then each is gone.
    for (resource, record) in [
        ("matters", &matter),
        ("matter-types", &kind),
        ("practice-areas", &area),
        ("contacts", &contact),
        ("leads", &lead),
    ] {
        let path = format!("/v1/{resource}/{}", id(record));
        let deleted = client.delete(&path, token).await;
        assert_eq!(deleted.status, 204, "delete {resource}: {}", deleted.text);
        assert!(deleted.text.is_empty());
        client.get(&path, token).await.assert_problem(404, "not_found");
        client.delete(&path, token).await.assert_problem(404, "not_found");
        client.patch(&path, token, &json!({})).await.assert_problem(404, "not_found");
    }
    app.stop().await
}

#[tokio::test]
async fn members_reach_the_data_under_their_role() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let staff = join(&client, &owner, "Sam Staff", "sam@acme.test", "staff").await;
    let attorney = join(&client, &owner, "Ann Attorney", "ann@acme.test", "attorney").await;

    let contact = create(&client, &staff.token, "contacts", json!({"name": "Ada"})).await;
    assert_made_by(&contact, "member", &staff.member_id);
    create(&client, &staff.token, "leads", json!({"name": "Lee"})).await;
    let matter =
        create(&client, &attorney.token, "matters", json!({"title": "Estate", "contact_id": id(&contact)})).await;

    // Staff read matters, practice areas and matter types, but write none of them.
    assert_eq!(client.get("/v1/matters", &staff.token).await.status, 200);
    assert_eq!(client.get(&format!("/v1/matters/{}", id(&matter)), &staff.token).await.status, 200);
    assert_eq!(client.get("/v1/practice-areas", &staff.token).await.status, 200);
    assert_eq!(client.get("/v1/matter-types", &staff.token).await.status, 200);
    let path = format!("/v1/matters/{}", id(&matter));
    client
        .post("/v1/matters", Some(&staff.token), &json!({"title": "Mine"}))
        .await
        .assert_problem(403, "permission_denied");
    client.patch(&path, &staff.token, &json!({"status": "closed"})).await.assert_problem(403, "permission_denied");
    client.delete(&path, &staff.token).await.assert_problem(403, "permission_denied");
    client
        .post("/v1/practice-areas", Some(&staff.token), &json!({"name": "Tax"}))
        .await
        .assert_problem(403, "permission_denied");
    // The permission is checked before the body is read.
    client
        .post("/v1/matters", Some(&staff.token), &json!({"nonsense": 1}))
        .await
        .assert_problem(403, "permission_denied");

    // Take contacts:read from staff: listing contacts is refused at once, writing still works.
    let changed = client
        .put(
            "/v1/roles/staff/permissions",
            &owner.token,
            &json!({"permissions": ["contacts:write", "leads:read", "leads:write", "matters:read"]}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    client.get("/v1/contacts", &staff.token).await.assert_problem(403, "permission_denied");
    create(&client, &staff.token, "contacts", json!({"name": "Bea"})).await;

    // No credential at all.
    let anonymous = client.send(reqwest::Method::GET, "/v1/contacts", None, None).await;
    anonymous.assert_problem(401, "invalid_credentials");
    app.stop().await
}

#[tokio::test]
async fn lists_are_paginated_newest_first() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let mut names = Vec::new();
    for i in 0..5 {
        names.push(format!("Contact {i}"));
        create(&client, &owner.token, "contacts", json!({"name": names[i]})).await;
    }
    names.reverse();
    let page_names = |a: &Answer| -> Vec<String> {
        a.body["data"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_owned()).collect()
    };

    let first = client.get("/v1/contacts?limit=2", &owner.token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(page_names(&first), names[0..2]);
    assert_eq!(first.body["prev_cursor"], Value::Null);
    let next = first.body["next_cursor"].as_str().unwrap();
    let second = client.get(&format!("/v1/contacts?limit=2&cursor={next}"), &owner.token).await;
    assert_eq!(page_names(&second), names[2..4]);
    let next = second.body["next_cursor"].as_str().unwrap();
    let third = client.get(&format!("/v1/contacts?limit=2&cursor={next}"), &owner.token).await;
    assert_eq!(page_names(&third), names[4..5]);
    assert_eq!(third.body["next_cursor"], Value::Null);
    let prev = third.body["prev_cursor"].as_str().unwrap();
    let back = client.get(&format!("/v1/contacts?limit=2&cursor={prev}"), &owner.token).await;
    assert_eq!(page_names(&back), names[2..4], "Previous shows the page before, newest first");
    let all = client.get("/v1/contacts", &owner.token).await;
    assert_eq!(page_names(&all), names, "the default limit holds them all");

    for query in ["limit=0", "limit=101", "limit=x", "cursor=nonsense", "name=Ada"] {
        client.get(&format!("/v1/contacts?{query}"), &owner.token).await.assert_problem(400, "invalid_query");
    }
    app.stop().await
}

#[tokio::test]
async fn invalid_bodies_get_one_422_with_every_field_or_a_400() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let token = owner.token.as_str();

    let contact = client
        .post("/v1/contacts", Some(token), &json!({"name": "  ", "email": "ada at example", "phone": "1".repeat(41)}))
        .await;
    contact.assert_problem(422, "validation_failed");
    assert_eq!(contact.error_fields(), ["name", "email", "phone"]);

    let matter = client
        .post(
            "/v1/matters",
            Some(token),
            &json!({"title": "Bad\tTitle", "contact_id": "not-a-uuid", "practice_area_id": random_uuid(),
                    "matter_type_id": random_uuid(), "status": "pending"}),
        )
        .await;
    matter.assert_problem(422, "validation_failed");
    assert_eq!(matter.error_fields(), ["title", "contact_id", "practice_area_id", "matter_type_id", "status"]);
    let long = client.post("/v1/practice-areas", Some(token), &json!({"name": "x".repeat(201)})).await;
    long.assert_problem(422, "validation_failed");
    assert_eq!(long.error_fields(), ["name"]);
    let blank = client.post("/v1/leads", Some(token), &json!({"name": "Lee", "source": ""})).await;
    assert_eq!(blank.error_fields(), ["source"]);
    let nothing = client.post("/v1/matter-types", Some(token), &json!({})).await;
    assert_eq!(nothing.error_fields(), ["name"]);

    // Unknown fields and wrong types are malformed requests.
    for body in
        [json!({"name": "Ada", "nickname": "A"}), json!({"name": "Ada", "id": random_uuid()}), json!({"name": 5})]
    {
        client.post("/v1/contacts", Some(token), &body).await.assert_problem(400, "malformed_request");
    }
    client.post("/v1/contacts", Some(token), &json!(["Ada"])).await.assert_problem(400, "malformed_request");

    // PATCH: a required field cannot be cleared, a status never null; nothing is changed.
    let ada = create(&client, token, "contacts", json!({"name": "Ada", "email": "ada@example.com"})).await;
    let path = format!("/v1/contacts/{}", id(&ada));
    let cleared = client.patch(&path, token, &json!({"name": null, "email": "nope"})).await;
    cleared.assert_problem(422, "validation_failed");
    assert_eq!(cleared.error_fields(), ["name", "email"]);
    client.patch(&path, token, &json!({"colour": "red"})).await.assert_problem(400, "malformed_request");
    assert_eq!(client.get(&path, token).await.body, ada);
    let case = create(&client, token, "matters", json!({"title": "Case"})).await;
    let no_status = client.patch(&format!("/v1/matters/{}", id(&case)), token, &json!({"status": null})).await;
    assert_eq!(no_status.error_fields(), ["status"]);
    app.stop().await
}

#[tokio::test]
async fn another_firms_records_are_not_found_and_cannot_be_referenced() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let acme = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let other = sign_up(&client, "Other Law", "otto@other.test").await;

    let mut theirs = Vec::new();
    for (resource, body) in SIMPLE {
        let record = create(&client, &other.token, resource, serde_json::from_str(body)?).await;
        theirs.push((resource, record));
    }
    let their_contact = id(&theirs[0].1).to_owned();
    let their_area = id(&theirs[2].1).to_owned();
    let their_kind = create(&client, &other.token, "matter-types", json!({"name": "Audit"})).await;
    theirs.push(("matter-types", their_kind.clone()));
    theirs.push(("matters", create(&client, &other.token, "matters", json!({"title": "Theirs"})).await));

    for (resource, record) in &theirs {
        let path = format!("/v1/{resource}/{}", id(record));
        client.get(&path, &acme.token).await.assert_problem(404, "not_found");
        client.patch(&path, &acme.token, &json!({})).await.assert_problem(404, "not_found");
        client.delete(&path, &acme.token).await.assert_problem(404, "not_found");
        let listed = client.get(&format!("/v1/{resource}"), &acme.token).await;
        assert_eq!(listed.body["data"], json!([]), "{resource}: {}", listed.text);
        // Still theirs, untouched.
        assert_eq!(client.get(&path, &other.token).await.body, *record);
    }
    for bad in ["not-a-uuid", "123", &random_uuid()] {
        client.get(&format!("/v1/contacts/{bad}"), &acme.token).await.assert_problem(404, "not_found");
        client.delete(&format!("/v1/matters/{bad}"), &acme.token).await.assert_problem(404, "not_found");
    }

    // Referring to their records is a 422 on each field, on create and on update.
    let kind = client
        .post("/v1/matter-types", Some(&acme.token), &json!({"name": "Divorce", "practice_area_id": their_area}))
        .await;
    kind.assert_problem(422, "validation_failed");
    assert_eq!(kind.error_fields(), ["practice_area_id"]);
    let matter = client
        .post(
            "/v1/matters",
            Some(&acme.token),
            &json!({"title": "Mine", "contact_id": their_contact, "practice_area_id": their_area,
                    "matter_type_id": id(&their_kind)}),
        )
        .await;
    matter.assert_problem(422, "validation_failed");
    assert_eq!(matter.error_fields(), ["contact_id", "practice_area_id", "matter_type_id"]);
    let mine = create(&client, &acme.token, "matters", json!({"title": "Mine"})).await;
    let moved =
        client.patch(&format!("/v1/matters/{}", id(&mine)), &acme.token, &json!({"contact_id": their_contact})).await;
    assert_eq!(moved.error_fields(), ["contact_id"]);
    app.stop().await
}

#[tokio::test]
async fn a_record_still_referred_to_cannot_be_deleted() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let token = owner.token.as_str();
    let area = create(&client, token, "practice-areas", json!({"name": "Tax"})).await;
    let area_path = format!("/v1/practice-areas/{}", id(&area));
    let kind = create(&client, token, "matter-types", json!({"name": "Audit", "practice_area_id": id(&area)})).await;

    let refused = client.delete(&area_path, token).await;
    refused.assert_problem(409, "record_in_use");
    assert_eq!(client.get(&area_path, token).await.body, area, "still there");

    // Once no matter type uses it, a matter that does still holds it.
    let unlinked =
        client.patch(&format!("/v1/matter-types/{}", id(&kind)), token, &json!({"practice_area_id": null})).await;
    assert_eq!(unlinked.status, 200, "{}", unlinked.text);
    let matter = create(&client, token, "matters", json!({"title": "Audit 2026", "practice_area_id": id(&area)})).await;
    client.delete(&area_path, token).await.assert_problem(409, "record_in_use");
    // So does a contact, and a matter type.
    let contact = create(&client, token, "contacts", json!({"name": "Ada"})).await;
    let matter_path = format!("/v1/matters/{}", id(&matter));
    let linked =
        client.patch(&matter_path, token, &json!({"contact_id": id(&contact), "matter_type_id": id(&kind)})).await;
    assert_eq!(linked.status, 200, "{}", linked.text);
    client.delete(&format!("/v1/contacts/{}", id(&contact)), token).await.assert_problem(409, "record_in_use");
    client.delete(&format!("/v1/matter-types/{}", id(&kind)), token).await.assert_problem(409, "record_in_use");

    assert_eq!(client.delete(&matter_path, token).await.status, 204);
    assert_eq!(client.delete(&area_path, token).await.status, 204);
    assert_eq!(client.delete(&format!("/v1/contacts/{}", id(&contact)), token).await.status, 204);
    app.stop().await
}

/// A key of `by`'s with `scopes`: its id and its secret.
async fn key_with(client: &Client, by: &Signed, scopes: &[&str]) -> (String, String) {
    let created = create_key(client, by, &json!({"name": "Intake sync", "scopes": scopes})).await;
    (created["api_key"]["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_key_works_under_its_scopes_and_its_records_outlive_it() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    let (key_id, secret) = key_with(&client, &owner, &["contacts:write"]).await;

    let contact = create(&client, &secret, "contacts", json!({"name": "Ada"})).await;
    assert_made_by(&contact, "api_key", &key_id);
    let path = format!("/v1/contacts/{}", id(&contact));
    let patched = client.patch(&path, &secret, &json!({"phone": "555"})).await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["created_by"], contact["created_by"], "an update keeps who made it");

    // Write does not imply read.
    let listed = client.get("/v1/contacts", &secret).await;
    listed.assert_problem(403, "insufficient_scope");
    assert!(listed.text.contains("contacts:read"), "the problem names the scope: {}", listed.text);
    client.get(&path, &secret).await.assert_problem(403, "insufficient_scope");
    client.post("/v1/leads", Some(&secret), &json!({"name": "Lee"})).await.assert_problem(403, "insufficient_scope");

    // Another firm's key sees none of it.
    let other = sign_up(&client, "Other Law", "otto@other.test").await;
    let (_, their_secret) = key_with(&client, &other, &["contacts:read", "contacts:write"]).await;
    client.get(&path, &their_secret).await.assert_problem(404, "not_found");
    let theirs = client.get("/v1/contacts", &their_secret).await;
    assert_eq!((theirs.status, &theirs.body["data"]), (200, &json!([])), "{}", theirs.text);

    // Revoking the key stops it, and leaves its records exactly where they are.
    let revoked = client.post(&format!("/v1/api-keys/{key_id}/revoke"), Some(&owner.token), &json!({})).await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    client.post("/v1/contacts", Some(&secret), &json!({"name": "Bea"})).await.assert_problem(401, "api_key_revoked");
    let kept = client.get(&path, &owner.token).await;
    assert_eq!((kept.status, &kept.body), (200, &patched.body), "{}", kept.text);
    assert_made_by(&kept.body, "api_key", &key_id);
    let listed = client.get("/v1/contacts", &owner.token).await;
    assert_eq!(listed.body["data"], json!([patched.body]));
    app.stop().await
}

#[tokio::test]
async fn a_practice_area_deleted_while_matter_types_are_created_for_it_is_never_left_dangling() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let client = Client::new(&app);
    let owner = sign_up(&client, "Acme Law", "olivia@acme.test").await;
    for round in 0..5 {
        let area = create(&client, &owner.token, "practice-areas", json!({"name": format!("Area {round}")})).await;
        let body = json!({"name": "Kind", "practice_area_id": id(&area)});
        let path = format!("/v1/practice-areas/{}", id(&area));
        let creates = (0..8).map(|_| client.post("/v1/matter-types", Some(&owner.token), &body));
        let (deleted, created) = tokio::join!(client.delete(&path, &owner.token), futures::future::join_all(creates));
        let statuses: Vec<u16> = created.iter().map(|a| a.status).collect();
        assert!(statuses.iter().all(|s| [201, 422].contains(s)), "creates: {statuses:?}");
        match deleted.status {
            // Deleted first: every create that came after it found no practice area.
            204 => assert!(statuses.iter().all(|s| *s == 422), "created for a deleted area: {statuses:?}"),
            409 => assert!(statuses.contains(&201), "refused with nothing referring to it"),
            other => panic!("delete answered {other}: {}", deleted.text),
        }
    }
    app.stop().await
}
