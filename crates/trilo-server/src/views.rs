//! One struct per page (askama, checked at compile time). Views hold plain strings,
//! never store rows; askama escapes every value, so user input renders as text.

use askama::Template;

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf_token: String,
    pub return_to: String,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub email: String,
    pub csrf_token: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
pub struct AuthorizeErrorPage {
    pub message: String,
}

#[derive(Template)]
#[template(path = "oauth/consent.html")]
pub struct ConsentPage {
    pub user_email: String,
    pub app_name: String,
    pub app_initial: String,
    pub app_avatar_url: Option<String>,
    pub developer_name: String,
    pub unreviewed: bool,
    pub error: Option<String>,
    pub csrf_token: String,
    /// The original authorization request's query string, re-validated on POST.
    pub request: String,
    /// Product scopes are asked for: the site picker is shown ("log in with" has none).
    pub needs_site: bool,
    pub sites: Vec<SiteOption>,
    pub any_selectable: bool,
    pub blocked_title: &'static str,
    pub scope_groups: Vec<ScopeGroupView>,
    /// Incremental consent: what stays granted.
    pub already_granted: Vec<ScopeGroupView>,
}

pub struct SiteOption {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    pub blocked: bool,
    pub blocked_message: String,
    pub checked: bool,
}

pub struct ScopeGroupView {
    pub title: String,
    pub scopes: Vec<ScopeLineView>,
}

pub struct ScopeLineView {
    pub scope: String,
    pub description: String,
}

#[derive(Template)]
#[template(path = "demo_callback.html")]
pub struct DemoCallbackPage {
    pub code: String,
    pub state: String,
    pub error: Option<String>,
    pub error_description: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub name: String,
    pub email: String,
}

/// The developer console's list of apps.
#[derive(Template)]
#[template(path = "dev/apps.html")]
pub struct AppsPage {
    pub email: String,
    pub query: String,
    pub deleted: Option<String>,
    pub apps: Vec<AppListItem>,
}

pub struct AppListItem {
    pub app_id: String,
    pub name: String,
    pub distribution: &'static str,
    pub updated_on: String,
}

#[derive(Template)]
#[template(path = "dev/new_app.html")]
pub struct NewAppPage {
    pub email: String,
    pub csrf_token: String,
    pub name: String,
    pub description: String,
    pub error: Option<String>,
}

/// What the layout of a tabbed console page shows around its section, the same on the app
/// pages and the site-admin pages: who is signed in, the current tab, the CSRF token its
/// forms echo, and the outcome of the form just sent.
pub struct Chrome {
    pub email: String,
    pub csrf_token: String,
    pub tab: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Chrome {
    pub fn with_notice(self, notice: impl Into<String>) -> Self {
        Chrome {
            notice: Some(notice.into()),
            ..self
        }
    }

    pub fn with_error(self, error: String) -> Self {
        Chrome {
            error: Some(error),
            ..self
        }
    }
}

/// An app as the console pages show it.
pub struct AppView {
    pub app_id: String,
    pub client_id: String,
    pub name: String,
    pub description: String,
    pub distribution: &'static str,
    pub review: &'static str,
    pub scopes: Vec<String>,
    pub callback_urls: Vec<String>,
}

#[derive(Template)]
#[template(path = "dev/app.html")]
pub struct AppOverviewPage {
    pub chrome: Chrome,
    pub app: AppView,
    /// The client secret, on the one page that shows it (creation).
    pub secret: Option<String>,
}

#[derive(Template)]
#[template(path = "dev/authorization.html")]
pub struct AuthorizationPage {
    pub chrome: Chrome,
    pub app: AppView,
    /// The callback URLs, one per line, as the textarea shows them.
    pub callback_text: String,
    /// The web origins, one per line.
    pub origins_text: String,
    pub scope_choices: Vec<ScopeOption>,
    pub authorization_url: String,
}

/// A scope with a checkbox: whether it is chosen, and what it allows.
pub struct ScopeOption {
    pub scope: String,
    pub description: String,
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "dev/permissions.html")]
pub struct PermissionsPage {
    pub chrome: Chrome,
    pub app: AppView,
    pub apis: Vec<ApiScopes>,
}

