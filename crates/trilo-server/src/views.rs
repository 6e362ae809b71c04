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
    /// A password was just set through a reset link.
    pub notice: Option<&'static str>,
}

/// "Forgot your password?": ask for a link.
#[derive(Template)]
#[template(path = "forgot.html")]
pub struct ForgotPasswordPage {
    /// Mail is configured; otherwise the page says to ask an administrator.
    pub available: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
}

/// A page's error, when it is about the input with id `field` (the page shows it beside
/// that input): every form page answers its template's `error_for` with this.
pub fn error_for<'a>(
    error: Option<&'a str>,
    error_field: Option<&'static str>,
    field: &str,
) -> Option<&'a str> {
    error.filter(|_| error_field == Some(field))
}

/// An invitation's page: the invitee's name and a password, twice. Refused input is kept
/// (not the passwords) and the message is shown beside its field.
#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage {
    pub token: String,
    /// The invited email; `None` when the link no longer works.
    pub email: Option<String>,
    pub name: String,
    pub error: Option<String>,
    pub error_field: Option<&'static str>,
}

impl InvitationPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        crate::views::error_for(self.error.as_deref(), self.error_field, field)
    }
}

/// The reset link's page: a new password, twice.
#[derive(Template)]
#[template(path = "reset.html")]
pub struct ResetPasswordPage {
    pub token: String,
    /// The account's email; `None` when the link no longer works.
    pub email: Option<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage {
    pub email: String,
    pub csrf_token: String,
    /// Where the next login goes ("Not you?" on the consent page).
    pub return_to: Option<String>,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub title: String,
    pub message: String,
    /// For an error: the request's id (to quote to an operator), and a way back.
    pub failure: Option<Failure>,
}

/// What every error page adds: the request id and where to go from here.
pub struct Failure {
    pub request_id: String,
}

impl Failure {
    /// For the request being answered, with a link to the home page.
    pub fn of_this_request() -> Failure {
        Failure {
            request_id: crate::http::request_id::current(),
        }
    }
}

/// The confirmation step of a destructive form (see `http::confirm`).
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub nav: Nav,
    pub title: String,
    pub what: String,
    pub button: &'static str,
    pub cancel: String,
    pub typed_name: Option<String>,
    pub action: String,
    /// The form's own fields, posted again.
    pub fields: Vec<(String, String)>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "oauth/error.html")]
pub struct AuthorizeErrorPage {
    pub message: String,
    pub failure: Failure,
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
    /// Where the answer goes (the redirect URI's host).
    pub redirect_host: String,
    /// "Not you?": log out, then log in again into this same authorization.
    pub switch_account_url: String,
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
    /// What the scope lets the app do, for the badge: `read`, `write`, `delete`,
    /// `identity`, `offline` or `other` (see [`ScopeKind`]).
    pub kind: ScopeKind,
}

/// Each product's scopes, reading first, then writing, then deleting (stable within a
/// kind), so what changes data stands apart.
pub fn scope_group_views(
    groups: Vec<trilo_core::services::authorize::ScopeGroup>,
) -> Vec<ScopeGroupView> {
    groups
        .into_iter()
        .map(|g| {
            let mut scopes: Vec<ScopeLineView> = g
                .scopes
                .into_iter()
                .map(|l| ScopeLineView {
                    kind: ScopeKind::of(&l.scope),
                    scope: l.scope,
                    description: l.description,
                })
                .collect();
            scopes.sort_by_key(|l| l.kind);
            ScopeGroupView {
                title: g.title,
                scopes,
            }
        })
        .collect()
}

/// A scope's kind, by its name's prefix: users are shown reading apart from writing and
/// deleting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ScopeKind {
    Identity,
    Read,
    Write,
    Delete,
    Offline,
    Other,
}

impl ScopeKind {
    pub fn of(scope: &str) -> ScopeKind {
        let verb = scope.split_once(':').map_or(scope, |(verb, _)| verb);
        match verb {
            "openid" | "profile" | "email" => ScopeKind::Identity,
            "offline_access" => ScopeKind::Offline,
            "read" | "search" => ScopeKind::Read,
            "write" | "manage" | "admin" | "storage" => ScopeKind::Write,
            "delete" => ScopeKind::Delete,
            _ => ScopeKind::Other,
        }
    }

    /// The class suffix and the badge's text.
    pub fn name(self) -> &'static str {
        match self {
            ScopeKind::Identity => "identity",
            ScopeKind::Read => "read",
            ScopeKind::Write => "write",
            ScopeKind::Delete => "delete",
            ScopeKind::Offline => "offline",
            ScopeKind::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ScopeKind::Identity => "Identity",
            ScopeKind::Read => "Read",
            ScopeKind::Write => "Write",
            ScopeKind::Delete => "Delete",
            ScopeKind::Offline => "Offline",
            ScopeKind::Other => "Other",
        }
    }
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
    pub nav: Nav,
}

/// The developer console's list of apps.
#[derive(Template)]
#[template(path = "dev/apps.html")]
pub struct AppsPage {
    pub email: String,
    pub nav: Nav,
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
    pub nav: Nav,
    pub csrf_token: String,
    pub name: String,
    pub description: String,
    pub error: Option<String>,
    /// The input `error` is about.
    pub error_field: Option<&'static str>,
}

impl NewAppPage {
    pub fn error_for(&self, field: &str) -> Option<&str> {
        crate::views::error_for(self.error.as_deref(), self.error_field, field)
    }
}

