//! The account pages (DESIGN §1): connected apps (grants, revoke), API tokens (create,
//! list, revoke) and the password change. Server-rendered, no JavaScript. Every page needs
//! a logged-in user; every form POST echoes the session's CSRF token; another account's
//! grant or token is "not found".

mod views;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, RETRY_AFTER};
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use trilo_core::CoreError;
use trilo_core::services::account::{
    AccountError, ApiTokenState, DEFAULT_API_TOKEN_DAYS, MAX_API_TOKEN_DAYS, MIN_API_TOKEN_DAYS,
};
use trilo_core::services::accounts::MIN_PASSWORD_LEN;
use trilo_core::services::api_tokens::CreatedApiToken;

use super::common::{query_params, render, see_other};
use super::confirm::{Question, ask_first};
use super::errors::PageError;
use super::extract::{CsrfForm, SignedIn};
use crate::state::AppState;
use crate::views::scope_group_views;
use views::{
    AccountHomePage, ApiTokenView, ApiTokensPage, ConnectedAppView, ConnectedAppsPage,
    CreatedTokenView, PasswordPage, SessionView, SessionsPage,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(home))
        .route("/account/apps", get(connected_apps))
        .route("/account/apps/{grant_id}/revoke", post(revoke_grant))
        .route(
            "/account/api-tokens",
            get(api_tokens).post(create_api_token),
        )
        .route(
            "/account/api-tokens/{token_id}/revoke",
            post(revoke_api_token),
        )
        .route("/account/password", get(password).post(change_password))
        .route("/account/sessions", get(sessions))
        .route("/account/sessions/end-others", post(end_other_sessions))
}

/// An account operation's failure on a page (forms turn the user's mistakes into a
/// message first, see [`form_problem`]).
impl From<AccountError> for PageError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound("connected app") => {
                PageError::NotFound("There is no such connected app.")
            }
            AccountError::NotFound("API token") => {
                PageError::NotFound("There is no such API token.")
            }
            AccountError::NotFound(_) => PageError::NotFound("Not found."),
            AccountError::WrongPassword => PageError::Core(CoreError::Invalid(
                "The current password is not correct.".into(),
            )),
            AccountError::Invalid(message) => PageError::Core(CoreError::Invalid(message)),
            AccountError::Core(e) => PageError::Core(e),
        }
    }
}

/// The user's mistake as a sentence for the form, or a page error.
fn form_problem(e: AccountError) -> Result<String, PageError> {
    match e {
        AccountError::Invalid(message) => Ok(sentence(&message)),
        AccountError::WrongPassword => Ok("The current password is not correct.".into()),
        other => Err(other.into()),
    }
}

