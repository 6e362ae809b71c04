//! The site-admin console (DESIGN §1, §3 "Admin controls"): members and roles, app
//! controls, data security policies, the audit log. Server-rendered, no JavaScript; only
//! admins of a product on the site get in (others see "not found"); every form carries
//! the session's CSRF token.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use trilo_core::CoreError;
use trilo_core::model::{InstalledBy, Role, Site, UserInstalls};
use trilo_core::services::site_admin::SiteAdmin;
use trilo_protocol::params::encode;

use super::common::{link_with_token, render};
use super::confirm::{Question, ask_first};
use super::errors::PageError;
use super::extract::{CsrfForm, SignedIn, SiteAdminOf};
use crate::mail::Mail;
use crate::state::AppState;
use crate::views::{
    AdminAppItem, AdminAppsPage, AdminAuditPage, AdminContainerItem, AdminEventItem,
    AdminMemberItem, AdminMembersPage, AdminPoliciesPage, AdminPolicyItem, AdminSiteItem,
    AdminSitesPage, Chrome, MemberForm,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(sites))
        .route("/admin/sites/{cloud_id}", get(members))
        .route("/admin/sites/{cloud_id}/members", post(set_member))
        .route(
            "/admin/sites/{cloud_id}/members/invite",
            post(invite_member),
        )
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

/// A page outcome: its notice or error (about one field of the form, when it names one),
/// for the page rendered next.
#[derive(Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    field: Option<&'static str>,
}

impl Outcome {
    fn notice(notice: String) -> Self {
        Outcome {
            notice: Some(notice),
            ..Outcome::default()
        }
    }

    fn error(error: String) -> Self {
        Outcome {
            error: Some(error),
            ..Outcome::default()
        }
    }
}

/// What a site page starts from: the admin services, the site, and the chrome showing the
/// outcome of the form just sent (a 400 when it was the admin's mistake).
async fn site_page<'a>(
    state: &'a AppState,
    admin: &'a SiteAdminOf,
    tab: &'static str,
    outcome: Outcome,
) -> Result<(SiteAdmin<'a>, Site, Chrome, StatusCode), PageError> {
    let services = admin.services(state).await?;
    let site = services.site().await?;
    let chrome = Chrome {
        notice: outcome.notice,
        error: outcome.error,
        error_field: outcome.field,
        ..admin.me.chrome(tab)
    };
    let status = chrome.status();
    Ok((services, site, chrome, status))
}

