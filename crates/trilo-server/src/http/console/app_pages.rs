//! The app pages after the overview: authorization (callback URLs and the ready-made
//! authorization URL), permissions (scopes from the products' catalogs), distribution
//! (sharing), settings (details, secret rotation, deletion).

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use trilo_core::CoreError;
use trilo_core::model::{App, Distribution};
use trilo_core::services::console::{AppChanges, UpdatedApp};
use trilo_protocol::authorize::append_query;
use trilo_protocol::params::encode;
use trilo_protocol::scope::IDENTITY_SCOPES;

use super::{FormProblem, app_view, form_problem, form_problem_at};
use crate::config::parse_duration;
use crate::http::common::{form_values, render, see_other};
use crate::http::confirm::{Question, ask_first};
use crate::http::errors::PageError;
use crate::http::extract::{CsrfForm, DeveloperApp};
use crate::state::AppState;
use crate::views::{
    ApiScopes, AuthorizationPage, Chrome, DistributionPage, PermissionsPage, ScopeOption,
    SettingsPage,
};

// The pages' tabs, as `dev/nav_partial.html` names them.
const AUTHORIZATION: &str = "authorization";
const PERMISSIONS: &str = "permissions";
const DISTRIBUTION: &str = "distribution";
const SETTINGS: &str = "settings";

/// Saves changes to the developer's app; a validation problem comes back as the page's
/// error.
async fn save(
    state: &AppState,
    dev: &DeveloperApp,
    changes: AppChanges,
) -> Result<Result<UpdatedApp, FormProblem>, PageError> {
    match state
        .core
        .console(&dev.me.account)
        .update_app(&dev.app.app_id, changes)
        .await
    {
        Ok(updated) => Ok(Ok(updated)),
        Err(e) => Ok(Err(form_problem_at(e)?)),
    }
}

// ---- Authorization ----

pub(super) async fn authorization(
    State(state): State<AppState>,
    uri: Uri,
    DeveloperApp { me, app }: DeveloperApp,
) -> Result<Response, PageError> {
    let chosen = form_values(uri.query().unwrap_or_default().as_bytes(), "scope")?;
    let chrome = me.chrome(AUTHORIZATION);
    Ok(authorization_page(&state, chrome, &app, &chosen))
}

pub(super) async fn save_authorization(
    State(state): State<AppState>,
    dev: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let lines = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let changes = AppChanges {
        callback_urls: Some(lines(form.get("callback_urls").unwrap_or_default())),
        // Absent from older forms: then the origins stay as they are.
        web_origins: form.get("web_origins").map(lines),
        ..AppChanges::default()
    };
    let chrome = dev.me.chrome(AUTHORIZATION);
    Ok(match save(&state, &dev, changes).await? {
        Ok(saved) => authorization_page(
            &state,
            chrome.with_notice("Callback URLs and web origins saved."),
            &saved.app,
            &[],
        ),
        Err(problem) => {
            // The page shows what was typed, not what is saved, so a mistake can be fixed
            // in place.
            let typed = App {
                callback_urls: vec![form.get("callback_urls").unwrap_or_default().to_owned()],
                web_origins: form
                    .get("web_origins")
                    .map_or_else(|| dev.app.web_origins.clone(), |o| vec![o.to_owned()]),
                ..dev.app.clone()
            };
            let mut page = authorization_page(&state, problem.shown_in(chrome), &typed, &[]);
            *page.status_mut() = StatusCode::BAD_REQUEST;
            page
        }
    })
}

fn authorization_page(state: &AppState, chrome: Chrome, app: &App, chosen: &[String]) -> Response {
    // Nothing chosen yet: all of the app's scopes.
    let chosen: Vec<&String> = if chosen.is_empty() {
        app.scopes.iter().collect()
    } else {
        app.scopes.iter().filter(|s| chosen.contains(s)).collect()
    };
    let settings = &state.core.settings;
    let scope = chosen
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let authorization_url = match app.callback_urls.first() {
        Some(callback) => append_query(
            &format!("{}/authorize", settings.auth_url.trim_end_matches('/')),
            &[
                ("audience", settings.audience.as_str()),
                ("client_id", &app.client_id),
                ("scope", &scope),
                ("redirect_uri", callback),
                ("state", "YOUR_USER_BOUND_VALUE"),
                ("response_type", "code"),
                ("prompt", "consent"),
            ],
        ),
        None => String::new(),
    };
    render(
        StatusCode::OK,
        &AuthorizationPage {
            chrome,
            app: app_view(app),
            callback_text: app.callback_urls.join("\n"),
            origins_text: app.web_origins.join("\n"),
            scope_choices: app
                .scopes
                .iter()
                .map(|s| ScopeOption {
                    scope: s.clone(),
                    description: String::new(),
                    chosen: chosen.contains(&s),
                })
                .collect(),
            authorization_url,
        },
    )
}

// ---- Permissions ----

