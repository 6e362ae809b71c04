//! The site-admin console (DESIGN §1, §3 "Admin controls"): members and roles, app
//! controls, data security policies, the audit log. Server-rendered, no JavaScript; only
//! admins of a product on the site get in (others see "not found"); every form carries
//! the session's CSRF token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::HeaderMap;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use trilo_core::CoreError;
use trilo_core::model::{Account, InstalledBy, Role, Session, UserInstalls};
use trilo_core::services::site_admin::SiteAdmin;

use super::common::render;
use super::console::{console_form, developer};
use super::errors::PageError;
use crate::state::AppState;
use crate::views::{
    AdminAppItem, AdminAppsPage, AdminAuditPage, AdminContainerItem, AdminEventItem,
    AdminMemberItem, AdminMembersPage, AdminPoliciesPage, AdminPolicyItem, AdminSiteItem,
    AdminSitesPage,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(sites))
        .route("/admin/sites/{cloud_id}", get(members))
        .route("/admin/sites/{cloud_id}/members", post(set_member))
        .route(
            "/admin/sites/{cloud_id}/members/remove",
            post(remove_member),
        )
        .route("/admin/sites/{cloud_id}/apps", get(apps))
        .route(
            "/admin/sites/{cloud_id}/apps/user-installs",
            post(set_user_installs),
        )
        .route("/admin/sites/{cloud_id}/apps/install", post(install_app))
        .route(
            "/admin/sites/{cloud_id}/apps/uninstall",
            post(uninstall_app),
        )
        .route(
            "/admin/sites/{cloud_id}/policies",
            get(policies).post(create_policy),
        )
        .route(
            "/admin/sites/{cloud_id}/policies/state",
            post(set_policy_state),
        )
        .route("/admin/sites/{cloud_id}/policies/edit", post(edit_policy))
        .route("/admin/sites/{cloud_id}/containers", post(add_container))
        .route("/admin/sites/{cloud_id}/audit", get(audit))
}

/// A page outcome: its notice or error, for the page rendered next.
type Outcome = (Option<String>, Option<String>);

/// The logged-in admin of the site, or the login page.
macro_rules! site_admin {
    ($state:expr, $headers:expr, $uri:expr) => {{
        match developer(&$state, &$headers, &$uri).await? {
            Ok(user) => user,
            Err(login) => return Ok(login),
        }
    }};
}

fn not_found(e: CoreError) -> PageError {
    match e {
        CoreError::NotFound(_) => PageError::NotFound("There is no such site to administer."),
        other => other.into(),
    }
}

async fn admin<'a>(
    state: &'a AppState,
    account: &'a Account,
    cloud_id: &'a str,
) -> Result<SiteAdmin<'a>, PageError> {
    state
        .core
        .site_admin(account, cloud_id)
        .await
        .map_err(not_found)
}

/// The user's mistake, shown on the page again; anything else is a page error.
fn outcome(result: Result<(), CoreError>, done: &str) -> Result<Outcome, PageError> {
    match result {
        Ok(()) => Ok((Some(done.to_owned()), None)),
        Err(CoreError::Invalid(message)) => Ok((None, Some(message))),
        Err(CoreError::NotFound(what)) => Ok((None, Some(format!("No such {what}.")))),
        Err(CoreError::Conflict(_)) => Ok((None, Some("That already exists.".to_owned()))),
        Err(e) => Err(e.into()),
    }
}

