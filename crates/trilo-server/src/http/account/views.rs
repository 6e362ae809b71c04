//! The account pages' views: one struct per page, plain strings only (askama escapes
//! every value, so labels and app names render as text).

use askama::Template;

use crate::views::ScopeGroupView;

/// The account home: links to the three pages with a count for each.
#[derive(Template)]
#[template(path = "account/home.html")]
pub struct AccountHomePage {
    pub email: String,
    pub nav: crate::views::Nav,
    pub name: String,
    pub tab: &'static str,
    pub connected_apps: usize,
    pub active_tokens: usize,
}

#[derive(Template)]
#[template(path = "account/apps.html")]
pub struct ConnectedAppsPage {
    pub nav: crate::views::Nav,
    pub tab: &'static str,
    pub csrf_token: String,
    pub notice: Option<&'static str>,
    pub apps: Vec<ConnectedAppView>,
}

pub struct ConnectedAppView {
    pub grant_id: String,
    pub name: String,
    pub initial: String,
    pub avatar_url: Option<String>,
    pub scope_groups: Vec<ScopeGroupView>,
    pub sites: Vec<String>,
    pub granted_on: String,
    pub updated_on: String,
}

#[derive(Template)]
#[template(path = "account/api_tokens.html")]
pub struct ApiTokensPage {
    pub nav: crate::views::Nav,
    pub tab: &'static str,
    pub csrf_token: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// What the create form shows (the last input after an error).
    pub label: String,
    pub days: String,
    pub min_days: i64,
    pub max_days: i64,
    /// The token just created, on the one page that shows its secret.
    pub created: Option<CreatedTokenView>,
    pub tokens: Vec<ApiTokenView>,
}

pub struct CreatedTokenView {
    pub label: String,
    pub secret: String,
    pub expires: String,
}

pub struct ApiTokenView {
    pub token_id: String,
    pub label: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
    pub active: bool,
}

#[derive(Template)]
#[template(path = "account/password.html")]
pub struct PasswordPage {
    pub nav: crate::views::Nav,
    pub tab: &'static str,
    pub csrf_token: String,
    pub notice: Option<&'static str>,
    pub error: Option<String>,
    /// The input `error` is about, if any.
    pub error_field: Option<&'static str>,
    pub min_length: usize,
}

impl PasswordPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        crate::views::error_for(self.error.as_deref(), self.error_field, field)
    }
}

/// Where the account is signed in, with "sign out everywhere else".
#[derive(Template)]
#[template(path = "account/sessions.html")]
pub struct SessionsPage {
    pub nav: crate::views::Nav,
    pub tab: &'static str,
    pub csrf_token: String,
    pub notice: Option<&'static str>,
    pub sessions: Vec<SessionView>,
}

pub struct SessionView {
    pub started: String,
    pub expires: String,
    /// The browser looking at the page.
    pub current: bool,
}
