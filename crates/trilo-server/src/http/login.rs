//! The login and logout pages: server-rendered, argon2id behind, server-side sessions.
//!
//! The login form is protected by a double-submit token (a cookie and a hidden field must
//! match), since there is no session yet; logout uses the session's own CSRF token.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{HeaderMap, HeaderValue, RETRY_AFTER, SET_COOKIE};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use trilo_core::crypto::random_token;
use trilo_protocol::authorize::MAX_LOGIN_HINT_LEN;
use trilo_protocol::params::encode;

use super::common::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, clear_cookie, cookie, current_user, form_params,
    is_local_path, query_params, render, secrets_equal, see_other, set_cookie,
};
use super::errors::PageError;
use super::extract::PageForm;
use crate::state::{AppState, PeerAddr};
use crate::views::{HomePage, LoginPage, LogoutPage, MessagePage, Nav};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(show_login).post(submit_login))
        .route("/logout", get(show_logout).post(submit_logout))
}

/// Where a login without a `return_to` lands.
async fn home(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    match current_user(&state, &headers).await? {
        Some((_, account, _)) => {
            let nav = Nav {
                email: account.email.clone(),
                is_admin: state.core.is_site_admin(&account.account_id).await?,
                is_operator: state.core.is_operator(&account),
            };
            Ok(render(
                StatusCode::OK,
                &HomePage {
                    name: account.name,
                    email: account.email,
                    nav,
                },
            ))
        }
        None => Ok(see_other("/login")),
    }
}

const GENERIC_FAILURE: &str = "The email address or password is not correct.";

async fn show_login(State(state): State<AppState>, uri: Uri) -> Response {
    let params = query_params(&uri).unwrap_or_default();
    let return_to = params
        .get("return_to")
        .filter(|t| is_local_path(t))
        .unwrap_or("/")
        .to_owned();
    // OIDC Core §3.1.2.1 `login_hint`, passed on by /authorize: only a prefill.
    let email = params
        .get("login_hint")
        .filter(|h| h.len() <= MAX_LOGIN_HINT_LEN)
        .unwrap_or_default()
        .to_owned();
    let notice = match (params.get("reset"), params.get("invitation")) {
        (Some("done"), _) => Some("Your new password is set. Log in with it."),
        (_, Some("accepted")) => Some("Welcome! Your account is ready: log in with your password."),
        _ => None,
    };
    let form = LoginForm {
        return_to,
        email,
        error: None,
        notice,
    };
    login_form(&state, StatusCode::OK, form)
}

/// What the login form shows besides its fields.
struct LoginForm {
    return_to: String,
    email: String,
    error: Option<String>,
    notice: Option<&'static str>,
}

impl LoginForm {
    fn failed(return_to: String, email: String, error: String) -> Self {
        LoginForm {
            return_to,
            email,
            error: Some(error),
            notice: None,
        }
    }
}

fn login_form(state: &AppState, status: StatusCode, form: LoginForm) -> Response {
    let csrf = random_token();
    let page = LoginPage {
        csrf_token: csrf.clone(),
        return_to: form.return_to,
        email: form.email,
        error: form.error,
        notice: form.notice,
    };
    let mut res = render(status, &page);
    res.headers_mut().append(
        SET_COOKIE,
        set_cookie(state, LOGIN_CSRF_COOKIE, &csrf, Some(3600)),
    );
    res
}