/// What the global navigation (the top bar of every signed-in page) needs: who is signed
/// in, and whether they administer a site (the Administration link).
#[derive(Clone, Debug)]
pub struct Nav {
    pub email: String,
    pub is_admin: bool,
    /// One of the configured operators (the navigation's Operator link).
    pub is_operator: bool,
}

/// What the layout of a tabbed console page shows around its section, the same on the app
/// pages and the site-admin pages: who is signed in, the current tab, the CSRF token its
/// forms echo, and the outcome of the form just sent.
pub struct Chrome {
    pub email: String,
    /// The global navigation's facts.
    pub nav: Nav,
    pub csrf_token: String,
    pub tab: &'static str,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// The id of the input `error` is about, when it is about one: the page shows the
    /// message beside that input too, and marks it invalid.
    pub error_field: Option<&'static str>,
}

impl Chrome {
    /// The tab's name, for the page title (each tab has a title of its own).
    pub fn tab_title(&self) -> &'static str {
        match self.tab {
            "members" => "Members",
            "apps" => "App controls",
            "policies" => "Data security",
            "audit" => "Audit log",
            "overview" => "Overview",
            "authorization" => "Authorization",
            "permissions" => "Permissions",
            "distribution" => "Distribution",
            "settings" => "Settings",
            "webhooks" => "Webhooks",
            "sites" => "Sites",
            "review" => "App review",
            _ => "trilo",
        }
    }

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

    /// The error, shown at the top and beside the input with id `field`.
    pub fn with_field_error(self, field: &'static str, error: String) -> Self {
        Chrome {
            error: Some(error),
            error_field: Some(field),
            ..self
        }
    }

    /// The page's status: 400 when it shows a refused form, else 200.
    pub fn status(&self) -> axum::http::StatusCode {
        if self.error.is_some() {
            axum::http::StatusCode::BAD_REQUEST
        } else {
            axum::http::StatusCode::OK
        }
    }

    /// The error about the input with id `field`, if the error is about it.
    pub fn error_for(&self, field: &str) -> Option<&str> {
        crate::views::error_for(self.error.as_deref(), self.error_field, field)
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
    /// The search the list is narrowed to (empty: every scope).
    pub query: String,
    /// Scopes the app has that the search hides: posted again unchanged.
    pub hidden_chosen: Vec<String>,
    /// A search that found nothing.
    pub nothing_found: bool,
}

/// One API (a product, or the user identity API) and its scopes, classic scopes
/// (`read:jira-work`) apart from granular ones (`read:issue:jira`).
pub struct ApiScopes {
    pub title: String,
    /// Shown unfolded: the app already uses some of its scopes, or a search found some.
    pub open: bool,
    pub chosen: usize,
    /// How many scopes the API has (whatever the search shows).
    pub total: usize,
    pub classic: Vec<ScopeOption>,
    pub granular: Vec<ScopeOption>,
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

/// The operator console's sites tab: every site, and the forms that add sites and host
/// products on them (each keeps what was typed when it is refused).
#[derive(Template)]
#[template(path = "operator/sites.html")]
pub struct OperatorSitesPage {
    pub chrome: Chrome,
    pub sites: Vec<OperatorSiteItem>,
    /// Every product: (key, display name).
    pub products: Vec<(String, String)>,
    pub new_site: NewSiteForm,
    pub host: HostProductForm,
}

pub struct OperatorSiteItem {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    pub user_installs: &'static str,
    /// (product key, upstream URL)
    pub products: Vec<(String, String)>,
    pub admins: String,
}

#[derive(Default)]
pub struct NewSiteForm {
    pub name: String,
    pub url: String,
}

#[derive(Default)]
pub struct HostProductForm {
    pub cloud_id: String,
    pub product: String,
    pub upstream: String,
}

/// The operator console's review tab: apps other people may authorize.
#[derive(Template)]
#[template(path = "operator/review.html")]
pub struct OperatorReviewPage {
    pub chrome: Chrome,
    pub apps: Vec<ReviewItem>,
}

pub struct ReviewItem {
    pub app_id: String,
    pub name: String,
    pub owner_email: String,
    pub client_type: &'static str,
    pub callback_hosts: String,
    pub scopes: usize,
    pub approved: bool,
    pub own: bool,
    pub created: String,
}

/// The sites an admin administers.
#[derive(Template)]
#[template(path = "admin/sites.html")]
pub struct AdminSitesPage {
    pub email: String,
    pub nav: Nav,
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
    /// What the members form holds: empty, or what a refused form sent.
    pub typed: MemberForm,
}

#[derive(Default)]
pub struct MemberForm {
    pub email: String,
    pub product: String,
    /// `admin`, `member` or `guest`; empty for the default.
    pub role: &'static str,
    pub containers: String,
}

pub struct AdminMemberItem {
    pub account_id: String,
    pub name: String,
    pub email: String,
    /// Invited and not yet joined.
    pub invited: bool,
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
    /// The date range, as typed (`YYYY-MM-DD`).
    pub from: String,
    pub to: String,
    /// The next (older) page, when there is one.
    pub next_href: Option<String>,
    /// The filters as a query string, for the export links.
    pub export_query: String,
    pub events: Vec<AdminEventItem>,
}

pub struct AdminEventItem {
    pub at: String,
    pub action: String,
    /// The target in words (an email, an app's name), and its id.
    pub target: String,
    pub target_id: String,
    pub actor: String,
}
