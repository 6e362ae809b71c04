//! One attempt of the refresh grant as data the store can act on: who asks, when, with
//! which successor. The store reads the presented token's state and asks the plan whether
//! to rotate; the caller then reaches the same decision from the same state and clock.
//! Being data rather than a closure, a store may also express the plan in its own query
//! language (PostgreSQL's one-statement refresh) as long as it rotates exactly when
//! [`RefreshPlan::rotation`] would.

use time::{Duration, OffsetDateTime};
use trilo_protocol::rotation::{
    self, FamilyState, PresentedToken, RotationContext, RotationDecision, access_token_scopes,
};

use crate::model::{NewRefreshToken, RefreshTokenKey, RefreshTokenState, Rotation};

/// The decision's inputs besides the stored state: who asks and when.
#[derive(Clone, Debug)]
pub struct RotationRule {
    /// The authenticated client.
    pub app_id: String,
    /// The attempt's clock reading, used for every comparison and as the rotation time.
    pub now: OffsetDateTime,
    pub reuse_leeway: Duration,
}

impl RotationRule {
    /// What to do with the presented token (`trilo_protocol::rotation::decide`).
    pub fn decide(&self, state: &RefreshTokenState) -> RotationDecision {
        let family = &state.family;
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
                now: self.now,
                reuse_leeway: self.reuse_leeway,
                // A missing or deactivated account counts as changed credentials.
                account_credential_generation: state.account_credential_generation.unwrap_or(-1),
                grant_live: state.grant_refreshable(),
                client_matches: family.app_id == self.app_id,
            },
        )
    }
}

#[derive(Clone, Debug)]
pub struct RefreshPlan {
    pub rule: RotationRule,
    /// The presented token: where the store finds it.
    pub parent: RefreshTokenKey,
    /// The successor to store when the presented token rotates.
    pub child: NewRefreshToken,
    /// The `scope` parameter; a rotation needs it to be within the family's scopes.
    pub scope: Option<String>,
}

impl RefreshPlan {
    /// Whether the scope parameter leaves nothing to check against the family's scopes
    /// (a store expressing the plan in SQL may rotate only then).
    pub fn keeps_family_scopes(&self) -> bool {
        self.scope.as_deref().is_none_or(|s| s.trim().is_empty())
    }

    /// The rotation to apply: when the decision is to rotate and the requested scopes are
    /// within the family's.
    pub fn rotation(&self, state: &RefreshTokenState) -> Option<Rotation> {
        let rotate = self.rule.decide(state) == RotationDecision::Rotate
            && access_token_scopes(self.scope.as_deref(), &state.live_scopes()).is_ok();
        rotate.then(|| Rotation {
            family_id: state.family.family_id.clone(),
            parent_hash: self.parent.token_hash,
            parent_generation: state.token.generation,
            child: self.child.clone(),
            at: self.rule.now,
        })
    }
}
