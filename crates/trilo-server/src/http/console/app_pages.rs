//! The app pages after the overview: authorization (callback URLs and the ready-made
//! authorization URL), permissions (scopes from the products' catalogs), distribution
//! (sharing), settings (details, secret rotation, deletion).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header::HeaderMap;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use trilo_core::CoreError;
use trilo_core::model::{Account, App, Distribution};
use trilo_core::services::console::{AppChanges, UpdatedApp};
use trilo_protocol::authorize::append_query;
use trilo_protocol::params::{self, encode};
use trilo_protocol::scope::IDENTITY_SCOPES;

use super::{app_view, console_form, developer, form_problem, owned_app};
use crate::config::parse_duration;
use crate::http::common::{render, see_other};
use crate::http::errors::PageError;
use crate::state::AppState;
use crate::views::{
    ApiScopes, AuthorizationPage, DistributionPage, PermissionsPage, ScopeOption, SettingsPage,
};

/// The developer and their app, or the login page.
macro_rules! developer_app {
    ($state:expr, $headers:expr, $uri:expr, $id:expr) => {{
        let (session, account) = match developer(&$state, &$headers, &$uri).await? {
            Ok(dev) => dev,
            Err(login) => return Ok(login),
        };
        let app = owned_app(&$state, &account, &$id).await?;
        (session, account, app)
    }};
}

/// All values of `name` in a urlencoded body (checkbox lists), strictly decoded.
pub(crate) fn form_values(body: &[u8], name: &str) -> Result<Vec<String>, PageError> {
    let mut values = Vec::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let key = params::decode(key)
            .map_err(|_| PageError::BadRequest("The form could not be read."))?;
        if key == name {
            values.push(
                params::decode(value)
                    .map_err(|_| PageError::BadRequest("The form could not be read."))?,
            );
        }
    }
    Ok(values)
}

/// Saves changes to the developer's app; a validation problem comes back as the page's
/// error.
async fn save(
    state: &AppState,
    account: &Account,
    app: &App,
    changes: AppChanges,
) -> Result<Result<UpdatedApp, String>, PageError> {
    match state
        .core
        .console(account)
        .update_app(&app.app_id, changes)
        .await
    {
        Ok(updated) => Ok(Ok(updated)),
        Err(e) => Ok(Err(form_problem(e)?)),
    }
}

// ---- Authorization ----

pub(super) async fn authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    let chosen = form_values(uri.query().unwrap_or_default().as_bytes(), "scope")?;
    Ok(authorization_page(
        &state,
        session.csrf_token,
        account.email,
        &app,
        &chosen,
        None,
        None,
    ))
}

pub(super) async fn save_authorization(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    let form = console_form(&headers, &body, &session)?;
    let text = form.get("callback_urls").unwrap_or_default();
    let urls: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let changes = AppChanges {
        callback_urls: Some(urls),
        ..AppChanges::default()
    };
    Ok(match save(&state, &account, &app, changes).await? {
        Ok(saved) => authorization_page(
            &state,
            session.csrf_token,
            account.email,
            &saved.app,
            &[],
            Some("Callback URLs saved.".into()),
            None,
        ),
        Err(message) => {
            let mut page = authorization_page(
                &state,
                session.csrf_token,
                account.email,
                &app,
                &[],
                None,
                Some(message),
            );
            *page.status_mut() = StatusCode::BAD_REQUEST;
            page
        }
    })
}

fn authorization_page(
    state: &AppState,
    csrf_token: String,
    email: String,
    app: &App,
    chosen: &[String],
    notice: Option<String>,
    error: Option<String>,
) -> Response {
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
            email,
            app: app_view(app),
            tab: "authorization",
            notice,
            error,
            csrf_token,
            callback_text: app.callback_urls.join("\n"),
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
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    permissions_page(
        &state,
        session.csrf_token,
        account.email,
        &app,
        None,
        None,
        StatusCode::OK,
    )
    .await
}

