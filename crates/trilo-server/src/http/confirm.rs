//! A confirmation step for destructive forms, without JavaScript: the first post of such a
//! form answers with a page that says what will happen and repeats the form's fields with
//! `confirmed=yes`; only that second post acts. Deleting something asks for its name to
//! be typed as well.

use axum::http::StatusCode;
use axum::response::Response;

use super::common::render;
use super::extract::CsrfForm;
use crate::views::ConfirmPage;

/// The field a confirmed post carries.
pub const CONFIRMED: &str = "confirmed";
/// The typed name, where one is asked for.
pub const CONFIRM_NAME: &str = "confirm_name";

/// What the confirmation page asks.
pub struct Question {
    /// The page's heading, e.g. "Delete Acme Reports?".
    pub title: String,
    /// What happens, in plain words.
    pub what: String,
    /// The confirming button's text, e.g. "Delete app".
    pub button: &'static str,
    /// Where Cancel goes (the page the form was on).
    pub cancel: String,
    /// A name the user must type to confirm (deletions).
    pub typed_name: Option<String>,
}

/// `Some(page)`: ask first (the form was not confirmed yet, or the typed name does not
/// match); `None`: confirmed, go ahead. `action` is the path the form posts to.
pub fn ask_first(form: &CsrfForm, action: &str, question: Question) -> Option<Response> {
    let confirmed = form.get(CONFIRMED) == Some("yes");
    let typed_ok = question
        .typed_name
        .as_deref()
        .is_none_or(|name| form.get(CONFIRM_NAME).map(str::trim) == Some(name));
    if confirmed && typed_ok {
        return None;
    }
    let error = (confirmed && !typed_ok).then(|| {
        "The name you typed does not match. Type it exactly as shown to confirm.".to_owned()
    });
    let fields = form
        .pairs()
        .into_iter()
        .filter(|(name, _)| name != CONFIRMED && name != CONFIRM_NAME)
        .collect();
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Some(render(
        status,
        &ConfirmPage {
            nav: form.nav(),
            title: question.title,
            what: question.what,
            button: question.button,
            cancel: question.cancel,
            typed_name: question.typed_name,
            action: action.to_owned(),
            fields,
            error,
        },
    ))
}
