//! OpenID Connect on the 3LO flow (OIDC Core 1.0): the ID Token the token endpoint adds
//! for `openid` (§3.1.3.3, §12.2), with the login time its authorization code recorded, and
//! the UserInfo Endpoint's answer (§5.3).
//!
//! ID Tokens are signed with the access tokens' key set and header, `typ: JWT` instead of
//! `at+jwt`. Issuing one costs no store access: everything it says is in the code record
//! and the family.

use trilo_protocol::ScopeSet;
use trilo_protocol::oidc::{
    ID_TOKEN_TYP, IdTokenClaims, OPENID, ScopedClaims, UserInfo, UserProfile, at_hash,
};

use super::Core;
use super::access::TokenContext;
use crate::error::CoreResult;
use crate::model::{Account, App};

impl Core {
    /// The ID Token to return with `access_token` when its `scopes` include `openid`, for
    /// the account `sub` and the client `app` (the only audience), with the claims
    /// `profile` and `email` release (§5.4; the account is read only then). A refresh
    /// passes no `auth_time` and no `nonce` (§12.2).
    pub(super) async fn id_token(
        &self,
        app: &App,
        sub: &str,
        scopes: &[String],
        access_token: &str,
        auth_time: Option<i64>,
        nonce: Option<&str>,
    ) -> CoreResult<Option<String>> {
        if !scopes.iter().any(|s| s == OPENID) {
            return Ok(None);
        }
        let granted = ScopeSet::from_tokens(scopes);
        let claims = if granted.contains("profile") || granted.contains("email") {
            match self.store.account(sub).await? {
                Some(account) => ScopedClaims::released(&granted, &user_profile(&account)),
                None => ScopedClaims::default(),
            }
        } else {
            ScopedClaims::default()
        };
        let now = self.now().unix_timestamp();
        let claims = IdTokenClaims {
            iss: self.settings.auth_url.clone(),
            sub: sub.to_owned(),
            aud: app.client_id.clone(),
            exp: now + self.settings.access_token_ttl.whole_seconds(),
            iat: now,
            auth_time,
            nonce: nonce.map(str::to_owned),
            at_hash: at_hash(access_token),
            claims,
        };
        self.sign_jws(ID_TOKEN_TYP, &claims).map(Some)
    }

    /// The UserInfo Endpoint's answer (§5.3.2) for the token's account
    /// ([`Core::token_account`]): `sub` and what the token's scopes release. The caller
    /// checks for `openid` first.
    pub fn userinfo(&self, ctx: &TokenContext, account: &Account) -> UserInfo {
        UserInfo {
            sub: account.account_id.clone(),
            claims: ScopedClaims::released(&ctx.scopes, &user_profile(account)),
        }
    }
}

/// What the account says about its user, for the claims of §5.1.
fn user_profile(a: &Account) -> UserProfile<'_> {
    UserProfile {
        name: &a.name,
        nickname: &a.nickname,
        picture: a.picture.as_deref(),
        zoneinfo: &a.zoneinfo,
        locale: &a.locale,
        email: &a.email,
        // Administrators create accounts with their addresses; trilo has never proven
        // that the user controls one, and a relying party may link accounts on `true`.
        email_verified: false,
    }
}