/// `the label must…` → `The label must….`
fn sentence(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default();
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// A fixed confirmation chosen by `?done=` after a redirect (never text from the URL).
fn done(uri: &Uri, notices: &[(&str, &'static str)]) -> Option<&'static str> {
    let params = query_params(uri).ok()?;
    let done = params.get("done")?;
    notices.iter().find(|(k, _)| *k == done).map(|(_, v)| *v)
}

fn day(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC).date().to_string()
}

fn minute(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_else(|_| day(at))
}

// ---- Home ----

async fn home(State(state): State<AppState>, me: SignedIn) -> Result<Response, PageError> {
    let service = state.core.account(&me.account);
    let connected_apps = service.connected_apps().await?.len();
    let active_tokens = service
        .api_tokens()
        .await?
        .iter()
        .filter(|t| t.state == ApiTokenState::Active)
        .count();
    Ok(render(
        StatusCode::OK,
        &AccountHomePage {
            nav: me.nav(),
            email: me.account.email.clone(),
            name: me.account.name.clone(),
            tab: "home",
            connected_apps,
            active_tokens,
        },
    ))
}

// ---- Connected apps ----

const APP_NOTICES: &[(&str, &str)] = &[(
    "revoked",
    "Access revoked. The app can no longer use your account.",
)];

async fn connected_apps(
    State(state): State<AppState>,
    uri: Uri,
    me: SignedIn,
) -> Result<Response, PageError> {
    let apps = state
        .core
        .account(&me.account)
        .connected_apps()
        .await?
        .into_iter()
        .map(|a| ConnectedAppView {
            grant_id: a.grant_id,
            initial: a
                .app_name
                .chars()
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default(),
            name: a.app_name,
            avatar_url: a.app_avatar_url,
            scope_groups: scope_group_views(a.scope_groups),
            sites: a.sites.into_iter().map(|s| s.name).collect(),
            granted_on: day(a.granted_at),
            updated_on: day(a.updated_at),
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ConnectedAppsPage {
            nav: me.nav(),
            tab: "apps",
            csrf_token: me.session.csrf_token,
            notice: done(&uri, APP_NOTICES),
            apps,
        },
    ))
}

async fn revoke_grant(
    State(state): State<AppState>,
    Path(grant_id): Path<String>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let account = state.core.account(&me.account);
    let app_name = account
        .connected_apps()
        .await?
        .into_iter()
        .find(|a| a.grant_id == grant_id)
        .map(|a| a.app_name)
        .ok_or(PageError::NotFound("You have no such connected app."))?;
    let question = Question {
        title: format!("Revoke access for {app_name}?"),
        what: format!(
            "{app_name} can no longer act for you: its tokens stop working at once, on every \
             site. To use it again you will have to allow it again."
        ),
        button: "Revoke access",
        cancel: "/account/apps".to_owned(),
        typed_name: None,
    };
    if let Some(page) = ask_first(&form, &format!("/account/apps/{grant_id}/revoke"), question) {
        return Ok(page);
    }
    account.revoke_grant(&grant_id).await?;
    Ok(see_other("/account/apps?done=revoked"))
}

// ---- API tokens ----

const TOKEN_NOTICES: &[(&str, &str)] = &[(
    "revoked",
    "Token revoked. Scripts that use it are refused from now on.",
)];

/// What the token page shows besides the list.
struct TokenForm {
    notice: Option<&'static str>,
    error: Option<String>,
    label: String,
    days: String,
    created: Option<CreatedApiToken>,
}

impl Default for TokenForm {
    fn default() -> Self {
        TokenForm {
            notice: None,
            error: None,
            label: String::new(),
            days: DEFAULT_API_TOKEN_DAYS.to_string(),
            created: None,
        }
    }
}

async fn tokens_page(
    state: &AppState,
    me: SignedIn,
    status: StatusCode,
    form: TokenForm,
) -> Result<Response, PageError> {
    let tokens = state
        .core
        .account(&me.account)
        .api_tokens()
        .await?
        .into_iter()
        .map(|t| ApiTokenView {
            token_id: t.token_id,
            label: t.label,
            created: day(t.created_at),
            expires: t.expires_at.map_or_else(|| "Never".to_owned(), day),
            last_used: t.last_used_at.map_or_else(|| "Never".to_owned(), minute),
            state: t.state.as_str(),
            active: t.state == ApiTokenState::Active,
        })
        .collect();
    let created = form.created.map(|c| CreatedTokenView {
        label: c.token.label.clone(),
        expires: c.token.expires_at.map_or_else(|| "never".to_owned(), day),
        secret: c.secret,
    });
    Ok(render(
        status,
        &ApiTokensPage {
            nav: me.nav(),
            tab: "api-tokens",
            csrf_token: me.session.csrf_token,
            notice: form.notice,
            error: form.error,
            label: form.label,
            days: form.days,
            min_days: MIN_API_TOKEN_DAYS,
            max_days: MAX_API_TOKEN_DAYS,
            created,
            tokens,
        },
    ))
}

async fn api_tokens(
    State(state): State<AppState>,
    uri: Uri,
    me: SignedIn,
) -> Result<Response, PageError> {
    let form = TokenForm {
        notice: done(&uri, TOKEN_NOTICES),
        ..TokenForm::default()
    };
    tokens_page(&state, me, StatusCode::OK, form).await
}

async fn create_api_token(
    State(state): State<AppState>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    if form.first_repeated(&["label", "expires_in_days"]).is_some() {
        return Err(PageError::BadRequest("The form could not be read."));
    }
    let label = form.get("label").unwrap_or_default().trim().to_owned();
    let days = form.get("expires_in_days").map_or_else(
        || DEFAULT_API_TOKEN_DAYS.to_string(),
        |d| d.trim().to_owned(),
    );
    let created = match days.parse::<i64>() {
        Ok(n) => {
            state
                .core
                .account(&me.account)
                .create_api_token(&label, n)
                .await
        }
        Err(_) => Err(AccountError::Invalid(format!(
            "the expiry must be a whole number of days from {MIN_API_TOKEN_DAYS} to \
             {MAX_API_TOKEN_DAYS}"
        ))),
    };
    match created {
        Ok(created) => {
            let form = TokenForm {
                notice: Some("Token created."),
                created: Some(created),
                ..TokenForm::default()
            };
            tokens_page(&state, me, StatusCode::CREATED, form).await
        }
        Err(e) => {
            let form = TokenForm {
                error: Some(form_problem(e)?),
                label,
                days,
                ..TokenForm::default()
            };
            tokens_page(&state, me, StatusCode::BAD_REQUEST, form).await
        }
    }
}

async fn revoke_api_token(
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    let account = state.core.account(&me.account);
    let label = account
        .api_tokens()
        .await?
        .into_iter()
        .find(|t| t.token_id == token_id)
        .map(|t| format!("“{}”", t.label))
        .ok_or(PageError::NotFound("You have no such API token."))?;
    let question = Question {
        title: format!("Revoke the API token {label}?"),
        what: "Scripts that use it are refused from then on. This cannot be undone: a \
               revoked token never works again."
            .to_owned(),
        button: "Revoke token",
        cancel: "/account/api-tokens".to_owned(),
        typed_name: None,
    };
    let action = format!("/account/api-tokens/{token_id}/revoke");
    if let Some(page) = ask_first(&form, &action, question) {
        return Ok(page);
    }
    account.revoke_api_token(&token_id).await?;
    Ok(see_other("/account/api-tokens?done=revoked"))
}

// ---- Sessions ----

const SESSION_NOTICES: &[(&str, &str)] = &[(
    "ended",
    "Signed out everywhere else. Only this browser is still signed in.",
)];

async fn sessions(
    State(state): State<AppState>,
    uri: Uri,
    me: SignedIn,
) -> Result<Response, PageError> {
    let sessions = state
        .core
        .sessions_of(&me.account.account_id, &me.cookie)
        .await?
        .into_iter()
        .map(|(s, current)| SessionView {
            started: minute(s.created_at),
            expires: minute(s.expires_at),
            current,
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &SessionsPage {
            nav: me.nav(),
            tab: "sessions",
            csrf_token: me.session.csrf_token,
            notice: done(&uri, SESSION_NOTICES),
            sessions,
        },
    ))
}

async fn end_other_sessions(
    State(state): State<AppState>,
    me: SignedIn,
    _: CsrfForm,
) -> Result<Response, PageError> {
    state
        .core
        .end_other_sessions(&me.account.account_id, &me.cookie)
        .await?;
    Ok(see_other("/account/sessions?done=ended"))
}

// ---- Password ----

/// The password form's refusal: its message, and the input it is about (if one).
type Refusal = (Option<&'static str>, String);

fn password_page(
    me: SignedIn,
    status: StatusCode,
    notice: Option<&'static str>,
    refusal: Option<Refusal>,
) -> Response {
    let (error_field, error) = refusal.map_or((None, None), |(f, e)| (f, Some(e)));
    render(
        status,
        &PasswordPage {
            nav: me.nav(),
            tab: "password",
            csrf_token: me.session.csrf_token,
            notice,
            error,
            error_field,
            min_length: MIN_PASSWORD_LEN,
        },
    )
}

async fn password(me: SignedIn) -> Response {
    password_page(me, StatusCode::OK, None, None)
}

/// Wrong current passwords count against the account in the login limiter (its own key,
/// so a password guessed through this form gets no more tries than through the login).
async fn change_password(
    State(state): State<AppState>,
    me: SignedIn,
    form: CsrfForm,
) -> Result<Response, PageError> {
    if form
        .first_repeated(&["current_password", "new_password", "confirm_password"])
        .is_some()
    {
        return Err(PageError::BadRequest("The form could not be read."));
    }
    let current = form.get("current_password").unwrap_or_default();
    let new = form.get("new_password").unwrap_or_default();
    let confirm = form.get("confirm_password").unwrap_or_default();

    let limiter = &state.limits.login_account;
    let key = format!("password-change|{}", me.account.account_id);
    let now = state.core.now();
    if let Err(retry_after) = limiter.check(&key, now) {
        let error = "Too many wrong passwords. Wait a few minutes and try again.".to_owned();
        let mut res = password_page(me, StatusCode::TOO_MANY_REQUESTS, None, Some((None, error)));
        let seconds = retry_after.whole_seconds().max(1);
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(res);
    }
    if new != confirm {
        let error = "The new passwords do not match.".to_owned();
        return Ok(password_page(
            me,
            StatusCode::BAD_REQUEST,
            None,
            Some((Some("confirm_password"), error)),
        ));
    }
    let changed = state
        .core
        .account(&me.account)
        .change_password(current, new, Some(&me.cookie))
        .await;
    match changed {
        Ok(()) => {
            limiter.clear(&key);
            let notice = "Password changed. You were signed out everywhere else, and apps \
                          with offline access must ask you for access again.";
            Ok(password_page(me, StatusCode::OK, Some(notice), None))
        }
        Err(AccountError::WrongPassword) => {
            limiter.record_failure(&key, now);
            let error = form_problem(AccountError::WrongPassword)?;
            let refusal = (Some("current_password"), error);
            Ok(password_page(
                me,
                StatusCode::FORBIDDEN,
                None,
                Some(refusal),
            ))
        }
        // The rules a new password must follow (the current one was right).
        Err(e) => {
            let refusal = (Some("new_password"), form_problem(e)?);
            Ok(password_page(
                me,
                StatusCode::BAD_REQUEST,
                None,
                Some(refusal),
            ))
        }
    }
}
