//! The invitation page: someone a site admin invited chooses their name and password
//! through the mailed link (see `trilo_core::services::invitations`), then logs in.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use trilo_core::CoreError;
use trilo_core::services::invitations::EXPIRED_INVITATION;

use super::common::{query_params, render, see_other};
use super::errors::PageError;
use super::extract::PageForm;
use crate::state::AppState;
use crate::views::InvitationPage;

pub fn router() -> Router<AppState> {
    Router::new().route("/login/invitation", get(show).post(accept))
}

fn gone() -> Response {
    render(
        StatusCode::NOT_FOUND,
        &InvitationPage {
            token: String::new(),
            email: None,
            name: String::new(),
            error: Some(EXPIRED_INVITATION.to_owned()),
            error_field: None,
        },
    )
}

async fn show(State(state): State<AppState>, uri: Uri) -> Result<Response, PageError> {
    let params = query_params(&uri).unwrap_or_default();
    let token = params.get("token").unwrap_or_default().to_owned();
    Ok(match state.core.invitation(&token).await? {
        Some(account) => render(
            StatusCode::OK,
            &InvitationPage {
                token,
                email: Some(account.email),
                name: String::new(),
                error: None,
                error_field: None,
            },
        ),
        None => gone(),
    })
}

async fn accept(
    State(state): State<AppState>,
    PageForm(params): PageForm,
) -> Result<Response, PageError> {
    let token = params.get("token").unwrap_or_default().to_owned();
    let name = params.get("name").unwrap_or_default().to_owned();
    let password = params.get("new_password").unwrap_or_default();
    let (field, message) = if password != params.get("confirm_password").unwrap_or_default() {
        ("confirm_password", "The passwords do not match.".to_owned())
    } else {
        match state.core.accept_invitation(&token, &name, password).await {
            Ok(_) => return Ok(see_other("/login?invitation=accepted")),
            Err(CoreError::InvalidField { field, message }) => (field, message),
            Err(CoreError::Invalid(_)) => return Ok(gone()),
            Err(e) => return Err(e.into()),
        }
    };
    let Some(account) = state.core.invitation(&token).await? else {
        return Ok(gone());
    };
    Ok(render(
        StatusCode::BAD_REQUEST,
        &InvitationPage {
            token,
            email: Some(account.email),
            name,
            error: Some(message),
            error_field: Some(field),
        },
    ))
}
