//! Path aliases of a product (issue 15): other spellings of its API paths that clients
//! send, such as Confluence without `/wiki` (`/ex/confluence/{cloudid}/rest/api/space`, the
//! reference's own example). The gateway rewrites an aliased path to the product's own
//! before it looks up the operation, and forwards the rewritten path, so the scopes checked
//! are those of the operation the upstream runs.

use std::borrow::Cow;
use std::fmt;

/// `from` → `to`: a request path starting with `from` is the product's path `to` + the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathAlias {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    #[error("alias {0:?} must be FROM=TO, both path prefixes")]
    Malformed(String),
    #[error("alias prefix {0:?} must start and end with '/' and hold no whitespace, '?' or '#'")]
    BadPrefix(String),
    #[error("alias {0:?} maps a prefix onto one that starts with it, which would apply twice")]
    Loops(String),
}

impl PathAlias {
    /// Parses `FROM=TO` (the CLI's and the store's spelling).
    pub fn parse(text: &str) -> Result<PathAlias, AliasError> {
        let (from, to) = text
            .split_once('=')
            .ok_or_else(|| AliasError::Malformed(text.to_owned()))?;
        for prefix in [from, to] {
            let valid = prefix.len() >= 2
                && prefix.starts_with('/')
                && prefix.ends_with('/')
                && !prefix
                    .chars()
                    .any(|c| c.is_whitespace() || c == '?' || c == '#' || c == '=');
            if !valid {
                return Err(AliasError::BadPrefix(prefix.to_owned()));
            }
        }
        // `/rest/` → `/rest/x/` would rewrite its own result on the next request shape.
        if to.starts_with(from) {
            return Err(AliasError::Loops(text.to_owned()));
        }
        Ok(PathAlias {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }
}

impl fmt::Display for PathAlias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.from, self.to)
    }
}

/// The product's own path for a request path: the first alias whose `from` starts it
/// rewrites it; without one the path is its own.
pub fn canonical_path<'p>(aliases: &[PathAlias], path: &'p str) -> Cow<'p, str> {
    for alias in aliases {
        if let Some(rest) = path.strip_prefix(alias.from.as_str()) {
            return Cow::Owned(format!("{}{rest}", alias.to));
        }
    }
    Cow::Borrowed(path)
}

/// Aliases as the store keeps them: one `FROM=TO` per line.
pub fn join_aliases(aliases: &[PathAlias]) -> String {
    aliases
        .iter()
        .map(PathAlias::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads what [`join_aliases`] wrote.
pub fn split_aliases(stored: &str) -> Result<Vec<PathAlias>, AliasError> {
    stored
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathAlias::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn confluence() -> Vec<PathAlias> {
        vec![
            PathAlias::parse("/rest/=/wiki/rest/").unwrap(),
            PathAlias::parse("/api/v2/=/wiki/api/v2/").unwrap(),
        ]
    }

    #[test]
    fn an_aliased_path_becomes_the_products_own() {
        let aliases = confluence();
        assert_eq!(
            canonical_path(&aliases, "/rest/api/space"),
            "/wiki/rest/api/space"
        );
        assert_eq!(
            canonical_path(&aliases, "/api/v2/pages/12"),
            "/wiki/api/v2/pages/12"
        );
        // The product's own paths and paths that only look alike stay as they are.
        for own in ["/wiki/rest/api/space", "/restful/x", "/rest", "/"] {
            assert_eq!(canonical_path(&aliases, own), own);
        }
    }

    #[test]
    fn aliases_round_trip_and_bad_ones_are_refused() {
        let aliases = confluence();
        assert_eq!(split_aliases(&join_aliases(&aliases)).unwrap(), aliases);
        assert_eq!(split_aliases("").unwrap(), vec![]);
        for bad in [
            "/rest/",
            "rest/=/wiki/rest/",
            "/rest=/wiki/rest/",
            "/a b/=/c/",
            "/=/x/",
        ] {
            assert!(PathAlias::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            PathAlias::parse("/rest/=/rest/v2/"),
            Err(AliasError::Loops("/rest/=/rest/v2/".into()))
        );
    }
}
