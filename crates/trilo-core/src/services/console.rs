//! The developer console's operations on apps, scoped to the developer who owns them
//! (issue 5; reference "Managing your OAuth 2.0 (3LO) apps"). The JSON API (`/api/v1`) and
//! the console pages both go through [`DeveloperConsole`], so another developer's app is
//! [`ConsoleError::NotFound`] everywhere: its existence is never revealed by a "forbidden".
//!
//! Input is checked here before the admin services run, so callers get a typed reason
//! (which callback URL, which scope) rather than a sentence to parse.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime};
use trilo_protocol::ScopeSet;
use trilo_protocol::authorize::append_query;
use trilo_protocol::redirect::{RegistrationError, validate_registration};
use trilo_protocol::scope::{IDENTITY_SCOPES, is_identity_scope};
use trilo_protocol::web_origin;

use super::Core;
use super::admin::{CreatedApp, NewApp};
use crate::error::CoreError;
use crate::model::{Account, App, ClientType, Distribution, Product, ProductScope, ReviewState};
use crate::store::StoreError;

/// Apps per page when the caller does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_SEARCH_CHARS: usize = 200;
pub const MAX_CALLBACK_URLS: usize = 20;
pub const MAX_AVATAR_URL_LEN: usize = 2000;
/// A rotated-away secret stays valid at most this long: long enough to roll the new one
/// out, short enough that a leaked secret does not outlive its rotation by much.
pub const MAX_SECRET_GRACE: Duration = Duration::days(7);
/// The `state` of a ready-made authorization URL, as the reference's console shows it: the
/// app must replace it with a value bound to the user's session (RFC 6749 §10.12).
pub const STATE_PLACEHOLDER: &str = "YOUR_USER_BOUND_VALUE";
/// The `code_challenge` of a public client's authorization URL (PKCE is required for them).
pub const CODE_CHALLENGE_PLACEHOLDER: &str = "YOUR_CODE_CHALLENGE";
/// What the overview calls the authorization an app uses.
pub const AUTHORIZATION_TYPE: &str = "OAuth 2.0 (3LO)";

/// Why a console operation failed.
/// The fields of an app a refusal can be about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppField {
    Name,
    Description,
    AvatarUrl,
    WebOrigins,
}

impl AppField {
    /// The field's name in the API and in the pages' forms.
    pub fn key(self) -> &'static str {
        match self {
            AppField::Name => "name",
            AppField::Description => "description",
            AppField::AvatarUrl => "avatar_url",
            AppField::WebOrigins => "web_origins",
        }
    }

    /// The field in plain words, as the pages label it.
    pub fn label(self) -> &'static str {
        match self {
            AppField::Name => "Name",
            AppField::Description => "Description",
            AppField::AvatarUrl => "Avatar URL",
            AppField::WebOrigins => "Web origins",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No such app, or it belongs to another developer.
    #[error("app not found")]
    NotFound,
    /// A callback URL fails security checklist R5.
    #[error("{url:?}: {reason}")]
    InvalidCallbackUrl {
        url: String,
        reason: RegistrationError,
    },
    /// Neither an identity scope nor in any product's catalog.
    #[error("{0:?} is not an identity scope and is not in any product's catalog")]
    UnknownScope(String),
    /// Asked for in an authorization URL, but the app has not added it.
    #[error("{0:?} has not been added to the app")]
    ScopeNotAdded(String),
    /// Any other bad input; the text is safe to show.
    #[error("{0}")]
    Invalid(String),
    /// Bad input in one field of an app: the API says `{key} {problem}`, a page shows
    /// `{label} {problem}` beside the field.
    #[error("{} {problem}", field.key())]
    Field { field: AppField, problem: String },
    /// Delete refused: the app is installed on these sites (the reference's rule).
    #[error("the app is installed on {} site(s); uninstall it first", .0.len())]
    Installed(Vec<InstalledSite>),
    /// Reviewing apps is for operators (see [`Core::is_operator`]).
    #[error("only operators can review apps")]
    NotOperator,
    /// A review must come from someone other than the app's developer.
    #[error("operators cannot review their own apps")]
    OwnApp,
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Core(e.into())
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;

/// A site an app is installed on, as the delete refusal lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstalledSite {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
}

