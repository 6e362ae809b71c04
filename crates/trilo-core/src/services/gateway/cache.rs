//! The gateway's caches: checked standings (credentials × product × site), what they
//! read of the site (account × app × product × site) and the assertions they were signed
//! (their claims) for a short TTL. The catalogs are cached in `catalogs`.

use std::sync::Arc;

use super::{Caller, GatewayCall, SiteFacts, Standing};
use crate::crypto::sha256;
use crate::model::TokenHash;
use crate::services::ttl_cache::TtlCache;

/// Everything a standing depends on: the credentials (hashed), the product and the site.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct StandingKey {
    credentials: TokenHash,
    product: String,
    cloud_id: String,
}

impl StandingKey {
    pub(super) fn new(caller: Caller<'_>, call: &GatewayCall<'_>) -> Self {
        let credentials = match caller {
            Caller::Bearer(token) => sha256(&format!("bearer {token}")),
            Caller::ApiToken { email, secret } => {
                sha256(&format!("basic {}\n{secret}", email.to_lowercase()))
            }
        };
        Self {
            credentials,
            product: call.product.to_owned(),
            cloud_id: call.cloud_id.to_owned(),
        }
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
