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

/// Bound on cached answers; beyond it the stale ones go, then all.
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
            if answers.len() >= MAX_ANSWERS {
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
