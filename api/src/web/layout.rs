//! The page shell: document head, the sidebar with Settings, the signed-in member and Sign out.

use axum::http::StatusCode;
use commands::auth::SignedInMember;
use domain::Permission;
use maud::{html, Markup, DOCTYPE};

/// Which page of the sidebar is open.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The Settings hub.
    Settings,
    /// Roles and permissions.
    Roles,
    /// The audit log.
    AuditLog,
    /// Developers › API keys.
    ApiKeys,
}

/// Who is looking, for the shell.
pub struct Shell<'a> {
    pub member: &'a SignedInMember,
    /// Their firm's name.
    pub firm: &'a str,
}

/// A whole document: head with the stylesheet and the page's module, then `body`.
pub fn document(title: &str, module: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Esqase" }
                link rel="icon" href="/assets/favicon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/assets/app.css";
                @if let Some(module) = module {
                    script type="module" src=(format!("/assets/{module}")) {}
                }
            }
            body { (body) }
        }
    }
}

/// A signed-in page: the sidebar and the main content.
pub fn app_page(shell: &Shell, nav: Nav, title: &str, module: Option<&str>, content: Markup) -> Markup {
    let current = |n: Nav| if n == nav { Some("page") } else { None };
    let member = shell.member;
    document(
        title,
        Some(module.unwrap_or("app.js")),
        html! {
            a class="skip-link" href="#main" { "Skip to content" }
            div class="shell" {
                header class="sidebar" {
                    div class="brand" {
                        span class="brand-mark" aria-hidden="true" { "E" }
                        span class="brand-text" {
                            span class="brand-name" { "Esqase" }
                            span class="brand-firm" { (shell.firm) }
                        }
                    }
                    nav aria-label="Main" {
                        ul class="nav" {
                            li {
                                a href="/settings" aria-current=[current(Nav::Settings)] { "Settings" }
                                ul class="subnav" {
                                    li { a href="/settings/roles" aria-current=[current(Nav::Roles)] { "Roles and permissions" } }
                                    @if member.permissions.contains(Permission::AuditLog) {
                                        li { a href="/settings/audit-log" aria-current=[current(Nav::AuditLog)] { "Audit log" } }
                                    }
                                    @if member.permissions.contains(Permission::ApiKeys) {
                                        li class="subnav-group" aria-hidden="true" { "Developers" }
                                        li { a href="/settings/developers" aria-current=[current(Nav::ApiKeys)] { "API keys" } }
                                    }
                                }
                            }
                        }
                    }
                    div class="account" {
                        span class="account-name" { (member.name) }
                        button type="button" class="button button-quiet" data-sign-out { "Sign out" }
                    }
                }
                main id="main" class="main" tabindex="-1" {
                    (content)
                }
            }
        },
    )
}

/// The answer to a member whose role lacks what a page needs: a clear view, in the shell.
pub fn no_access(shell: &Shell, nav: Nav, title: &str, what: &str) -> Markup {
    app_page(
        shell,
        nav,
        title,
        None,
        html! {
            div class="page-header" { h1 { (title) } }
            section class="notice" aria-labelledby="no-access-title" {
                h2 id="no-access-title" { "You don't have access to this page" }
                p { "Your role does not include the " (what) " permission. Ask your firm's owner to grant it to your role in " a href="/settings/roles" { "Roles and permissions" } "." }
            }
        },
    )
}

/// A page for a failure (a bad link, the database away): what happened, and a way back.
pub fn error_page(status: StatusCode, detail: &str) -> Markup {
    let reason = status.canonical_reason().unwrap_or("Error");
    document(
        reason,
        None,
        html! {
            main id="main" class="centered" {
                div class="card card-narrow" {
                    h1 { (reason) }
                    p { (detail) }
                    p { a href="/settings" { "Back to Settings" } }
                }
            }
        },
    )
}