/// The "My apps" list: search by name, then a page after `cursor`.
#[derive(Clone, Debug, Default)]
pub struct AppQuery {
    /// Case-insensitive substring of the name; empty or `None` lists every app.
    pub search: Option<String>,
    /// 1 to [`MAX_PAGE_SIZE`]; `None` means [`DEFAULT_PAGE_SIZE`].
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the developer's apps, in the order they were created (as the reference's
/// console lists them).
#[derive(Clone, Debug)]
pub struct AppPage {
    pub apps: Vec<App>,
    /// How many apps match the search, over all pages.
    pub total: usize,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug)]
pub struct NewConsoleApp {
    pub name: String,
    pub description: String,
    pub avatar_url: Option<String>,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    /// `None`: private, as new apps are in the reference.
    pub distribution: Option<Distribution>,
    /// `None`: confidential.
    pub client_type: Option<ClientType>,
}

/// What a settings, authorization, permissions or distribution save changes; `None`
/// leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AppChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` removes the avatar.
    pub avatar_url: Option<Option<String>>,
    pub callback_urls: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    /// Web origins of the app's browser pages (stored as browsers send them).
    pub web_origins: Option<Vec<String>>,
    pub distribution: Option<Distribution>,
}

impl AppChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.avatar_url.is_none()
            && self.callback_urls.is_none()
            && self.scopes.is_none()
            && self.web_origins.is_none()
            && self.distribution.is_none()
    }
}

/// A saved app, and the scopes the save added: users who consented before must consent
/// again before the app gets them (reference "View app permissions").
#[derive(Clone, Debug)]
pub struct UpdatedApp {
    pub app: App,
    pub new_scopes: Vec<String>,
}

/// A product API the app has added, with the app's scopes from its catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppApi {
    pub product_key: String,
    pub display_name: String,
    pub scopes: Vec<ProductScope>,
}

/// A ready-made authorization URL (reference "Direct the user to the authorization URL").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationUrl {
    pub url: String,
    pub scope: String,
    pub redirect_uri: String,
}

/// A new client secret, shown this once.
#[derive(Clone)]
pub struct RotatedSecret {
    pub client_secret: String,
    /// The previous secret is accepted until then.
    pub previous_valid_until: OffsetDateTime,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("previous_valid_until", &self.previous_valid_until)
            .finish_non_exhaustive()
    }
}

/// "Sharing" or "Not sharing", the reference console's words for the distribution.
pub fn distribution_status(distribution: Distribution) -> &'static str {
    match distribution {
        Distribution::Sharing => "Sharing",
        Distribution::Private => "Not sharing",
    }
}

impl Core {
    /// The console as `developer` sees it: only their own apps.
    pub fn console<'a>(&'a self, developer: &'a Account) -> DeveloperConsole<'a> {
        DeveloperConsole {
            core: self,
            developer,
        }
    }
}

/// The developer console's operations for one developer.
#[derive(Debug)]
pub struct DeveloperConsole<'a> {
    core: &'a Core,
    developer: &'a Account,
}

