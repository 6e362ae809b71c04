//! The catalogs read on every gateway call and consent page: each product's compiled
//! operations and every product's scopes. Both change only when a product is imported,
//! so they are read from the store once per [`CATALOG_TTL`]; an import on any instance
//! takes effect everywhere within that time and one reload.
//!
//! When a catalog goes stale under load, the first caller to notice reloads it and the
//! others keep using the stale one meanwhile. Before, every request that arrived until the
//! first reload finished read and compiled the whole catalog itself (in the benchmark's
//! gateway runs, up to its 32 clients' worth of the Jira product's operations at once,
//! every ten seconds).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use trilo_protocol::ScopeSet;
use trilo_protocol::alias::PathAlias;
use trilo_protocol::operations::Operation;
use trilo_protocol::route::Router;

/// How long a catalog is used before it is read again.
const CATALOG_TTL: Duration = Duration::from_secs(10);
/// How long the others wait for one caller's reload before another caller tries (the
/// first may have failed, or its request may have gone away).
const RELOAD_CLAIM: Duration = Duration::from_secs(2);

/// A product's operations compiled for matching, with the path aliases rewritten before.
#[derive(Debug, Default)]
pub(super) struct ProductCatalog {
    pub(super) router: Router<Operation>,
    pub(super) aliases: Vec<PathAlias>,
}

pub(super) type CompiledCatalog = Arc<ProductCatalog>;

/// Each product's key with its scope catalog, as the reachability checks compare granted
/// scopes against them.
pub type ProductScopeSets = Arc<Vec<(String, ScopeSet)>>;

/// One catalog as loaded, and since when a caller has been reloading it.
#[derive(Debug)]
struct Loaded<T> {
    at: Instant,
    value: T,
    reload_claimed_at: Option<Instant>,
}

impl<T: Clone> Loaded<T> {
    fn new(value: T, at: Instant) -> Self {
        Loaded {
            at,
            value,
            reload_claimed_at: None,
        }
    }

    fn fresh(&self, now: Instant) -> Option<T> {
        (now.saturating_duration_since(self.at) < CATALOG_TTL).then(|| self.value.clone())
    }

    /// What a caller that found this catalog not fresh uses: the catalog itself while
    /// another caller's reload is under way (for at most one more TTL: a catalog is never
    /// used at twice its age); otherwise nothing, and the reload is now this caller's.
    fn stale_or_claim(&mut self, now: Instant) -> Option<T> {
        if let Some(fresh) = self.fresh(now) {
            return Some(fresh);
        }
        let reloading = self
            .reload_claimed_at
            .is_some_and(|since| now.saturating_duration_since(since) < RELOAD_CLAIM);
        let usable = now.saturating_duration_since(self.at) < 2 * CATALOG_TTL;
        if reloading && usable {
            return Some(self.value.clone());
        }
        self.reload_claimed_at = Some(now);
        None
    }
}

/// Compiled catalogs per product. `get` answers `None` when the caller is to load the
/// product's catalog and `put` it.
#[derive(Default)]
pub struct CatalogCache {
    entries: RwLock<HashMap<String, Loaded<CompiledCatalog>>>,
}

/// Names the cache only: a debug print of every compiled operation helps nobody.
impl std::fmt::Debug for CatalogCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogCache")
    }
}

impl CatalogCache {
    pub(super) fn get(&self, product: &str) -> Option<CompiledCatalog> {
        self.get_at(product, Instant::now())
    }

    pub(super) fn put(&self, product: &str, catalog: CompiledCatalog) {
        self.put_at(product, catalog, Instant::now());
    }

    fn get_at(&self, product: &str, now: Instant) -> Option<CompiledCatalog> {
        if let Some(fresh) = self
            .entries
            .read()
            .ok()?
            .get(product)
            .and_then(|loaded| loaded.fresh(now))
        {
            return Some(fresh);
        }
        self.entries
            .write()
            .ok()?
            .get_mut(product)?
            .stale_or_claim(now)
    }

    fn put_at(&self, product: &str, catalog: CompiledCatalog, now: Instant) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(product.to_owned(), Loaded::new(catalog, now));
        }
    }
}

/// The scope catalogs of every product, cached like the operation catalogs: a gateway
/// cache miss and accessible-resources would otherwise read every scope of every product.
/// `get` answers `None` when the caller is to load them and `put` them.
#[derive(Default)]
pub struct ProductScopesCache {
    loaded: RwLock<Option<Loaded<ProductScopeSets>>>,
}

