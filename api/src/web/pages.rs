//! Sign-in, accepting an invitation, and the Settings hub.

use super::layout::{app_page, document, Nav, Shell};
use super::{firm_name, html, see_other, session, text, PageResult, Viewer};
use crate::app::AppState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use commands::auth::authenticate;
use domain::Permission;
use maud::{html as markup, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// `/` has nothing of its own: the Settings hub (or sign-in first).
pub async fn home() -> Response {
    see_other("/settings")
}

/// The query of `/login`.
#[derive(Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (only a path on this service is honoured).
    next: Option<String>,
}

/// `GET /login`: Email, Password, "Sign in". Someone already signed in goes straight on.
pub async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    let next = text::safe_next(query.as_ref().ok().and_then(|q| q.next.as_deref()));
    if let Ok(Some(token)) = session::cookie_token(&headers) {
        if authenticate(state.pool(), &token, commands::log::now()).await.ok().flatten().is_some() {
            return Ok(see_other(&next));
        }
    }
    Ok(html(StatusCode::OK, login_page(&next)))
}

/// A page for someone not signed in: one narrow card under the brand, centred.
fn signed_out_page(title: &str, script: &'static str, card: Markup) -> Markup {
    document(
        title,
        Some(script),
        markup! {
            main id="main" class="centered" {
                div class="card card-narrow" {
                    div class="brand brand-centered" {
                        span class="brand-mark" aria-hidden="true" { "E" }
                        span class="brand-name" { "Esqase" }
                    }
                    (card)
                }
            }
        },
    )
}

fn login_page(next: &str) -> Markup {
    signed_out_page(
        "Sign in",
        "login.js",
        markup! {
            h1 { "Sign in" }
            form class="stack" method="post" data-login data-next=(next) novalidate {
                div class="form-error" role="alert" data-form-error hidden {}
                div class="field" {
                    label for="login-email" { "Email" }
                    input id="login-email" type="email" name="email" autocomplete="username" required
                        aria-describedby="login-email-error";
                    p class="field-error" id="login-email-error" data-error-for="email" {}
                }
                div class="field" {
                    label for="login-password" { "Password" }
                    input id="login-password" type="password" name="password" autocomplete="current-password"
                        required aria-describedby="login-password-error";
                    p class="field-error" id="login-password-error" data-error-for="password" {}
                }
                button type="submit" class="button button-primary button-wide" { "Sign in" }
            }
        },
    )
}

/// `GET /invitations/accept#token=…`: set a password and join. The token stays in the fragment
/// (never sent to any server in a URL, never in a log or a referrer); the page's module reads
/// it, drops it from the address bar and posts it to `POST /v1/invitations/accept`.
pub async fn accept_invitation() -> Response {
    html(
        StatusCode::OK,
        signed_out_page(
            "Accept your invitation",
            "invitation.js",
            markup! {
                h1 { "Accept your invitation" }
                p class="muted" { "Choose a password to join your firm on Esqase. It needs at least 12 characters." }
                form class="stack" method="post" data-accept-invitation novalidate {
                    div class="form-error" role="alert" data-form-error hidden {}
                    div class="field" {
                        label for="invitation-password" { "Password" }
                        input id="invitation-password" type="password" name="password" autocomplete="new-password"
                            required minlength="12" aria-describedby="invitation-password-error";
                        p class="field-error" id="invitation-password-error" data-error-for="password" {}
                    }
                    button type="submit" class="button button-primary button-wide" { "Set password and sign in" }
                }
            },
        ),
    )
}

/// `GET /settings`: the hub. The Developers group with its API keys card shows only to a
/// member whose role holds `api_keys`; the audit log card only with `audit_log`.
pub async fn settings(State(state): State<Arc<AppState>>, Viewer(me): Viewer) -> PageResult {
    let firm = firm_name(&state, &me).await?;
    let shell = Shell { member: &me, firm: &firm };
    let content = markup! {
        div class="page-header" {
            h1 { "Settings" }
            p class="muted" { "Manage your firm's team, access and integrations." }
        }
        section class="settings-group" aria-labelledby="group-team" {
            h2 id="group-team" { "Team and security" }
            div class="cards" {
                a class="card card-link" href="/settings/roles" {
                    span class="card-title" { "Roles and permissions" }
                    span class="card-text" { "Choose what each role in your firm may see and do." }
                }
                @if me.permissions.contains(Permission::AuditLog) {
                    a class="card card-link" href="/settings/audit-log" {
                        span class="card-title" { "Audit log" }
                        span class="card-text" { "Every change to keys, members and roles, in a tamper-evident chain." }
                    }
                }
            }
        }
        @if me.permissions.contains(Permission::ApiKeys) {
            section class="settings-group" aria-labelledby="group-developers" {
                h2 id="group-developers" { "Developers" }
                div class="cards" {
                    a class="card card-link" href="/settings/developers" {
                        span class="card-title" { "API keys" }
                        span class="card-text" { "Create keys to sync contacts, matters, and leads via the REST API." }
                    }
                }
            }
        }
    };
    Ok(html(StatusCode::OK, app_page(&shell, Nav::Settings, "Settings", None, content)))
}