/// The user's mistake, shown on the page again; anything else is a page error.
fn outcome(result: Result<(), CoreError>, done: &str) -> Result<Outcome, PageError> {
    match result {
        Ok(()) => Ok(Outcome::notice(done.to_owned())),
        Err(CoreError::InvalidField { field, message }) => Ok(Outcome {
            field: Some(field),
            ..Outcome::error(message)
        }),
        Err(CoreError::Invalid(message)) => Ok(Outcome::error(message)),
        Err(CoreError::NotFound(what)) => Ok(Outcome::error(format!("No such {what}."))),
        Err(CoreError::Conflict(_)) => Ok(Outcome::error("That already exists.".to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// What a site-admin form asks before it takes something away (see `confirm`). Both
/// paths are below the site's admin pages: `action` is where the confirmed form posts,
/// `back` the tab Cancel returns to.
struct SiteQuestion {
    title: String,
    what: String,
    button: &'static str,
    back: &'static str,
    action: &'static str,
}

/// `Some(page)`: ask first; `None`: confirmed, go ahead (see `confirm::ask_first`).
fn ask_admin_first(form: &CsrfForm, admin: &SiteAdminOf, asked: SiteQuestion) -> Option<Response> {
    let below = |path: &str| format!("/admin/sites/{}{path}", admin.cloud_id);
    let question = Question {
        title: asked.title,
        what: asked.what,
        button: asked.button,
        cancel: below(asked.back),
        typed_name: None,
    };
    ask_first(form, &below(asked.action), question)
}

async fn sites(State(state): State<AppState>, me: SignedIn) -> Result<Response, PageError> {
    let sites = state
        .core
        .administered_sites(&me.account)
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
            nav: me.nav(),
            email: me.account.email,
            sites,
        },
    ))
}

// ---- Members ----

async fn members(State(state): State<AppState>, admin: SiteAdminOf) -> Result<Response, PageError> {
    members_page(&state, &admin, Outcome::default(), MemberForm::default()).await
}

async fn members_page(
    state: &AppState,
    admin: &SiteAdminOf,
    outcome: Outcome,
    typed: MemberForm,
) -> Result<Response, PageError> {
    let (site_admin, site, chrome, status) = site_page(state, admin, "members", outcome).await?;
    let members = site_admin
        .members()
        .await?
        .into_iter()
        .map(|m| AdminMemberItem {
            account_id: m.membership.account_id,
            name: m.name,
            email: m.email,
            invited: m.invited,
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
        .site_products(&admin.cloud_id)
        .await?
        .into_iter()
        .map(|p| p.product_key)
        .collect();
    Ok(render(
        status,
        &AdminMembersPage {
            chrome,
            cloud_id: admin.cloud_id.clone(),
            site_name: site.name,
            members,
            products,
            typed,
        },
    ))
}

/// The members form as sent: the role read, the guest's containers split.
struct SentMember {
    typed: MemberForm,
    role: Role,
    containers: Vec<String>,
}

fn sent_member(form: &CsrfForm) -> Result<SentMember, PageError> {
    let role = match form.get("role") {
        Some("admin") => Role::Admin,
        Some("member") => Role::Member,
        Some("guest") => Role::Guest,
        _ => return Err(PageError::BadRequest("Choose a role.")),
    };
    let typed = MemberForm {
        email: form.get("email").unwrap_or_default().trim().to_owned(),
        product: form.get("product").unwrap_or_default().to_owned(),
        role: role.as_str(),
        containers: form.get("containers").unwrap_or_default().to_owned(),
    };
    let containers = typed
        .containers
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(SentMember {
        typed,
        role,
        containers,
    })
}

async fn set_member(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let sent = sent_member(&form)?;
    let result = site_admin
        .set_member(
            &sent.typed.email,
            &sent.typed.product,
            sent.role,
            &sent.containers,
        )
        .await;
    // Nobody has that email: offer to invite them, with the same choices.
    if matches!(result, Err(CoreError::NotFound("account"))) && !sent.typed.email.is_empty() {
        let site = site_admin.site().await?;
        let question = SiteQuestion {
            title: format!("Invite {}?", sent.typed.email),
            what: format!(
                "Nobody has a trilo account with this email. They will be mailed an \
                 invitation to join {} as {} of {}; its link works for 7 days, and they \
                 choose their name and password there.",
                site.name,
                sent.role.as_str(),
                sent.typed.product
            ),
            button: "Send invitation",
            back: "",
            action: "/members/invite",
        };
        if let Some(page) = ask_admin_first(&form, &admin, question) {
            return Ok(page);
        }
    }
    let keep = if result.is_err() {
        sent.typed
    } else {
        MemberForm::default()
    };
    let outcome = outcome(result, "Member saved.")?;
    members_page(&state, &admin, outcome, keep).await
}

/// Sends the invitation the members form offered (see `set_member`). Without mail set up,
/// the page shows the link for the admin to pass on.
async fn invite_member(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let sent = sent_member(&form)?;
    let invited = site_admin
        .invite_member(
            &sent.typed.email,
            &sent.typed.product,
            sent.role,
            &sent.containers,
        )
        .await;
    let invitation = match invited {
        Ok(invitation) => invitation,
        Err(e) => {
            let outcome = outcome(Err(e), "")?;
            return members_page(&state, &admin, outcome, sent.typed).await;
        }
    };
    let link = link_with_token(&state, "/login/invitation", &invitation.token);
    let notice = if state.mailer.is_on() {
        let mail = Mail {
            to: invitation.email.clone(),
            subject: format!(
                "{} invited you to {}",
                invitation.inviter, invitation.site_name
            ),
            body: format!(
                "Hello,\n\n{} invited you to {} on trilo. Open this link within 7 days to \
                 choose your name and password:\n\n{link}\n\nIf you do not know them, ignore \
                 this message: nothing happens.\n",
                invitation.inviter, invitation.site_name
            ),
        };
        match state.mailer.send(&mail).await {
            Ok(()) => format!("Invitation sent to {}.", invitation.email),
            Err(e) => {
                tracing::error!(error = %e, "could not send an invitation");
                format!(
                    "The invitation to {} could not be mailed. Send them this link yourself \
                     (it works for 7 days): {link}",
                    invitation.email
                )
            }
        }
    } else {
        format!(
            "Mail is not set up on this trilo: send {} this link yourself (it works for 7 \
             days): {link}",
            invitation.email
        )
    };
    members_page(
        &state,
        &admin,
        Outcome::notice(notice),
        MemberForm::default(),
    )
    .await
}

async fn remove_member(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let (account_id, product) = (
        form.get("account_id").unwrap_or_default(),
        form.get("product").unwrap_or_default(),
    );
    let who = site_admin
        .members()
        .await?
        .into_iter()
        .find(|m| m.membership.account_id == account_id && m.membership.product_key == product)
        .map_or_else(|| "this member".to_owned(), |m| m.email);
    let question = SiteQuestion {
        title: format!("Remove {who} from {product}?"),
        what: format!(
            "{who} loses access to {product} on this site at once, and so do the apps acting \
             for them here."
        ),
        button: "Remove member",
        back: "",
        action: "/members/remove",
    };
    if let Some(page) = ask_admin_first(&form, &admin, question) {
        return Ok(page);
    }
    let result = site_admin.remove_member(account_id, product).await;
    let outcome = outcome(result, "Member removed.")?;
    members_page(&state, &admin, outcome, MemberForm::default()).await
}

// ---- App controls ----

async fn apps(State(state): State<AppState>, admin: SiteAdminOf) -> Result<Response, PageError> {
    apps_page(&state, &admin, Outcome::default()).await
}

async fn apps_page(
    state: &AppState,
    admin: &SiteAdminOf,
    outcome: Outcome,
) -> Result<Response, PageError> {
    let (site_admin, site, chrome, status) = site_page(state, admin, "apps", outcome).await?;
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
    Ok(render(
        status,
        &AdminAppsPage {
            chrome,
            cloud_id: admin.cloud_id.clone(),
            site_name: site.name,
            blocked: site.user_installs == UserInstalls::Blocked,
            apps,
        },
    ))
}

async fn set_user_installs(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let value = match form.get("value") {
        Some("allowed") => UserInstalls::Allowed,
        Some("blocked") => UserInstalls::Blocked,
        _ => {
            return Err(PageError::BadRequest(
                "Choose to allow or block user installs.",
            ));
        }
    };
    if value == UserInstalls::Blocked {
        let question = SiteQuestion {
            title: "Block user installs?".to_owned(),
            what: "Users of this site can no longer install apps by giving their consent. \
                   Apps already installed stay; new ones need an admin to install them."
                .to_owned(),
            button: "Block user installs",
            back: "/apps",
            action: "/apps/user-installs",
        };
        if let Some(page) = ask_admin_first(&form, &admin, question) {
            return Ok(page);
        }
    }
    let site_admin = admin.services(&state).await?;
    let result = site_admin.set_user_installs(value).await;
    let done = match value {
        UserInstalls::Allowed => "User installs allowed.",
        UserInstalls::Blocked => "User installs blocked.",
    };
    let outcome = outcome(result, done)?;
    apps_page(&state, &admin, outcome).await
}

async fn install_app(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let result = site_admin
        .install_app(form.get("client_id").unwrap_or_default())
        .await;
    let outcome = outcome(result, "App installed.")?;
    apps_page(&state, &admin, outcome).await
}

async fn uninstall_app(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let app_id = form.get("app_id").unwrap_or_default();
    let app_name = site_admin
        .installed_apps()
        .await?
        .into_iter()
        .find(|a| a.installation.app_id == app_id)
        .map_or_else(|| "this app".to_owned(), |a| a.app_name);
    let question = SiteQuestion {
        title: format!("Uninstall {app_name}?"),
        what: format!(
            "{app_name} loses access to this site at once, for every user who allowed it."
        ),
        button: "Uninstall app",
        back: "/apps",
        action: "/apps/uninstall",
    };
    if let Some(page) = ask_admin_first(&form, &admin, question) {
        return Ok(page);
    }
    let result = site_admin.uninstall_app(app_id).await;
    let outcome = outcome(result, "App uninstalled.")?;
    apps_page(&state, &admin, outcome).await
}

// ---- Data security policies ----

async fn policies(
    State(state): State<AppState>,
    uri: Uri,
    admin: SiteAdminOf,
) -> Result<Response, PageError> {
    let editing = Query::<EditQuery>::try_from_uri(&uri)
        .ok()
        .and_then(|q| q.0.edit);
    policies_page(&state, &admin, Outcome::default(), editing).await
}

#[derive(Deserialize)]
struct EditQuery {
    edit: Option<String>,
}

async fn policies_page(
    state: &AppState,
    admin: &SiteAdminOf,
    outcome: Outcome,
    editing: Option<String>,
) -> Result<Response, PageError> {
    let (site_admin, site, chrome, status) = site_page(state, admin, "policies", outcome).await?;
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
    Ok(render(
        status,
        &AdminPoliciesPage {
            chrome,
            site_name: site.name,
            policies,
            containers,
            form_name: edited.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
            products: state
                .core
                .site_products(&admin.cloud_id)
                .await?
                .into_iter()
                .map(|p| p.product_key)
                .collect(),
            cloud_id: admin.cloud_id.clone(),
            editing: edited.map(|p| p.policy_id),
        },
    ))
}

async fn create_policy(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let result = site_admin
        .create_policy(
            form.get("name").unwrap_or_default(),
            chosen_containers(&form)?,
        )
        .await
        .map(|_| ());
    let outcome = outcome(result, "Policy created. Activate it to apply it.")?;
    policies_page(&state, &admin, outcome, None).await
}

async fn add_container(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let result = site_admin
        .add_container(
            form.get("product").unwrap_or_default(),
            form.get("key").unwrap_or_default(),
            form.get("id").unwrap_or_default(),
            form.get("name").unwrap_or_default(),
        )
        .await;
    let outcome = outcome(result, "Space or project added.")?;
    policies_page(&state, &admin, outcome, None).await
}

async fn edit_policy(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let site_admin = admin.services(&state).await?;
    let policy_id = form.get("policy_id").unwrap_or_default().to_owned();
    let result = site_admin
        .update_policy(
            &policy_id,
            form.get("name").unwrap_or_default(),
            chosen_containers(&form)?,
        )
        .await;
    let outcome = outcome(result, "Policy saved.")?;
    let editing = outcome.error.is_some().then_some(policy_id);
    policies_page(&state, &admin, outcome, editing).await
}

/// The `container` checkboxes (`product/KEY`) of a policy form.
fn chosen_containers(form: &CsrfForm) -> Result<Vec<(String, String)>, PageError> {
    Ok(form
        .values("container")?
        .into_iter()
        .filter_map(|v| {
            v.split_once('/')
                .map(|(product, key)| (product.to_owned(), key.to_owned()))
        })
        .collect())
}

async fn set_policy_state(
    State(state): State<AppState>,
    admin: SiteAdminOf,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let active = match form.get("active") {
        Some("on") => true,
        Some("off") => false,
        _ => return Err(PageError::BadRequest("Choose to activate or deactivate.")),
    };
    let site_admin = admin.services(&state).await?;
    let policy_id = form.get("policy_id").unwrap_or_default();
    if !active {
        let name = site_admin
            .policies()
            .await?
            .into_iter()
            .find(|p| p.policy_id == policy_id)
            .map_or_else(|| "this policy".to_owned(), |p| format!("“{}”", p.name));
        let question = SiteQuestion {
            title: format!("Deactivate the policy {name}?"),
            what: "Apps can reach the spaces and projects it covers again, at once.".to_owned(),
            button: "Deactivate policy",
            back: "/policies",
            action: "/policies/state",
        };
        if let Some(page) = ask_admin_first(&form, &admin, question) {
            return Ok(page);
        }
    }
    let result = site_admin.set_policy_active(policy_id, active).await;
    let done = if active {
        "Policy activated."
    } else {
        "Policy deactivated."
    };
    let outcome = outcome(result, done)?;
    policies_page(&state, &admin, outcome, None).await
}

// ---- Audit log ----

#[derive(Deserialize)]
struct AuditQuery {
    /// Actions starting with this.
    #[serde(default)]
    action: String,
    /// `YYYY-MM-DD`, UTC: from the start of this day.
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, UTC: up to the end of this day.
    #[serde(default)]
    to: String,
    /// The page after this event (`MILLIS.EVENT_ID`, from the "Older events" link).
    #[serde(default)]
    after: String,
    /// `csv` or `json`: the whole selection as a download.
    #[serde(default)]
    format: String,
}

/// Events per page, and the most one export holds.
const AUDIT_PAGE: u32 = 50;
const AUDIT_EXPORT_MAX: u32 = 10_000;

async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    admin: SiteAdminOf,
) -> Result<Response, PageError> {
    let (site_admin, site, chrome, _) =
        site_page(&state, &admin, "audit", Outcome::default()).await?;
    let filter = query.action.trim().to_owned();
    let from = audit_day(&query.from)?;
    let until = audit_day(&query.to)?.map(|d| d + time::Duration::days(1));
    let export = match query.format.as_str() {
        "" => None,
        "csv" | "json" => Some(query.format.as_str()),
        _ => return Err(PageError::BadRequest("Export as csv or json.")),
    };
    let after_event = match (export, query.after.split_once('.')) {
        (None, Some((millis, id))) => {
            let millis: i64 = millis
                .parse()
                .map_err(|_| PageError::BadRequest("That page link is damaged."))?;
            let at =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                    .map_err(|_| PageError::BadRequest("That page link is damaged."))?;
            Some((at, id.to_owned()))
        }
        _ => None,
    };
    let mut events = site_admin
        .audit_events(trilo_core::model::AuditQuery {
            action_prefix: Some(filter.clone()),
            from,
            until,
            after_event,
            limit: if export.is_some() {
                AUDIT_EXPORT_MAX
            } else {
                AUDIT_PAGE + 1
            },
            ..trilo_core::model::AuditQuery::default()
        })
        .await?;
    let more = export.is_none() && events.len() > AUDIT_PAGE as usize;
    events.truncate(if export.is_some() {
        events.len()
    } else {
        AUDIT_PAGE as usize
    });
    // Names, each looked up once per page.
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(events.len());
    for e in &events {
        let actor = match &e.actor_account_id {
            Some(id) => describe(&site_admin, &mut names, id).await?,
            None => "trilo (the system)".to_owned(),
        };
        items.push(AdminEventItem {
            at: e
                .at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            action: e.action.clone(),
            target: describe(&site_admin, &mut names, &e.target).await?,
            target_id: e.target.clone(),
            actor,
        });
    }
    let filters = audit_filters(&filter, &query.from, &query.to);
    match export {
        Some(format) => Ok(audit_export(format, &items, &events)),
        None => Ok(render(
            StatusCode::OK,
            &AdminAuditPage {
                chrome,
                cloud_id: admin.cloud_id.clone(),
                site_name: site.name,
                filter,
                from: query.from.trim().to_owned(),
                to: query.to.trim().to_owned(),
                next_href: more.then(|| {
                    let last = &events[events.len() - 1];
                    let millis = last.at.unix_timestamp_nanos() / 1_000_000;
                    format!(
                        "/admin/sites/{}/audit?{filters}&after={millis}.{}",
                        admin.cloud_id,
                        encode(&last.event_id)
                    )
                }),
                export_query: filters,
                events: items,
            },
        )),
    }
}

/// A `YYYY-MM-DD` day's start (UTC); empty is no bound.
fn audit_day(text: &str) -> Result<Option<time::OffsetDateTime>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| PageError::BadRequest("Write dates as YYYY-MM-DD."))?;
    Ok(Some(date.midnight().assume_utc()))
}

