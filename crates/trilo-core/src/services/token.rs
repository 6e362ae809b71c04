//! The token endpoint (RFC 6749 §4.1.3, §5): client authentication and the code exchange
//! (the refresh grant is in `refresh`).
//!
//! A code is checked completely (client, expiry, redirect URI, PKCE) before it is spent
//! (`crate::code_plan`), so a replay with wrong parameters cannot revoke the honest
//! client's tokens (security checklist C3); a replay with valid parameters revokes what the
//! first exchange produced (C2).

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use trilo_protocol::OAuthError;
use trilo_protocol::jwt::{self, AccessTokenClaims, Audience, Header};
use trilo_protocol::token_request::{AuthMethod, ClientCredentials, TokenGrant};

use super::clients::Client;
use super::{Core, new_id};
use crate::code_plan::{CodeExchanged, CodePlan, CodeRefusal, issues_refresh_token};
use crate::crypto::{hashes_equal, sha256};
use crate::error::{CoreError, CoreResult};
use crate::model::{
    App, AuthorizationCode, ClientType, NewRefreshToken, Redeemed, TokenFamily, TokenKeeping,
};
use crate::refresh_token::kept_refresh_token;

/// A successful token response (RFC 6749 §5.1).
#[derive(Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// With `openid` in the scopes (OIDC Core §3.1.3.3, §12.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

fn code_invalid() -> OAuthError {
    OAuthError::invalid_grant("The authorization code is invalid, expired or already used.")
}

/// What the token endpoint answers for a code its plan refused.
fn refused(refusal: CodeRefusal) -> OAuthError {
    match refusal {
        CodeRefusal::Invalid => code_invalid(),
        CodeRefusal::RedirectUriMismatch => {
            OAuthError::invalid_grant("redirect_uri does not match the authorization request.")
        }
        CodeRefusal::PkceFailed => OAuthError::invalid_grant("PKCE verification failed."),
    }
}

impl Core {
    /// Authenticates the client (RFC 6749 §2.3). Unknown clients and wrong secrets fail
    /// alike (security checklist T4): `invalid_client`. The client is the cached one: its
    /// app is read, not copied.
    pub async fn authenticate_client(&self, creds: &ClientCredentials) -> CoreResult<Arc<Client>> {
        let client = self.client(&creds.client_id).await?;
        let presented = creds.secret.as_deref().map(sha256);
        let Some(client) = client else {
            // Same work as a known client: hash compare against a dummy value.
            let _ = presented.map(|h| hashes_equal(&h, &[0u8; 32]));
            return Err(OAuthError::invalid_client().into());
        };
        match (client.app.client_type, creds.method, presented) {
            (ClientType::Public, AuthMethod::None, None) => Ok(client),
            (ClientType::Confidential, AuthMethod::Basic | AuthMethod::Post, Some(hash)) => {
                // Check every valid secret so the time does not depend on which matched.
                let matched = client
                    .valid_secrets(self.now())
                    .fold(false, |acc, s| acc | hashes_equal(&s.secret_hash, &hash));
                if matched {
                    Ok(client)
                } else {
                    Err(OAuthError::invalid_client().into())
                }
            }
            _ => Err(OAuthError::invalid_client().into()),
        }
    }

