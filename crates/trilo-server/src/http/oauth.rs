//! `GET /authorize` and the consent form's POST (DESIGN §3 "Authorize").

use axum::Router;
use axum::extract::State;
use axum::http::header::{HeaderMap, LOCATION};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use trilo_core::model::{Account, Session};
use trilo_core::services::authorize::{
    AuthorizeOutcome, BLOCKED_TITLE, ConsentAnswer, ConsentView, LoggedIn, blocked_message,
};
use trilo_protocol::Params;
use trilo_protocol::authorize::query_after_login;
use trilo_protocol::params::encode;

use super::common::{current_user, render, secrets_equal, see_other};
use super::errors::PageError;
use super::extract::PageForm;
use crate::state::AppState;
use crate::views::{AuthorizeErrorPage, ConsentPage, Failure, SiteOption, scope_group_views};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/authorize/consent", post(consent))
}

async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let raw_query = uri.query().unwrap_or_default().to_owned();
    let Ok(params) = Params::parse(raw_query.as_bytes()) else {
        // Undecodable input: nothing can be trusted, so no redirect (H-P3).
        return Ok(error_page("The request's parameters could not be read."));
    };
    let user = current_user(&state, &headers).await?;
    let outcome = state
        .core
        .authorize(&params, user.as_ref().map(|(s, a, _)| logged_in(s, a)))
        .await?;
    Ok(respond(
        outcome,
        &raw_query,
        user.as_ref().map(|(s, a, _)| (s, a)),
        StatusCode::FOUND,
    ))
}

async fn consent(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageForm(form): PageForm,
) -> Result<Response, PageError> {
    let Some((session, account, _)) = current_user(&state, &headers).await? else {
        return Err(PageError::Forbidden(
            "Your session has ended. Start the authorization again from the app.",
        ));
    };
    // CSRF: the token of *this* session must come back (security checklist A1).
    let csrf_ok = !form.is_repeated("csrf_token")
        && form
            .get("csrf_token")
            .is_some_and(|t| secrets_equal(t, &session.csrf_token));
    if !csrf_ok {
        return Err(PageError::Forbidden(
            "The consent form expired or did not come from this site. Start again.",
        ));
    }
    if form
        .first_repeated(&["request", "decision", "cloud_id"])
        .is_some()
    {
        return Err(PageError::BadRequest("The form has repeated fields."));
    }
    let raw_request = form.get("request").unwrap_or_default().to_owned();
    let Ok(params) = Params::parse(raw_request.as_bytes()) else {
        return Ok(error_page("The request's parameters could not be read."));
    };
    let answer = match form.get("decision") {
        Some("accept") => ConsentAnswer::Accept {
            cloud_id: form.get("cloud_id").map(str::to_owned),
        },
        Some("deny") => ConsentAnswer::Deny,
        _ => return Err(PageError::BadRequest("Choose Accept or Cancel.")),
    };
    let outcome = state
        .core
        .answer_consent_in_session(&params, logged_in(&session, &account), answer)
        .await?;
    Ok(respond(
        outcome,
        &raw_request,
        Some((&session, &account)),
        StatusCode::SEE_OTHER,
    ))
}

/// The session's user; its start is when they logged in (a new session per login).
fn logged_in<'a>(session: &Session, account: &'a Account) -> LoggedIn<'a> {
    LoggedIn {
        account,
        auth_time: Some(session.created_at),
    }
}

/// Turns an outcome into a response; `redirect_status` is 302 after a GET and 303 after a
/// POST (security checklist A4).
fn respond(
    outcome: AuthorizeOutcome,
    raw_query: &str,
    user: Option<(&Session, &Account)>,
    redirect_status: StatusCode,
) -> Response {
    match outcome {
        AuthorizeOutcome::ErrorPage(reason) => error_page(reason.message()),
        AuthorizeOutcome::Redirect(location) => {
            if redirect_status == StatusCode::SEE_OTHER {
                return see_other(&location);
            }
            let mut res = redirect_status.into_response();
            if let Ok(v) = location.parse() {
                res.headers_mut().insert(LOCATION, v);
            }
            res
        }
        AuthorizeOutcome::Login { login_hint } => {
            let back = format!("/authorize?{}", query_after_login(raw_query));
            let mut to = format!("/login?return_to={}", encode(&back));
            if let Some(hint) = login_hint {
                to.push_str("&login_hint=");
                to.push_str(&encode(&hint));
            }
            see_other(&to)
        }
        AuthorizeOutcome::Consent(view) => match user {
            Some((session, account)) => consent_page(*view, raw_query, session, account),
            None => error_page("Log in to continue."),
        },
    }
}

fn error_page(message: &str) -> Response {
    render(
        StatusCode::BAD_REQUEST,
        &AuthorizeErrorPage {
            message: message.to_owned(),
            failure: Failure::of_this_request(),
        },
    )
}

fn consent_page(
    view: ConsentView,
    raw_query: &str,
    session: &Session,
    account: &Account,
) -> Response {
    let selectable: Vec<&str> = view
        .sites
        .iter()
        .filter(|s| !s.blocked)
        .map(|s| s.cloud_id.as_str())
        .collect();
    // The grant's site, else the only site there is to pick.
    let checked = view
        .preselected
        .clone()
        .or_else(|| (selectable.len() == 1).then(|| selectable[0].to_owned()));
    let status = if view.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = ConsentPage {
        user_email: account.email.clone(),
        app_initial: view
            .app_name
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
        app_name: view.app_name.clone(),
        app_avatar_url: view.app_avatar_url.clone(),
        developer_name: view.developer_name,
        unreviewed: view.unreviewed,
        error: view.error,
        csrf_token: session.csrf_token.clone(),
        request: raw_query.to_owned(),
        any_selectable: !view.needs_site || !selectable.is_empty(),
        needs_site: view.needs_site,
        sites: view
            .sites
            .iter()
            .map(|s| SiteOption {
                cloud_id: s.cloud_id.clone(),
                name: s.name.clone(),
                url: s.url.clone(),
                blocked: s.blocked,
                blocked_message: blocked_message(&view.app_name, &s.name),
                checked: checked.as_deref() == Some(s.cloud_id.as_str()),
            })
            .collect(),
        blocked_title: BLOCKED_TITLE,
        scope_groups: scope_group_views(view.scope_groups),
        already_granted: scope_group_views(view.already_granted),
        redirect_host: view.redirect_host,
        switch_account_url: format!(
            "/logout?return_to={}",
            encode(&format!("/authorize?{raw_query}"))
        ),
    };
    render(status, &page)
}
