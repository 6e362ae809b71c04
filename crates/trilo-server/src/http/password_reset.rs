//! "Forgot your password?" pages: ask for a link by email, then set a new password
//! through it (see `trilo_core::services::password_reset`). Asking answers the same
//! whether the email has an account or not; asking is limited per email and per address.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use time::Duration;
use trilo_core::CoreError;
use trilo_core::services::failures::FailureLimit;

use super::common::{link_with_token, query_params, render, see_other};
use super::errors::PageError;
use super::extract::PageForm;
use crate::mail::Mail;
use crate::state::{AppState, PeerAddr};
use crate::views::{ForgotPasswordPage, ResetPasswordPage};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login/forgot", get(show_forgot).post(submit_forgot))
        .route("/login/reset", get(show_reset).post(submit_reset))
}

/// Links asked for one email, and from one address, per hour.
const PER_EMAIL: FailureLimit = FailureLimit {
    max: 3,
    window: Duration::hours(1),
};
const PER_ADDRESS: FailureLimit = FailureLimit {
    max: 20,
    window: Duration::hours(1),
};

const SENT: &str = "If an account uses that email, we sent it a link to set a new password. \
                    The link works for one hour.";

fn forgot_page(
    state: &AppState,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<String>,
) -> Response {
    render(
        status,
        &ForgotPasswordPage {
            available: state.mailer.is_on(),
            notice: notice.map(str::to_owned),
            error,
        },
    )
}

async fn show_forgot(State(state): State<AppState>) -> Response {
    forgot_page(&state, StatusCode::OK, None, None)
}

async fn submit_forgot(
    State(state): State<AppState>,
    peer: PeerAddr,
    PageForm(params): PageForm,
) -> Result<Response, PageError> {
    if !state.mailer.is_on() {
        return Ok(forgot_page(&state, StatusCode::OK, None, None));
    }
    let email = params
        .get("email")
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    if email.is_empty() {
        let error = Some("Enter the email address of your account.".to_owned());
        return Ok(forgot_page(&state, StatusCode::BAD_REQUEST, None, error));
    }
    let keys = [
        (format!("reset-email|{email}"), PER_EMAIL),
        (format!("reset-address|{}", peer.key()), PER_ADDRESS),
    ];
    for (key, limit) in &keys {
        if state
            .core
            .check_shared_failures(key, *limit)
            .await?
            .is_err()
        {
            let error = Some("Too many links were asked for. Try again in an hour.".to_owned());
            return Ok(forgot_page(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                error,
            ));
        }
    }
    for (key, limit) in &keys {
        state.core.record_shared_failure(key, *limit).await?;
    }
    if let Some(link) = state.core.request_password_reset(&email).await? {
        let url = link_with_token(&state, "/login/reset", &link.token);
        let mail = Mail {
            to: link.email,
            subject: "Set a new trilo password".to_owned(),
            body: format!(
                "Hello {},\n\nSomeone, probably you, asked to set a new password for your \
                 trilo account. Open this link within an hour to choose one:\n\n{url}\n\n\
                 If you did not ask, ignore this message: your password stays as it is.\n",
                link.name
            ),
        };
        // The page says the same whether sending worked: the reason goes to the log.
        if let Err(e) = state.mailer.send(&mail).await {
            tracing::error!(error = %e, "could not send a password reset link");
        }
    }
    Ok(forgot_page(&state, StatusCode::OK, Some(SENT), None))
}

fn reset_page(
    token: String,
    email: Option<String>,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    render(
        status,
        &ResetPasswordPage {
            token,
            email,
            error,
        },
    )
}

async fn show_reset(State(state): State<AppState>, uri: Uri) -> Result<Response, PageError> {
    let token = query_params(&uri)
        .unwrap_or_default()
        .get("token")
        .unwrap_or_default()
        .to_owned();
    let account = state.core.password_reset_account(&token).await?;
    Ok(match account {
        Some(a) => reset_page(token, Some(a.email), StatusCode::OK, None),
        None => reset_page(
            String::new(),
            None,
            StatusCode::NOT_FOUND,
            Some(trilo_core::services::password_reset::EXPIRED.to_owned()),
        ),
    })
}

async fn submit_reset(
    State(state): State<AppState>,
    PageForm(params): PageForm,
) -> Result<Response, PageError> {
    let token = params.get("token").unwrap_or_default().to_owned();
    let new = params.get("new_password").unwrap_or_default();
    let refusal = if new != params.get("confirm_password").unwrap_or_default() {
        "The new passwords do not match.".to_owned()
    } else {
        match state.core.reset_password(&token, new).await {
            Ok(_) => return Ok(see_other("/login?reset=done")),
            Err(CoreError::Invalid(reason)) => reason,
            Err(e) => return Err(e.into()),
        }
    };
    // Only a refused form needs the account again, to show the form once more.
    let email = state
        .core
        .password_reset_account(&token)
        .await?
        .map(|a| a.email);
    Ok(reset_page(
        token,
        email,
        StatusCode::BAD_REQUEST,
        Some(refusal),
    ))
}
