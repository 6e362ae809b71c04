//! The account pages' operations (DESIGN §1 "account pages", §3 "Accounts"), scoped to the
//! signed-in account: the apps it connected (its grants), its API tokens, its password.
//! Another account's grant or token is [`AccountError::NotFound`], never "forbidden", so
//! ids cannot be probed.

use std::collections::{HashMap, HashSet};

use serde_json::json;
use time::{Duration, OffsetDateTime};
use trilo_protocol::ScopeSet;

use super::Core;
use super::api_tokens::CreatedApiToken;
use super::authorize::{ScopeGroup, ScopeLine, scope_groups};
use crate::crypto::verify_password;
use crate::error::CoreError;
use crate::model::{Account, Site};
use crate::store::StoreError;

/// API tokens live 1 to 365 days (issue 6); 90 when the form is left as it is.
pub const MIN_API_TOKEN_DAYS: i64 = 1;
pub const MAX_API_TOKEN_DAYS: i64 = 365;
pub const DEFAULT_API_TOKEN_DAYS: i64 = 90;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such grant or token, or it belongs to another account, or it is revoked already.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The current password given to a password change is wrong.
    #[error("the current password is not correct")]
    WrongPassword,
    /// Bad input; the text is safe to show.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Core(CoreError),
}

impl From<CoreError> for AccountError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Invalid(message) => AccountError::Invalid(message),
            CoreError::NotFound(what) => AccountError::NotFound(what),
            other => AccountError::Core(other),
        }
    }
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        AccountError::Core(e.into())
    }
}

pub type AccountResult<T> = Result<T, AccountError>;

/// One live grant, as the connected-apps page shows it.
#[derive(Clone, Debug)]
pub struct ConnectedApp {
    pub grant_id: String,
    pub app_id: String,
    pub app_name: String,
    pub app_avatar_url: Option<String>,
    /// The granted scopes grouped by product with the catalogs' descriptions; scopes no
    /// catalog knows come last, without a description, so nothing granted is hidden.
    pub scope_groups: Vec<ScopeGroup>,
    /// The sites picked on consent screens, in the grant's order.
    pub sites: Vec<GrantSite>,
    pub granted_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantSite {
    pub cloud_id: String,
    /// The site's name, or its cloud id when the site is gone.
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiTokenState {
    Active,
    Expired,
    Revoked,
}

impl ApiTokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Expired => "Expired",
            Self::Revoked => "Revoked",
        }
    }
}

/// An API token as its owner may see it again: everything but the secret and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiTokenSummary {
    pub token_id: String,
    pub label: String,
    pub created_at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
    pub state: ApiTokenState,
}

impl Core {
    /// The account pages' operations for `account` only.
    pub fn account<'a>(&'a self, account: &'a Account) -> AccountSelfService<'a> {
        AccountSelfService {
            core: self,
            account,
        }
    }
}

/// What an account may do to its own grants, tokens and password.
#[derive(Debug)]
pub struct AccountSelfService<'a> {
    core: &'a Core,
    account: &'a Account,
}

