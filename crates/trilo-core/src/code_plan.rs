//! One attempt of the authorization-code grant as data the store can act on: who
//! presents the code, with which redirect URI and PKCE verifier, when, and the family an
//! accepted code starts. The store reads the code, asks the plan whether to redeem it and
//! redeems it in the same step (SQLite's committer does, so the code is read once, by the
//! writer); the caller then reaches the same decision from the same record.
//!
//! A code is checked completely (client, expiry, redirect URI, PKCE) before it is spent,
//! so a replay with wrong parameters changes nothing (security checklist C3).

use serde_json::json;
use time::OffsetDateTime;
use trilo_protocol::pkce;
use trilo_protocol::scope::OFFLINE_ACCESS;

use crate::model::{
    AuditEvent, AuthorizationCode, NewFamily, NewRefreshToken, Redeemed, TokenHash,
};

/// Why a presented code was refused before anything was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeRefusal {
    /// Issued to another client, or expired (C4, C5).
    Invalid,
    /// Not the redirect URI of the authorization request (RFC 6749 §4.1.3).
    RedirectUriMismatch,
    /// A missing or wrong verifier, or a verifier for a code without a challenge (P4, P5).
    PkceFailed,
}

#[derive(Clone, Debug)]
pub struct CodePlan {
    pub code_hash: TokenHash,
    /// The authenticated client.
    pub app_id: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    /// The attempt's clock reading: the expiry check and the redemption time.
    pub now: OffsetDateTime,
    /// The family an accepted code starts ([`CodePlan::family`]).
    pub family_id: String,
    pub absolute_expires_at: OffsetDateTime,
    /// Its first refresh token, stored only when the code's scopes hold `offline_access`.
    pub first_refresh_token: NewRefreshToken,
    /// The id of the `token.issued` audit event.
    pub event_id: String,
}

impl CodePlan {
    /// Whether the code may be spent by this attempt: the client it was issued to, before
    /// it expires, with the same redirect URI and a verifier matching its challenge.
    pub fn check(&self, code: &AuthorizationCode) -> Result<(), CodeRefusal> {
        if code.app_id != self.app_id || self.now >= code.expires_at {
            return Err(CodeRefusal::Invalid);
        }
        if let Some(expected) = &code.redirect_uri
            && self.redirect_uri.as_deref() != Some(expected.as_str())
        {
            return Err(CodeRefusal::RedirectUriMismatch);
        }
        match (&code.code_challenge, self.code_verifier.as_deref()) {
            (Some(challenge), Some(verifier)) if pkce::verify_s256(verifier, challenge) => Ok(()),
            (None, None) => Ok(()),
            _ => Err(CodeRefusal::PkceFailed),
        }
    }

    /// The S256 challenge the presented verifier answers; `None` when no well-formed
    /// verifier was presented. For a store that restates [`CodePlan::check`] in its own
    /// query language (PostgreSQL's batched exchange): a code with a challenge passes
    /// when this equals it, a code without one only when no verifier was presented.
    pub fn verifier_challenge(&self) -> Option<String> {
        self.code_verifier
            .as_deref()
            .filter(|v| pkce::is_valid_verifier(v))
            .map(pkce::s256_challenge)
    }

    /// Whether the store redeems the code as read: it passes the check and is unused.
    pub fn redeems(&self, code: &AuthorizationCode) -> bool {
        self.check(code).is_ok() && code.used_at.is_none()
    }

    /// Whether the code as read was spent by this very plan: used, and by the family the
    /// plan starts (a new id for each plan). A store that runs a redemption again after its
    /// commit's answer was lost (a connection broken at that moment) finds it so, and owes
    /// the caller that family, not a replay's refusal.
    pub fn spent_by_this_plan(&self, code: &AuthorizationCode) -> bool {
        code.used_at.is_some() && code.family_id.as_deref() == Some(self.family_id.as_str())
    }

    /// The redemption to apply to the code as read: its family when the plan
    /// [`redeems`](CodePlan::redeems) it.
    pub fn redemption(&self, code: &AuthorizationCode) -> Option<NewFamily> {
        self.redeems(code).then(|| self.family(code))
    }