impl DeveloperConsole<'_> {
    pub fn developer(&self) -> &Account {
        self.developer
    }

    /// "My apps": the developer's apps whose name contains the search, one page at a time.
    pub async fn apps(&self, query: &AppQuery) -> ConsoleResult<AppPage> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ConsoleError::Invalid(format!(
                "limit must be 1 to {MAX_PAGE_SIZE}"
            )));
        }
        let search = query
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        if search
            .as_ref()
            .is_some_and(|s| s.chars().count() > MAX_SEARCH_CHARS)
        {
            return Err(ConsoleError::Invalid(format!(
                "search must be at most {MAX_SEARCH_CHARS} characters"
            )));
        }
        let after = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        let mut apps = self
            .core
            .store
            .list_apps(Some(&self.developer.account_id))
            .await?;
        apps.retain(|a| {
            search
                .as_ref()
                .is_none_or(|s| a.name.to_lowercase().contains(s))
        });
        apps.sort_by(|a, b| Cursor::of(a).cmp(&Cursor::of(b)));
        let total = apps.len();
        let start = match &after {
            Some(after) => apps.partition_point(|a| Cursor::of(a) <= *after),
            None => 0,
        };
        let mut page: Vec<App> = apps.into_iter().skip(start).take(limit + 1).collect();
        let next_cursor = if page.len() > limit {
            page.truncate(limit);
            page.last().map(|a| Cursor::of(a).encode())
        } else {
            None
        };
        Ok(AppPage {
            apps: page,
            total,
            next_cursor,
        })
    }

    /// Creates an app owned by the developer; the secret is in the result, shown once.
    pub async fn create_app(&self, input: NewConsoleApp) -> ConsoleResult<CreatedApp> {
        let name = check_name(&input.name)?;
        let description = check_description(&input.description)?;
        let avatar_url = check_avatar(input.avatar_url)?;
        check_callback_urls(&input.callback_urls)?;
        let scopes = self.check_scopes(&input.scopes).await?;
        Ok(self
            .core
            .create_app(NewApp {
                owner_account_id: self.developer.account_id.clone(),
                name,
                description,
                avatar_url,
                callback_urls: input.callback_urls,
                scopes,
                distribution: input.distribution.unwrap_or(Distribution::Private),
                client_type: input.client_type.unwrap_or(ClientType::Confidential),
            })
            .await?)
    }

    /// The developer's app, by app id or client id.
    pub async fn app(&self, id: &str) -> ConsoleResult<App> {
        match self.core.find_app(id).await {
            Ok(app) if app.owner_account_id == self.developer.account_id => Ok(app),
            Ok(_) | Err(CoreError::NotFound(_)) => Err(ConsoleError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The product APIs the app has added, each with its scopes and their descriptions.
    pub async fn apis(&self, app: &App) -> ConsoleResult<Vec<AppApi>> {
        let products = self.core.store.list_products().await?;
        Ok(products
            .into_iter()
            .filter_map(|p| {
                let scopes: Vec<ProductScope> = p
                    .scopes
                    .into_iter()
                    .filter(|s| app.scopes.contains(&s.scope))
                    .collect();
                (!scopes.is_empty()).then_some(AppApi {
                    product_key: p.key,
                    display_name: p.display_name,
                    scopes,
                })
            })
            .collect())
    }

    /// The products whose scopes an app can add, with their catalogs.
    pub async fn catalog(&self) -> ConsoleResult<Vec<Product>> {
        Ok(self.core.store.list_products().await?)
    }

    /// Saves changes to the developer's app.
    pub async fn update_app(&self, id: &str, changes: AppChanges) -> ConsoleResult<UpdatedApp> {
        if changes.is_empty() {
            return Err(ConsoleError::Invalid(
                "nothing to change: send at least one field".into(),
            ));
        }
        let mut app = self.app(id).await?;
        if let Some(name) = &changes.name {
            app.name = check_name(name)?;
        }
        if let Some(description) = &changes.description {
            app.description = check_description(description)?;
        }
        if let Some(avatar) = changes.avatar_url {
            app.avatar_url = check_avatar(avatar)?;
        }
        if let Some(urls) = changes.callback_urls {
            check_callback_urls(&urls)?;
            app.callback_urls = urls;
        }
        let mut new_scopes = Vec::new();
        if let Some(scopes) = &changes.scopes {
            let scopes = self.check_scopes(scopes).await?;
            new_scopes = scopes
                .iter()
                .filter(|s| !app.scopes.contains(s))
                .cloned()
                .collect();
            app.scopes = scopes;
        }
        if let Some(origins) = &changes.web_origins {
            app.web_origins = check_web_origins(origins)?;
        }
        if let Some(distribution) = changes.distribution {
            app.distribution = distribution;
        }
        let app = self.core.update_app(app).await?;
        Ok(UpdatedApp { app, new_scopes })
    }

    /// The authorization URL for `scope` (default: every scope the app added) and
    /// `redirect_uri` (default: the first callback URL).
    pub async fn authorization_url(
        &self,
        id: &str,
        scope: Option<&str>,
        redirect_uri: Option<&str>,
    ) -> ConsoleResult<AuthorizationUrl> {
        let app = self.app(id).await?;
        let scopes = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            Some(text) => {
                let set = ScopeSet::parse(text)
                    .map_err(|e| ConsoleError::Invalid(format!("scope is malformed: {e}")))?;
                if let Some(missing) = set
                    .iter()
                    .find(|s| !is_identity_scope(s) && !app.scopes.iter().any(|a| a == s))
                {
                    return Err(ConsoleError::ScopeNotAdded(missing.to_owned()));
                }
                set
            }
            None => ScopeSet::from_tokens(&app.scopes),
        };
        if scopes.is_empty() {
            return Err(ConsoleError::Invalid(
                "the app has no scopes: add an API's scopes, or choose identity scopes".into(),
            ));
        }
        let redirect_uri = match redirect_uri {
            Some(uri) => app
                .callback_urls
                .iter()
                .find(|registered| *registered == uri)
                .ok_or_else(|| {
                    ConsoleError::Invalid(format!("{uri:?} is not a callback URL of the app"))
                })?
                .clone(),
            None => app.callback_urls.first().cloned().ok_or_else(|| {
                ConsoleError::Invalid("the app has no callback URL: add one first".into())
            })?,
        };
        let scope = scopes.to_string();
        let settings = &self.core.settings;
        let mut params = vec![
            ("audience", settings.audience.as_str()),
            ("client_id", app.client_id.as_str()),
            ("scope", scope.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("state", STATE_PLACEHOLDER),
            ("response_type", "code"),
            ("prompt", "consent"),
        ];
        if app.client_type == ClientType::Public {
            params.push(("code_challenge", CODE_CHALLENGE_PLACEHOLDER));
            params.push(("code_challenge_method", "S256"));
        }
        let base = format!("{}/authorize", settings.auth_url.trim_end_matches('/'));
        Ok(AuthorizationUrl {
            url: append_query(&base, &params),
            scope,
            redirect_uri,
        })
    }

    /// Issues a new secret; the previous one stays valid for `grace` (0 ends it at once).
    pub async fn rotate_secret(&self, id: &str, grace: Duration) -> ConsoleResult<RotatedSecret> {
        if grace.is_negative() || grace > MAX_SECRET_GRACE {
            return Err(ConsoleError::Invalid(format!(
                "grace must be between 0s and {}d",
                MAX_SECRET_GRACE.whole_days()
            )));
        }
        let app = self.app(id).await?;
        if app.client_type != ClientType::Confidential {
            return Err(ConsoleError::Invalid(
                "public clients have no secret: they use PKCE".into(),
            ));
        }
        let client_secret = self.core.rotate_app_secret(&app.app_id, grace).await?;
        Ok(RotatedSecret {
            client_secret,
            previous_valid_until: self.core.now() + grace,
        })
    }

    /// Deletes the developer's app and everything it holds; refused while it is
    /// installed on any site, listing those sites.
    pub async fn delete_app(&self, id: &str) -> ConsoleResult<()> {
        let app = self.app(id).await?;
        let installs = self.core.store.installations_of_app(&app.app_id).await?;
        if !installs.is_empty() {
            let mut sites = Vec::with_capacity(installs.len());
            for install in installs {
                let site = self.core.store.site(&install.cloud_id).await?;
                sites.push(match site {
                    Some(s) => InstalledSite {
                        cloud_id: s.cloud_id,
                        name: s.name,
                        url: s.url,
                    },
                    None => InstalledSite {
                        name: install.cloud_id.clone(),
                        cloud_id: install.cloud_id,
                        url: String::new(),
                    },
                });
            }
            return Err(ConsoleError::Installed(sites));
        }
        Ok(self.core.delete_app(&app.app_id).await?)
    }

    /// Marks any developer's app reviewed (approved) or not; operators only, and never
    /// their own app. Non-operators are refused before the app is looked up, so the
    /// answer tells them nothing about which apps exist.
    pub async fn review_app(&self, id: &str, state: ReviewState) -> ConsoleResult<App> {
        if !self.core.is_operator(self.developer) {
            return Err(ConsoleError::NotOperator);
        }
        let mut app = match self.core.find_app(id).await {
            Ok(app) => app,
            Err(CoreError::NotFound(_)) => return Err(ConsoleError::NotFound),
            Err(e) => return Err(e.into()),
        };
        if app.owner_account_id == self.developer.account_id {
            return Err(ConsoleError::OwnApp);
        }
        app.review_state = state;
        Ok(self.core.update_app(app).await?)
    }

    /// Scopes as the app will store them: each a well-formed token that is an identity
    /// scope or in some product's catalog; the first unknown one is named.
    async fn check_scopes(&self, scopes: &[String]) -> ConsoleResult<Vec<String>> {
        for scope in scopes {
            let single = ScopeSet::parse(scope).ok().filter(|s| s.len() == 1);
            if single.is_none() || scope.contains(' ') {
                return Err(ConsoleError::Invalid(format!(
                    "scope {scope:?} is malformed: one scope token per entry"
                )));
            }
        }
        let products = self.core.store.list_products().await?;
        if let Some(unknown) = scopes.iter().find(|scope| {
            !is_identity_scope(scope)
                && !products
                    .iter()
                    .any(|p| p.scopes.iter().any(|s| &s.scope == *scope))
        }) {
            return Err(ConsoleError::UnknownScope(unknown.clone()));
        }
        Ok(ScopeSet::from_tokens(scopes).to_vec())
    }
}

/// The identity scopes an app may always ask for, for the permissions page.
pub fn identity_scopes() -> &'static [&'static str] {
    &IDENTITY_SCOPES
}

/// The position of an app in the list: creation time (ms, as stores keep it), then id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    created_ms: i128,
    app_id: String,
}

