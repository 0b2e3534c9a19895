//! The audit log page (`/settings/audit-log`), for members whose role holds `audit_log`:
//! entries newest first, the API's filters, the chain's verify result, and export links (to
//! `GET /v1/audit-log/export`, which the cookie authenticates like any safe request).

use super::layout::{app_page, no_access, Nav, Shell};
use super::{firm_name, html, text, PageResult, Viewer};
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::ListQuery;
use crate::routes::audit::{parse_filter, FILTERS};
use axum::extract::State;
use axum::http::StatusCode;
use domain::Permission;
use maud::{html as markup, Markup};
use projections::audit::{self, AuditEntry};
use projections::page::Page;
use std::sync::Arc;

/// `GET /settings/audit-log`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    Viewer(me): Viewer,
    query: Result<ListQuery, ApiError>,
) -> PageResult {
    let firm = firm_name(&state, &me).await?;
    let shell = Shell { member: &me, firm: &firm };
    if !me.permissions.contains(Permission::AuditLog) {
        return Ok(html(StatusCode::FORBIDDEN, no_access(&shell, Nav::AuditLog, "Audit log", "Audit log")));
    }
    let mut query = query?;
    // The filter form sends every field; a blank one filters nothing.
    query.filters.retain(|_, value| !value.trim().is_empty());
    query.only(&FILTERS)?;
    let filter = parse_filter(&query.filters)?;
    let entries = audit::entries(state.pool(), me.firm_id, &filter, query.page).await?;
    let verification = audit::verify(state.pool(), me.firm_id).await?;
    let value = |name: &str| query.filters.get(name).map(String::as_str).unwrap_or("");
    let filter_pairs: Vec<(&str, &str)> = FILTERS.iter().map(|name| (*name, value(name))).collect();
    let export = |format: &'static str| {
        let mut pairs = vec![("format", format)];
        pairs.extend(filter_pairs.iter().copied());
        format!("/v1/audit-log/export{}", text::query(&pairs))
    };
    let content = markup! {
        div class="page-header page-header-actions" {
            div {
                p class="breadcrumb" { a href="/settings" { "Settings" } " / Audit log" }
                h1 { "Audit log" }
                p class="muted" { "Every change to your firm's keys, members and roles, newest first. Each entry is chained to the one before it, so an altered or missing entry shows." }
            }
            div class="button-row" {
                a class="button" href=(export("csv")) download { "Export CSV" }
                a class="button" href=(export("jsonl")) download { "Export JSON Lines" }
            }
        }
        @if verification.ok {
            p class="verify verify-ok" role="status" {
                strong { "Chain verified." } " All " (verification.entries) " entries are intact and in order."
            }
        } @else {
            p class="verify verify-broken" role="alert" {
                strong { "Chain broken." }
                @if let Some(sequence) = verification.first_broken_sequence {
                    " The first broken entry is sequence " (sequence) "."
                }
                " Export the log and contact support."
            }
        }
        form class="filters-form" method="get" action="/settings/audit-log" aria-label="Filter the audit log" {
            div class="field" {
                label for="filter-action" { "Action" }
                select id="filter-action" name="action" {
                    option value="" { "All actions" }
                    @for action in audit::ACTIONS {
                        option value=(action) selected[value("action") == action] { (action) }
                    }
                }
            }
            div class="field" {
                label for="filter-key" { "API key ID" }
                input id="filter-key" name="api_key_id" type="text" value=(value("api_key_id")) spellcheck="false";
            }
            div class="field" {
                label for="filter-actor" { "Member ID" }
                input id="filter-actor" name="actor_id" type="text" value=(value("actor_id")) spellcheck="false";
            }
            div class="field field-time" {
                label for="filter-since" { "Since" }
                input id="filter-since" name="since" type="text" value=(value("since")) placeholder="2026-11-27T00:00:00Z";
            }
            div class="field field-time" {
                label for="filter-until" { "Until" }
                input id="filter-until" name="until" type="text" value=(value("until")) placeholder="2026-12-01T00:00:00Z";
            }
            div class="button-row" {
                button type="submit" class="button button-primary" { "Apply filters" }
                a class="button button-quiet" href="/settings/audit-log" { "Clear" }
            }
        }
        @if entries.data.is_empty() {
            section class="empty" aria-labelledby="empty-title" {
                h2 id="empty-title" { "No entries" }
                p class="muted" { "Nothing matches these filters." }
            }
        } @else {
            (table(&entries, me.time_zone))
            div class="table-footer" {
                p class="table-note" { "Times are in " (me.time_zone.name()) ", your firm's time zone." }
                (pager(&entries, &filter_pairs))
            }
        }
    };
    Ok(html(StatusCode::OK, app_page(&shell, Nav::AuditLog, "Audit log", None, content)))
}

fn table(entries: &Page<AuditEntry>, zone: domain::names::FirmTimeZone) -> Markup {
    markup! {
        div class="table-wrap" role="region" aria-label="Audit log entries" tabindex="0" {
            table class="table" {
                thead {
                    tr {
                        th scope="col" { "When" }
                        th scope="col" { "Action" }
                        th scope="col" { "By" }
                        th scope="col" { "Target" }
                        th scope="col" { "Details" }
                        th scope="col" { "Sequence" }
                    }
                }
                tbody {
                    @for entry in &entries.data {
                        tr {
                            td { time datetime=(text::iso(&entry.occurred_at)) { (text::date_time(&entry.occurred_at, zone)) } }
                            td { code { (entry.action) } }
                            td { (entry.actor.name.as_deref().unwrap_or(&entry.actor.kind)) }
                            td {
                                (entry.target.name.as_deref().unwrap_or(&entry.target.kind))
                                span class="muted block" { (entry.target.kind) " " code class="id" { (entry.target.id) } }
                            }
                            td { code class="details" { (entry.details.to_string()) } }
                            td class="numeric" { (entry.sequence) }
                        }
                    }
                }
            }
        }
    }
}

fn pager(entries: &Page<AuditEntry>, filters: &[(&str, &str)]) -> Markup {
    let href = |cursor: &str| {
        let mut pairs = filters.to_vec();
        pairs.push(("cursor", cursor));
        format!("/settings/audit-log{}", text::query(&pairs))
    };
    markup! {
        nav class="pager" aria-label="Pages of entries" {
            @match &entries.prev_cursor {
                Some(cursor) => a class="button" href=(href(cursor)) rel="prev" { "Previous" },
                None => button type="button" class="button" disabled { "Previous" },
            }
            @match &entries.next_cursor {
                Some(cursor) => a class="button" href=(href(cursor)) rel="next" { "Next" },
                None => button type="button" class="button" disabled { "Next" },
            }
        }
    }
}
