//! The API host's accessible-resources answer per bearer token, kept for a short TTL: an
//! app asks it often with the same token, and computing it takes a signature check and a
//! dozen reads.
//!
//! The cache lives as long as the gateway's (`gateway.cache_ttl`, at most 1 s) and is
//! cleared with it by every access change (a revocation, a membership, an installation, a
//! block), here at once and on other instances when announced. An answer is never used
//! after its token expires, and refusals are never cached.

use std::sync::Arc;

use super::Core;
use super::access::TokenRejection;
use super::ttl_cache::TtlCache;
use crate::crypto::sha256;
use crate::error::CoreResult;
use crate::model::TokenHash;

struct Answer {
    /// The token's `exp` (Unix seconds).
    expires_at: i64,
    json: Arc<str>,
}

/// Accessible-resources answers by token hash.
pub struct AnswerCache(TtlCache<TokenHash, Arc<Answer>>);

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnswerCache")
    }
}

impl AnswerCache {
    pub fn new(ttl: time::Duration) -> Self {
        Self(TtlCache::new(ttl))
    }

    /// The answer computed less than the TTL ago, if its token has not expired.
    fn get(&self, key: &TokenHash, now_unix: i64) -> Option<Arc<str>> {
        let answer = self.0.get(key)?;
        (now_unix < answer.expires_at).then(|| Arc::clone(&answer.json))
    }

    fn put(&self, key: TokenHash, expires_at: i64, json: Arc<str>) {
        self.0.put(key, Arc::new(Answer { expires_at, json }));
    }

    /// Forgets every answer: called when this instance changes access.
    pub fn clear(&self) {
        self.0.clear();
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
        if let Some(json) = self.caches.answers.get(&key, self.now().unix_timestamp()) {
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
        self.caches
            .answers
            .put(key, ctx.claims.exp, Arc::clone(&json));
        Ok(Ok(json))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer is not used after its token expires, even within the TTL.
    #[test]
    fn an_answer_ends_with_its_token() {
        let cache = AnswerCache::new(time::Duration::seconds(1));
        let key = sha256("token");
        cache.put(key, 100, Arc::from("[]"));
        assert!(cache.get(&key, 99).is_some());
        assert!(cache.get(&key, 100).is_none());
    }
}