    /// The family the code starts: a refresh token only when `offline_access` was granted
    /// (DESIGN §3, F9), and its `token.issued` audit event.
    pub fn family(&self, code: &AuthorizationCode) -> NewFamily {
        NewFamily {
            family_id: self.family_id.clone(),
            absolute_expires_at: self.absolute_expires_at,
            refresh_token: issues_refresh_token(code).then(|| self.first_refresh_token.clone()),
            issued: Some(AuditEvent {
                event_id: self.event_id.clone(),
                at: self.now,
                actor_account_id: Some(code.account_id.clone()),
                action: "token.issued".to_owned(),
                target: self.family_id.clone(),
                cloud_id: None,
                details: json!({ "app_id": code.app_id, "grant_id": code.grant_id }),
            }),
        }
    }
}

/// Whether a family started by the code gets a refresh token.
pub fn issues_refresh_token(code: &AuthorizationCode) -> bool {
    code.scopes.iter().any(|s| s == OFFLINE_ACCESS)
}

/// What the store did with a presented code: the code as read and, when the plan redeemed
/// it, the redemption (`First`, or `AlreadyUsed` when a concurrent exchange spent it
/// first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeExchanged {
    pub code: AuthorizationCode,
    pub redeemed: Option<Redeemed>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;
    use crate::testing::fixtures::{self, at};

    fn code_with_scopes(scopes: &[&str]) -> (AuthorizationCode, CodePlan) {
        let new = fixtures::new_code(at(1));
        let plan = fixtures::code_plan("app-1", &new, at(2));
        let code = AuthorizationCode {
            code_hash: new.code_hash,
            app_id: "app-1".to_owned(),
            account_id: "account-1".to_owned(),
            grant_id: "grant-1".to_owned(),
            cloud_id: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            redirect_uri: new.redirect_uri,
            code_challenge: new.code_challenge,
            nonce: None,
            auth_time: None,
            created_at: at(1),
            expires_at: new.expires_at,
            used_at: None,
            family_id: None,
            audience: None,
        };
        (code, plan)
    }

    #[test]
    fn a_code_is_redeemed_only_unused_and_checked() {
        let (mut code, plan) = code_with_scopes(&["read:jira-work"]);
        assert_eq!(plan.check(&code), Ok(()));
        assert!(plan.redeems(&code));
        let wrong_client = CodePlan {
            app_id: "app-2".to_owned(),
            ..plan.clone()
        };
        assert_eq!(wrong_client.check(&code), Err(CodeRefusal::Invalid));
        let elsewhere = CodePlan {
            redirect_uri: None,
            ..plan.clone()
        };
        assert_eq!(
            elsewhere.check(&code),
            Err(CodeRefusal::RedirectUriMismatch)
        );
        let no_challenge_but_a_verifier = AuthorizationCode {
            code_challenge: None,
            ..code.clone()
        };
        assert_eq!(
            plan.check(&no_challenge_but_a_verifier),
            Err(CodeRefusal::PkceFailed)
        );
        code.used_at = Some(at(2));
        assert_eq!(plan.check(&code), Ok(()), "a replay passes the check");
        assert!(!plan.redeems(&code), "but is not redeemed");
    }

    #[test]
    fn a_code_spent_by_the_plans_own_family_was_spent_by_this_plan() {
        let (mut code, plan) = code_with_scopes(&["read:jira-work"]);
        assert!(!plan.spent_by_this_plan(&code), "unused");
        code.used_at = Some(at(2));
        code.family_id = Some("another-family".to_owned());
        assert!(!plan.spent_by_this_plan(&code), "spent by another exchange");
        code.family_id = Some(plan.family_id.clone());
        assert!(plan.spent_by_this_plan(&code));
        code.used_at = None;
        assert!(!plan.spent_by_this_plan(&code), "a family named but no use");
    }

    #[test]
    fn the_family_gets_a_refresh_token_only_with_offline_access() {
        let (code, plan) = code_with_scopes(&["read:jira-work"]);
        let family = plan.family(&code);
        assert_eq!(family.refresh_token, None);
        let issued = family.issued.expect("the issued event");
        assert_eq!(issued.target, plan.family_id);
        assert_eq!(issued.actor_account_id.as_deref(), Some("account-1"));
        assert_eq!(issued.details["grant_id"], "grant-1");

        let (code, plan) = code_with_scopes(&["read:jira-work", OFFLINE_ACCESS]);
        assert_eq!(
            plan.family(&code).refresh_token,
            Some(plan.first_refresh_token.clone())
        );
    }
}