    /// `POST /oauth/token`.
    pub async fn token(
        &self,
        creds: &ClientCredentials,
        grant: TokenGrant,
    ) -> CoreResult<TokenResponse> {
        let client = self.authenticate_client(creds).await?;
        let app = &client.app;
        match grant {
            TokenGrant::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                self.exchange_code(
                    app,
                    &code,
                    redirect_uri.as_deref(),
                    code_verifier.as_deref(),
                )
                .await
            }
            TokenGrant::RefreshToken {
                refresh_token,
                scope,
            } => self.refresh(app, &refresh_token, scope.as_deref()).await,
        }
    }

    async fn exchange_code(
        &self,
        app: &App,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> CoreResult<TokenResponse> {
        let now = self.now();
        let family_id = new_id();
        let first_refresh_token = kept_refresh_token(&self.kept_tokens, &family_id, 0);
        let plan = CodePlan {
            code_hash: sha256(code),
            app_id: app.app_id.clone(),
            redirect_uri: redirect_uri.map(str::to_owned),
            code_verifier: code_verifier.map(str::to_owned),
            now,
            family_id,
            absolute_expires_at: now + self.settings.refresh_absolute,
            first_refresh_token: NewRefreshToken {
                token_hash: sha256(&first_refresh_token),
                inactivity_expires_at: now + self.settings.refresh_inactivity,
                kept: TokenKeeping::Family,
            },
            event_id: new_id(),
        };
        let (exchanged, durable) = self.store.exchange_code(&plan).await?;
        let Some(CodeExchanged {
            code: record,
            redeemed,
        }) = exchanged
        else {
            return Err(code_invalid().into());
        };
        let family = match redeemed {
            Some(Redeemed::First(family)) if family.revoked_at.is_none() => family,
            // A family issued under a grant revoked meanwhile is born revoked (H-C3), and a
            // later revocation of the grant ends it with the grant's other families.
            Some(Redeemed::First(_) | Redeemed::NotFound) => {
                durable.wait().await?;
                return Err(code_invalid().into());
            }
            Some(Redeemed::AlreadyUsed(record)) => {
                durable.wait().await?;
                return self.code_replayed(record.family_id.as_deref(), app).await;
            }
            // Not redeemed: the store's check refused it (the same check, from the same
            // record, says why), or it passed and the code was used before.
            None => {
                plan.check(&record).map_err(refused)?;
                return self.code_replayed(record.family_id.as_deref(), app).await;
            }
        };
        let refresh_token = issues_refresh_token(&record).then_some(first_refresh_token);
        // Sign while the store's commit syncs; answer once it is on disk.
        let response = self
            .code_response(app, &family, &record, refresh_token)
            .await;
        durable.wait().await?;
        if response.is_ok() {
            crate::metrics::bump(&self.metrics.code_exchanges);
        }
        response
    }

    /// The token response for a redeemed code: the family's first access token, its
    /// refresh token, and an ID Token when `openid` was granted.
    async fn code_response(
        &self,
        app: &App,
        family: &TokenFamily,
        code: &AuthorizationCode,
        refresh_token: Option<String>,
    ) -> CoreResult<TokenResponse> {
        let access_token = self.sign_access_token(app, family, 0, &family.scopes)?;
        let id_token = self
            .id_token(
                app,
                &family.account_id,
                &family.scopes,
                &access_token,
                code.auth_time.map(time::OffsetDateTime::unix_timestamp),
                code.nonce.as_deref(),
            )
            .await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl.whole_seconds(),
            scope: family.scopes.join(" "),
            refresh_token,
            id_token,
        })
    }

    /// A second redemption: revoke what the first produced, then fail (RFC 6749 §4.1.2).
    async fn code_replayed(&self, family_id: Option<&str>, app: &App) -> CoreResult<TokenResponse> {
        if let Some(family_id) = family_id
            && self
                .store
                .revoke_family(family_id, "code_replayed", self.now())
                .await?
        {
            self.access_changed().await;
            self.audit(
                None,
                "code.replayed",
                family_id,
                None,
                json!({ "app_id": app.app_id }),
            )
            .await?;
        }
        Err(code_invalid().into())
    }

    /// Signs an access token for a family generation (RFC 9068) with `scopes`, the
    /// family's or a subset of them.
    pub fn sign_access_token(
        &self,
        app: &App,
        family: &TokenFamily,
        generation: i64,
        scopes: &[String],
    ) -> CoreResult<String> {
        let now = self.now().unix_timestamp();
        let claims = AccessTokenClaims {
            iss: self.settings.auth_url.clone(),
            sub: family.account_id.clone(),
            aud: Audience::One(
                family
                    .audience
                    .clone()
                    .unwrap_or_else(|| self.settings.audience.clone()),
            ),
            client_id: app.client_id.clone(),
            scope: scopes.join(" "),
            iat: now,
            exp: now + self.settings.access_token_ttl.whole_seconds(),
            nbf: None,
            jti: new_id(),
            grant_id: family.grant_id.clone(),
            family_id: family.family_id.clone(),
            generation,
        };
        self.sign_jws(jwt::ACCESS_TOKEN_TYP, &claims)
    }

    /// Signs `claims` as a compact ES256 JWS of type `typ` with the current key.
    pub(super) fn sign_jws(&self, typ: &str, claims: &impl Serialize) -> CoreResult<String> {
        // One snapshot for the kid and the signature: a rotation in between cannot pair them
        // wrongly.
        let keys = self.keys.snapshot();
        let header = Header {
            alg: jwt::ALG.to_owned(),
            typ: typ.to_owned(),
            kid: keys.current_kid().to_owned(),
        };
        let input = jwt::signing_input(&header, claims);
        let signature = keys
            .sign(input.as_bytes())
            .map_err(|e| CoreError::Internal(e.into()))?;
        Ok(jwt::compact(&input, &signature))
    }
}
