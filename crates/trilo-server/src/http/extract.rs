//! Typed extractors for the HTML pages (STYLE "HTTP is thin"): who is signed in, the site
//! they administer, the app they own, and a form that carries their CSRF token. Each one
//! refuses with the response the page gives in that case (the login page, "not found", a
//! 403), so a handler starts from what it needs instead of checking for it.
//!
//! Handlers name them after their `Path` and `Query` extractors, so that a path or query
//! that cannot be read is refused (400) before the login is looked at.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::Uri;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use trilo_core::CoreError;
use trilo_core::model::{Account, App, Session};
use trilo_core::services::site_admin::SiteAdmin;
use trilo_protocol::Params;
use trilo_protocol::params::encode;

use super::common::{current_user, form_values, read_form, secrets_equal, see_other};
use super::errors::PageError;
use crate::state::AppState;
use crate::views::{Chrome, Nav};

/// Why a page extractor refused the request.
#[derive(Debug)]
pub enum PageRejection {
    /// Nobody is signed in: the login page, which sends the user back to this path.
    Login { return_to: String },
    /// "Not found", a refused form, or a failure of the store.
    Page(PageError),
    /// A path axum could not read: its own answer, as when handlers extracted the path.
    Path(PathRejection),
    /// A body that could not be read (over the size limit): axum's own answer.
    Body(BytesRejection),
}

impl From<PageError> for PageRejection {
    fn from(e: PageError) -> Self {
        PageRejection::Page(e)
    }
}

impl From<CoreError> for PageRejection {
    fn from(e: CoreError) -> Self {
        PageRejection::Page(e.into())
    }
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::Login { return_to } => {
                see_other(&format!("/login?return_to={}", encode(&return_to)))
            }
            PageRejection::Page(e) => e.into_response(),
            PageRejection::Path(e) => e.into_response(),
            PageRejection::Body(e) => e.into_response(),
        }
    }
}

/// Where the login sends the user back to: the page asked for. Under `/account` it is the
/// account page itself (`/account/<page>`): the login cannot replay a form's POST, and a
/// `?done=` confirmation is for once.
fn return_to(uri: &Uri) -> String {
    let path = uri.path();
    if path == "/account" || path.starts_with("/account/") {
        return path.split('/').take(3).collect::<Vec<_>>().join("/");
    }
    uri.path_and_query().map_or(path, |p| p.as_str()).to_owned()
}

/// The signed-in user: a live session named by the session cookie. No `Debug`: the
/// cookie's value is a credential, and logs must not show it.
#[derive(Clone)]
pub struct SignedIn {
    pub session: Session,
    pub account: Account,
    /// The session cookie's value (a password change keeps this session).
    pub cookie: String,
    /// They administer a product on some site (the navigation's Administration link).
    pub is_admin: bool,
    /// One of the configured operators (the navigation's Operator link).
    pub is_operator: bool,
}

impl SignedIn {
    /// The frame of one of this user's tabbed pages, with nothing to announce yet.
    /// The global navigation for this user.
    pub fn nav(&self) -> Nav {
        Nav {
            email: self.account.email.clone(),
            is_admin: self.is_admin,
            is_operator: self.is_operator,
        }
    }

    pub fn chrome(&self, tab: &'static str) -> Chrome {
        Chrome {
            nav: self.nav(),
            email: self.account.email.clone(),
            csrf_token: self.session.csrf_token.clone(),
            tab,
            notice: None,
            error: None,
            error_field: None,
        }
    }
}

/// Kept in the request's extensions, so that the extractors after the first one (a
/// [`CsrfForm`] after a [`DeveloperApp`]) do not read the session again.
impl FromRequestParts<AppState> for SignedIn {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(me) = parts.extensions.get::<SignedIn>() {
            return Ok(me.clone());
        }
        let Some((session, account, cookie)) = current_user(state, &parts.headers).await? else {
            return Err(PageRejection::Login {
                return_to: return_to(&parts.uri),
            });
        };
        let is_admin = state.core.is_site_admin(&account.account_id).await?;
        let is_operator = state.core.is_operator(&account);
        let me = SignedIn {
            session,
            account,
            cookie,
            is_admin,
            is_operator,
        };
        parts.extensions.insert(me.clone());
        Ok(me)
    }
}

/// An admin of the site named by the path's `{cloud_id}`. Anyone else gets "not found",
/// never "forbidden", so a site's existence is not revealed (as core's `site_admin`).
pub struct SiteAdminOf {
    pub me: SignedIn,
    pub cloud_id: String,
}

