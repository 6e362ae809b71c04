//! The refresh-token rotation decision (DESIGN §3 "Rotating refresh tokens", OAuth 2.0
//! Security BCP §4.14.2): what to do with a presented refresh token, given its family.
//!
//! Pure: the caller reads the state, passes the time, and applies the decision in one
//! atomic store operation (a compare-and-set on the family head).

use time::{Duration, OffsetDateTime};

use crate::error::OAuthError;
use crate::scope::ScopeSet;

/// The answer to every failed refresh (the reference's exact text, sent with 403).
pub const INVALID_REFRESH_TOKEN: &str = "Unknown or invalid refresh token.";

/// The family the presented token belongs to, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyState {
    pub revoked: bool,
    /// Created + the absolute lifetime (365 days by default); rotation never extends it.
    pub absolute_expires_at: OffsetDateTime,
    /// The generation of the newest token: the only one that may rotate.
    pub head_generation: i64,
    /// The account's credential generation when the family began.
    pub credential_generation: i64,
}

/// The presented token, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresentedToken {
    pub generation: i64,
    /// Issued + the inactivity lifetime (90 days by default).
    pub inactivity_expires_at: OffsetDateTime,
    /// When this token was rotated (its child issued), if it was.
    pub rotated_at: Option<OffsetDateTime>,
}

