//! An in-process [`Store`]: a map behind a read-write lock.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{Entry, Store, StoreError};
use crate::domain::Domain;

/// Entries held in this process only, lost when it exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: RwLock<HashMap<Domain, Arc<Entry>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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
