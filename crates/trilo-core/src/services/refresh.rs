//! The refresh grant (RFC 6749 §6) with rotating refresh tokens (DESIGN §3, security
//! checklist F1–F7, F10).
//!
//! Each attempt hands the store a plan: it reads the presented token and its family, lets
//! the pure decision in `trilo_protocol::rotation` say what to do, and applies a rotation
//! with one compare-and-set, in one step where the store can (SQLite's committer,
//! PostgreSQL's batched statement). The caller then reaches the same decision from the same
//! state and clock. A caller that loses the compare-and-set to a racing refresh of the same
//! token reads again: its token is now the head's predecessor, so inside the leeway it gets
//! the same successor the winner got (successors are derived: `KeptTokens` names every
//! generation of a family that keeps its tokens, `ChildTokens` the successor of a token
//! with a row of its own).

use serde_json::json;
use time::OffsetDateTime;
use trilo_protocol::rotation::{RotationDecision, access_token_scopes};

use super::Core;
use super::token::TokenResponse;
use crate::crypto::sha256;
use crate::error::{CoreError, CoreResult};
use crate::metrics::bump;
use crate::model::{App, NewRefreshToken, RefreshTokenKey, RefreshTokenState, TokenKeeping};
use crate::refresh_plan::{RefreshPlan, RotationRule};
use crate::refresh_token::{self, Presented, kept_refresh_token, stored_refresh_token};
use crate::store::{Refreshed, StoreError};

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
        let Some(parent) = self.refresh_token_key(presented).await? else {
            return Err(CoreError::RefreshTokenInvalid);
        };
        let successor = self.successor(presented, &parent);
        let successor_hash = sha256(&successor);
        for _ in 0..ATTEMPTS {
            let now = self.now();
            let plan = RefreshPlan {
                rule: self.rotation_rule(app, now),
                parent: parent.clone(),
                child: NewRefreshToken {
                    token_hash: successor_hash,
                    inactivity_expires_at: now + self.settings.refresh_inactivity,
                    kept: parent.kept,
                },
                scope: scope.map(str::to_owned),
            };
            let Some(Refreshed {
                state,
                rotated,
                durable,
            }) = self.store.refresh_and_rotate(&plan).await?
            else {
                return Err(CoreError::RefreshTokenInvalid);
            };
            let decision = plan.rule.decide(&state);
            if rotated && decision != RotationDecision::Rotate {
                // A store that expresses the plan in its own query language disagreed.
                return Err(
                    StoreError::Corrupt("the store rotated a refused token".to_owned()).into(),
                );
            }
            if rotated {
                // The usual case: sign while the store's commit syncs, answer once it is on
                // disk (a 200 only after the commit).
                let response = self
                    .refresh_response(app, &state, decision, scope, &successor)
                    .await;
                durable.wait().await?;
                bump(&self.metrics.refresh_rotated);
                return response;
            }
            durable.wait().await?;
            match decision {
                RotationDecision::Rotate => {
                    // Lost the compare-and-set to a racing refresh, or the scope was refused.
                    access_token_scopes(scope, &state.live_scopes())?;
                    continue;
                }
                RotationDecision::ReturnCurrent => bump(&self.metrics.refresh_returned_current),
                RotationDecision::ReuseDetected => {
                    bump(&self.metrics.refresh_reuse_detected);
                    self.refresh_token_reused(app, &state).await?;
                    return Err(CoreError::RefreshTokenInvalid);
                }
                RotationDecision::Reject(reason) => {
                    bump(&self.metrics.refresh_refused);
                    tracing::debug!(?reason, family = %state.family.family_id, "refresh refused");
                    return Err(CoreError::RefreshTokenInvalid);
                }
            }
            return self
                .refresh_response(app, &state, decision, scope, &successor)
                .await;
        }
        Err(StoreError::Unavailable("refresh kept losing its compare-and-set".to_owned()).into())
    }

    /// The successor of the presented token at `parent`, kept the way it is: the next
    /// generation's kept token, or a stored token named after its parent (`ChildTokens`).
    /// Either way every attempt with the same token names the same successor.
    fn successor(&self, presented: &str, parent: &RefreshTokenKey) -> String {
        let generation = parent.generation + 1;
        match parent.kept {
            TokenKeeping::Family => {
                kept_refresh_token(&self.kept_tokens, &parent.family_id, generation)
            }
            TokenKeeping::Row => stored_refresh_token(
                &parent.family_id,
                generation,
                &self.child_tokens.child_of(presented),
            ),
        }
    }

    /// Where a presented refresh token is kept: from the token itself (a kept token's MAC
    /// checked), or for a token issued before tokens carried their key, from the store by
    /// its hash. `None` for a token of no known shape, a kept token whose MAC fails, or a
    /// legacy one the store does not know.
    pub async fn refresh_token_key(&self, presented: &str) -> CoreResult<Option<RefreshTokenKey>> {
        Ok(
            match refresh_token::presented(presented, &self.kept_tokens) {
                Presented::Keyed(key) => Some(key),
                Presented::Legacy(hash) => self.store.legacy_refresh_token(&hash).await?,
                Presented::Malformed => None,
            },
        )
    }

    /// The token response for a rotation (the successor's generation) or for a token
    /// returned within the reuse leeway (the family's head).
    async fn refresh_response(
        &self,
        app: &App,
        state: &RefreshTokenState,
        decision: RotationDecision,
        scope: Option<&str>,
        successor: &str,
    ) -> CoreResult<TokenResponse> {
        let family = &state.family;
        let scopes = access_token_scopes(scope, &state.live_scopes())?;
        let generation = if decision == RotationDecision::Rotate {
            state.token.generation + 1
        } else {
            family.head_generation
        };
        let access_token = self.sign_access_token(app, family, generation, &scopes)?;
        // OIDC Core §12.2: the same iss, sub and aud; the login time is not known here.
        let id_token = self
            .id_token(app, &family.account_id, &scopes, &access_token, None, None)
            .await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.settings.access_token_ttl.whole_seconds(),
            scope: scopes.join(" "),
            refresh_token: Some(successor.to_owned()),
            id_token,
        })
    }

    /// What to do with the presented token, from the stored state and the clock.
    pub(super) fn rotation_decision(
        &self,
        app: &App,
        state: &RefreshTokenState,
    ) -> RotationDecision {
        self.rotation_rule(app, self.now()).decide(state)
    }

    fn rotation_rule(&self, app: &App, now: OffsetDateTime) -> RotationRule {
        RotationRule {
            app_id: app.app_id.clone(),
            now,
            reuse_leeway: self.settings.refresh_reuse_leeway,
        }
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
