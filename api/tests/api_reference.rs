//! `docs/api.md` is the HTTP contract as this service implements it. Its first part is written
//! by hand (conventions: credentials, errors, paging, CORS, the order of key checks); its
//! reference part (every route, parameter, body field, status and error code, and every
//! schema) is rendered from the OpenAPI document the service serves at `/openapi.json`, which
//! is itself generated from the handlers. This test fails when the file and the document
//! differ; `ESQASE_UPDATE_DOCS=1 cargo test -p api --test api_reference` rewrites the part.

use serde_json::Value;
use std::fmt::Write;
use std::path::PathBuf;

/// Where the reference part begins; everything above it is the hand-written part.
const MARKER: &str = "<!-- Below: rendered from /openapi.json by api/tests/api_reference.rs; do not edit by hand. -->";

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("docs").join("api.md")
}

/// The name a `$ref` points to.
fn ref_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

/// A schema's type in words: `string (date)`, `array of Permission`, `string or null`.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return format!("[`{0}`](#{1})", ref_name(reference), ref_name(reference).to_lowercase());
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(options) = schema[combinator].as_array() {
            return options.iter().map(type_of).collect::<Vec<_>>().join(" or ");
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        return parts.iter().map(type_of).collect::<Vec<_>>().join(" and ");
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> =
            values.iter().map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), str::to_owned))).collect();
        return format!("one of {}", values.join(", "));
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let words: Vec<String> = kinds
        .iter()
        .map(|kind| match *kind {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "string" => match schema["format"].as_str() {
                Some(format) => format!("string ({format})"),
                None => "string".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect();
    if words.is_empty() {
        "any".to_owned()
    } else {
        words.join(" or ")
    }
}

/// The limits JSON Schema states for a value, in words.
fn limits_of(schema: &Value) -> String {
    let mut limits = Vec::new();
    for (low, high, unit) in
        [("minLength", "maxLength", " characters"), ("minItems", "maxItems", " items"), ("minimum", "maximum", "")]
    {
        match (schema[low].as_u64(), schema[high].as_u64()) {
            (Some(low), Some(high)) => limits.push(format!("{low} to {high}{unit}")),
            (Some(low), None) => limits.push(format!("at least {low}{unit}")),
            (None, Some(high)) => limits.push(format!("at most {high}{unit}")),
            (None, None) => {}
        }
    }
    limits.join(", ")
}

fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

fn render(document: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{MARKER}\n\n## Reference\n");
    let tags = document["tags"].as_array().cloned().unwrap_or_default();
    for tag in &tags {
        let name = tag["name"].as_str().unwrap_or_default();
        let _ = writeln!(out, "### Area `{name}`\n\n{}\n", tag["description"].as_str().unwrap_or_default());
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let operation = &item[method];
                let in_area = operation["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == name));
                if operation.is_null() || !in_area {
                    continue;
                }
                render_operation(&mut out, method, path, operation);
            }
        }
    }
    let _ = writeln!(out, "## Schemas\n");
    for (name, schema) in document["components"]["schemas"].as_object().into_iter().flatten() {
        let _ = writeln!(out, "### {name}\n");
        if let Some(description) = schema["description"].as_str() {
            let _ = writeln!(out, "{description}\n");
        }
        match schema["properties"].as_object() {
            Some(properties) => {
                let required: Vec<&str> =
                    schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let _ = writeln!(out, "| field | type | required | notes |\n|---|---|---|---|");
                for (field, property) in properties {
                    let notes = [property["description"].as_str().unwrap_or_default().to_owned(), limits_of(property)]
                        .into_iter()
                        .filter(|n| !n.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ");
                    let _ = writeln!(
                        out,
                        "| `{field}` | {} | {} | {} |",
                        cell(&type_of(property)),
                        if required.contains(&field.as_str()) { "yes" } else { "no" },
                        cell(&notes)
                    );
                }
                if schema["additionalProperties"] == Value::Bool(false) {
                    let _ = writeln!(out, "\nAny other field is refused (`400 malformed_request`).");
                }
                let _ = writeln!(out);
            }
            None => {
                let _ = writeln!(out, "{}\n", type_of(schema));
            }
        }
    }
    out
}

fn render_operation(out: &mut String, method: &str, path: &str, operation: &Value) {
    let _ = writeln!(out, "#### `{} {path}`\n", method.to_uppercase());
    for text in [&operation["summary"], &operation["description"]] {
        if let Some(text) = text.as_str() {
            let _ = writeln!(out, "{text}\n");
        }
    }
    let credentials: Vec<&str> = operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().map(String::as_str))
        .collect();
    let credentials = match credentials.as_slice() {
        [] => "none".to_owned(),
        schemes => schemes
            .iter()
            .map(|scheme| match *scheme {
                "member_session" => "a member session (`Bearer esqs_…`)",
                "api_key" => "an API key (`Bearer esq_…`)",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(" or "),
    };
    let _ = writeln!(out, "- Credentials: {credentials}.");
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "- {} `{}` ({}{}): {}",
            parameter["in"].as_str().unwrap_or_default(),
            parameter["name"].as_str().unwrap_or_default(),
            type_of(&parameter["schema"]),
            if parameter["required"] == Value::Bool(true) { ", required" } else { "" },
            cell(parameter["description"].as_str().unwrap_or_default())
        );
    }
    if let Some(content) = operation["requestBody"]["content"].as_object() {
        for (media, body) in content {
            let _ = writeln!(out, "- Body ({media}): {}.", type_of(&body["schema"]));
        }
    }
    let _ = writeln!(out, "- Answers:");
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let body = response["content"]
            .as_object()
            .and_then(|content| content.values().next())
            .map(|media| &media["schema"])
            .filter(|schema| schema["$ref"].is_string())
            .map(|schema| format!(" Body: {}.", type_of(schema)))
            .unwrap_or_default();
        let headers: Vec<String> = response["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, header)| match header["description"].as_str() {
                Some(description) => format!("`{name}` ({})", description.trim_end_matches('.')),
                // A shared header (a `$ref`, the rate-limit fields): explained in the conventions.
                None => format!("`{name}`"),
            })
            .collect();
        let headers = if headers.is_empty() { String::new() } else { format!(" Headers: {}.", headers.join(", ")) };
        let _ = writeln!(
            out,
            "  - `{status}`: {}{body}{headers}",
            cell(response["description"].as_str().unwrap_or_default())
        );
    }
    let _ = writeln!(out);
}