pub(super) async fn save_permissions(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    console_form(&headers, &body, &session)?;
    let changes = AppChanges {
        scopes: Some(form_values(&body, "scope")?),
        ..AppChanges::default()
    };
    match save(&state, &account, &app, changes).await? {
        Ok(saved) => {
            let notice = Some(if saved.new_scopes.is_empty() {
                "Scopes saved.".to_owned()
            } else {
                format!(
                    "Scopes saved. Users who consented before must consent again to the new \
                     scopes: {}.",
                    saved.new_scopes.join(", ")
                )
            });
            permissions_page(
                &state,
                session.csrf_token,
                account.email,
                &saved.app,
                notice,
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(message) => {
            permissions_page(
                &state,
                session.csrf_token,
                account.email,
                &app,
                None,
                Some(message),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

async fn permissions_page(
    state: &AppState,
    csrf_token: String,
    email: String,
    app: &App,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
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
    );
    // Short, and what most apps start with: always unfolded.
    identity.open = true;
    let mut apis = vec![identity];
    for product in state
        .core
        .store
        .list_products()
        .await
        .map_err(CoreError::from)?
    {
        apis.push(api(
            format!("{} API", product.display_name),
            product
                .scopes
                .iter()
                .map(|s| option(&s.scope, &s.description))
                .collect(),
        ));
    }
    Ok(render(
        status,
        &PermissionsPage {
            email,
            app: app_view(app),
            tab: "permissions",
            notice,
            error,
            csrf_token,
            apis,
        },
    ))
}

fn api(title: String, scopes: Vec<ScopeOption>) -> ApiScopes {
    let chosen = scopes.iter().filter(|s| s.chosen).count();
    ApiScopes {
        title,
        open: chosen > 0,
        chosen,
        scopes,
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

pub(super) async fn distribution(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    Ok(distribution_page(
        session.csrf_token,
        account.email,
        &app,
        None,
    ))
}

pub(super) async fn save_distribution(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    let form = console_form(&headers, &body, &session)?;
    let distribution = match form.get("sharing") {
        Some("on") => Distribution::Sharing,
        Some("off") => Distribution::Private,
        _ => {
            return Err(PageError::BadRequest(
                "Choose to enable or disable sharing.",
            ));
        }
    };
    let changes = AppChanges {
        distribution: Some(distribution),
        ..AppChanges::default()
    };
    let saved = state
        .core
        .console(&account)
        .update_app(&app.app_id, changes)
        .await?
        .app;
    let notice = match saved.distribution {
        Distribution::Sharing => "Sharing enabled.",
        Distribution::Private => "Sharing disabled.",
    };
    Ok(distribution_page(
        session.csrf_token,
        account.email,
        &saved,
        Some(notice.into()),
    ))
}

fn distribution_page(
    csrf_token: String,
    email: String,
    app: &App,
    notice: Option<String>,
) -> Response {
    render(
        StatusCode::OK,
        &DistributionPage {
            email,
            app: app_view(app),
            tab: "distribution",
            notice,
            error: None,
            csrf_token,
            sharing: app.distribution == Distribution::Sharing,
        },
    )
}

// ---- Settings ----

pub(super) async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    Ok(settings_page(
        settings_view(account.email, &app, session.csrf_token),
        StatusCode::OK,
    ))
}

pub(super) async fn save_settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    let form = console_form(&headers, &body, &session)?;
    let field = |name: &str| form.get(name).unwrap_or_default().trim().to_owned();
    let avatar = field("avatar_url");
    let changes = AppChanges {
        name: Some(field("name")),
        description: Some(field("description")),
        avatar_url: Some((!avatar.is_empty()).then_some(avatar)),
        ..AppChanges::default()
    };
    let (shown, notice, error, status) = match save(&state, &account, &app, changes).await? {
        Ok(saved) => (
            saved.app,
            Some("Changes saved.".to_owned()),
            None,
            StatusCode::OK,
        ),
        Err(message) => (app, None, Some(message), StatusCode::BAD_REQUEST),
    };
    Ok(settings_page(
        SettingsPage {
            notice,
            error,
            ..settings_view(account.email, &shown, session.csrf_token)
        },
        status,
    ))
}

pub(super) async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    let form = console_form(&headers, &body, &session)?;
    let grace = match form.get("grace").unwrap_or("24h") {
        "0s" => time::Duration::ZERO,
        other => parse_duration("grace", other).map_err(|_| {
            PageError::BadRequest("Choose how long the current secret stays valid.")
        })?,
    };
    let console = state.core.console(&account);
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
            notice: Some("Secret rotated.".into()),
            secret: Some(secret),
            grace: until,
            ..settings_view(account.email, &app, session.csrf_token)
        },
        StatusCode::OK,
    ))
}

pub(super) async fn delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account, app) = developer_app!(state, headers, uri, id);
    console_form(&headers, &body, &session)?;
    match state.core.console(&account).delete_app(&app.app_id).await {
        Ok(()) => Ok(see_other(&format!(
            "/developer?deleted={}",
            encode(&app.name)
        ))),
        Err(e) => Ok(settings_page(
            SettingsPage {
                error: Some(format!("The app cannot be deleted. {}", form_problem(e)?)),
                ..settings_view(account.email, &app, session.csrf_token)
            },
            StatusCode::CONFLICT,
        )),
    }
}

/// The settings page for `app`, with nothing to announce.
fn settings_view(email: String, app: &App, csrf_token: String) -> SettingsPage {
    SettingsPage {
        email,
        avatar_url: app.avatar_url.clone().unwrap_or_default(),
        app: app_view(app),
        tab: "settings",
        notice: None,
        error: None,
        csrf_token,
        secret: None,
        grace: None,
    }
}

fn settings_page(page: SettingsPage, status: StatusCode) -> Response {
    render(status, &page)
}