/// Everything else the decision depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationContext {
    pub now: OffsetDateTime,
    pub reuse_leeway: Duration,
    /// The account's credential generation now (a password change bumps it).
    pub account_credential_generation: i64,
    pub grant_live: bool,
    /// The authenticated client is the one the family was issued to.
    pub client_matches: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationDecision {
    /// The head was presented: issue generation `head + 1` (compare-and-set on the head).
    Rotate,
    /// The immediately previous token inside the leeway: answer with the current head again
    /// (the same refresh token) and a fresh access token, so racing or retried refreshes
    /// converge on one chain.
    ReturnCurrent,
    /// A used token outside the leeway, or an older one: revoke the family and its access
    /// tokens, audit, fail.
    ReuseDetected,
    /// Fail without touching the family.
    Reject(RejectReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    WrongClient,
    FamilyRevoked,
    GrantRevoked,
    PasswordChanged,
    AbsoluteExpiry,
    InactivityExpiry,
}

pub fn decide(
    family: &FamilyState,
    token: &PresentedToken,
    ctx: &RotationContext,
) -> RotationDecision {
    use RejectReason::*;
    use RotationDecision::*;
    // A wrong client proves nothing about theft of the token: never revoke on it (a
    // stranger could otherwise end an honest app's family, security checklist C3).
    if !ctx.client_matches {
        return Reject(WrongClient);
    }
    if family.revoked {
        return Reject(FamilyRevoked);
    }
    if !ctx.grant_live {
        return Reject(GrantRevoked);
    }
    if ctx.account_credential_generation != family.credential_generation {
        return Reject(PasswordChanged);
    }
    if ctx.now >= family.absolute_expires_at {
        return Reject(AbsoluteExpiry);
    }
    if token.generation == family.head_generation {
        if ctx.now >= token.inactivity_expires_at {
            return Reject(InactivityExpiry);
        }
        return Rotate;
    }
    if token.generation + 1 == family.head_generation
        && token
            .rotated_at
            .is_some_and(|at| ctx.now < at + ctx.reuse_leeway)
    {
        return ReturnCurrent;
    }
    ReuseDetected
}

/// The scopes of the access token a refresh issues (RFC 6749 §6): the family's scopes, or
/// the requested subset of them. Asking for a scope the family does not hold is
/// `invalid_scope` (security checklist F4); the refresh token always keeps the family's.
pub fn access_token_scopes(
    requested: Option<&str>,
    granted: &[String],
) -> Result<Vec<String>, OAuthError> {
    let granted_set = ScopeSet::from_tokens(granted);
    let requested = match requested.map(str::trim) {
        None | Some("") => return Ok(granted_set.to_vec()),
        Some(scope) => ScopeSet::parse(scope)
            .map_err(|_| OAuthError::invalid_scope("The scope parameter is malformed."))?,
    };
    if !requested.is_subset_of(&granted_set) {
        return Err(OAuthError::invalid_scope(
            "A refresh can only narrow the scopes that were granted.",
        ));
    }
    Ok(requested.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn granted() -> Vec<String> {
        vec![
            "read:me".into(),
            "read:jira-work".into(),
            "offline_access".into(),
        ]
    }

    #[test]
    fn refresh_scopes_default_to_the_grant_and_may_narrow() {
        assert_eq!(access_token_scopes(None, &granted()).ok(), Some(granted()));
        assert_eq!(
            access_token_scopes(Some(" "), &granted()).ok(),
            Some(granted())
        );
        assert_eq!(
            access_token_scopes(Some("read:jira-work"), &granted()).ok(),
            Some(vec!["read:jira-work".to_owned()])
        );
    }

    #[test]
    fn refresh_scopes_never_widen() {
        for scope in [
            "write:jira-work",
            "read:me write:jira-work",
            "READ:ME",
            "read:me\tx",
        ] {
            let err = access_token_scopes(Some(scope), &granted()).err();
            assert_eq!(
                err.map(|e| e.code),
                Some(ErrorCode::InvalidScope),
                "{scope}"
            );
        }
    }

    const LEEWAY: Duration = Duration::minutes(10);

    fn t(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(1000) + Duration::minutes(minutes)
    }

    fn family(head: i64) -> FamilyState {
        FamilyState {
            revoked: false,
            absolute_expires_at: t(0) + Duration::days(365),
            head_generation: head,
            credential_generation: 3,
        }
    }

    fn token(generation: i64, rotated_at: Option<OffsetDateTime>) -> PresentedToken {
        PresentedToken {
            generation,
            inactivity_expires_at: t(0) + Duration::days(90),
            rotated_at,
        }
    }

    fn ctx(now: OffsetDateTime) -> RotationContext {
        RotationContext {
            now,
            reuse_leeway: LEEWAY,
            account_credential_generation: 3,
            grant_live: true,
            client_matches: true,
        }
    }

    #[test]
    fn the_head_rotates() {
        assert_eq!(
            decide(&family(0), &token(0, None), &ctx(t(1))),
            RotationDecision::Rotate
        );
        assert_eq!(
            decide(&family(7), &token(7, None), &ctx(t(1))),
            RotationDecision::Rotate
        );
    }

    #[test]
    fn previous_token_inside_the_leeway_returns_the_current_one() {
        let f = family(1);
        let parent = token(0, Some(t(0)));
        assert_eq!(
            decide(&f, &parent, &ctx(t(0))),
            RotationDecision::ReturnCurrent
        );
        let just_inside = t(0) + LEEWAY - Duration::seconds(1);
        assert_eq!(
            decide(&f, &parent, &ctx(just_inside)),
            RotationDecision::ReturnCurrent
        );
    }

    #[test]
    fn previous_token_outside_the_leeway_is_reuse() {
        let f = family(1);
        let parent = token(0, Some(t(0)));
        assert_eq!(
            decide(&f, &parent, &ctx(t(0) + LEEWAY)),
            RotationDecision::ReuseDetected
        );
        assert_eq!(
            decide(&f, &parent, &ctx(t(0) + LEEWAY + Duration::seconds(1))),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn an_older_generation_is_reuse_even_inside_the_leeway() {
        let f = family(2);
        let grandparent = token(0, Some(t(0)));
        assert_eq!(
            decide(&f, &grandparent, &ctx(t(1))),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn a_generation_beyond_the_head_is_reuse() {
        assert_eq!(
            decide(&family(1), &token(5, None), &ctx(t(1))),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn inactivity_expiry_ends_the_head() {
        let f = family(0);
        let tok = token(0, None);
        let before = tok.inactivity_expires_at - Duration::seconds(1);
        assert_eq!(decide(&f, &tok, &ctx(before)), RotationDecision::Rotate);
        assert_eq!(
            decide(&f, &tok, &ctx(tok.inactivity_expires_at)),
            RotationDecision::Reject(RejectReason::InactivityExpiry)
        );
    }

    #[test]
    fn absolute_expiry_ends_the_family_whatever_the_activity() {
        let f = family(4);
        let mut tok = token(4, None);
        tok.inactivity_expires_at = f.absolute_expires_at + Duration::days(30);
        let before = f.absolute_expires_at - Duration::seconds(1);
        assert_eq!(decide(&f, &tok, &ctx(before)), RotationDecision::Rotate);
        assert_eq!(
            decide(&f, &tok, &ctx(f.absolute_expires_at)),
            RotationDecision::Reject(RejectReason::AbsoluteExpiry)
        );
    }

    #[test]
    fn revoked_family_grant_and_password_change_reject() {
        let mut f = family(0);
        f.revoked = true;
        assert_eq!(
            decide(&f, &token(0, None), &ctx(t(1))),
            RotationDecision::Reject(RejectReason::FamilyRevoked)
        );
        let mut c = ctx(t(1));
        c.grant_live = false;
        assert_eq!(
            decide(&family(0), &token(0, None), &c),
            RotationDecision::Reject(RejectReason::GrantRevoked)
        );
        let mut c = ctx(t(1));
        c.account_credential_generation = 4;
        assert_eq!(
            decide(&family(0), &token(0, None), &c),
            RotationDecision::Reject(RejectReason::PasswordChanged)
        );
    }

    #[test]
    fn a_wrong_client_never_revokes() {
        let mut c = ctx(t(30));
        c.client_matches = false;
        // Even an old token (which would be reuse) is only rejected.
        assert_eq!(
            decide(&family(3), &token(0, Some(t(0))), &c),
            RotationDecision::Reject(RejectReason::WrongClient)
        );
    }
}
