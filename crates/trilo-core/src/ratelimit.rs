//! Failure counters for password logins and client authentication (DESIGN §3 Accounts,
//! security checklist H-T2/H-T3): after too many failures for a key inside a window, the
//! key is refused until the window ends.
//!
//! Counters live in memory, so limits apply per instance. Keys combine the account (or
//! client) with the caller's address, so a stranger cannot lock an account for everyone.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
pub struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    /// Bound on remembered keys; expired entries are dropped first when it is reached.
    max_keys: usize,
    entries: Mutex<HashMap<String, Window>>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: OffsetDateTime,
    failures: u32,
}

impl FailureLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            max_keys: 100_000,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when `key` has used up its failures in the current window.
    pub fn check(&self, key: &str, now: OffsetDateTime) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(key) {
            Some(w) if w.failures >= self.max_failures && now < w.started + self.window => {
                Err(w.started + self.window - now)
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str, now: OffsetDateTime) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max_keys && !entries.contains_key(key) {
            let window = self.window;
            entries.retain(|_, w| now < w.started + window);
            if entries.len() >= self.max_keys {
                return;
            }
        }
        let w = entries.entry(key.to_owned()).or_insert(Window {
            started: now,
            failures: 0,
        });
        if now >= w.started + self.window {
            *w = Window {
                started: now,
                failures: 0,
            };
        }
        w.failures = w.failures.saturating_add(1);
    }

    pub fn clear(&self, key: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let limiter = FailureLimiter::new(3, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for i in 0..3 {
            assert_eq!(limiter.check("k", t0), Ok(()), "attempt {i}");
            limiter.record_failure("k", t0);
        }
        assert_eq!(
            limiter.check("k", t0 + Duration::minutes(1)),
            Err(Duration::minutes(14))
        );
        assert_eq!(limiter.check("other", t0), Ok(()));
        assert_eq!(limiter.check("k", t0 + Duration::minutes(15)), Ok(()));
        limiter.record_failure("k", t0 + Duration::minutes(15));
        assert_eq!(limiter.check("k", t0 + Duration::minutes(15)), Ok(()));
    }

    #[test]
    fn clear_forgets_failures() {
        let limiter = FailureLimiter::new(1, Duration::minutes(15));
        let t0 = OffsetDateTime::UNIX_EPOCH;
        limiter.record_failure("k", t0);
        assert!(limiter.check("k", t0).is_err());
        limiter.clear("k");
        assert!(limiter.check("k", t0).is_ok());
    }
}