impl Cursor {
    fn of(app: &App) -> Cursor {
        Cursor {
            created_ms: app.created_at.unix_timestamp_nanos() / 1_000_000,
            app_id: app.app_id.clone(),
        }
    }

    /// Opaque to clients: base64url of `{ms}.{app_id}`.
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}.{}", self.created_ms, self.app_id))
    }

    fn decode(text: &str) -> ConsoleResult<Cursor> {
        let invalid = || ConsoleError::Invalid("cursor is not one this API returned".into());
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (ms, app_id) = text.split_once('.').ok_or_else(invalid)?;
        Ok(Cursor {
            created_ms: ms.parse().map_err(|_| invalid())?,
            app_id: app_id.to_owned(),
        })
    }
}

fn check_name(name: &str) -> ConsoleResult<String> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ConsoleError::Field {
            field: AppField::Name,
            problem: format!(
                "must be 1 to {MAX_NAME_CHARS} characters, without control characters"
            ),
        });
    }
    Ok(name.to_owned())
}

fn check_description(description: &str) -> ConsoleResult<String> {
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS
        || description
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ConsoleError::Field {
            field: AppField::Description,
            problem: format!(
                "must be at most {MAX_DESCRIPTION_CHARS} characters, without control characters"
            ),
        });
    }
    Ok(description.to_owned())
}

