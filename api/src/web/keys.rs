//! The API keys page (`/settings/developers`): the keys table, and the dialogs to create a key
//! (and copy it once), edit its allowed domains, change its rate limit, revoke it and roll it
//! (then copy the new one once). The dialogs send their commands to the `/v1/api-keys` routes
//! from `assets/keys.js`.

use super::layout::{app_page, no_access, Nav, Shell};
use super::text::{self, RESOURCES};
use super::{firm_name, html, PageError, PageResult, Viewer};
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ListQuery;
use axum::extract::State;
use axum::http::StatusCode;
use domain::api_key::KeyStatus;
use domain::names::FirmTimeZone;
use domain::Permission;
use maud::{html as markup, Markup};
use projections::page::Page;
use projections::views::{self, ApiKeyView};
use std::sync::Arc;

/// The status filters above the table: the label and the `status` value.
const FILTERS: [(&str, Option<KeyStatus>); 4] = [
    ("All", None),
    ("Active", Some(KeyStatus::Active)),
    ("Revoked", Some(KeyStatus::Revoked)),
    ("Expired", Some(KeyStatus::Expired)),
];

/// `GET /settings/developers`: the firm's keys, newest first, with Previous and Next. The list
/// query is the API's (`limit`, `cursor`, `status`), read by the same extractor.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Viewer(me): Viewer,
    query: Result<ListQuery, ApiError>,
) -> PageResult {
    let firm = firm_name(&state, &me).await?;
    let shell = Shell { member: &me, firm: &firm };
    if !me.permissions.contains(Permission::ApiKeys) {
        return Ok(html(StatusCode::FORBIDDEN, no_access(&shell, Nav::ApiKeys, "API keys", "API keys")));
    }
    let query = query?;
    query.only(&["status"])?;
    let status = match query.filters.get("status").map(String::as_str) {
        None | Some("") => None,
        Some(raw) => Some(
            KeyStatus::parse(raw)
                .ok_or_else(|| ApiError::InvalidQuery("status must be active, revoked or expired".into()))?,
        ),
    };
    let keys = views::api_keys(state.pool(), me.firm_id, status, query.page, commands::log::now())
        .await
        .map_err(PageError::from)?;
    let limit = (query.page.limit != projections::page::DEFAULT_LIMIT).then(|| query.page.limit.to_string());
    let content = markup! {
        div class="page-header page-header-actions" {
            div {
                p class="breadcrumb" { a href="/settings" { "Settings" } " / Developers" }
                h1 { "API keys" }
                p class="muted" { "Keys let your systems use the Esqase REST API on your firm's behalf. Treat each key like a password." }
            }
            button type="button" class="button button-primary" data-open-create { "Create API key" }
        }
        nav class="filters" aria-label="Filter keys by status" {
            @for (label, value) in FILTERS {
                @let href = format!("/settings/developers{}", text::query(&[("status", value.map_or("", KeyStatus::as_str))]));
                a class="filter" href=(href) aria-current=[(value == status).then_some("page")] { (label) }
            }
        }
        @if keys.data.is_empty() && query.page.cursor.is_none() {
            (empty_state(status))
        } @else {
            (table(&keys, me.time_zone))
            div class="table-footer" {
                p class="table-note" { "Dates and times are in " (me.time_zone.name()) ", your firm's time zone." }
                (pager(&keys, status, limit.as_deref()))
            }
        }
        (create_dialog(&me))
        (copy_dialog())
        (domains_dialog())
        (rate_limit_dialog())
        (revoke_dialog())
        (roll_dialog())
    };
    Ok(html(StatusCode::OK, app_page(&shell, Nav::ApiKeys, "API keys", Some("keys.js"), content)))
}

fn empty_state(status: Option<KeyStatus>) -> Markup {
    markup! {
        section class="empty" aria-labelledby="empty-title" {
            @match status {
                None => {
                    h2 id="empty-title" { "No API keys yet" }
                    p class="muted" { "Create a key to let one of your systems read or change your firm's data through the API." }
                    button type="button" class="button button-primary" data-open-create { "Create your first API key" }
                }
                Some(status) => {
                    h2 id="empty-title" { "No " (status_words(status).to_lowercase()) " keys" }
                    p class="muted" { a href="/settings/developers" { "Show all keys" } }
                }
            }
        }
    }
}

