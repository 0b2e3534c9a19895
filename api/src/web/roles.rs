//! Roles and permissions (`/settings/roles`): the grid, with API keys under a Developers group.
//! Every member may look; only the owner can change it, from `assets/roles.js` through
//! `PUT /v1/roles/{role}/permissions`, and the change takes effect at once.

use super::layout::{app_page, Nav, Shell};
use super::text::{permission_words, role_words};
use super::{firm_name, html, PageResult, Viewer};
use crate::app::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use domain::{Permission, Role};
use maud::html as markup;
use std::sync::Arc;

/// The grid's groups, in order. Every permission of `Permission::ALL` falls in one, so a new
/// permission shows up without a second list to keep.
const GROUPS: [&str; 3] = ["Data", "Administration", "Developers"];

/// The group a permission is shown under: the firm's data, running the firm, or the
/// Developers group the help page puts API keys in.
fn group_of(permission: Permission) -> &'static str {
    match permission {
        permission if permission.is_data() => "Data",
        Permission::ApiKeys => "Developers",
        _ => "Administration",
    }
}

/// `GET /settings/roles`.
pub async fn page(State(state): State<Arc<AppState>>, Viewer(me): Viewer) -> PageResult {
    let firm = firm_name(&state, &me).await?;
    let shell = Shell { member: &me, firm: &firm };
    let roles = projections::views::roles(state.pool(), me.firm_id).await?;
    let owner = me.role == Role::Owner;
    let holds = |role: Role, permission: Permission| {
        roles.iter().find(|r| r.role == role).is_some_and(|r| r.permissions.contains(&permission.as_str()))
    };
    let content = markup! {
        div class="page-header" {
            p class="breadcrumb" { a href="/settings" { "Settings" } " / Roles and permissions" }
            h1 { "Roles and permissions" }
            p class="muted" {
                @if owner {
                    "Choose what each role may do. A change takes effect at once, for members and for every API key they created. The owner always has every permission."
                } @else {
                    "What each role in your firm may do. Only the firm's owner can change this."
                }
            }
        }
        p class="hint" role="status" data-roles-status {}
        div class="table-wrap" role="region" aria-label="Roles and permissions" tabindex="0" {
            table class="table grid" data-roles-grid {
                thead {
                    tr {
                        th scope="col" { "Permission" }
                        @for role in Role::ALL { th scope="col" { (role_words(role)) } }
                    }
                }
                @for group in GROUPS {
                    tbody {
                        tr class="group-row" { th scope="colgroup" colspan="5" { (group) } }
                        @for permission in Permission::ALL.into_iter().filter(|p| group_of(*p) == group) {
                            tr {
                                th scope="row" { (permission_words(permission)) }
                                @for role in Role::ALL {
                                    td {
                                        input type="checkbox" data-role=(role.as_str()) value=(permission.as_str())
                                            aria-label=(format!("{}: {}", role_words(role), permission_words(permission)))
                                            checked[holds(role, permission)]
                                            disabled[!owner || role == Role::Owner];
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(html(StatusCode::OK, app_page(&shell, Nav::Roles, "Roles and permissions", Some("roles.js"), content)))
}
