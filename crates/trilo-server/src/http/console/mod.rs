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
use trilo_core::model::{Account, App, ReviewState, Session};
use trilo_core::services::console::{
    AppQuery, ConsoleError, MAX_PAGE_SIZE, NewConsoleApp, distribution_status,
};
use trilo_protocol::Params;
use trilo_protocol::params::encode;

use super::common::{current_user, form_params, render, secrets_equal, see_other};
use super::errors::PageError;
use crate::state::AppState;
use crate::views::{AppListItem, AppOverviewPage, AppView, AppsPage, NewAppPage};

mod app_pages;
mod webhook_pages;

pub(crate) use app_pages::form_values;

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
        .route(
            "/developer/apps/{id}/webhooks",
            get(webhook_pages::webhooks).post(webhook_pages::add_webhook),
        )
        .route(
            "/developer/apps/{id}/webhooks/{webhook_id}/delete",
            post(webhook_pages::delete_webhook),
        )
        .route(
            "/developer/apps/{id}/deliveries/{delivery_id}/redeliver",
            post(webhook_pages::redeliver),
        )
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
    Ok(state.core.console(account).app(id).await?)
}

/// What a console operation's failure means for a page: the user's mistake, shown on
/// the form again, or a page error.
pub(crate) fn form_problem(e: ConsoleError) -> Result<String, PageError> {
    match e {
        ConsoleError::InvalidCallbackUrl { .. }
        | ConsoleError::UnknownScope(_)
        | ConsoleError::ScopeNotAdded(_)
        | ConsoleError::Invalid(_) => Ok(capitalized(&e.to_string())),
        ConsoleError::Installed(sites) => {
            let names: Vec<String> = sites
                .iter()
                .map(|s| format!("{} ({})", s.name, s.cloud_id))
                .collect();
            Ok(format!(
                "The app is installed on {}. Uninstall it there first.",
                names.join(", ")
            ))
        }
        other => Err(other.into()),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
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
        distribution: distribution_status(app.distribution),
        review: match app.review_state {
            ReviewState::Approved => "Approved",
            ReviewState::Unreviewed => "Not reviewed",
        },
        scopes: app.scopes.clone(),
        callback_urls: app.callback_urls.clone(),
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
    let page = state
        .core
        .console(&account)
        .apps(&AppQuery {
            search: Some(query.q.trim().to_owned()),
            limit: Some(MAX_PAGE_SIZE),
            cursor: None,
        })
        .await?;
    let apps = page
        .apps
        .into_iter()
        .map(|a| AppListItem {
            app_id: a.app_id,
            name: a.name,
            distribution: distribution_status(a.distribution),
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
        .console(&account)
        .create_app(NewConsoleApp {
            name: name.clone(),
            description: description.clone(),
            avatar_url: None,
            callback_urls: Vec::new(),
            scopes: Vec::new(),
            distribution: None,
            client_type: None,
        })
        .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => {
            let error = form_problem(e)?;
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &NewAppPage {
                    email: account.email,
                    csrf_token: session.csrf_token,
                    name,
                    description,
                    error: Some(error),
                },
            ));
        }
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