/// The revocation reason of a key a secret scanner reported found in public.
const LEAKED: &str = domain::events::RevocationReason::Leaked.as_str();
const ROLLED: &str = domain::events::RevocationReason::Rolled.as_str();

/// The windows the rate-limit fields offer, with the one chosen first (the API takes any from
/// 1 second to 1 hour; a key given another shows it in words, and its dialog offers it too).
const WINDOW_CHOICES: [(u32, &str); 3] = [(1, "second"), (60, "minute"), (3_600, "hour")];
const DEFAULT_WINDOW: u32 = 60;

/// The grace periods the Roll dialog offers (the API takes any from 0 to 7 days), with the
/// one checked first: a day covers a deploy without leaving the old secret alive for long.
const GRACE_CHOICES: [(u32, &str, bool); 4] = [
    (0, "Now: the old key stops working at once", false),
    (3_600, "In 1 hour", false),
    (86_400, "In 24 hours", true),
    (604_800, "In 7 days", false),
];

fn status_words(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "Active",
        KeyStatus::Revoked => "Revoked",
        KeyStatus::Expired => "Expired",
    }
}

fn table(keys: &Page<ApiKeyView>, zone: FirmTimeZone) -> Markup {
    markup! {
        div class="table-wrap" role="region" aria-label="API keys" tabindex="0" {
            table class="table keys-table" {
                thead {
                    tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Key" }
                        th scope="col" { "Scopes" }
                        th scope="col" { "Allowed domains" }
                        th scope="col" { "Rate limit" }
                        th scope="col" { "Status" }
                        th scope="col" { "Last used" }
                        th scope="col" { "Expires" }
                        th scope="col" { "Created by" }
                        th scope="col" { span class="visually-hidden" { "Actions" } }
                    }
                }
                tbody {
                    @for key in &keys.data {
                        (row(key, zone))
                    }
                }
            }
        }
    }
}

fn dash() -> Markup {
    markup! { span class="dash" { "—" } }
}

