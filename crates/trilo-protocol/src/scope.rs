//! Scope strings (RFC 6749 §3.3): parsing, validation and set operations.

use std::fmt;

/// Scopes every app may request without adding an API: identity and offline access.
pub const IDENTITY_SCOPES: [&str; 5] = ["offline_access", "read:me", "openid", "profile", "email"];

/// Why a scope string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope is empty")]
    Empty,
    #[error("scope contains a character outside RFC 6749 §3.3 scope-token")]
    BadCharacter,
    #[error("scope token is too long")]
    TooLong,
    #[error("too many scope tokens")]
    TooMany,
}

const MAX_TOKEN_LEN: usize = 200;
const MAX_TOKENS: usize = 200;

/// An ordered set of scope tokens, first occurrence kept. Comparison is exact and
/// case-sensitive (security checklist H-S2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(Vec<String>);

impl ScopeSet {
    /// Parses a space-delimited scope string. Tokens must be `%x21 / %x23-5B / %x5D-7E`
    /// (RFC 6749 §3.3); any other character, including tabs and non-ASCII spaces, is an
    /// error rather than a separator (H-S1). Repeated spaces are tolerated.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        let mut set = ScopeSet::default();
        for token in input.split(' ').filter(|t| !t.is_empty()) {
            if token.len() > MAX_TOKEN_LEN {
                return Err(ScopeError::TooLong);
            }
            if !token.bytes().all(is_scope_char) {
                return Err(ScopeError::BadCharacter);
            }
            set.insert(token);
            if set.0.len() > MAX_TOKENS {
                return Err(ScopeError::TooMany);
            }
        }
        if set.0.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(set)
    }

    pub fn from_tokens<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = ScopeSet::default();
        for t in tokens {
            set.insert(t.as_ref());
        }
        set
    }

    pub fn insert(&mut self, token: &str) {
        if !self.contains(token) {
            self.0.push(token.to_owned());
        }
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.iter().any(|t| t == token)
    }

    pub fn is_subset_of(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|t| other.contains(t))
    }

    /// Tokens of `self` that are not in `allowed`.
    pub fn not_in<'a>(&'a self, allowed: &'a ScopeSet) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .map(String::as_str)
            .filter(|t| !allowed.contains(t))
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        let mut out = self.clone();
        for t in &other.0 {
            out.insert(t);
        }
        out
    }

    /// The tokens of `self` that `other` holds too, in `self`'s order.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|t| other.contains(t))
                .cloned()
                .collect(),
        )
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn to_vec(&self) -> Vec<String> {
        self.0.clone()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

fn is_scope_char(b: u8) -> bool {
    b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
}

/// The scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// What a token reaches now: the scopes it was issued with, as far as the account's grant
/// still holds them (DESIGN §2 "Grant"; issue 14 "grants govern live tokens"). A narrower
/// re-consent or an admin change narrows every live access and refresh token at once; a
/// wider one gives a token back at most what it was issued with (new scopes need a new
/// authorization, as the reference's apps ask with `prompt=consent`).
pub fn live_scopes(issued: &ScopeSet, granted: &ScopeSet) -> ScopeSet {
    issued.intersection(granted)
}

/// Whether a token family may still be refreshed under the grant: the grant holds
/// `offline_access`. PostgreSQL's batched refresh states this in SQL
/// (`trilo-store-postgres` `rotation.rs` `REFRESH_BATCH`); the conformance case
/// `a_grant_without_offline_access_refreshes_nothing` pins the two together.
pub fn grant_allows_refresh(granted: &ScopeSet) -> bool {
    granted.contains(OFFLINE_ACCESS)
}

/// Whether `scope` is one of the identity scopes every app may request.
pub fn is_identity_scope(scope: &str) -> bool {
    IDENTITY_SCOPES.contains(&scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_delimited_tokens_in_order_without_duplicates() {
        let s =
            ScopeSet::parse("read:jira-work  write:jira-work read:jira-work").unwrap_or_default();
        assert_eq!(s.to_vec(), vec!["read:jira-work", "write:jira-work"]);
        assert_eq!(s.to_string(), "read:jira-work write:jira-work");
    }

    #[test]
    fn refuses_characters_outside_scope_token() {
        for bad in [
            "a\"b",
            "a\\b",
            "a\tb",
            "a\u{a0}b",
            "a\u{3000}b",
            "a\nb",
            "é",
        ] {
            assert_eq!(
                ScopeSet::parse(bad),
                Err(ScopeError::BadCharacter),
                "{bad:?}"
            );
        }
        // A comma is a legal scope character: it makes one unknown token, never two.
        assert_eq!(ScopeSet::parse("a,b").map(|s| s.len()), Ok(1));
    }

    #[test]
    fn refuses_empty_and_oversized() {
        assert_eq!(ScopeSet::parse("   "), Err(ScopeError::Empty));
        assert_eq!(ScopeSet::parse(&"a".repeat(201)), Err(ScopeError::TooLong));
        let many = (0..201)
            .map(|i| format!("s{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(ScopeSet::parse(&many), Err(ScopeError::TooMany));
    }

    #[test]
    fn matching_is_exact_and_case_sensitive() {
        let allowed = ScopeSet::from_tokens(["read:jira-work"]);
        let asked =
            ScopeSet::from_tokens(["READ:JIRA-WORK", "read:jira-work:evil", "read:jira-work"]);
        assert_eq!(
            asked.not_in(&allowed).collect::<Vec<_>>(),
            vec!["READ:JIRA-WORK", "read:jira-work:evil"]
        );
    }

    #[test]
    fn a_live_token_reaches_what_it_was_issued_with_and_the_grant_still_holds() {
        let issued = ScopeSet::from_tokens(["read:jira-work", "write:jira-work", "offline_access"]);
        let narrowed = ScopeSet::from_tokens(["read:jira-work", "read:me"]);
        assert_eq!(
            live_scopes(&issued, &narrowed).to_vec(),
            vec!["read:jira-work"]
        );
        // A wider grant gives back no more than the token was issued with.
        let wider = ScopeSet::from_tokens([
            "read:jira-work",
            "write:jira-work",
            "offline_access",
            "manage:jira-configuration",
        ]);
        assert_eq!(live_scopes(&issued, &wider), issued);
        assert!(grant_allows_refresh(&wider));
        assert!(!grant_allows_refresh(&narrowed));
    }
}
