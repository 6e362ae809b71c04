//! The refresh grant (RFC 6749 §6) with rotating refresh tokens (DESIGN §3, security
//! checklist F1–F7, F10).
//!
//! Each attempt reads the presented token and its family, lets the pure decision in
//! `trilo_protocol::rotation` say what to do, and applies it with one compare-and-set in
//! the store. A caller that loses the compare-and-set to a racing refresh of the same token
//! reads again: its token is now the head's predecessor, so inside the leeway it gets the
//! same successor the winner got (successors are derived, see `ChildTokens`).

use serde_json::json;
use trilo_protocol::rotation::{
    self, FamilyState, PresentedToken, RotationContext, RotationDecision, access_token_scopes,
};

use super::Core;
use super::token::TokenResponse;
use crate::crypto::sha256;
use crate::error::{CoreError, CoreResult};
use crate::model::{App, NewRefreshToken, RefreshTokenState, Rotation};
use crate::store::StoreError;

/// A lost compare-and-set turns the next read into "return the current token" or a
/// rejection, so two attempts always settle; the third is slack.
const ATTEMPTS: usize = 3;

impl Core {
    /// `grant_type=refresh_token` for an authenticated client.
    pub(super) async fn refresh(
        &self,
        app: &App,
        presented: &str,
        scope: Option<&str>,
    ) -> CoreResult<TokenResponse> {
        let presented_hash = sha256(presented);
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let Some(state) = self.store.refresh_token(&presented_hash).await? else {
                return Err(CoreError::RefreshTokenInvalid);
            };
            let decision = self.rotation_decision(app, &state);
            match decision {
                RotationDecision::Rotate | RotationDecision::ReturnCurrent => {}
                RotationDecision::ReuseDetected => {
                    self.refresh_token_reused(app, &state).await?;
                    return Err(CoreError::RefreshTokenInvalid);
                }
                RotationDecision::Reject(reason) => {
                    tracing::debug!(?reason, family = %state.family.family_id, "refresh refused");
                    return Err(CoreError::RefreshTokenInvalid);
                }
            }
            let family = &state.family;
            let scopes = access_token_scopes(scope, &family.scopes)?;
            let successor = self.child_tokens.child_of(presented);
            let generation = if decision == RotationDecision::Rotate {
                let rotation = Rotation {
                    family_id: family.family_id.clone(),
                    parent_hash: presented_hash,
                    parent_generation: state.token.generation,
                    child: NewRefreshToken {
                        token_hash: sha256(&successor),
                        inactivity_expires_at: now + self.settings.refresh_inactivity,
                    },
                    at: now,
                };
                if !self.store.rotate_refresh_token(&rotation).await? {
                    continue;
                }
                rotation.parent_generation + 1
            } else {
                family.head_generation
            };
            let access_token = self.sign_access_token(app, family, generation, &scopes)?;
            return Ok(TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: self.settings.access_token_ttl.whole_seconds(),
                scope: scopes.join(" "),
                refresh_token: Some(successor),
            });
        }
        Err(StoreError::Unavailable("refresh kept losing its compare-and-set".to_owned()).into())
    }

    /// What to do with the presented token, from the stored state and the clock.
    pub(super) fn rotation_decision(
        &self,
        app: &App,
        state: &RefreshTokenState,
    ) -> RotationDecision {
        let family = &state.family;
        // A missing or deactivated account counts as changed credentials.
        let account_credential_generation = state.account_credential_generation.unwrap_or(-1);
        let grant_live = state.grant_live;
        rotation::decide(
            &FamilyState {
                revoked: family.revoked_at.is_some(),
                absolute_expires_at: family.absolute_expires_at,
                head_generation: family.head_generation,
                credential_generation: family.credential_generation,
            },
            &PresentedToken {
                generation: state.token.generation,
                inactivity_expires_at: state.token.inactivity_expires_at,
                rotated_at: state.token.rotated_at,
            },
            &RotationContext {
                now: self.now(),
                reuse_leeway: self.settings.refresh_reuse_leeway,
                account_credential_generation,
                grant_live,
                client_matches: family.app_id == app.app_id,
            },
        )
    }

    /// Reuse of a used token: the family and every access token of it end, and it is
    /// audited (security checklist F2).
    async fn refresh_token_reused(&self, app: &App, state: &RefreshTokenState) -> CoreResult<()> {
        let family = &state.family;
        if self
            .store
            .revoke_family(&family.family_id, "refresh_token_reused", self.now())
            .await?
        {
            self.access_changed().await;
            tracing::warn!(family = %family.family_id, app = %app.app_id, "refresh token reuse: family revoked");
            self.audit(
                Some(&family.account_id),
                "refresh_token.reused",
                &family.family_id,
                None,
                json!({
                    "app_id": app.app_id,
                    "grant_id": family.grant_id,
                    "presented_generation": state.token.generation,
                    "head_generation": family.head_generation,
                }),
            )
            .await?;
        }
        Ok(())
    }
}