pub(super) async fn permissions(
    State(state): State<AppState>,
    uri: Uri,
    DeveloperApp { me, app }: DeveloperApp,
) -> Result<Response, PageError> {
    let query = crate::http::common::query_params(&uri)
        .unwrap_or_default()
        .get("q")
        .unwrap_or_default()
        .trim()
        .to_owned();
    permissions_page(&state, me.chrome(PERMISSIONS), &app, StatusCode::OK, &query).await
}

pub(super) async fn save_permissions(
    State(state): State<AppState>,
    dev: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let changes = AppChanges {
        scopes: Some(form.values("scope")?),
        ..AppChanges::default()
    };
    let chrome = dev.me.chrome(PERMISSIONS);
    match save(&state, &dev, changes).await? {
        Ok(saved) => {
            let notice = if saved.new_scopes.is_empty() {
                "Scopes saved.".to_owned()
            } else {
                format!(
                    "Scopes saved. Users who consented before must consent again to the new \
                     scopes: {}.",
                    saved.new_scopes.join(", ")
                )
            };
            let chrome = chrome.with_notice(notice);
            permissions_page(&state, chrome, &saved.app, StatusCode::OK, "").await
        }
        Err(problem) => {
            let chrome = problem.shown_in(chrome);
            permissions_page(&state, chrome, &dev.app, StatusCode::BAD_REQUEST, "").await
        }
    }
}

async fn permissions_page(
    state: &AppState,
    chrome: Chrome,
    app: &App,
    status: StatusCode,
    query: &str,
) -> Result<Response, PageError> {
    let option = |scope: &str, description: &str| ScopeOption {
        scope: scope.to_owned(),
        description: description.to_owned(),
        chosen: app.scopes.iter().any(|s| s == scope),
    };
    let mut identity = api(
        "User identity and offline access".into(),
        IDENTITY_SCOPES
            .iter()
            .map(|s| option(s, identity_description(s)))
            .collect(),
        query,
    );
    // Short, and what most apps start with: always unfolded.
    identity.open = true;
    let mut apis = vec![identity];
    for product in state.core.products().await? {
        apis.push(api(
            format!("{} API", product.display_name),
            product
                .scopes
                .iter()
                .map(|s| option(&s.scope, &s.description))
                .collect(),
            query,
        ));
    }
    let shown = |scope: &str| {
        apis.iter()
            .flat_map(|a| a.classic.iter().chain(&a.granular))
            .any(|o| o.scope == scope)
    };
    let hidden_chosen = app.scopes.iter().filter(|s| !shown(s)).cloned().collect();
    let nothing_found = !query.is_empty()
        && apis
            .iter()
            .all(|a| a.classic.is_empty() && a.granular.is_empty());
    Ok(render(
        status,
        &PermissionsPage {
            chrome,
            app: app_view(app),
            apis,
            query: query.to_owned(),
            hidden_chosen,
            nothing_found,
        },
    ))
}

/// An API's scopes, those matching `query` (in the name or the description, any case), in
/// classic and granular lists.
fn api(title: String, scopes: Vec<ScopeOption>, query: &str) -> ApiScopes {
    let chosen = scopes.iter().filter(|s| s.chosen).count();
    let total = scopes.len();
    let query = query.to_lowercase();
    let (granular, classic): (Vec<ScopeOption>, Vec<ScopeOption>) = scopes
        .into_iter()
        .filter(|s| {
            query.is_empty()
                || s.scope.to_lowercase().contains(&query)
                || s.description.to_lowercase().contains(&query)
        })
        .partition(|s| s.scope.matches(':').count() >= 2);
    let found = !(classic.is_empty() && granular.is_empty());
    ApiScopes {
        title,
        open: chosen > 0 || (!query.is_empty() && found),
        chosen,
        total,
        classic,
        granular,
    }
}

fn identity_description(scope: &str) -> &'static str {
    match scope {
        "offline_access" => "Get refresh tokens, to act while the user is away.",
        "read:me" => "View the user's profile (/me).",
        "openid" => "Sign the user in (OpenID Connect).",
        "profile" => "View the user's name and picture.",
        "email" => "View the user's email address.",
        _ => "",
    }
}

// ---- Distribution ----

pub(super) async fn distribution(DeveloperApp { me, app }: DeveloperApp) -> Response {
    distribution_page(me.chrome(DISTRIBUTION), &app)
}

pub(super) async fn save_distribution(
    State(state): State<AppState>,
    DeveloperApp { me, app }: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let distribution = match form.get("sharing") {
        Some("on") => Distribution::Sharing,
        Some("off") => Distribution::Private,
        _ => {
            return Err(PageError::BadRequest(
                "Choose to enable or disable sharing.",
            ));
        }
    };
    if distribution == Distribution::Private && app.distribution == Distribution::Sharing {
        let question = Question {
            title: format!("Disable sharing for {}?", app.name),
            what: "Only you can authorize the app from then on: other users who try get an \
                   error. Those who already allowed it keep their access until they revoke it."
                .to_owned(),
            button: "Disable sharing",
            cancel: format!("/developer/apps/{}/distribution", app.app_id),
            typed_name: None,
        };
        let action = format!("/developer/apps/{}/distribution", app.app_id);
        if let Some(page) = ask_first(&form, &action, question) {
            return Ok(page);
        }
    }
    let changes = AppChanges {
        distribution: Some(distribution),
        ..AppChanges::default()
    };
    let saved = state
        .core
        .console(&me.account)
        .update_app(&app.app_id, changes)
        .await?
        .app;
    let notice = match saved.distribution {
        Distribution::Sharing => "Sharing enabled.",
        Distribution::Private => "Sharing disabled.",
    };
    Ok(distribution_page(
        me.chrome(DISTRIBUTION).with_notice(notice),
        &saved,
    ))
}

