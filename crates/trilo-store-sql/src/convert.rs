//! Conversions between domain values and their column forms: unix milliseconds, 32-byte
//! hashes, space-separated scope lists and enum names.

use time::OffsetDateTime;
use trilo_core::model::TokenHash;
use trilo_core::store::StoreError;

/// Unix milliseconds (UTC), rounded down: the precision the stores keep.
pub fn ms(t: OffsetDateTime) -> i64 {
    let millis = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
}

pub fn opt_ms(t: Option<OffsetDateTime>) -> Option<i64> {
    t.map(ms)
}

pub fn time(millis: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|_| StoreError::Corrupt(format!("timestamp {millis} ms is out of range")))
}

pub fn opt_time(millis: Option<i64>) -> Result<Option<OffsetDateTime>, StoreError> {
    millis.map(time).transpose()
}

pub fn hash(bytes: Vec<u8>) -> Result<TokenHash, StoreError> {
    TokenHash::try_from(bytes.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("a stored hash has {} bytes", bytes.len())))
}

/// Scope tokens never contain spaces (RFC 6749 §3.3), so a list is stored space-separated.
/// A token that would not survive the round trip is refused rather than silently split.
pub fn join_scopes(scopes: &[String]) -> Result<String, StoreError> {
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(char::is_whitespace))
    {
        return Err(StoreError::Corrupt(format!(
            "scope {bad:?} is empty or contains whitespace and cannot be stored"
        )));
    }
    Ok(scopes.join(" "))
}

pub fn split_scopes(joined: &str) -> Vec<String> {
    joined
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a stored enum name with the model's own `parse`.
pub fn parse<T>(value: &str, parse: fn(&str) -> Option<T>, what: &str) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("unknown {what} {value:?}")))
}

/// The key of case-insensitive email uniqueness and lookup.
pub fn email_key(email: &str) -> String {
    email.to_lowercase()
}

/// Keeps the first occurrence of each item, in order.
pub fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn millis_round_down_and_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(ms(t), 1_700_000_000_123);
        assert_eq!(
            time(ms(t)).unwrap().unix_timestamp_nanos(),
            1_700_000_000_123_000_000
        );
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(ms(before_epoch), -1);
    }

    #[test]
    fn scopes_round_trip_and_bad_tokens_are_refused() {
        let scopes = vec!["read:jira-work".to_owned(), "offline_access".to_owned()];
        assert_eq!(split_scopes(&join_scopes(&scopes).unwrap()), scopes);
        assert!(split_scopes("").is_empty());
        assert!(join_scopes(&["a b".to_owned()]).is_err());
        assert!(join_scopes(&[String::new()]).is_err());
    }
}
