//! Checking an access token presented to the API host, and the two API-host endpoints
//! the platform answers itself: accessible-resources and /me.

use serde::Serialize;
use trilo_protocol::ScopeSet;
use trilo_protocol::jwt::{self, AccessTokenClaims, Expectations, JwtError};
use trilo_protocol::resources::{ProductOnSite, SiteView, reachable};
use trilo_protocol::scope::live_scopes;

use super::Core;
use crate::error::CoreResult;
use crate::model::{
    AccessTokenStanding, Account, AccountStatus, Installation, InstalledBy, Membership, Site,
    TokenFamily, UserInstalls,
};

/// Why a bearer token was refused. HTTP answers 401 (403 for a missing scope).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("the access token is invalid")]
    Invalid(JwtError),
    #[error("the access token has been revoked")]
    Revoked,
}

/// A verified token whose grant and family are live.
#[derive(Clone, Debug)]
pub struct TokenContext {
    pub claims: AccessTokenClaims,
    /// What the token reaches now: its `scope` claim as far as the grant still holds it.
    pub scopes: ScopeSet,
    pub app_id: String,
    /// The account the token acts for ([`Core::token_account`] reads it).
    pub account_id: String,
}

/// Where the API host serves the avatar of accounts without a picture.
pub const DEFAULT_AVATAR_PATH: &str = "/avatars/default.svg";

/// One entry of accessible-resources, in the reference's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessibleResource {
    pub id: String,
    pub name: String,
    pub url: String,
    pub scopes: Vec<String>,
    #[serde(rename = "avatarUrl", skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
}