async fn submit_login(
    State(state): State<AppState>,
    peer: PeerAddr,
    headers: HeaderMap,
    PageForm(params): PageForm,
) -> Result<Response, PageError> {
    let return_to = params
        .get("return_to")
        .filter(|t| is_local_path(t))
        .unwrap_or("/")
        .to_owned();
    let csrf_ok = match (
        cookie(&headers, LOGIN_CSRF_COOKIE),
        params.get("csrf_token"),
    ) {
        (Some(c), Some(f)) => secrets_equal(&c, f),
        _ => false,
    };
    if !csrf_ok
        || params
            .first_repeated(&["email", "password", "csrf_token", "return_to"])
            .is_some()
    {
        let msg = "Your login form expired. Please try again.".to_owned();
        let form = LoginForm::failed(return_to, String::new(), msg);
        return Ok(login_form(&state, StatusCode::FORBIDDEN, form));
    }
    let email = params.get("email").unwrap_or_default().to_owned();
    let password = params.get("password").unwrap_or_default();
    let address = peer.key();
    let account_key = format!("{}|{address}", email.trim().to_lowercase());
    let limits = &state.limits;
    let limited = limits
        .login_allowed(&state.core, &account_key, &address)
        .await?;
    if let Err(retry_after) = limited {
        let msg = "Too many failed attempts. Wait a few minutes and try again.".to_owned();
        let status = StatusCode::TOO_MANY_REQUESTS;
        let mut res = login_form(&state, status, LoginForm::failed(return_to, email, msg));
        let seconds = retry_after.whole_seconds().max(1);
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(res);
    }
    let Some(account) = state.core.authenticate(&email, password).await? else {
        limits
            .login_failed(&state.core, &account_key, &address)
            .await?;
        let form = LoginForm::failed(return_to, email, GENERIC_FAILURE.to_owned());
        return Ok(login_form(&state, StatusCode::UNAUTHORIZED, form));
    };
    limits
        .login_succeeded(&state.core, &account_key, &address)
        .await?;
    // A new session id at every login: a fixed id planted before login is worthless.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        state.core.end_session(&old).await?;
    }
    let session = state.core.start_session(&account).await?;
    let max_age = state.core.settings.session_ttl.whole_seconds();
    let mut res = see_other(&return_to);
    res.headers_mut().append(
        SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &session.cookie_value, Some(max_age)),
    );
    res.headers_mut()
        .append(SET_COOKIE, clear_cookie(&state, LOGIN_CSRF_COOKIE));
    Ok(res)
}

/// `return_to` (a local path): where the next login goes, for "Not you?" on the consent
/// page, which logs out and lets another account continue the same authorization.
fn return_to_of(params: &trilo_protocol::Params) -> Option<String> {
    params
        .get("return_to")
        .filter(|t| is_local_path(t))
        .map(str::to_owned)
}

fn login_page_returning_to(return_to: Option<&str>) -> String {
    match return_to {
        Some(to) => format!("/login?return_to={}", encode(to)),
        None => "/login".to_owned(),
    }
}

async fn show_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let return_to = return_to_of(&query_params(&uri).unwrap_or_default());
    match current_user(&state, &headers).await? {
        Some((session, account, _)) => Ok(render(
            StatusCode::OK,
            &LogoutPage {
                email: account.email,
                csrf_token: session.csrf_token,
                return_to,
            },
        )),
        None => Ok(see_other(&login_page_returning_to(return_to.as_deref()))),
    }
}

async fn submit_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let Some((session, _, cookie_value)) = current_user(&state, &headers).await? else {
        return Ok(see_other("/login"));
    };
    let params = match form_params(&headers, &body) {
        Some(Ok(p)) => p,
        _ => return Err(PageError::BadRequest("The form could not be read.")),
    };
    if !params
        .get("csrf_token")
        .is_some_and(|t| secrets_equal(t, &session.csrf_token))
    {
        return Err(PageError::Forbidden(
            "The form expired. Reload the page and try again.",
        ));
    }
    state.core.end_session(&cookie_value).await?;
    let mut res = match return_to_of(&params) {
        // Another account continues where this one left off.
        Some(to) => see_other(&login_page_returning_to(Some(&to))),
        None => {
            let page = MessagePage {
                title: "Logged out".into(),
                message: "You have been logged out.".into(),
                failure: None,
            };
            render(StatusCode::OK, &page).into_response()
        }
    };
    res.headers_mut()
        .append(SET_COOKIE, clear_cookie(&state, SESSION_COOKIE));
    Ok(res)
}
