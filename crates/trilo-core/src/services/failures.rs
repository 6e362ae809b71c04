//! Failed logins counted in the store, so that every instance sees the same count: without
//! it, N instances behind a load balancer would allow N times the attempts. Windows are
//! fixed (aligned to multiples of their length since the epoch), so every instance computes
//! the same window for the same moment.

use time::{Duration, OffsetDateTime};

use super::Core;
use crate::crypto::sha256;
use crate::error::CoreResult;

/// At most `max` failures per key in each `window`.
#[derive(Clone, Copy, Debug)]
pub struct FailureLimit {
    pub max: u32,
    pub window: Duration,
}

impl FailureLimit {
    /// The window `now` falls in: its start and its end.
    fn window_at(self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let length = self.window.whole_milliseconds().max(1);
        let since_epoch = (now - OffsetDateTime::UNIX_EPOCH).whole_milliseconds();
        let start = OffsetDateTime::UNIX_EPOCH
            + Duration::milliseconds((since_epoch - since_epoch.rem_euclid(length)) as i64);
        (start, start + self.window)
    }
}

impl Core {
    /// `Ok(Err(retry_after))` when `key` has used up its failures in the current window.
    pub async fn check_shared_failures(
        &self,
        key: &str,
        limit: FailureLimit,
    ) -> CoreResult<Result<(), Duration>> {
        let now = self.now();
        let (start, end) = limit.window_at(now);
        let failures = self.store.failures(&counter_key(key), start).await?;
        Ok(if failures >= limit.max {
            Err(end - now)
        } else {
            Ok(())
        })
    }

    pub async fn record_shared_failure(&self, key: &str, limit: FailureLimit) -> CoreResult<()> {
        let (start, end) = limit.window_at(self.now());
        self.store
            .add_failure(&counter_key(key), start, end)
            .await?;
        Ok(())
    }

    pub async fn clear_shared_failures(&self, key: &str) -> CoreResult<()> {
        self.store.clear_failures(&counter_key(key)).await?;
        Ok(())
    }
}

/// The stored key: a hash, so the table holds no email or address.
fn counter_key(key: &str) -> crate::model::TokenHash {
    sha256(&format!("failure-counter|{key}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_moment_of_a_window_maps_to_the_same_aligned_window() {
        let limit = FailureLimit {
            max: 5,
            window: Duration::minutes(15),
        };
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(30);
        for offset in [0, 1, 60_000, 15 * 60_000 - 1] {
            let at = start + Duration::milliseconds(offset);
            assert_eq!(
                limit.window_at(at),
                (start, start + Duration::minutes(15)),
                "{offset}"
            );
        }
        let next = start + Duration::minutes(15);
        assert_eq!(limit.window_at(next).0, next);
    }
}
