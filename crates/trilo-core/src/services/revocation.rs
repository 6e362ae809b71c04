//! Token revocation (RFC 7009) and introspection (RFC 7662) for authenticated clients.
//!
//! A client only ever affects or learns about its own tokens: another client's token is
//! "unknown" to it (revocation answers 200 and changes nothing, introspection answers
//! `active: false`), so neither endpoint can be used to probe or end someone else's grant.

use serde::Serialize;
use serde_json::json;
use trilo_protocol::OAuthError;
use trilo_protocol::rotation::RotationDecision;
use trilo_protocol::token_request::{AuthMethod, ClientCredentials};

use super::Core;
use crate::error::CoreResult;
use crate::model::App;

/// An introspection answer (RFC 7662 §2.2). Inactive tokens carry nothing but `active`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Access tokens are JWTs (three dot-separated parts); refresh tokens are opaque. The
/// shape decides, so a wrong `token_type_hint` cannot make a token be missed (RFC 7009
/// §2.1 lets the server look beyond the hint).
fn looks_like_jwt(token: &str) -> bool {
    token.contains('.')
}

impl Core {
    /// `POST /oauth/revoke`: a refresh token or an access token ends its whole family.
    /// Unknown, foreign and already revoked tokens succeed quietly (RFC 7009 §2.2).
    pub async fn revoke(&self, creds: &ClientCredentials, token: &str) -> CoreResult<()> {
        let client = self.authenticate_client(creds).await?;
        let app = &client.app;
        let Some(family_id) = self.own_family_of(app, token).await? else {
            return Ok(());
        };
        if self
            .store
            .revoke_family(&family_id, "revoked_by_client", self.now())
            .await?
        {
            self.access_changed().await;
            self.audit(
                None,
                "token_family.revoked",
                &family_id,
                None,
                json!({ "app_id": app.app_id, "reason": "revoked_by_client" }),
            )
            .await?;
        }
        Ok(())
    }

    /// The family of a token issued to `app`, if the token is one.
    async fn own_family_of(&self, app: &App, token: &str) -> CoreResult<Option<String>> {
        if looks_like_jwt(token) {
            return Ok(match self.check_access_token(token).await? {
                Ok(ctx) if ctx.app_id == app.app_id => Some(ctx.claims.family_id),
                _ => None,
            });
        }
        let Some(key) = self.refresh_token_key(token).await? else {
            return Ok(None);
        };
        Ok(self
            .store
            .refresh_token(&key)
            .await?
            .filter(|state| state.family.app_id == app.app_id)
            .map(|state| state.family.family_id))
    }

    /// `POST /oauth/introspect`: active only for a live token issued to the caller; a
    /// refresh token is active while a refresh with it would succeed.
    pub async fn introspect(
        &self,
        creds: &ClientCredentials,
        token: &str,
    ) -> CoreResult<Introspection> {
        // RFC 7662 §2.1: introspection needs real client authentication, so public
        // clients (no secret) may not use it (the metadata lists secret methods only).
        if creds.method == AuthMethod::None {
            return Err(OAuthError::invalid_client().into());
        }
        let client = self.authenticate_client(creds).await?;
        let app = &client.app;
        if looks_like_jwt(token) {
            return Ok(match self.check_access_token(token).await? {
                Ok(ctx) if ctx.app_id == app.app_id => Introspection {
                    active: true,
                    token_type: Some("access_token"),
                    scope: Some(ctx.scopes.to_string()),
                    client_id: Some(ctx.claims.client_id),
                    sub: Some(ctx.claims.sub),
                    iss: Some(ctx.claims.iss),
                    aud: Some(ctx.claims.aud.first().to_owned()),
                    exp: Some(ctx.claims.exp),
                    iat: Some(ctx.claims.iat),
                    jti: Some(ctx.claims.jti),
                },
                _ => Introspection::default(),
            });
        }
        let Some(key) = self.refresh_token_key(token).await? else {
            return Ok(Introspection::default());
        };
        let Some(state) = self.store.refresh_token(&key).await? else {
            return Ok(Introspection::default());
        };
        let usable = matches!(
            self.rotation_decision(app, &state),
            RotationDecision::Rotate | RotationDecision::ReturnCurrent
        );
        if !usable {
            return Ok(Introspection::default());
        }
        let scope = state.live_scopes().join(" ");
        let family = state.family;
        let expires_at = state
            .token
            .inactivity_expires_at
            .min(family.absolute_expires_at);
        Ok(Introspection {
            active: true,
            token_type: Some("refresh_token"),
            scope: Some(scope),
            client_id: Some(app.client_id.clone()),
            sub: Some(family.account_id),
            iss: Some(self.settings.auth_url.clone()),
            aud: None,
            exp: Some(expires_at.unix_timestamp()),
            iat: Some(state.token.issued_at.unix_timestamp()),
            jti: None,
        })
    }
}