fn row(key: &ApiKeyView, zone: FirmTimeZone) -> Markup {
    let id = key.id.to_string();
    markup! {
        tr data-key-row {
            th scope="row" class="key-name" { (key.name) }
            td data-label="Key" { code class="preview" { (key.preview) } }
            td data-label="Scopes" {
                ul class="badges" {
                    @for badge in text::scope_badges(&key.scopes) {
                        li class="badge" { (badge) }
                    }
                }
            }
            td data-label="Allowed domains" {
                @if key.allowed_domains.is_empty() {
                    span class="muted" { "Any" }
                } @else {
                    ul class="domains" {
                        @for domain in &key.allowed_domains { li { (domain) } }
                    }
                }
            }
            td data-label="Rate limit" {
                @match key.rate_limit {
                    Some(limit) => span class="rate-limit" { (limit) },
                    None => span class="muted" { "No limit" },
                }
            }
            td data-label="Status" {
                span class=(format!("status status-{}", key.status.as_str())) { (status_words(key.status)) }
                @if key.status == KeyStatus::Revoked && key.revocation_reason.as_deref() == Some(LEAKED) {
                    span class="status-note" { "Leaked: a secret scanner found it in public" }
                }
                @if key.status == KeyStatus::Revoked && key.revocation_reason.as_deref() == Some(ROLLED) {
                    span class="status-note" { "Rolled: replaced by a new key" }
                }
                @if let (KeyStatus::Active, Some(end)) = (key.status, &key.grace_ends_at) {
                    span class="status-note" {
                        "Rolled: stops working "
                        time datetime=(text::iso(end)) { (text::date_time(end, zone)) }
                    }
                }
            }
            td data-label="Last used" {
                @match &key.last_used_at {
                    Some(t) => time class="when" datetime=(text::iso(t)) {
                        span { (text::date(t, zone)) }
                        span class="when-time" { (text::time_of_day(t, zone)) }
                    },
                    None => (dash()),
                }
            }
            td data-label="Expires" {
                @match &key.expires_at {
                    Some(t) => time datetime=(text::iso(t)) { (text::date(t, zone)) },
                    None => (dash()),
                }
            }
            td data-label="Created by" { (key.created_by.name) }
            td data-label="Actions" class="actions" {
                @if key.status == KeyStatus::Active {
                    div class="row-actions" {
                        button type="button" class="button button-small" data-edit-domains
                            data-key-id=(id) data-key-name=(key.name) data-domains=(key.allowed_domains.join("\n")) {
                            "Domains" span class="visually-hidden" { " for " (key.name) }
                        }
                        div class="menu-anchor" {
                            button type="button" class="button button-small button-icon" data-menu-button
                                aria-label=(format!("More actions for {}", key.name))
                                aria-haspopup="menu" aria-expanded="false" aria-controls=(format!("menu-{id}")) {
                                "..."
                            }
                            div class="menu" role="menu" id=(format!("menu-{id}")) aria-label=(format!("Actions for {}", key.name)) hidden {
                                // A key in its grace period is rolled already: its successor is the one to roll.
                                button type="button" role="menuitem" class="menu-item" data-rate-limit
                                    data-key-id=(id) data-key-name=(key.name)
                                    data-limit=[key.rate_limit.map(|l| l.limit())]
                                    data-window=[key.rate_limit.map(|l| l.window_seconds())] { "Rate limit" }
                                @if key.replaced_by.is_none() {
                                    button type="button" role="menuitem" class="menu-item" data-roll
                                        data-key-id=(id) data-key-name=(key.name) { "Roll" }
                                }
                                button type="button" role="menuitem" class="menu-item menu-item-danger" data-revoke
                                    data-key-id=(id) data-key-name=(key.name) { "Revoke" }
                            }
                        }
                    }
                } @else {
                    (dash())
                }
            }
        }
    }
}

fn pager(keys: &Page<ApiKeyView>, status: Option<KeyStatus>, limit: Option<&str>) -> Markup {
    let href = |cursor: &str| {
        format!(
            "/settings/developers{}",
            text::query(&[
                ("status", status.map_or("", KeyStatus::as_str)),
                ("limit", limit.unwrap_or("")),
                ("cursor", cursor)
            ])
        )
    };
    markup! {
        nav class="pager" aria-label="Pages of keys" {
            @match &keys.prev_cursor {
                Some(cursor) => a class="button" href=(href(cursor)) rel="prev" { "Previous" },
                None => button type="button" class="button" disabled { "Previous" },
            }
            @match &keys.next_cursor {
                Some(cursor) => a class="button" href=(href(cursor)) rel="next" { "Next" },
                None => button type="button" class="button" disabled { "Next" },
            }
        }
    }
}

/// One field's error line, which `keys.js` fills from a 422's `errors`.
fn field_error(id: &str, field: &str) -> Markup {
    markup! { p class="field-error" id=(id) data-error-for=(field) {} }
}

