//! The API host's accessible-resources answer per bearer token, kept for a short TTL: an
//! app asks it often with the same token, and computing it takes a signature check and a
//! dozen reads.
//!
//! The cache lives as long as the gateway's (`gateway.cache_ttl`, at most 1 s) and is
//! cleared with it by every access change (a revocation, a membership, an installation, a
//! block), here at once and on other instances when announced. An answer is never used
//! after its token expires, and refusals are never cached.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::Core;
use super::access::TokenRejection;
use crate::crypto::sha256;
use crate::error::CoreResult;
use crate::model::TokenHash;

/// Cached answers beyond which the stale ones are swept out, so a stream of new tokens
/// does not keep answers long after their TTL.
const SWEEP_ANSWERS_AT: usize = 4_096;
/// Bound on cached answers; beyond it, after a sweep, all go.
const MAX_ANSWERS: usize = 100_000;

struct Answer {
    computed: Instant,
    /// The token's `exp` (Unix seconds).
    expires_at: i64,
    json: Arc<str>,
}

/// Accessible-resources answers by token hash.
pub struct AnswerCache {
    ttl: Duration,
    answers: RwLock<HashMap<TokenHash, Answer>>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerCache")
    }
}

impl AnswerCache {
    pub fn new(ttl: time::Duration) -> Self {
        Self {
            ttl: Duration::try_from(ttl).unwrap_or(Duration::ZERO),
            answers: RwLock::default(),
        }
    }

    fn get(&self, key: &TokenHash, now_unix: i64) -> Option<Arc<str>> {
        let answers = self.answers.read().ok()?;
        let answer = answers.get(key)?;
        (answer.computed.elapsed() < self.ttl && now_unix < answer.expires_at)
            .then(|| Arc::clone(&answer.json))
    }

    fn put(&self, key: TokenHash, expires_at: i64, json: Arc<str>) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut answers) = self.answers.write() {
            if answers.len() >= SWEEP_ANSWERS_AT {
                answers.retain(|_, a| a.computed.elapsed() < self.ttl);
                if answers.len() >= MAX_ANSWERS {
                    answers.clear();
                }
            }
            let answer = Answer {
                computed: Instant::now(),
                expires_at,
                json,
            };
            answers.insert(key, answer);
        }
    }

    /// Forgets every answer: called when this instance changes access.
    pub fn clear(&self) {
        if let Ok(mut answers) = self.answers.write() {
            answers.clear();
        }
    }
}

impl Core {
    /// `GET /oauth/token/accessible-resources` for a bearer token, as JSON: from the
    /// cache when computed less than the TTL ago, else checked and computed afresh.
    pub async fn accessible_resources_json(
        &self,
        token: &str,
    ) -> CoreResult<Result<Arc<str>, TokenRejection>> {
        let key = sha256(token);
        if let Some(json) = self.answers.get(&key, self.now().unix_timestamp()) {
            return Ok(Ok(json));
        }
        let ctx = match self.check_access_token(token).await? {
            Ok(ctx) => ctx,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let resources = self.accessible_resources(&ctx).await?;
        let json: Arc<str> = serde_json::to_string(&resources)
            .map_err(anyhow::Error::from)?
            .into();
        self.answers.put(key, ctx.claims.exp, Arc::clone(&json));
        Ok(Ok(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: usize) -> TokenHash {
        sha256(&i.to_string())
    }

    /// Answers past their TTL are swept out once the cache passes the sweep size, so a
    /// stream of new tokens keeps only the fresh ones in memory.
    #[test]
    fn stale_answers_are_swept_past_the_sweep_size() {
        let cache = AnswerCache::new(time::Duration::milliseconds(20));
        let json: Arc<str> = Arc::from("[]");
        for i in 0..SWEEP_ANSWERS_AT {
            cache.put(key(i), i64::MAX, Arc::clone(&json));
        }
        std::thread::sleep(Duration::from_millis(30));
        cache.put(key(SWEEP_ANSWERS_AT), i64::MAX, Arc::clone(&json));
        let answers = cache.answers.read().unwrap_or_else(|e| e.into_inner());
        assert_eq!(answers.len(), 1);
        drop(answers);
        assert!(cache.get(&key(SWEEP_ANSWERS_AT), 0).is_some());
        assert!(cache.get(&key(0), 0).is_none());
    }

    /// An answer is not used after its token expires, even within the TTL.
    #[test]
    fn an_answer_ends_with_its_token() {
        let cache = AnswerCache::new(time::Duration::seconds(1));
        cache.put(key(1), 100, Arc::from("[]"));
        assert!(cache.get(&key(1), 99).is_some());
        assert!(cache.get(&key(1), 100).is_none());
    }
}
