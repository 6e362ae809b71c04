//! The developer console (DESIGN §1; reference "Managing your OAuth 2.0 (3LO) apps"):
//! server-rendered pages that work without JavaScript. Every page needs a logged-in user;
//! every form POST echoes the session's CSRF token; another developer's app is "not
//! found", never "forbidden", so app ids cannot be probed.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use trilo_core::model::{App, ReviewState};
use trilo_core::services::console::{
    AppQuery, ConsoleError, MAX_PAGE_SIZE, NewConsoleApp, distribution_status,
};

use super::common::render;
use super::errors::PageError;
use super::extract::{CsrfForm, DeveloperApp, SignedIn};
use crate::state::AppState;
use crate::views::{AppListItem, AppOverviewPage, AppView, AppsPage, NewAppPage};

mod app_pages;
mod webhook_pages;

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

/// A console form's refusal: the message in plain words, and the field it is about.
pub(crate) struct FormProblem {
    pub field: Option<&'static str>,
    pub message: String,
}

impl FormProblem {
    /// The page's chrome showing this refusal (beside its field when it has one).
    pub(crate) fn shown_in(self, chrome: crate::views::Chrome) -> crate::views::Chrome {
        match self.field {
            Some(field) => chrome.with_field_error(field, self.message),
            None => chrome.with_error(self.message),
        }
    }
}

/// What a console operation's failure means for a form: the user's mistake, tied to its
/// field where it names one, or a page error.
pub(crate) fn form_problem_at(e: ConsoleError) -> Result<FormProblem, PageError> {
    let field = match &e {
        ConsoleError::Field { field, problem } => {
            return Ok(FormProblem {
                field: Some(field.key()),
                message: format!("{} {problem}.", field.label()),
            });
        }
        ConsoleError::InvalidCallbackUrl { .. } => Some("callback_urls"),
        _ => None,
    };
    Ok(FormProblem {
        field,
        message: form_problem(e)?,
    })
}

/// What a console operation's failure means for a page: the user's mistake, shown on
/// the form again, or a page error.
pub(crate) fn form_problem(e: ConsoleError) -> Result<String, PageError> {
    match e {
        ConsoleError::Field { .. } => Ok(form_problem_at(e)?.message),
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
    Query(query): Query<ListQuery>,
    me: SignedIn,
) -> Result<Response, PageError> {
    let page = state
        .core
        .console(&me.account)
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
            nav: me.nav(),
            email: me.account.email,
            query: query.q.trim().to_owned(),
            deleted: query.deleted,
            apps,
        },
    ))
}

async fn new_app(me: SignedIn) -> Response {
    render(
        StatusCode::OK,
        &NewAppPage {
            nav: me.nav(),
            email: me.account.email,
            csrf_token: me.session.csrf_token,
            name: String::new(),
            description: String::new(),
            error: None,
            error_field: None,
        },
    )
}

async fn create_app(
    State(state): State<AppState>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    let description = form
        .get("description")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let created = state
        .core
        .console(&me.account)
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
            let problem = form_problem_at(e)?;
            return Ok(render(
                StatusCode::BAD_REQUEST,
                &NewAppPage {
                    nav: me.nav(),
                    email: me.account.email,
                    csrf_token: me.session.csrf_token,
                    name,
                    description,
                    error: Some(problem.message),
                    error_field: problem.field,
                },
            ));
        }
    };
    Ok(render(
        StatusCode::CREATED,
        &AppOverviewPage {
            chrome: me.chrome("overview").with_notice("App created."),
            app: app_view(&created.app),
            secret: created.client_secret,
        },
    ))
}

async fn overview(DeveloperApp { me, app }: DeveloperApp) -> Response {
    render(
        StatusCode::OK,
        &AppOverviewPage {
            chrome: me.chrome("overview"),
            app: app_view(&app),
            secret: None,
        },
    )
}