fn create_dialog(me: &commands::auth::SignedInMember) -> Markup {
    let lacks_some = RESOURCES.iter().any(|(_, r, w)| !me.permissions.contains(*r) || !me.permissions.contains(*w));
    markup! {
        dialog class="dialog" id="create-key-dialog" aria-labelledby="create-key-title" {
            form class="stack" method="dialog" data-create-key novalidate {
                h2 id="create-key-title" { "Create API key" }
                div class="form-error" role="alert" data-form-error hidden {}
                div class="field" {
                    label for="key-name" { "Name" }
                    input id="key-name" name="name" type="text" maxlength="100" required autocomplete="off"
                        aria-describedby="key-name-hint key-name-error";
                    p class="hint" id="key-name-hint" { "A short label that tells you what the key is for, like \"Intake sync\"." }
                    (field_error("key-name-error", "name"))
                }
                fieldset class="field scopes" aria-describedby="scopes-hint scopes-error" {
                    legend { "Scopes" }
                    p class="hint" id="scopes-hint" {
                        "Tick only what the integration needs."
                        @if lacks_some { " Boxes your role lacks are off: a key never does more than its creator." }
                    }
                    div class="scope-grid" {
                        @for (words, read, write) in RESOURCES {
                            div class="scope-row" {
                                span class="scope-name" aria-hidden="true" { (words) }
                                @for (permission, access) in [(read, "Read"), (write, "Write")] {
                                    label class="check" {
                                        input type="checkbox" name="scopes" value=(permission.as_str())
                                            disabled[!me.permissions.contains(permission)];
                                        span class="visually-hidden" { (words) ": " }
                                        (access)
                                    }
                                }
                            }
                        }
                    }
                    (field_error("scopes-error", "scopes"))
                }
                div class="field" {
                    label for="key-expires" { "Expires " span class="optional" { "(optional)" } }
                    input id="key-expires" name="expires_at" type="date" aria-describedby="key-expires-hint key-expires-error";
                    p class="hint" id="key-expires-hint" { "The key stops working at the start of this day in your firm's time zone. Leave blank for a key that never expires." }
                    (field_error("key-expires-error", "expires_at"))
                }
                div class="field" {
                    label for="key-domains" { "Allowed domains " span class="optional" { "(optional)" } }
                    textarea id="key-domains" name="allowed_domains" rows="3" spellcheck="false"
                        aria-describedby="key-domains-hint key-domains-error" {}
                    p class="hint" id="key-domains-hint" { "One hostname per line or comma-separated, like app.example.com, *.example.com. Leave empty to allow any domain. Only requests from web pages are restricted." }
                    (field_error("key-domains-error", "allowed_domains"))
                }
                (rate_limit_fields("key-rate", None))
                div class="dialog-actions" {
                    button type="button" class="button" data-close { "Cancel" }
                    button type="submit" class="button button-primary" data-submit disabled { "Create API key" }
                }
            }
        }
    }
}

fn copy_dialog() -> Markup {
    markup! {
        dialog class="dialog" id="copy-key-dialog" aria-labelledby="copy-key-title" aria-describedby="copy-key-warning" {
            div class="stack" {
                h2 id="copy-key-title" { "Copy your API key" }
                div class="warning" id="copy-key-warning" {
                    strong { "This is the only time the full key is shown." }
                    " Esqase keeps only a hashed version, so it cannot show this key again. Store it now in your secrets manager or environment; if you lose it, revoke it and create a new one."
                }
                div class="secret-box" {
                    code class="secret" data-secret {}
                    button type="button" class="button" data-copy { "Copy" }
                }
                p class="hint" role="status" data-copy-status {}
                div class="dialog-actions" {
                    button type="button" class="button button-primary" data-close { "Done" }
                }
            }
        }
    }
}

fn domains_dialog() -> Markup {
    markup! {
        dialog class="dialog" id="domains-dialog" aria-labelledby="domains-title" {
            form class="stack" method="dialog" data-edit-domains-form novalidate {
                h2 id="domains-title" { "Edit allowed domains" }
                p class="muted" { "For " strong data-key-name {} ". Scopes and expiry stay as they are." }
                div class="form-error" role="alert" data-form-error hidden {}
                div class="field" {
                    label for="edit-domains" { "Allowed domains" }
                    textarea id="edit-domains" name="allowed_domains" rows="5" spellcheck="false"
                        aria-describedby="edit-domains-hint edit-domains-error" {}
                    p class="hint" id="edit-domains-hint" { "One hostname per line, or comma-separated. Leave empty to allow any domain." }
                    (field_error("edit-domains-error", "allowed_domains"))
                }
                div class="dialog-actions" {
                    button type="button" class="button" data-close { "Cancel" }
                    button type="submit" class="button button-primary" { "Save" }
                }
            }
        }
    }
}

