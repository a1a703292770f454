//! An in-process [`Store`]: a map behind a read-write lock, bounded in size.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Entry, Store, StoreError};
use crate::domain::Domain;

/// Entries held in this process only, lost when it exits. At most `capacity` of them: a flood of
/// lookups for random domains must not grow memory without bound.
#[derive(Debug)]
pub struct MemoryStore {
    entries: RwLock<HashMap<Domain, Arc<Entry>>>,
    capacity: usize,
}

impl MemoryStore {
    /// An empty store holding at most [`crate::config::CacheConfig::memory_entries`]'s default.
    pub fn new() -> Self {
        Self::with_capacity(crate::config::DEFAULT_MEMORY_ENTRIES)
    }

    /// An empty store holding at most `capacity` entries (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self { entries: RwLock::new(HashMap::new()), capacity: capacity.max(1) }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl Store for MemoryStore {
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>, StoreError> {
        // A poisoned lock only means another thread panicked mid-insert of a whole Arc: the map
        // is still consistent, so keep using it.
        let map = self.entries.read().unwrap_or_else(|e| e.into_inner());
        Ok(map.get(domain).cloned())
    }

    fn put(&self, domain: &Domain, entry: Arc<Entry>) -> Result<(), StoreError> {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(domain) {
            make_room(&mut map, self.capacity, |e| e.policy.is_none());
        }
        map.insert(domain.clone(), entry);
        Ok(())
    }

    fn remove(&self, domain: &Domain) -> Result<bool, StoreError> {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        Ok(map.remove(domain).is_some())
    }

    fn list(&self) -> Result<Vec<(Domain, Arc<Entry>)>, StoreError> {
        let map = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = map.iter().map(|(d, e)| (d.clone(), e.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}

/// Evicts one entry from a full map before an insert: a disposable one (`disposable`, such as a
/// remembered "no policy") among the first few looked at, else any. Constant time, no ordering
/// kept: under a flood the map churns through flood entries, and real policies mostly stay.
pub(super) fn make_room<V>(map: &mut HashMap<Domain, V>, capacity: usize, disposable: impl Fn(&V) -> bool) {
    const LOOK_AT: usize = 32;
    if map.len() < capacity {
        return;
    }
    let victim = map
        .iter()
        .take(LOOK_AT)
        .find(|(_, v)| disposable(v))
        .or_else(|| map.iter().next())
        .map(|(d, _)| d.clone());
    if let Some(victim) = victim {
        map.remove(&victim);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CachedPolicy;
    use crate::Policy;

    #[test]
    fn never_holds_more_than_its_capacity_and_evicts_negative_entries_first() {
        let store = MemoryStore::with_capacity(10);
        let policy = Policy::parse(b"version: STSv1\nmode: none\nmax_age: 1\n").unwrap();
        let mut with_policy = Entry::default();
        with_policy.policy = Some(Arc::new(CachedPolicy { policy, record_id: "1".into(), fetched_at: 0, expires_at: 1 }));
        let with_policy = Arc::new(with_policy);
        for n in 0..5 {
            store.put(&Domain::parse(&format!("p{n}.example")).unwrap(), with_policy.clone()).unwrap();
        }
        for n in 0..1000 {
            store.put(&Domain::parse(&format!("flood{n}.example")).unwrap(), Arc::new(Entry::default())).unwrap();
        }
        let all = store.list().unwrap();
        assert_eq!(all.len(), 10);
        assert_eq!(all.iter().filter(|(_, e)| e.policy.is_some()).count(), 5, "policies survive the flood");
    }
}
