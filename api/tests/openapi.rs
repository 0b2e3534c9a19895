//! The OpenAPI document: a snapshot of the whole of it, so it cannot drift unnoticed; every
//! route the router serves (paths read from the router itself, methods probed on a running
//! service) is in it, and nothing else; and it is served at `/openapi.json`.

use std::collections::BTreeSet;
use testkit::*;

/// The methods a route can be documented with (HEAD follows GET, OPTIONS is the CORS layer's).
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

#[test]
fn the_whole_document_is_as_recorded() {
    let document = api::openapi::document_value();
    insta::assert_json_snapshot!("document", document);
}

#[test]
fn the_document_is_openapi_3_1_with_both_bearer_schemes() {
    let document = api::openapi::document_value();
    assert_eq!(document["openapi"], "3.1.0");
    for (scheme, format) in [("member_session", "esqs_…"), ("api_key", "esq_…")] {
        let scheme = &document["components"]["securitySchemes"][scheme];
        assert_eq!(scheme["scheme"], "bearer", "{scheme}");
        assert_eq!(scheme["bearerFormat"], format, "{scheme}");
    }
}

#[test]
fn every_link_names_an_operation() {
    let document = api::openapi::document();
    let ids: BTreeSet<String> = document
        .paths
        .paths
        .values()
        .flat_map(|item| [&item.get, &item.put, &item.post, &item.delete, &item.patch])
        .flatten()
        .filter_map(|operation| operation.operation_id.clone())
        .collect();
    let json = api::openapi::document_value();
    let mut links = 0;
    for item in json["paths"].as_object().expect("paths").values() {
        for operation in item.as_object().expect("a path item").values() {
            for response in operation["responses"].as_object().into_iter().flat_map(|r| r.values()) {
                for link in response["links"].as_object().into_iter().flat_map(|l| l.values()) {
                    links += 1;
                    let target = link["operationId"].as_str().expect("an operationId");
                    assert!(ids.contains(target), "a link names {target}, which no operation is");
                }
            }
        }
    }
    assert_eq!(links, 7);
}

#[test]
fn operation_ids_are_unique() {
    let document = api::openapi::document();
    let ids: Vec<String> = document
        .paths
        .paths
        .values()
        .flat_map(|item| [&item.get, &item.put, &item.post, &item.delete, &item.patch])
        .flatten()
        .map(|operation| operation.operation_id.clone().expect("every operation has an id"))
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn every_reference_names_a_component() {
    fn walk(value: &serde_json::Value, refs: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    refs.insert(target.clone());
                }
                map.values().for_each(|v| walk(v, refs));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let document = api::openapi::document_value();
    let mut refs = BTreeSet::new();
    walk(&document, &mut refs);
    assert!(!refs.is_empty());
    for target in refs {
        let (kind, name) = target
            .strip_prefix("#/components/")
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or_else(|| panic!("unexpected ref {target}"));
        assert!(["schemas", "headers"].contains(&kind), "unexpected ref {target}");
        assert!(document["components"][kind][name].is_object(), "{target} names no component");
    }
}

/// The paths the router serves, read from its `Debug` form (axum lists each route's path there;
/// it has no other way to list them).
fn router_paths() -> BTreeSet<String> {
    let debug = format!("{:?}", api::app::routes());
    // The fallback router (axum's default 404 at `/` and `/{*…}`) comes after the path router.
    let served = debug.split("fallback_router").next().unwrap_or_default();
    let mut paths = BTreeSet::new();
    let mut rest = served;
    while let Some(at) = rest.find("RouteId(") {
        rest = &rest[at + "RouteId(".len()..];
        let Some(close) = rest.find("): \"") else { continue };
        if !rest[..close].bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let after = &rest[close + "): \"".len()..];
        if let Some(end) = after.find('"') {
            paths.insert(after[..end].to_owned());
        }
    }
    assert!(paths.contains("/healthz"), "the router's Debug form has changed; paths found: {paths:?}");
    paths
}

/// A concrete path for a route: each `{param}` becomes a value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| if segment.starts_with('{') { "00000000-0000-7000-8000-000000000000" } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_the_router_serves_is_documented_and_nothing_else() {
    let document = api::openapi::document();
    let documented: BTreeSet<(String, String)> = api::openapi::operations(&document).into_iter().collect();
    let documented_paths: BTreeSet<String> = documented.iter().map(|(_, path)| path.clone()).collect();
    assert_eq!(router_paths(), documented_paths, "paths served (left) and documented (right)");

    let app = TestApp::spawn().await.expect("the service starts");
    let http = reqwest::Client::new();
    let mut served = BTreeSet::new();
    for path in &documented_paths {
        for method in METHODS {
            let url = format!("{}{}", app.base_url, concrete(path));
            let method_value = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
            let answer = Client::answer(http.request(method_value, url)).await;
            // Only the router answers 405: a route exists at this path, but not for this method.
            if answer.status != 405 {
                served.insert((method.to_owned(), path.clone()));
            }
        }
    }
    app.stop().await.expect("the service stops");
    assert_eq!(served, documented, "operations served (left) and documented (right)");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_is_served_without_credentials() {
    let app = TestApp::spawn().await.expect("the service starts");
    let answer = Client::answer(reqwest::Client::new().get(format!("{}/openapi.json", app.base_url))).await;
    app.stop().await.expect("the service stops");
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.header("content-type"), "application/json");
    assert_eq!(answer.text, api::openapi::document_json());
    assert_eq!(answer.body["info"]["title"], "Esqase API keys");
}