/// A page shown again with the user's mistake is a 400; otherwise a 200.
fn status_of(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

async fn sites(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let (_, account) = site_admin!(state, headers, uri);
    let sites = state
        .core
        .administered_sites(&account)
        .await?
        .into_iter()
        .map(|s| AdminSiteItem {
            cloud_id: s.cloud_id,
            name: s.name,
            url: s.url,
            user_installs: match s.user_installs {
                UserInstalls::Allowed => "Allowed",
                UserInstalls::Blocked => "Blocked",
            },
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &AdminSitesPage {
            email: account.email,
            sites,
        },
    ))
}

// ---- Members ----

async fn members(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    members_page(&state, &session, &account, &cloud_id, (None, None)).await
}

async fn members_page(
    state: &AppState,
    session: &Session,
    account: &Account,
    cloud_id: &str,
    (notice, error): Outcome,
) -> Result<Response, PageError> {
    let site_admin = admin(state, account, cloud_id).await?;
    let site = site_admin.site().await?;
    let members = site_admin
        .members()
        .await?
        .into_iter()
        .map(|m| AdminMemberItem {
            account_id: m.membership.account_id,
            name: m.name,
            email: m.email,
            product: m.membership.product_key,
            role: match m.membership.role {
                Role::Admin => "Admin",
                Role::Member => "Member",
                Role::Guest => "Guest",
            },
            containers: m.containers.join(", "),
        })
        .collect();
    let products = state
        .core
        .store
        .site_products(cloud_id)
        .await
        .map_err(CoreError::from)?
        .into_iter()
        .map(|p| p.product_key)
        .collect();
    let status = status_of(&error);
    Ok(render(
        status,
        &AdminMembersPage {
            email: account.email.clone(),
            cloud_id: cloud_id.to_owned(),
            site_name: site.name,
            csrf_token: session.csrf_token.clone(),
            notice,
            error,
            tab: "members",
            members,
            products,
        },
    ))
}

async fn set_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let role = match form.get("role") {
        Some("admin") => Role::Admin,
        Some("member") => Role::Member,
        Some("guest") => Role::Guest,
        _ => return Err(PageError::BadRequest("Choose a role.")),
    };
    let containers: Vec<String> = form
        .get("containers")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let result = site_admin
        .set_member(
            form.get("email").unwrap_or_default().trim(),
            form.get("product").unwrap_or_default(),
            role,
            &containers,
        )
        .await;
    let outcome = outcome(result, "Member saved.")?;
    members_page(&state, &session, &account, &cloud_id, outcome).await
}

async fn remove_member(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .remove_member(
            form.get("account_id").unwrap_or_default(),
            form.get("product").unwrap_or_default(),
        )
        .await;
    let outcome = outcome(result, "Member removed.")?;
    members_page(&state, &session, &account, &cloud_id, outcome).await
}

// ---- App controls ----

async fn apps(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    apps_page(&state, &session, &account, &cloud_id, (None, None)).await
}

async fn apps_page(
    state: &AppState,
    session: &Session,
    account: &Account,
    cloud_id: &str,
    (notice, error): Outcome,
) -> Result<Response, PageError> {
    let site_admin = admin(state, account, cloud_id).await?;
    let site = site_admin.site().await?;
    let apps = site_admin
        .installed_apps()
        .await?
        .into_iter()
        .map(|a| AdminAppItem {
            app_id: a.installation.app_id,
            name: a.app_name,
            client_id: a.client_id,
            installed_by: match a.installation.installed_by {
                InstalledBy::Admin => "An admin",
                InstalledBy::UserConsent => "A user's consent",
            },
            since: a.installation.created_at.date().to_string(),
        })
        .collect();
    let status = status_of(&error);
    Ok(render(
        status,
        &AdminAppsPage {
            email: account.email.clone(),
            cloud_id: cloud_id.to_owned(),
            site_name: site.name,
            csrf_token: session.csrf_token.clone(),
            notice,
            error,
            tab: "apps",
            blocked: site.user_installs == UserInstalls::Blocked,
            apps,
        },
    ))
}

async fn set_user_installs(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let value = match form.get("value") {
        Some("allowed") => UserInstalls::Allowed,
        Some("blocked") => UserInstalls::Blocked,
        _ => {
            return Err(PageError::BadRequest(
                "Choose to allow or block user installs.",
            ));
        }
    };
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin.set_user_installs(value).await;
    let done = match value {
        UserInstalls::Allowed => "User installs allowed.",
        UserInstalls::Blocked => "User installs blocked.",
    };
    let outcome = outcome(result, done)?;
    apps_page(&state, &session, &account, &cloud_id, outcome).await
}

async fn install_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .install_app(form.get("client_id").unwrap_or_default())
        .await;
    let outcome = outcome(result, "App installed.")?;
    apps_page(&state, &session, &account, &cloud_id, outcome).await
}

async fn uninstall_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .uninstall_app(form.get("app_id").unwrap_or_default())
        .await;
    let outcome = outcome(result, "App uninstalled.")?;
    apps_page(&state, &session, &account, &cloud_id, outcome).await
}

// ---- Data security policies ----

async fn policies(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let editing = Query::<EditQuery>::try_from_uri(&uri)
        .ok()
        .and_then(|q| q.0.edit);
    policies_page(&state, &session, &account, &cloud_id, (None, None), editing).await
}

#[derive(Deserialize)]
struct EditQuery {
    edit: Option<String>,
}