impl std::fmt::Debug for ProductScopesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProductScopesCache")
    }
}

impl ProductScopesCache {
    pub(crate) fn get(&self) -> Option<ProductScopeSets> {
        self.get_at(Instant::now())
    }

    pub(crate) fn put(&self, scopes: ProductScopeSets) {
        self.put_at(scopes, Instant::now());
    }

    /// Forgets the catalogs: called when this instance changes a product, whose change
    /// is then read by the next caller (no stale catalog is used after it).
    pub fn clear(&self) {
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = None;
        }
    }

    fn get_at(&self, now: Instant) -> Option<ProductScopeSets> {
        if let Some(fresh) = self
            .loaded
            .read()
            .ok()?
            .as_ref()
            .and_then(|loaded| loaded.fresh(now))
        {
            return Some(fresh);
        }
        self.loaded.write().ok()?.as_mut()?.stale_or_claim(now)
    }

    fn put_at(&self, scopes: ProductScopeSets, now: Instant) {
        if let Ok(mut loaded) = self.loaded.write() {
            *loaded = Some(Loaded::new(scopes, now));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn catalog() -> CompiledCatalog {
        Arc::new(ProductCatalog::default())
    }

    #[test]
    fn a_stale_catalog_is_reloaded_by_one_caller_while_the_others_use_it() {
        let cache = CatalogCache::default();
        let start = Instant::now();
        assert!(cache.get_at("jira", start).is_none(), "nothing loaded yet");
        let first = catalog();
        cache.put_at("jira", Arc::clone(&first), start);
        let fresh = cache.get_at("jira", start + 9 * SECOND).expect("fresh");
        assert!(Arc::ptr_eq(&fresh, &first));

        let expired = start + CATALOG_TTL;
        assert!(
            cache.get_at("jira", expired).is_none(),
            "the first caller after the expiry reloads"
        );
        for caller in 0..31 {
            let stale = cache
                .get_at("jira", expired + caller * Duration::from_millis(10))
                .expect("the others use the stale catalog meanwhile");
            assert!(Arc::ptr_eq(&stale, &first));
        }
        assert!(cache.get_at("confluence", expired).is_none(), "per product");

        let second = catalog();
        cache.put_at("jira", Arc::clone(&second), expired + SECOND);
        let reloaded = cache.get_at("jira", expired + SECOND).expect("fresh again");
        assert!(Arc::ptr_eq(&reloaded, &second));
    }

    #[test]
    fn a_reload_that_does_not_come_back_is_claimed_again() {
        let cache = CatalogCache::default();
        let start = Instant::now();
        cache.put_at("jira", catalog(), start);
        let expired = start + CATALOG_TTL;
        assert!(cache.get_at("jira", expired).is_none());
        assert!(cache.get_at("jira", expired + SECOND).is_some());
        assert!(
            cache.get_at("jira", expired + RELOAD_CLAIM).is_none(),
            "after the claim runs out, the next caller reloads"
        );
        assert!(cache.get_at("jira", expired + RELOAD_CLAIM).is_some());
    }

    #[test]
    fn a_catalog_is_never_used_at_twice_its_lifetime() {
        let cache = CatalogCache::default();
        let start = Instant::now();
        cache.put_at("jira", catalog(), start);
        // A claim made just before the catalog reached twice its TTL is still running.
        let late = start + 2 * CATALOG_TTL - SECOND;
        assert!(cache.get_at("jira", late).is_none());
        assert!(
            cache
                .get_at("jira", late + Duration::from_millis(500))
                .is_some()
        );
        assert!(
            cache.get_at("jira", start + 2 * CATALOG_TTL).is_none(),
            "too old to serve while another caller reloads"
        );
    }

    #[test]
    fn product_scopes_reload_once_and_clear_at_once() {
        let cache = ProductScopesCache::default();
        let start = Instant::now();
        let scopes: ProductScopeSets = Arc::new(Vec::new());
        cache.put_at(Arc::clone(&scopes), start);
        let expired = start + CATALOG_TTL;
        assert!(cache.get_at(expired).is_none());
        assert!(cache.get_at(expired).is_some());
        cache.clear();
        assert!(cache.get_at(expired).is_none(), "cleared: no stale catalog");
        assert!(
            cache.get_at(expired).is_none(),
            "nor for the callers after it"
        );
    }
}
