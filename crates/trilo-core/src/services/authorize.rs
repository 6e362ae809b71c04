//! The authorization endpoint and the consent decision (DESIGN §3 "Authorize").
//!
//! The consent form carries the original request; accept and deny validate it again in
//! full, so the POST can never authorize more than the GET showed.

use serde_json::json;
use time::OffsetDateTime;
use trilo_protocol::authorize::{
    self, Audience, AuthorizeDecision, AuthorizeError, ClientView, Granted, Login, UntrustedReason,
    ValidAuthorize,
};
use trilo_protocol::oidc::is_openid;
use trilo_protocol::resources::offers_site;
use trilo_protocol::scope::is_identity_scope;
use trilo_protocol::{ErrorCode, OAuthError, Params, ScopeSet};

use super::access::site_view;
use super::{Core, new_id};
use crate::crypto::{random_token, sha256};
use crate::error::CoreResult;
use crate::model::{
    Account, App, ClientType, ConsentRecord, Distribution, Grant, GrantChange, NewCode, Product,
    ReviewState,
};
use crate::store::StoreError;

/// What the HTTP layer does next.
#[derive(Clone, Debug)]
pub enum AuthorizeOutcome {
    /// Untrusted client or redirect URI: an error page, no redirect.
    ErrorPage(UntrustedReason),
    /// Redirect to the client (a code or an error).
    Redirect(String),
    /// Send the user to the login page (its email field filled with `login_hint`), then
    /// back to the same request without what asked for a fresh login
    /// (`trilo_protocol::authorize::query_after_login`).
    Login { login_hint: Option<String> },
    /// Show the consent page.
    Consent(Box<ConsentView>),
}

/// Everything the consent page shows.
#[derive(Clone, Debug)]
pub struct ConsentView {
    pub app_name: String,
    pub app_avatar_url: Option<String>,
    pub developer_name: String,
    pub unreviewed: bool,
    /// What the request asks for; with `include_granted_scopes=true`, only what the grant
    /// does not hold yet.
    pub scope_groups: Vec<ScopeGroup>,
    /// With `include_granted_scopes=true`: what the grant already holds and keeps.
    pub already_granted: Vec<ScopeGroup>,
    /// Product scopes are asked for, so the user picks a site; "log in with" (identity
    /// scopes only) picks none and installs nothing.
    pub needs_site: bool,
    pub sites: Vec<SiteChoice>,
    /// The site to preselect: the first site of the grant that can be picked.
    pub preselected: Option<String>,
    /// A problem with the last submission, to show above the form.
    pub error: Option<String>,
    /// Where the user is sent back to: the redirect URI's host (and port), so they see
    /// which site gets the answer.
    pub redirect_host: String,
}

#[derive(Clone, Debug)]
pub struct ScopeGroup {
    pub title: String,
    pub scopes: Vec<ScopeLine>,
}

#[derive(Clone, Debug)]
pub struct ScopeLine {
    pub scope: String,
    pub description: String,
}

#[derive(Clone, Debug)]
pub struct SiteChoice {
    pub cloud_id: String,
    pub name: String,
    pub url: String,
    /// User installs are blocked here and no admin installed the app: shown, not selectable.
    pub blocked: bool,
}

/// The logged-in user and when they logged in: their session's start, the OIDC `auth_time`.
#[derive(Clone, Copy, Debug)]
pub struct LoggedIn<'a> {
    pub account: &'a Account,
    /// `None` when not known: then `prompt=login` and `max_age` always ask for a login,
    /// and ID Tokens carry no `auth_time`.
    pub auth_time: Option<OffsetDateTime>,
}

impl<'a> LoggedIn<'a> {
    fn login(&self) -> Login<'a> {
        Login {
            account_id: &self.account.account_id,
            auth_time: self.auth_time,
        }
    }
}

/// The user's answer on the consent page.
#[derive(Clone, Debug)]
pub enum ConsentAnswer {
    Accept { cloud_id: Option<String> },
    Deny,
}

/// The reference's texts for a site whose admin blocked the app (DESIGN §3).
pub const BLOCKED_TITLE: &str = "App is blocked by an admin";

pub fn blocked_message(app_name: &str, site_name: &str) -> String {
    format!(
        "An admin has not allowed {app_name} to access data from {site_name}. Select another site \
         to authorize access to or contact your admin for more information."
    )
}

enum Checked {
    Done(AuthorizeOutcome),
    Ready {
        app: Box<App>,
        valid: Box<ValidAuthorize>,
        /// The user's live grant for the app, if any.
        grant: Option<Box<Grant>>,
        /// The grant already holds the request and no consent was asked for
        /// (`AuthorizeDecision::AlreadyGranted`).
        already_granted: bool,
    },
}