async fn policies_page(
    state: &AppState,
    session: &Session,
    account: &Account,
    cloud_id: &str,
    (notice, error): Outcome,
    editing: Option<String>,
) -> Result<Response, PageError> {
    let site_admin = admin(state, account, cloud_id).await?;
    let site = site_admin.site().await?;
    let all = site_admin.policies().await?;
    let edited = editing
        .as_deref()
        .and_then(|id| all.iter().find(|p| p.policy_id == id))
        .cloned();
    let policies = all
        .into_iter()
        .map(|p| AdminPolicyItem {
            covers: p
                .containers
                .iter()
                .map(|(product, key)| format!("{product}: {key}"))
                .collect::<Vec<_>>()
                .join(", "),
            policy_id: p.policy_id,
            name: p.name,
            active: p.active,
        })
        .collect();
    let containers = site_admin
        .containers()
        .await?
        .into_iter()
        .map(|c| AdminContainerItem {
            chosen: edited.as_ref().is_some_and(|p| {
                p.containers
                    .iter()
                    .any(|(product, key)| *product == c.product_key && *key == c.key)
            }),
            product: c.product_key,
            key: c.key,
            name: c.name,
        })
        .collect();
    let status = status_of(&error);
    Ok(render(
        status,
        &AdminPoliciesPage {
            email: account.email.clone(),
            cloud_id: cloud_id.to_owned(),
            site_name: site.name,
            csrf_token: session.csrf_token.clone(),
            notice,
            error,
            tab: "policies",
            policies,
            containers,
            form_name: edited.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            products: state
                .core
                .store
                .site_products(cloud_id)
                .await
                .map_err(CoreError::from)?
                .into_iter()
                .map(|p| p.product_key)
                .collect(),
            editing: edited.map(|p| p.policy_id),
        },
    ))
}

async fn create_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .create_policy(
            form.get("name").unwrap_or_default(),
            chosen_containers(&body)?,
        )
        .await
        .map(|_| ());
    let outcome = outcome(result, "Policy created. Activate it to apply it.")?;
    policies_page(&state, &session, &account, &cloud_id, outcome, None).await
}

async fn add_container(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .add_container(
            form.get("product").unwrap_or_default(),
            form.get("key").unwrap_or_default(),
            form.get("id").unwrap_or_default(),
            form.get("name").unwrap_or_default(),
        )
        .await;
    let outcome = outcome(result, "Space or project added.")?;
    policies_page(&state, &session, &account, &cloud_id, outcome, None).await
}

async fn edit_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let policy_id = form.get("policy_id").unwrap_or_default().to_owned();
    let result = site_admin
        .update_policy(
            &policy_id,
            form.get("name").unwrap_or_default(),
            chosen_containers(&body)?,
        )
        .await;
    let outcome = outcome(result, "Policy saved.")?;
    let editing = outcome.1.is_some().then_some(policy_id);
    policies_page(&state, &session, &account, &cloud_id, outcome, editing).await
}

/// The `container` checkboxes (`product/KEY`) of a policy form.
fn chosen_containers(body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    Ok(super::console::form_values(body, "container")?
        .into_iter()
        .filter_map(|v| {
            v.split_once('/')
                .map(|(product, key)| (product.to_owned(), key.to_owned()))
        })
        .collect())
}

async fn set_policy_state(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let form = console_form(&headers, &body, &session)?;
    let active = match form.get("active") {
        Some("on") => true,
        Some("off") => false,
        _ => return Err(PageError::BadRequest("Choose to activate or deactivate.")),
    };
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let result = site_admin
        .set_policy_active(form.get("policy_id").unwrap_or_default(), active)
        .await;
    let done = if active {
        "Policy activated."
    } else {
        "Policy deactivated."
    };
    let outcome = outcome(result, done)?;
    policies_page(&state, &session, &account, &cloud_id, outcome, None).await
}

// ---- Audit log ----

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default)]
    action: String,
}

async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(cloud_id): Path<String>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let (session, account) = site_admin!(state, headers, uri);
    let site_admin = admin(&state, &account, &cloud_id).await?;
    let site = site_admin.site().await?;
    let filter = query.action.trim().to_owned();
    let mut events = Vec::new();
    for e in site_admin.audit_events(Some(&filter)).await? {
        let actor = match &e.actor_account_id {
            Some(id) => state
                .core
                .store
                .account(id)
                .await
                .map_err(CoreError::from)?
                .map_or_else(|| id.clone(), |a| a.email),
            None => "trilo".to_owned(),
        };
        events.push(AdminEventItem {
            at: e
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            action: e.action,
            target: e.target,
            actor,
        });
    }
    Ok(render(
        StatusCode::OK,
        &AdminAuditPage {
            email: account.email,
            cloud_id,
            site_name: site.name,
            csrf_token: session.csrf_token,
            notice: None,
            error: None,
            tab: "audit",
            filter,
            events,
        },
    ))
}