/// The query string of the current filters (for the next page and the exports).
fn audit_filters(action: &str, from: &str, to: &str) -> String {
    format!(
        "action={}&from={}&to={}",
        encode(action),
        encode(from.trim()),
        encode(to.trim())
    )
}

async fn describe(
    site_admin: &SiteAdmin<'_>,
    names: &mut std::collections::HashMap<String, String>,
    id: &str,
) -> Result<String, PageError> {
    if let Some(name) = names.get(id) {
        return Ok(name.clone());
    }
    let name = site_admin.describe(id).await?;
    names.insert(id.to_owned(), name.clone());
    Ok(name)
}

/// The selection as a download: CSV (one row per event, names resolved, spreadsheet
/// formulas defused) or JSON (the events as stored, with the names beside them).
fn audit_export(
    format: &str,
    items: &[AdminEventItem],
    events: &[trilo_core::model::AuditEvent],
) -> Response {
    let (body, content_type, file) = if format == "csv" {
        let mut csv = String::from("at,action,target,target_id,by,details\r\n");
        for (item, event) in items.iter().zip(events) {
            let details = event.details.to_string();
            let fields = [
                item.at.as_str(),
                item.action.as_str(),
                item.target.as_str(),
                item.target_id.as_str(),
                item.actor.as_str(),
                details.as_str(),
            ];
            let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            csv.push_str(&row.join(","));
            csv.push_str("\r\n");
        }
        (csv, "text/csv; charset=utf-8", "audit.csv")
    } else {
        let list: Vec<serde_json::Value> = items
            .iter()
            .zip(events)
            .map(|(item, e)| {
                serde_json::json!({
                    "event_id": e.event_id,
                    "at": item.at,
                    "action": e.action,
                    "target": e.target,
                    "target_name": item.target,
                    "actor_account_id": e.actor_account_id,
                    "actor": item.actor,
                    "details": e.details,
                })
            })
            .collect();
        (
            serde_json::to_string_pretty(&list).unwrap_or_default(),
            "application/json",
            "audit.json",
        )
    };
    let mut res = body.into_response();
    let headers = res.headers_mut();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        headers.insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    res
}

/// One CSV field (RFC 4180 quoting); a value a spreadsheet would run as a formula starts
/// with an apostrophe instead.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", value.replace('"', "\"\""))
}