/// The rate-limit fields of the create and edit dialogs: a number of requests (blank for no
/// limit) per second, minute or hour, preset to `current`.
fn rate_limit_fields(id: &str, current: Option<domain::RateLimit>) -> Markup {
    let window = current.map_or(DEFAULT_WINDOW, |l| l.window_seconds());
    let offered = WINDOW_CHOICES.iter().any(|(seconds, _)| *seconds == window);
    markup! {
        fieldset class="field" aria-describedby=(format!("{id}-hint {id}-error")) {
            legend { "Rate limit " span class="optional" { "(optional)" } }
            div class="inline-fields" {
                label class="visually-hidden" for=(format!("{id}-limit")) { "Requests allowed" }
                input id=(format!("{id}-limit")) name="rate_limit" type="number" min="1" max="1000000" step="1"
                    inputmode="numeric" placeholder="No limit" value=[current.map(|l| l.limit())];
                span class="per" aria-hidden="true" { "requests per" }
                label class="visually-hidden" for=(format!("{id}-window")) { "per" }
                select id=(format!("{id}-window")) name="rate_limit_window" {
                    @for (seconds, words) in WINDOW_CHOICES {
                        option value=(seconds) selected[seconds == window] { (words) }
                    }
                    @if !offered {
                        option value=(window) selected { (window) " seconds" }
                    }
                }
            }
            p class="hint" id=(format!("{id}-hint")) { "Leave blank for no limit. Past the limit, requests are refused until the next second, minute or hour begins; every server counts toward the same limit." }
            (field_error(&format!("{id}-error"), "rate_limit"))
        }
    }
}

fn rate_limit_dialog() -> Markup {
    markup! {
        dialog class="dialog" id="rate-limit-dialog" aria-labelledby="rate-limit-title" {
            form class="stack" method="dialog" data-rate-limit-form novalidate {
                h2 id="rate-limit-title" { "Edit rate limit" }
                p class="muted" { "For " strong data-key-name {} ". The change applies to the very next request." }
                div class="form-error" role="alert" data-form-error hidden {}
                (rate_limit_fields("edit-rate", None))
                div class="dialog-actions" {
                    button type="button" class="button" data-close { "Cancel" }
                    button type="submit" class="button button-primary" { "Save" }
                }
            }
        }
    }
}

fn revoke_dialog() -> Markup {
    markup! {
        dialog class="dialog" id="revoke-dialog" aria-labelledby="revoke-title" aria-describedby="revoke-warning" role="alertdialog" {
            form class="stack" method="dialog" data-revoke-form {
                h2 id="revoke-title" { "Revoke API key" }
                div class="form-error" role="alert" data-form-error hidden {}
                p id="revoke-warning" {
                    "Revoking " strong data-key-name {} " stops it from working immediately: the very next request that uses it is rejected. This cannot be undone."
                }
                div class="dialog-actions" {
                    button type="button" class="button" data-close { "Cancel" }
                    button type="submit" class="button button-danger" { "Revoke key" }
                }
            }
        }
    }
}

fn roll_dialog() -> Markup {
    markup! {
        dialog class="dialog" id="roll-dialog" aria-labelledby="roll-title" aria-describedby="roll-explained" {
            form class="stack" method="dialog" data-roll-form {
                h2 id="roll-title" { "Roll API key" }
                div class="form-error" role="alert" data-form-error hidden {}
                p id="roll-explained" {
                    "Rolling " strong data-key-name {} " creates a new key with the same name, scopes, allowed domains, rate limit and expiry, and shows it once. Put the new key in place, then let the old one stop."
                }
                fieldset class="field" {
                    legend { "The old key stops working" }
                    @for (seconds, words, checked) in GRACE_CHOICES {
                        label class="check" {
                            input type="radio" name="grace_period_seconds" value=(seconds) checked[checked];
                            (words)
                        }
                    }
                    (field_error("roll-grace-error", "grace_period_seconds"))
                }
                div class="dialog-actions" {
                    button type="button" class="button" data-close { "Cancel" }
                    button type="submit" class="button button-primary" { "Roll key" }
                }
            }
        }
    }
}