/// One API (a product, or the user identity API) and its scopes.
pub struct ApiScopes {
    pub title: String,
    /// Shown unfolded: the app already uses some of its scopes.
    pub open: bool,
    pub chosen: usize,
    pub scopes: Vec<ScopeOption>,
}

#[derive(Template)]
#[template(path = "dev/distribution.html")]
pub struct DistributionPage {
    pub chrome: Chrome,
    pub app: AppView,
    pub sharing: bool,
}

#[derive(Template)]
#[template(path = "dev/settings.html")]
pub struct SettingsPage {
    pub chrome: Chrome,
    pub app: AppView,
    pub avatar_url: String,
    /// A new secret, on the one page that shows it (after a rotation).
    pub secret: Option<String>,
    /// Until when the previous secret still works.
    pub grace: Option<String>,
}

/// An app's webhooks and the recent deliveries of its events.
#[derive(Template)]
#[template(path = "dev/webhooks.html")]
pub struct WebhooksPage {
    pub chrome: Chrome,
    pub app: AppView,
    pub webhooks: Vec<WebhookItem>,
    /// The add form's URL field (what was typed, after a refusal).
    pub url: String,
    pub events: Vec<EventOption>,
    pub deliveries: Vec<DeliveryItem>,
    /// The header receivers verify (`x-trilo-signature`).
    pub signature_header: &'static str,
}

pub struct WebhookItem {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// Derived, so shown on every visit to the app's developer.
    pub secret: String,
    pub created: String,
}

/// A checkbox of the add form.
pub struct EventOption {
    pub name: &'static str,
    /// The product whose event it is, or "Platform" for data security policy events.
    pub source: &'static str,
    pub chosen: bool,
}

pub struct DeliveryItem {
    pub id: String,
    pub event: String,
    pub status: &'static str,
    pub attempts: i64,
    /// The last answer's status code or error, empty before the first attempt.
    pub response: String,
    /// Empty unless pending.
    pub next_try: String,
    pub created: String,
}

/// The sites an admin administers.
#[derive(Template)]
#[template(path = "admin/sites.html")]
pub struct AdminSitesPage {
    pub email: String,
    pub sites: Vec<AdminSiteItem>,
}

pub struct AdminSiteItem {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    pub user_installs: &'static str,
}

#[derive(Template)]
#[template(path = "admin/members.html")]
pub struct AdminMembersPage {
    pub chrome: Chrome,
    pub cloud_id: String,
    pub site_name: String,
    pub members: Vec<AdminMemberItem>,
    pub products: Vec<String>,
}

pub struct AdminMemberItem {
    pub account_id: String,
    pub name: String,
    pub email: String,
    pub product: String,
    pub role: &'static str,
    pub containers: String,
}

#[derive(Template)]
#[template(path = "admin/apps.html")]
pub struct AdminAppsPage {
    pub chrome: Chrome,
    pub cloud_id: String,
    pub site_name: String,
    pub blocked: bool,
    pub apps: Vec<AdminAppItem>,
}

pub struct AdminAppItem {
    pub app_id: String,
    pub name: String,
    pub client_id: String,
    pub installed_by: &'static str,
    pub since: String,
}

#[derive(Template)]
#[template(path = "admin/policies.html")]
pub struct AdminPoliciesPage {
    pub chrome: Chrome,
    pub cloud_id: String,
    pub site_name: String,
    pub policies: Vec<AdminPolicyItem>,
    pub containers: Vec<AdminContainerItem>,
    /// The policy being edited, if any (else the form creates one).
    pub editing: Option<String>,
    pub form_name: String,
    /// The products the site hosts, for adding a container.
    pub products: Vec<String>,
}

pub struct AdminPolicyItem {
    pub policy_id: String,
    pub name: String,
    pub covers: String,
    pub active: bool,
}

pub struct AdminContainerItem {
    pub product: String,
    pub key: String,
    pub name: String,
    /// Covered by the policy being edited.
    pub chosen: bool,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
pub struct AdminAuditPage {
    pub chrome: Chrome,
    pub cloud_id: String,
    pub site_name: String,
    pub filter: String,
    pub events: Vec<AdminEventItem>,
}

pub struct AdminEventItem {
    pub at: String,
    pub action: String,
    pub target: String,
    pub actor: String,
}