impl Core {
    /// `GET /authorize`: validate, then ask for login or consent.
    pub async fn authorize(
        &self,
        params: &Params,
        user: Option<LoggedIn<'_>>,
    ) -> CoreResult<AuthorizeOutcome> {
        match self.check_request(params, user).await? {
            Checked::Done(outcome) => Ok(outcome),
            Checked::Ready {
                app,
                valid,
                grant,
                already_granted,
            } => {
                let Some(user) = user else {
                    return Ok(AuthorizeOutcome::Login {
                        login_hint: valid.login_hint.clone(),
                    });
                };
                if already_granted
                    && let Some(location) = self.issue_under_grant(&app, &valid, user).await?
                {
                    return Ok(AuthorizeOutcome::Redirect(location));
                }
                let view = self
                    .consent_view(&app, &valid, user.account, grant.as_deref(), None)
                    .await?;
                Ok(AuthorizeOutcome::Consent(Box::new(view)))
            }
        }
    }

    /// The consent POST for a user whose login time is not known (tools acting for a
    /// user): see [`Core::answer_consent_in_session`].
    pub async fn answer_consent(
        &self,
        params: &Params,
        user: &Account,
        answer: ConsentAnswer,
    ) -> CoreResult<AuthorizeOutcome> {
        let user = LoggedIn {
            account: user,
            auth_time: None,
        };
        self.answer_consent_in_session(params, user, answer).await
    }

    /// The consent POST: the original request's parameters and the user's answer. The
    /// request is checked again in full, its login requirements included.
    pub async fn answer_consent_in_session(
        &self,
        params: &Params,
        logged_in: LoggedIn<'_>,
        answer: ConsentAnswer,
    ) -> CoreResult<AuthorizeOutcome> {
        let user = logged_in.account;
        // The user answered a consent page: their answer counts even where the grant
        // would have spared them the page.
        let (app, valid, grant) = match self.check_request(params, Some(logged_in)).await? {
            Checked::Done(outcome) => return Ok(outcome),
            Checked::Ready {
                app, valid, grant, ..
            } => (app, valid, grant),
        };
        let issuer = &self.settings.auth_url;
        let cloud_id = match answer {
            ConsentAnswer::Deny => {
                let denied = OAuthError::new(ErrorCode::AccessDenied, "The user denied access.");
                return Ok(AuthorizeOutcome::Redirect(
                    valid.error(denied).location(issuer),
                ));
            }
            ConsentAnswer::Accept { cloud_id } => cloud_id,
        };
        let view = self
            .consent_view(&app, &valid, user, grant.as_deref(), None)
            .await?;
        let site = if view.needs_site {
            let chosen = cloud_id
                .as_deref()
                .and_then(|id| view.sites.iter().find(|s| s.cloud_id == id));
            match chosen {
                Some(site) if !site.blocked => Some(site.cloud_id.clone()),
                _ => {
                    let error =
                        Some("Choose one of the sites listed to authorize access to.".to_owned());
                    return Ok(AuthorizeOutcome::Consent(Box::new(ConsentView {
                        error,
                        ..view
                    })));
                }
            }
        } else {
            // "Log in with": the page offered no site, so none is taken from the form.
            None
        };

        let change = if valid.include_granted_scopes {
            GrantChange::Add
        } else {
            GrantChange::Replace
        };
        let (code, new_code) = self.new_code(&valid, logged_in);
        let consent = ConsentRecord {
            app_id: app.app_id.clone(),
            account_id: user.account_id.clone(),
            cloud_id: site.clone(),
            scopes: valid.scopes.to_vec(),
            change,
            at: self.now(),
        };
        let grant = self
            .store
            .accept_consent(&consent, &new_id(), &new_code)
            .await?;
        // A re-consent replaces the grant's scopes, which govern its live tokens: narrower
        // ones take effect on every instance now (DESIGN §3, "Revoking … within 1 second").
        self.access_changed().await;
        self.audit(
            Some(&user.account_id),
            "grant.consented",
            &grant.grant_id,
            site.as_deref(),
            json!({ "app_id": app.app_id, "scopes": valid.scopes.to_string() }),
        )
        .await?;
        Ok(AuthorizeOutcome::Redirect(
            valid.code_location(&code, issuer),
        ))
    }