/// The `/me` profile, in the reference's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    pub account_type: &'static str,
    pub account_id: String,
    pub email: String,
    pub name: String,
    /// Always present, as in the reference: the account's picture, else the default avatar
    /// ([`DEFAULT_AVATAR_PATH`] on the API host).
    pub picture: String,
    pub account_status: &'static str,
    pub nickname: String,
    pub zoneinfo: String,
    pub locale: String,
    pub extended_profile: ExtendedProfileView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtendedProfileView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Core {
    /// Verifies signature and claims, then that the token's family and grant are live and
    /// the account is active and has not changed its password since.
    pub async fn check_access_token(
        &self,
        token: &str,
    ) -> CoreResult<Result<TokenContext, TokenRejection>> {
        let unverified = match jwt::parse(token) {
            Ok(u) => u,
            Err(e) => return Ok(Err(TokenRejection::Invalid(e))),
        };
        if !self.keys.verify(
            &unverified.header.kid,
            unverified.signing_input.as_bytes(),
            &unverified.signature,
        ) {
            return Ok(Err(TokenRejection::Invalid(JwtError::BadSignature)));
        }
        let expect = Expectations {
            issuer: &self.settings.auth_url,
            audiences: &self.settings.audiences(),
            now_unix: self.now().unix_timestamp(),
            leeway_secs: self.settings.jwt_leeway.whole_seconds(),
        };
        let claims = match jwt::validate_claims(&unverified, &expect) {
            Ok(c) => c,
            Err(e) => return Ok(Err(TokenRejection::Invalid(e))),
        };
        let Some(AccessTokenStanding {
            family,
            grant_scopes,
            account_credential_generation,
        }) = self.store.access_token_standing(&claims.family_id).await?
        else {
            return Ok(Err(TokenRejection::Revoked));
        };
        let live = family.revoked_at.is_none()
            && family.grant_id == claims.grant_id
            && family.account_id == claims.sub
            && account_credential_generation == Some(family.credential_generation);
        let (true, Some(grant_scopes)) = (live, grant_scopes) else {
            return Ok(Err(TokenRejection::Revoked));
        };
        if !self.generation_live(&family, claims.generation).await? {
            return Ok(Err(TokenRejection::Revoked));
        }
        // The grant as it is now governs the token (a narrower re-consent narrows it).
        let scopes = live_scopes(
            &ScopeSet::from_tokens(claims.scope.split(' ').filter(|s| !s.is_empty())),
            &ScopeSet::from_tokens(&grant_scopes),
        );
        Ok(Ok(TokenContext {
            claims,
            scopes,
            app_id: family.app_id,
            account_id: family.account_id,
        }))
    }

    /// The account a checked token acts for, while it is still active (for `/me` and
    /// UserInfo, which answer with its profile).
    pub async fn token_account(
        &self,
        ctx: &TokenContext,
    ) -> CoreResult<Result<Account, TokenRejection>> {
        Ok(self
            .store
            .account(&ctx.account_id)
            .await?
            .filter(|a| a.status == AccountStatus::Active)
            .ok_or(TokenRejection::Revoked))
    }

    /// Whether access tokens of `generation` still work: the head's do; an older one's until
    /// the leeway has passed since its refresh token was rotated (DESIGN §3).
    async fn generation_live(&self, family: &TokenFamily, generation: i64) -> CoreResult<bool> {
        if generation == family.head_generation {
            return Ok(true);
        }
        if generation > family.head_generation {
            return Ok(false);
        }
        if family.kept_head.is_some() {
            // The family dates the two rotations before its head; an access token of an
            // older generation has outlived the leeway but for rotations closer together
            // than it, and ends with them.
            let now = self.now();
            return Ok(family
                .kept_rotation_time(generation)
                .is_some_and(|at| now < at + self.settings.refresh_reuse_leeway));
        }
        let rotated_at = self
            .store
            .refresh_token_of_generation(&family.family_id, generation)
            .await?
            .and_then(|t| t.rotated_at);
        let now = self.now();
        Ok(rotated_at.is_some_and(|at| now < at + self.settings.refresh_reuse_leeway))
    }

    /// `GET /oauth/token/accessible-resources` (DESIGN §3).
    pub async fn accessible_resources(
        &self,
        ctx: &TokenContext,
    ) -> CoreResult<Vec<AccessibleResource>> {
        let memberships = self.store.memberships_of_account(&ctx.account_id).await?;
        let installations = self.store.installations_of_app(&ctx.app_id).await?;
        let catalogs = self.product_scopes().await?;
        let mut sites = Vec::new();
        for installation in &installations {
            let cloud_id = installation.cloud_id.as_str();
            if !memberships.iter().any(|m| m.cloud_id == cloud_id) {
                continue;
            }
            let Some(site) = self.store.site(cloud_id).await? else {
                continue;
            };
            sites.push(site);
        }
        let views: Vec<SiteView<'_>> = sites
            .iter()
            .map(|site| site_view(site, &catalogs, &memberships, &installations))
            .collect();
        let entries = reachable(&ctx.scopes, &views);
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let site = sites.iter().find(|s| s.cloud_id == entry.cloud_id)?;
                Some(AccessibleResource {
                    id: site.cloud_id.clone(),
                    name: site.name.clone(),
                    url: site.url.clone(),
                    scopes: entry.scopes.to_vec(),
                    avatar_url: site.avatar_url.clone(),
                })
            })
            .collect())
    }

    /// `GET /me` for the token's account ([`Core::token_account`]): the caller checks
    /// for `read:me` first.
    pub fn profile(&self, a: &Account) -> Profile {
        Profile {
            account_type: "atlassian",
            account_id: a.account_id.clone(),
            email: a.email.clone(),
            name: a.name.clone(),
            picture: a.picture.clone().unwrap_or_else(|| {
                format!(
                    "{}{DEFAULT_AVATAR_PATH}",
                    self.settings.api_url.trim_end_matches('/')
                )
            }),
            account_status: a.status.as_str(),
            nickname: a.nickname.clone(),
            zoneinfo: a.zoneinfo.clone(),
            locale: a.locale.clone(),
            extended_profile: ExtendedProfileView {
                job_title: a.extended_profile.job_title.clone(),
                organization: a.extended_profile.organization.clone(),
                department: a.extended_profile.department.clone(),
                location: a.extended_profile.location.clone(),
            },
        }
    }
}

/// What the protocol's reachability rules need to know about one site: the account's
/// products there and the app's installation. The consent page's site list and
/// accessible-resources decide from the same view, so they agree.
pub(super) fn site_view<'a>(
    site: &'a Site,
    catalogs: &'a [(String, ScopeSet)],
    memberships: &[Membership],
    installations: &[Installation],
) -> SiteView<'a> {
    let installation = installations.iter().find(|i| i.cloud_id == site.cloud_id);
    SiteView {
        cloud_id: &site.cloud_id,
        products: catalogs
            .iter()
            .map(|(key, catalog)| ProductOnSite {
                product_key: key,
                catalog_scopes: catalog,
                is_member: memberships
                    .iter()
                    .any(|m| m.cloud_id == site.cloud_id && &m.product_key == key),
            })
            .collect(),
        app_installed: installation.is_some(),
        installed_by_admin: installation.is_some_and(|i| i.installed_by == InstalledBy::Admin),
        user_installs_blocked: site.user_installs == UserInstalls::Blocked,
    }
}
