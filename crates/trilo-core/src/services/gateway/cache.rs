//! The gateway's caches: checked standings (credentials × product × site), what they
//! read of the site (account × app × product × site) and the assertions they were signed
//! (their claims) for a short TTL. The catalogs are cached in `catalogs`.

use std::sync::Arc;

use super::{Caller, GatewayCall, SiteFacts, Standing};
use sha2::{Digest, Sha256};

use crate::services::ttl_cache::TtlCache;

/// Everything a standing depends on: the credentials, the product and the site, as one
/// SHA-256 digest. The key holds no credential, and a warm call builds it without
/// allocating; each part is length-prefixed, so no two different triples share a digest's
/// input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct StandingKey([u8; 32]);

impl StandingKey {
    pub(super) fn new(caller: Caller<'_>, call: &GatewayCall<'_>) -> Self {
        let mut digest = Sha256::new();
        let mut part = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_be_bytes());
            digest.update(bytes);
        };
        match caller {
            Caller::Bearer(token) => {
                part(b"bearer");
                part(token.as_bytes());
            }
            Caller::ApiToken { email, secret } => {
                part(b"basic");
                part(email.to_lowercase().as_bytes());
                part(secret.as_bytes());
            }
        }
        part(call.product.as_bytes());
        part(call.cloud_id.as_bytes());
        Self(digest.finalize().into())
    }
}

/// Good standings checked less than the TTL ago (`gateway.cache_ttl`, at most 1 s). A
/// change made through this instance clears the cache at once; one made on another
/// instance clears it when announced (PostgreSQL `NOTIFY`) and is seen within the TTL in
/// any case. Refusals are never cached.
pub struct GatewayCache(TtlCache<StandingKey, Arc<Standing>>);

impl std::fmt::Debug for GatewayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewayCache")
    }
}

impl GatewayCache {
    pub fn new(ttl: time::Duration) -> Self {
        Self(TtlCache::new(ttl))
    }

    /// The standing checked less than the TTL ago, while it is still valid.
    pub(super) fn get(&self, key: &StandingKey, now_unix: i64) -> Option<Arc<Standing>> {
        self.0
            .get(key)
            .filter(|standing| now_unix < standing.valid_until)
    }

    pub(super) fn put(&self, key: StandingKey, standing: Arc<Standing>) {
        self.0.put(key, standing);
    }

    /// Forgets every standing: called when this instance revokes or changes access.
    pub fn clear(&self) {
        self.0.clear();
    }
}

/// Whose facts on which site and product a [`SiteFacts`] holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SiteFactsKey {
    account_id: String,
    /// `None` for an API token (the user acting without an app).
    app_id: Option<String>,
    product: String,
    cloud_id: String,
}

impl SiteFactsKey {
    pub(super) fn new(account_id: &str, app_id: Option<&str>, call: &GatewayCall<'_>) -> Self {
        Self {
            account_id: account_id.to_owned(),
            app_id: app_id.map(str::to_owned),
            product: call.product.to_owned(),
            cloud_id: call.cloud_id.to_owned(),
        }
    }
}

/// What standings read about an account and app on one site and product, kept for the
/// gateway cache's TTL and cleared by the same access changes: every new token of that
/// account and app (a gateway cache miss) then reads only its own family. A standing
/// checked from these facts is never older than one the [`GatewayCache`] would hand out.
pub(crate) type SiteFactsCache = TtlCache<SiteFactsKey, Arc<SiteFacts>>;

/// Everything an assertion says besides its times and id: whom it vouches for, to which
/// product on which site, with which scopes (the issuer is the instance's own).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AssertionKey {
    pub(super) account_id: String,
    pub(super) client_id: Option<String>,
    pub(super) product: String,
    pub(super) cloud_id: String,
    pub(super) scope: String,
}

/// A signed assertion with the unix second it was issued at.
#[derive(Debug)]
pub(crate) struct SignedAssertion {
    pub(super) jws: String,
    pub(super) issued_at: i64,
}

/// Assertions signed less than the gateway cache's TTL ago, by what they say. Each new
/// access token misses the [`GatewayCache`]; when another token of the same account,
/// app, site and scopes was checked a moment ago, its standing reuses that assertion
/// instead of signing the same claims again, as one token's cached standing already
/// reuses its own for every call (the upstream sees exactly what it would see then).
pub(crate) type AssertionCache = TtlCache<AssertionKey, Arc<SignedAssertion>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn call<'a>(product: &'a str, cloud_id: &'a str) -> GatewayCall<'a> {
        GatewayCall {
            product,
            cloud_id,
            method: "GET",
            path: "/rest/api/3/myself",
        }
    }

    #[test]
    fn a_standing_key_tells_credentials_products_and_sites_apart() {
        let key = |caller, product, cloud_id| StandingKey::new(caller, &call(product, cloud_id));
        let token = Caller::Bearer("token-a");
        assert_eq!(key(token, "jira", "site-1"), key(token, "jira", "site-1"));
        let others = [
            key(Caller::Bearer("token-b"), "jira", "site-1"),
            key(token, "confluence", "site-1"),
            key(token, "jira", "site-2"),
            // The same bytes split otherwise between product and site.
            key(token, "jirasite", "-1"),
            key(
                Caller::ApiToken {
                    email: "token-a",
                    secret: "",
                },
                "jira",
                "site-1",
            ),
        ];
        let mut all = vec![key(token, "jira", "site-1")];
        all.extend(others);
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // An email is compared without case, as logging in does.
        let basic = |email| Caller::ApiToken {
            email,
            secret: "s3cret",
        };
        assert_eq!(
            key(basic("Ada@Example.com"), "jira", "site-1"),
            key(basic("ada@example.com"), "jira", "site-1")
        );
    }
}