#[test]
fn the_reference_in_docs_api_md_is_the_document_the_service_serves() {
    let path = doc_path();
    let text = std::fs::read_to_string(&path).expect("docs/api.md is readable");
    let Some((written, _)) = text.split_once(MARKER) else { panic!("docs/api.md lacks its marker line") };
    let expected = format!("{written}{}", render(&api::openapi::document_value()));
    if std::env::var_os("ESQASE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).expect("docs/api.md is writable");
        return;
    }
    assert!(
        text == expected,
        "docs/api.md differs from /openapi.json; run ESQASE_UPDATE_DOCS=1 cargo test -p api --test api_reference"
    );
}

#[test]
fn every_route_and_every_error_code_is_in_docs_api_md() {
    let text = std::fs::read_to_string(doc_path()).expect("docs/api.md is readable");
    let document = api::openapi::document_value();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for method in METHODS.iter().filter(|m| !item[**m].is_null()) {
            let heading = format!("#### `{} {path}`", method.to_uppercase());
            assert!(text.contains(&heading), "docs/api.md has no {heading}");
        }
    }
    for error in api::error::EVERY {
        let (_, code) = error.status_and_code();
        let (written, _) = text.split_once(MARKER).expect("the marker");
        assert!(
            written.contains(&format!("`{code}`")),
            "the hand-written part of docs/api.md does not explain `{code}`"
        );
    }
}