fn distribution_page(chrome: Chrome, app: &App) -> Response {
    render(
        StatusCode::OK,
        &DistributionPage {
            chrome,
            app: app_view(app),
            sharing: app.distribution == Distribution::Sharing,
        },
    )
}

// ---- Settings ----

pub(super) async fn settings(DeveloperApp { me, app }: DeveloperApp) -> Response {
    settings_page(settings_view(me.chrome(SETTINGS), &app), StatusCode::OK)
}

pub(super) async fn save_settings(
    State(state): State<AppState>,
    dev: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let field = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
    let avatar = field("avatar_url");
    let avatar_url = (!avatar.is_empty()).then_some(avatar);
    let changes = AppChanges {
        name: Some(field("name")),
        description: Some(field("description")),
        avatar_url: Some(avatar_url.clone()),
        ..AppChanges::default()
    };
    let chrome = dev.me.chrome(SETTINGS);
    Ok(match save(&state, &dev, changes).await? {
        Ok(saved) => settings_page(
            settings_view(chrome.with_notice("Changes saved."), &saved.app),
            StatusCode::OK,
        ),
        // The form shows what was typed, so a mistake can be fixed in place.
        Err(problem) => {
            let typed = App {
                name: field("name"),
                description: field("description"),
                avatar_url,
                ..dev.app.clone()
            };
            settings_page(
                settings_view(problem.shown_in(chrome), &typed),
                StatusCode::BAD_REQUEST,
            )
        }
    })
}

pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    DeveloperApp { me, app }: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let question = Question {
        title: format!("Rotate the client secret of {}?", app.name),
        what: "A new secret is made and shown once. The current one keeps working for the \
               time you chose, then stops: update the app before then."
            .to_owned(),
        button: "Rotate secret",
        cancel: format!("/developer/apps/{}/settings", app.app_id),
        typed_name: None,
    };
    let action = format!("/developer/apps/{}/secret", app.app_id);
    if let Some(page) = ask_first(&form, &action, question) {
        return Ok(page);
    }
    let grace = match form.get("grace").unwrap_or("24h") {
        "0s" => time::Duration::ZERO,
        other => parse_duration("grace", other).map_err(|_| {
            PageError::BadRequest("Choose how long the current secret stays valid.")
        })?,
    };
    let console = state.core.console(&me.account);
    let rotated = match console.rotate_secret(&app.app_id, grace).await {
        Ok(rotated) => rotated,
        Err(e) => return Err(PageError::Core(CoreError::Invalid(form_problem(e)?))),
    };
    let until = (grace > time::Duration::ZERO).then(|| {
        rotated
            .previous_valid_until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    let secret = rotated.client_secret;
    Ok(settings_page(
        SettingsPage {
            secret: Some(secret),
            grace: until,
            ..settings_view(me.chrome(SETTINGS).with_notice("Secret rotated."), &app)
        },
        StatusCode::OK,
    ))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    DeveloperApp { me, app }: DeveloperApp,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let question = Question {
        title: format!("Delete {}?", app.name),
        what: "The app, its credentials, its users' permissions and its tokens are deleted \
               for good; sites where it is installed lose it. This cannot be undone."
            .to_owned(),
        button: "Delete app",
        cancel: format!("/developer/apps/{}/settings", app.app_id),
        typed_name: Some(app.name.clone()),
    };
    let action = format!("/developer/apps/{}/delete", app.app_id);
    if let Some(page) = ask_first(&form, &action, question) {
        return Ok(page);
    }
    match state
        .core
        .console(&me.account)
        .delete_app(&app.app_id)
        .await
    {
        Ok(()) => Ok(see_other(&format!(
            "/developer?deleted={}",
            encode(&app.name)
        ))),
        Err(e) => {
            let error = format!("The app cannot be deleted. {}", form_problem(e)?);
            let chrome = me.chrome(SETTINGS).with_error(error);
            Ok(settings_page(
                settings_view(chrome, &app),
                StatusCode::CONFLICT,
            ))
        }
    }
}

/// The settings page for `app`, without a secret to show.
fn settings_view(chrome: Chrome, app: &App) -> SettingsPage {
    SettingsPage {
        chrome,
        avatar_url: app.avatar_url.clone().unwrap_or_default(),
        app: app_view(app),
        secret: None,
        grace: None,
    }
}

fn settings_page(page: SettingsPage, status: StatusCode) -> Response {
    render(status, &page)
}
