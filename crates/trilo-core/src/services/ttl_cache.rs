//! A map whose entries are used only for a short time after they were put: the shape of
//! the caches in front of the store (gateway standings, authenticated clients,
//! accessible-resources answers). Each is cleared when access changes; the TTL bounds how
//! long a change made elsewhere goes unseen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// Entries beyond which the stale ones are swept out: a stream of new keys (new tokens)
/// would otherwise keep every entry until [`MAX_ENTRIES`], long after its TTL.
const SWEEP_AT: usize = 4_096;
/// Bound on entries; beyond it, after a sweep, all go.
const MAX_ENTRIES: usize = 100_000;

pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<Entries<K, V>>,
}

struct Entries<K, V> {
    map: HashMap<K, (Instant, V)>,
    /// The size at which the next sweep runs: twice what the last one kept (at least
    /// [`SWEEP_AT`], at most [`MAX_ENTRIES`]), so new keys arriving faster than the TTL
    /// lets them go (thousands of new tokens a second) do not cost a sweep per put.
    sweep_at: usize,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_at: SWEEP_AT,
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A TTL of zero (or less) turns the cache off.
    pub(crate) fn new(ttl: time::Duration) -> Self {
        Self {
            ttl: Duration::try_from(ttl).unwrap_or(Duration::ZERO),
            entries: RwLock::default(),
        }
    }

    /// The value put less than the TTL ago.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().ok()?;
        let (put_at, value) = entries.map.get(key)?;
        (put_at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub(crate) fn put(&self, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        if let Ok(mut entries) = self.entries.write() {
            if entries.map.len() >= entries.sweep_at {
                entries
                    .map
                    .retain(|_, (put_at, _)| now.duration_since(*put_at) < self.ttl);
                if entries.map.len() >= MAX_ENTRIES {
                    entries.map.clear();
                }
                entries.sweep_at = (2 * entries.map.len()).clamp(SWEEP_AT, MAX_ENTRIES);
            }
            entries.map.insert(key, (now, value));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            *entries = Entries::default();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.map.len())
    }

    #[cfg(test)]
    fn sweep_at(&self) -> usize {
        self.entries.read().map_or(0, |entries| entries.sweep_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Entries past their TTL are swept out once the cache passes the sweep size, so a
    /// stream of new keys keeps only the fresh ones in memory.
    #[test]
    fn stale_entries_are_swept_past_the_sweep_size() {
        let cache = TtlCache::new(time::Duration::milliseconds(20));
        for i in 0..SWEEP_AT {
            cache.put(i, ());
        }
        std::thread::sleep(Duration::from_millis(30));
        cache.put(SWEEP_AT, ());
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&SWEEP_AT).is_some());
        assert!(cache.get(&0).is_none());
    }

    /// A sweep that keeps its fresh entries puts off the next one until the cache has
    /// doubled: new keys arriving faster than the TTL lets go cost no sweep per put.
    #[test]
    fn a_sweep_keeping_fresh_entries_waits_for_the_cache_to_double() {
        let cache = TtlCache::new(time::Duration::minutes(1));
        for i in 0..=SWEEP_AT {
            cache.put(i, ());
        }
        assert_eq!(cache.len(), SWEEP_AT + 1);
        assert_eq!(cache.sweep_at(), 2 * SWEEP_AT);
        for i in SWEEP_AT + 1..2 * SWEEP_AT {
            cache.put(i, ());
        }
        assert_eq!(cache.sweep_at(), 2 * SWEEP_AT, "no sweep before doubling");
        cache.put(2 * SWEEP_AT, ());
        assert_eq!(cache.sweep_at(), 4 * SWEEP_AT);
        assert_eq!(cache.len(), 2 * SWEEP_AT + 1);
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = TtlCache::new(time::Duration::ZERO);
        cache.put("key", 1);
        assert_eq!(cache.get("key"), None);
    }

    #[test]
    fn clear_forgets_everything() {
        let cache = TtlCache::new(time::Duration::seconds(1));
        cache.put("key", 1);
        assert_eq!(cache.get("key"), Some(1));
        cache.clear();
        assert_eq!(cache.get("key"), None);
    }
}