impl AccountSelfService<'_> {
    pub fn account(&self) -> &Account {
        self.account
    }

    /// The account's live grants, newest first.
    pub async fn connected_apps(&self) -> AccountResult<Vec<ConnectedApp>> {
        let store = &self.core.store;
        let grants = store.grants_of_account(&self.account.account_id).await?;
        let products = store.list_products().await?;
        let mut sites: HashMap<String, Option<Site>> = HashMap::new();
        let mut out = Vec::new();
        for grant in grants.into_iter().filter(|g| g.revoked_at.is_none()) {
            // Deleting an app deletes its grants; one missing here is being deleted.
            let Some(app) = store.app(&grant.app_id).await? else {
                continue;
            };
            let mut groups = scope_groups(&ScopeSet::from_tokens(&grant.scopes), &products);
            let described: HashSet<&str> = groups
                .iter()
                .flat_map(|g| g.scopes.iter().map(|l| l.scope.as_str()))
                .collect();
            let others: Vec<ScopeLine> = grant
                .scopes
                .iter()
                .filter(|s| !described.contains(s.as_str()))
                .map(|s| ScopeLine {
                    scope: s.clone(),
                    description: String::new(),
                })
                .collect();
            if !others.is_empty() {
                groups.push(ScopeGroup {
                    title: "Other".to_owned(),
                    scopes: others,
                });
            }
            let mut grant_sites = Vec::with_capacity(grant.cloud_ids.len());
            for cloud_id in &grant.cloud_ids {
                if !sites.contains_key(cloud_id) {
                    sites.insert(cloud_id.clone(), store.site(cloud_id).await?);
                }
                let name = sites
                    .get(cloud_id)
                    .and_then(|s| s.as_ref())
                    .map_or_else(|| cloud_id.clone(), |s| s.name.clone());
                grant_sites.push(GrantSite {
                    cloud_id: cloud_id.clone(),
                    name,
                });
            }
            out.push(ConnectedApp {
                grant_id: grant.grant_id,
                app_id: app.app_id,
                app_name: app.name,
                app_avatar_url: self.core.settings.shown_avatar(app.avatar_url.as_deref()),
                scope_groups: groups,
                sites: grant_sites,
                granted_at: grant.created_at,
                updated_at: grant.updated_at,
            });
        }
        Ok(out)
    }

    /// Revokes one of the account's live grants: its token families end with it, so the
    /// app's refresh tokens, access tokens (gateway and introspection) all stop at once,
    /// on this instance and, through the store's announcement, on the others.
    pub async fn revoke_grant(&self, grant_id: &str) -> AccountResult<()> {
        let store = &self.core.store;
        let grant = store
            .grant(grant_id)
            .await?
            .filter(|g| g.account_id == self.account.account_id && g.revoked_at.is_none())
            .ok_or(AccountError::NotFound("connected app"))?;
        // `false`: a concurrent revocation won; the grant is gone either way.
        if !store.revoke_grant(&grant.grant_id, self.core.now()).await? {
            return Err(AccountError::NotFound("connected app"));
        }
        self.core.access_changed().await;
        let cloud_id = match grant.cloud_ids.as_slice() {
            [only] => Some(only.as_str()),
            _ => None,
        };
        self.core
            .audit(
                Some(&self.account.account_id),
                "grant.revoked",
                &grant.grant_id,
                cloud_id,
                json!({
                    "app_id": grant.app_id,
                    "cloud_ids": grant.cloud_ids,
                    "reason": "revoked_by_user",
                }),
            )
            .await?;
        Ok(())
    }

    /// The account's tokens, live and ended, newest first.
    pub async fn api_tokens(&self) -> AccountResult<Vec<ApiTokenSummary>> {
        let now = self.core.now();
        let tokens = self.core.api_tokens(&self.account.account_id).await?;
        Ok(tokens
            .into_iter()
            .map(|t| {
                let state = if t.revoked_at.is_some() {
                    ApiTokenState::Revoked
                } else if t.expires_at.is_some_and(|at| now >= at) {
                    ApiTokenState::Expired
                } else {
                    ApiTokenState::Active
                };
                ApiTokenSummary {
                    token_id: t.token_id,
                    label: t.label,
                    created_at: t.created_at,
                    expires_at: t.expires_at,
                    last_used_at: t.last_used_at,
                    revoked_at: t.revoked_at,
                    state,
                }
            })
            .collect())
    }

    /// A new token valid for `days` ([`MIN_API_TOKEN_DAYS`] to [`MAX_API_TOKEN_DAYS`]).
    /// The secret is in the answer only.
    pub async fn create_api_token(&self, label: &str, days: i64) -> AccountResult<CreatedApiToken> {
        if !(MIN_API_TOKEN_DAYS..=MAX_API_TOKEN_DAYS).contains(&days) {
            return Err(AccountError::Invalid(format!(
                "the expiry must be {MIN_API_TOKEN_DAYS} to {MAX_API_TOKEN_DAYS} days"
            )));
        }
        Ok(self
            .core
            .create_api_token(&self.account.account_id, label, Some(Duration::days(days)))
            .await?)
    }

    pub async fn revoke_api_token(&self, token_id: &str) -> AccountResult<()> {
        Ok(self
            .core
            .revoke_api_token(&self.account.account_id, token_id)
            .await?)
    }

    /// Changes the password after checking the current one. Other sessions end and every
    /// refresh-token family is revoked (see [`Core::set_password`]); the session whose
    /// cookie is `keep_session_cookie` stays.
    pub async fn change_password(
        &self,
        current: &str,
        new: &str,
        keep_session_cookie: Option<&str>,
    ) -> AccountResult<()> {
        // The stored hash, not the one read with the session: a change made meanwhile
        // elsewhere must be what the current password is checked against.
        let stored = self
            .core
            .store
            .account(&self.account.account_id)
            .await?
            .ok_or(AccountError::NotFound("account"))?;
        let ok = verify_password(current.to_owned(), Some(stored.password_hash))
            .await
            .map_err(CoreError::Internal)?;
        if !ok {
            return Err(AccountError::WrongPassword);
        }
        if new == current {
            return Err(CoreError::Invalid(
                "the new password must differ from the current one".into(),
            )
            .into());
        }
        self.core
            .set_password(&self.account.account_id, new, keep_session_cookie)
            .await?;
        Ok(())
    }
}