    /// A new authorization code for `valid`, and what the store keeps of it.
    fn new_code(&self, valid: &ValidAuthorize, logged_in: LoggedIn<'_>) -> (String, NewCode) {
        let code = random_token();
        let new_code = NewCode {
            code_hash: sha256(&code),
            redirect_uri: valid.redirect_uri_sent.clone(),
            code_challenge: valid.code_challenge.clone(),
            nonce: valid.nonce.clone(),
            // The ID Token states it (OIDC Core §2 `auth_time`).
            auth_time: logged_in.auth_time.filter(|_| is_openid(&valid.scopes)),
            expires_at: self.now() + self.settings.code_ttl.min(time::Duration::minutes(10)),
            audience: Some(valid.audience.clone()),
        };
        (code, new_code)
    }

    /// A code under the live grant, which already holds what `valid` asks for, without a
    /// consent page and leaving the grant as it is: the callback's location. `None` when
    /// the grant changed meanwhile (revoked or narrowed), so consent must be asked after
    /// all.
    async fn issue_under_grant(
        &self,
        app: &App,
        valid: &ValidAuthorize,
        logged_in: LoggedIn<'_>,
    ) -> CoreResult<Option<String>> {
        let (code, new_code) = self.new_code(valid, logged_in);
        let authorization = ConsentRecord {
            app_id: app.app_id.clone(),
            account_id: logged_in.account.account_id.clone(),
            cloud_id: None,
            scopes: valid.scopes.to_vec(),
            change: GrantChange::Keep,
            at: self.now(),
        };
        match self
            .store
            .accept_consent(&authorization, &new_id(), &new_code)
            .await
        {
            Ok(_) => Ok(Some(valid.code_location(&code, &self.settings.auth_url))),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn check_request(
        &self,
        params: &Params,
        user: Option<LoggedIn<'_>>,
    ) -> CoreResult<Checked> {
        let app = match params.get("client_id") {
            Some(id) if !params.is_repeated("client_id") => self.store.app_by_client_id(id).await?,
            _ => None,
        };
        let allowed = ScopeSet::from_tokens(app.iter().flat_map(|a| a.scopes.iter()));
        let view = app.as_ref().map(|a| ClientView {
            client_id: &a.client_id,
            callback_urls: &a.callback_urls,
            allowed_scopes: &allowed,
            is_public: a.client_type == ClientType::Public,
        });
        let audiences = self.settings.audiences();
        let valid = match authorize::validate(params, view.as_ref(), &audiences) {
            Ok(valid) => valid,
            Err(AuthorizeError::Untrusted(reason)) => {
                return Ok(Checked::Done(AuthorizeOutcome::ErrorPage(reason)));
            }
            Err(AuthorizeError::Redirect(e)) => {
                return Ok(Checked::Done(AuthorizeOutcome::Redirect(
                    e.location(&self.settings.auth_url),
                )));
            }
        };
        let Some(app) = app else {
            return Ok(Checked::Done(AuthorizeOutcome::ErrorPage(
                UntrustedReason::UnknownClient,
            )));
        };
        let who = match app.distribution {
            Distribution::Private => Audience::OnlyOwner(&app.owner_account_id),
            Distribution::Sharing => Audience::Anyone,
        };
        let login = user.as_ref().map(LoggedIn::login);
        let grant = match user {
            Some(user) => self
                .store
                .live_grant(&app.app_id, &user.account.account_id)
                .await?
                .map(Box::new),
            None => None,
        };
        let granted_scopes = grant.as_ref().map(|g| ScopeSet::from_tokens(&g.scopes));
        let granted = grant
            .as_ref()
            .zip(granted_scopes.as_ref())
            .map(|(g, scopes)| Granted {
                scopes,
                has_site: !g.cloud_ids.is_empty(),
            });
        match authorize::decide(&valid, login, who, granted, self.now()) {
            AuthorizeDecision::LoginRequired { login_hint } => {
                Ok(Checked::Done(AuthorizeOutcome::Login { login_hint }))
            }
            AuthorizeDecision::Fail(e) => Ok(Checked::Done(AuthorizeOutcome::Redirect(
                e.location(&self.settings.auth_url),
            ))),
            decision @ (AuthorizeDecision::ConsentRequired | AuthorizeDecision::AlreadyGranted) => {
                Ok(Checked::Ready {
                    app: Box::new(app),
                    valid: Box::new(valid),
                    grant,
                    already_granted: decision == AuthorizeDecision::AlreadyGranted,
                })
            }
        }
    }

    async fn consent_view(
        &self,
        app: &App,
        valid: &ValidAuthorize,
        user: &Account,
        grant: Option<&Grant>,
        error: Option<String>,
    ) -> CoreResult<ConsentView> {
        let products = self.store.list_products().await?;
        let developer_name = match self.store.account(&app.owner_account_id).await? {
            Some(owner) => owner.name,
            None => "Unknown developer".to_owned(),
        };
        let granted = ScopeSet::from_tokens(grant.iter().flat_map(|g| g.scopes.iter()));
        // Incremental consent shows only what is new, and what stays granted apart.
        let (asked, kept) = if valid.include_granted_scopes {
            let new = ScopeSet::from_tokens(valid.scopes.not_in(&granted));
            (new, granted.clone())
        } else {
            (valid.scopes.clone(), ScopeSet::default())
        };
        let needs_site = !valid.identity_only();
        let sites = if needs_site {
            self.site_choices(app, &valid.scopes, user, &products)
                .await?
        } else {
            Vec::new()
        };
        let preselected = grant.and_then(|g| {
            g.cloud_ids
                .iter()
                .find(|id| sites.iter().any(|s| &s.cloud_id == *id && !s.blocked))
                .cloned()
        });
        Ok(ConsentView {
            app_name: app.name.clone(),
            app_avatar_url: self.settings.shown_avatar(app.avatar_url.as_deref()),
            developer_name,
            unreviewed: app.review_state == ReviewState::Unreviewed,
            scope_groups: scope_groups(&asked, &products),
            already_granted: scope_groups(&kept, &products),
            needs_site,
            sites,
            preselected,
            error,
            redirect_host: url::Url::parse(&valid.redirect_uri)
                .ok()
                .and_then(|u| {
                    let host = u.host_str()?.to_owned();
                    Some(match u.port() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
                })
                .unwrap_or_else(|| valid.redirect_uri.clone()),
        })
    }

    /// Sites where the user is a member of a product the request asks scopes of (any
    /// membership when only identity scopes are asked for).
    async fn site_choices(
        &self,
        app: &App,
        scopes: &ScopeSet,
        user: &Account,
        products: &[Product],
    ) -> CoreResult<Vec<SiteChoice>> {
        let memberships = self.store.memberships_of_account(&user.account_id).await?;
        let installations = self.store.installations_of_app(&app.app_id).await?;
        let catalogs: Vec<(String, ScopeSet)> = products
            .iter()
            .map(|p| {
                (
                    p.key.clone(),
                    ScopeSet::from_tokens(p.scopes.iter().map(|s| &s.scope)),
                )
            })
            .collect();
        let any_product_scope = scopes.iter().any(|s| !is_identity_scope(s));
        let mut cloud_ids: Vec<&str> = memberships.iter().map(|m| m.cloud_id.as_str()).collect();
        cloud_ids.dedup();
        let mut out = Vec::new();
        for cloud_id in cloud_ids {
            if out.iter().any(|c: &SiteChoice| c.cloud_id == cloud_id) {
                continue;
            }
            let Some(site) = self.store.site(cloud_id).await? else {
                continue;
            };
            let view = site_view(&site, &catalogs, &memberships, &installations);
            if any_product_scope && !offers_site(scopes, &view) {
                continue;
            }
            out.push(SiteChoice {
                cloud_id: site.cloud_id.clone(),
                name: site.name.clone(),
                url: site.url.clone(),
                blocked: view.blocks_app(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Requested scopes grouped by product, with the catalog's descriptions; identity scopes
/// form their own group first.
pub(crate) fn scope_groups(scopes: &ScopeSet, products: &[Product]) -> Vec<ScopeGroup> {
    let mut groups: Vec<ScopeGroup> = Vec::new();
    let identity: Vec<ScopeLine> = scopes
        .iter()
        .filter(|s| is_identity_scope(s))
        .map(|s| ScopeLine {
            scope: s.to_owned(),
            description: identity_description(s).to_owned(),
        })
        .collect();
    if !identity.is_empty() {
        groups.push(ScopeGroup {
            title: "Your account".to_owned(),
            scopes: identity,
        });
    }
    for product in products {
        let lines: Vec<ScopeLine> = scopes
            .iter()
            .filter_map(|s| product.scopes.iter().find(|p| p.scope == s))
            .map(|p| ScopeLine {
                scope: p.scope.clone(),
                description: p.description.clone(),
            })
            .collect();
        if !lines.is_empty() {
            groups.push(ScopeGroup {
                title: product.display_name.clone(),
                scopes: lines,
            });
        }
    }
    groups
}

fn identity_description(scope: &str) -> &'static str {
    match scope {
        "offline_access" => {
            "Keep access to the data you granted, without you having to sign in again."
        }
        "read:me" => "View your profile: name, email address, avatar and account details.",
        "openid" => "Sign you in with your account.",
        "profile" => "View your name, nickname, avatar, time zone and locale.",
        "email" => "View your email address.",
        _ => "",
    }
}
