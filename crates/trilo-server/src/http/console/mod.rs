//! The developer console (DESIGN §1; reference "Managing your OAuth 2.0 (3LO) apps"):
//! server-rendered pages that work without JavaScript. Every page needs a logged-in user;
//! every form POST echoes the session's CSRF token; another developer's app is "not
//! found", never "forbidden", so app ids cannot be probed.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::header::HeaderMap;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use trilo_core::CoreError;
use trilo_core::model::{Account, App, ClientType, Distribution, ReviewState, Session};
use trilo_core::services::admin::NewApp;
use trilo_protocol::Params;
use trilo_protocol::params::encode;

use super::common::{current_user, form_params, render, secrets_equal, see_other};
use super::errors::PageError;
use crate::state::AppState;
use crate::views::{AppListItem, AppOverviewPage, AppView, AppsPage, NewAppPage};

mod app_pages;

pub fn router() -> Router<AppState> {
    use app_pages as p;
    Router::new()
        .route("/developer", get(list_apps))
        .route("/developer/apps/new", get(new_app))
        .route("/developer/apps", post(create_app))
        .route("/developer/apps/{id}", get(overview))
        .route(
            "/developer/apps/{id}/authorization",
            get(p::authorization).post(p::save_authorization),
        )
        .route(
            "/developer/apps/{id}/permissions",
            get(p::permissions).post(p::save_permissions),
        )
        .route(
            "/developer/apps/{id}/distribution",
            get(p::distribution).post(p::save_distribution),
        )
        .route(
            "/developer/apps/{id}/settings",
            get(p::settings).post(p::save_settings),
        )
        .route("/developer/apps/{id}/secret", post(p::rotate_secret))
        .route("/developer/apps/{id}/delete", post(p::delete))
}

/// The logged-in developer, or the login page (coming back here afterwards).
pub(crate) async fn developer(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Result<(Session, Account), Response>, PageError> {
    Ok(match current_user(state, headers).await? {
        Some((session, account, _)) => Ok((session, account)),
        None => Err(see_other(&format!(
            "/login?return_to={}",
            encode(uri.path_and_query().map_or("/developer", |p| p.as_str()))
        ))),
    })
}

/// The developer's app with this id (or client id); someone else's is `NotFound`.
pub(crate) async fn owned_app(
    state: &AppState,
    account: &Account,
    id: &str,
) -> Result<App, PageError> {
    match state.core.find_app(id).await {
        Ok(app) if app.owner_account_id == account.account_id => Ok(app),
        Ok(_) | Err(CoreError::NotFound(_)) => Err(PageError::NotFound("There is no such app.")),
        Err(e) => Err(e.into()),
    }
}

/// A console form: urlencoded, and carrying this session's CSRF token.
pub(crate) fn console_form(
    headers: &HeaderMap,
    body: &Bytes,
    session: &Session,
) -> Result<Params, PageError> {
    let form = match form_params(headers, body) {
        Some(Ok(form)) => form,
        Some(Err(_)) => return Err(PageError::BadRequest("The form could not be read.")),
        None => return Err(PageError::UnsupportedMediaType),
    };
    let csrf_ok = !form.is_repeated("csrf_token")
        && form
            .get("csrf_token")
            .is_some_and(|t| secrets_equal(t, &session.csrf_token));
    if !csrf_ok {
        return Err(PageError::Forbidden(
            "The form expired or did not come from this site. Reload the page and try again.",
        ));
    }
    Ok(form)
}

pub(crate) fn app_view(app: &App) -> AppView {
    AppView {
        app_id: app.app_id.clone(),
        client_id: app.client_id.clone(),
        name: app.name.clone(),
        description: app.description.clone(),
        distribution: distribution_label(app.distribution),
        review: match app.review_state {
            ReviewState::Approved => "Approved",
            ReviewState::Unreviewed => "Not reviewed",
        },
        scopes: app.scopes.clone(),
        callback_urls: app.callback_urls.clone(),
    }
}

/// The reference's wording for distribution.
fn distribution_label(d: Distribution) -> &'static str {
    match d {
        Distribution::Sharing => "Sharing",
        Distribution::Private => "Not sharing",
    }
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    /// The name of an app just deleted, to confirm it.
    deleted: Option<String>,
}

async fn list_apps(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let (_, account) = match developer(&state, &headers, &uri).await? {
        Ok(dev) => dev,
        Err(login) => return Ok(login),
    };
    let needle = query.q.trim().to_lowercase();
    let apps = state
        .core
        .store
        .list_apps(Some(&account.account_id))
        .await
        .map_err(CoreError::from)?
        .into_iter()
        .filter(|a| needle.is_empty() || a.name.to_lowercase().contains(&needle))
        .map(|a| AppListItem {
            app_id: a.app_id,
            name: a.name,
            distribution: distribution_label(a.distribution),
            updated_on: a.updated_at.date().to_string(),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &AppsPage {
            email: account.email,
            query: query.q.trim().to_owned(),
            deleted: query.deleted,
            apps,
        },
    ))
}

async fn new_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let (session, account) = match developer(&state, &headers, &uri).await? {
        Ok(dev) => dev,
        Err(login) => return Ok(login),
    };
    Ok(render(
        StatusCode::OK,
        &NewAppPage {
            email: account.email,
            csrf_token: session.csrf_token,
            name: String::new(),
            description: String::new(),
            error: None,
        },
    ))
}

async fn create_app(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<Response, PageError> {
    let (session, account) = match developer(&state, &headers, &uri).await? {
        Ok(dev) => dev,
        Err(login) => return Ok(login),
    };
    let form = console_form(&headers, &body, &session)?;
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    let description = form
        .get("description")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let created = state
        .core
        .create_app(NewApp {
            owner_account_id: account.account_id.clone(),
            name: name.clone(),
            description: description.clone(),
            avatar_url: None,
            callback_urls: Vec::new(),
            scopes: Vec::new(),
            distribution: Distribution::Private,
            client_type: ClientType::Confidential,
        })
        .await;
    let created = match created {
        Ok(created) => created,
        Err(CoreError::Invalid(message)) => {
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &NewAppPage {
                    email: account.email,
                    csrf_token: session.csrf_token,
                    name,
                    description,
                    error: Some(message),
                },
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(render(
        StatusCode::CREATED,
        &AppOverviewPage {
            email: account.email,
            app: app_view(&created.app),
            tab: "overview",
            notice: Some("App created.".into()),
            error: None,
            secret: created.client_secret,
        },
    ))
}

async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (_, account) = match developer(&state, &headers, &uri).await? {
        Ok(dev) => dev,
        Err(login) => return Ok(login),
    };
    let app = owned_app(&state, &account, &id).await?;
    Ok(render(
        StatusCode::OK,
        &AppOverviewPage {
            email: account.email,
            app: app_view(&app),
            tab: "overview",
            notice: None,
            error: None,
            secret: None,
        },
    ))
}