impl SiteAdminOf {
    /// The site's admin services. They borrow, so they cannot be extracted; asked for on
    /// each use, they also see a role given up by the form just sent.
    pub async fn services<'a>(&'a self, state: &'a AppState) -> Result<SiteAdmin<'a>, PageError> {
        state
            .core
            .site_admin(&self.me.account, &self.cloud_id)
            .await
            .map_err(|e| match e {
                CoreError::NotFound(_) => {
                    PageError::NotFound("There is no such site to administer.")
                }
                other => other.into(),
            })
    }
}

impl FromRequestParts<AppState> for SiteAdminOf {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(cloud_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(PageRejection::Path)?;
        let me = SignedIn::from_request_parts(parts, state).await?;
        let admin = SiteAdminOf { me, cloud_id };
        admin.services(state).await?;
        Ok(admin)
    }
}

/// The app named by the path's `{id}` (app id or client id), owned by the signed-in
/// developer. Someone else's app is "not found", never "forbidden", so app ids cannot be
/// probed.
pub struct DeveloperApp {
    pub me: SignedIn,
    pub app: App,
}

#[derive(Deserialize)]
struct AppPath {
    id: String,
}

impl FromRequestParts<AppState> for DeveloperApp {
    type Rejection = PageRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Path(AppPath { id }) = Path::<AppPath>::from_request_parts(parts, state)
            .await
            .map_err(PageRejection::Path)?;
        let me = SignedIn::from_request_parts(parts, state).await?;
        let app = state
            .core
            .console(&me.account)
            .app(&id)
            .await
            .map_err(PageError::from)?;
        Ok(DeveloperApp { me, app })
    }
}

/// A page form: a urlencoded UTF-8 body that echoes the signed-in session's CSRF token
/// (security checklist A1). Read strictly into [`Params`] rather than deserialized, so a
/// repeated field stays visible to the handler.
pub struct CsrfForm {
    params: Params,
    body: Bytes,
    /// The signed-in user's navigation, for a page the form answers with itself (a
    /// confirmation).
    nav: Nav,
}

impl CsrfForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name)
    }

    pub fn first_repeated<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        self.params.first_repeated(names)
    }

    /// Every value of `name` (a list of checkboxes).
    pub fn values(&self, name: &str) -> Result<Vec<String>, PageError> {
        form_values(&self.body, name)
    }

    pub fn nav(&self) -> Nav {
        self.nav.clone()
    }

    /// Every (name, value) of the form, in order of names, repeated names included.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.params
            .names()
            .flat_map(|name| {
                form_values(&self.body, name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |value| (name.to_owned(), value))
            })
            .collect()
    }
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = PageRejection;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let me = SignedIn::from_request_parts(&mut parts, state).await?;
        let headers = parts.headers.clone();
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(PageRejection::Body)?;
        let params = read_form(&headers, &body)?;
        let csrf_ok = !params.is_repeated("csrf_token")
            && params
                .get("csrf_token")
                .is_some_and(|t| secrets_equal(t, &me.session.csrf_token));
        if !csrf_ok {
            return Err(PageError::Forbidden(
                "The form expired or did not come from this site. Reload the page and try again.",
            )
            .into());
        }
        Ok(CsrfForm {
            params,
            body,
            nav: me.nav(),
        })
    }
}

/// The urlencoded form of a page that needs no session (login, password reset, an
/// invitation, consent), read strictly like [`CsrfForm`]'s: 400 when it cannot be read,
/// 415 for another content type.
pub struct PageForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = PageRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(PageRejection::Body)?;
        Ok(PageForm(read_form(&headers, &body)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_returns_to_the_page_asked_for_or_the_account_page_of_a_form() {
        for (asked, back) in [
            ("/developer?q=x", "/developer?q=x"),
            ("/developer/apps/a1/delete", "/developer/apps/a1/delete"),
            (
                "/admin/sites/c1/audit?action=app.",
                "/admin/sites/c1/audit?action=app.",
            ),
            ("/account", "/account"),
            ("/account/apps?done=revoked", "/account/apps"),
            ("/account/apps/g1/revoke", "/account/apps"),
            ("/account/api-tokens/t1/revoke", "/account/api-tokens"),
            ("/accounts/x", "/accounts/x"),
        ] {
            let uri: Uri = asked.parse().unwrap_or_default();
            assert_eq!(return_to(&uri), back, "{asked}");
        }
    }
}