/// Avatars are shown on the consent page, so only absolute https URLs without user
/// information are taken (security checklist H-I2). An empty value means none.
fn check_avatar(avatar: Option<String>) -> ConsoleResult<Option<String>> {
    let Some(avatar) = avatar
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let ok = avatar.len() <= MAX_AVATAR_URL_LEN
        && !avatar.contains('@')
        && url::Url::parse(&avatar)
            .is_ok_and(|u| u.scheme() == "https" && u.host().is_some() && u.username().is_empty());
    if !ok {
        return Err(ConsoleError::Field {
            field: AppField::AvatarUrl,
            problem: "must be an absolute https URL".into(),
        });
    }
    Ok(Some(avatar))
}

/// The origins as browsers send them, without repeats; each must be an https origin (http
/// on loopback).
fn check_web_origins(origins: &[String]) -> ConsoleResult<Vec<String>> {
    if origins.len() > MAX_CALLBACK_URLS {
        return Err(ConsoleError::Field {
            field: AppField::WebOrigins,
            problem: format!("may hold at most {MAX_CALLBACK_URLS} origins"),
        });
    }
    let mut out: Vec<String> = Vec::new();
    for origin in origins {
        let normalized = web_origin::normalize(origin).map_err(|e| ConsoleError::Field {
            field: AppField::WebOrigins,
            problem: format!("cannot hold {origin:?}: a web origin {e}"),
        })?;
        if !out.contains(&normalized) {
            out.push(normalized);
        }
    }
    Ok(out)
}

fn check_callback_urls(urls: &[String]) -> ConsoleResult<()> {
    if urls.len() > MAX_CALLBACK_URLS {
        return Err(ConsoleError::Invalid(format!(
            "at most {MAX_CALLBACK_URLS} callback URLs"
        )));
    }
    for url in urls {
        validate_registration(url).map_err(|reason| ConsoleError::InvalidCallbackUrl {
            url: url.clone(),
            reason,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor {
            created_ms: 1_700_000_000_123,
            app_id: "0190-abc".into(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in ["", "!!", "bm9kb3Q", &URL_SAFE_NO_PAD.encode("x.y")] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn avatars_must_be_https() {
        assert_eq!(check_avatar(Some(" ".into())).unwrap(), None);
        assert!(check_avatar(Some("https://cdn.test/a.png".into())).is_ok());
        for bad in [
            "http://cdn.test/a.png",
            "javascript:alert(1)",
            "https://u@cdn.test/a.png",
            "/a.png",
        ] {
            assert!(check_avatar(Some(bad.into())).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(check_name("  My app ").unwrap(), "My app");
        assert!(check_name("   ").is_err());
        assert!(check_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(check_name("a\u{0}b").is_err());
    }
}
