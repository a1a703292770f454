//! An in-process memory layer in front of a shared [`Store`], so that a lookup of a recently
//! seen domain costs a map read instead of a database query.
//!
//! The resolver answers from an entry without DNS only while it was checked less than
//! `cache.recheck_interval` ago ([RFC 8461 §5.1] caching, see [`crate::resolve`]). Other
//! processes refresh the same domains in the shared backend, so a memory copy is trusted only for
//! a short `memory_ttl` after it entered memory; after that the backend is read again, and a
//! process sees the others' fresher entries instead of checking DNS itself.
//!
//! [RFC 8461 §5.1]: https://www.rfc-editor.org/rfc/rfc8461#section-5.1

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{DomainLock, Entry, Store, StoreError};
use crate::domain::Domain;

/// A memory layer in front of `backend`.
pub struct LayeredStore {
    backend: Arc<dyn Store>,
    memory_ttl: Duration,
    memory: RwLock<HashMap<Domain, Slot>>,
    capacity: usize,
}

impl LayeredStore {
    /// How long a memory copy is used without reading the backend. Defaults to 1 s: a busy MTA then
    /// reads each domain's row at most once a second, a sub-millisecond cost, while an entry another
    /// process refreshed is seen within a second, far inside any recheck interval.
    pub const DEFAULT_MEMORY_TTL: Duration = Duration::from_secs(1);

    /// Puts a memory layer in front of `backend`, whose entries are used without reading the
    /// backend for `memory_ttl` (see [`LayeredStore::DEFAULT_MEMORY_TTL`]) after they entered memory.
    pub fn new(backend: Arc<dyn Store>, memory_ttl: Duration) -> Self {
        Self::with_capacity(backend, memory_ttl, crate::config::DEFAULT_MEMORY_ENTRIES)
    }

    /// As [`LayeredStore::new`], keeping at most `capacity` entries in memory (at least one).
    pub fn with_capacity(backend: Arc<dyn Store>, memory_ttl: Duration, capacity: usize) -> Self {
        Self { backend, memory_ttl, memory: RwLock::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The store behind the memory layer.
    pub fn backend(&self) -> &Arc<dyn Store> {
        &self.backend
    }

    fn remember(&self, domain: &Domain, entry: Arc<Entry>) {
        // A poisoned lock only means another thread panicked mid-insert of a whole slot: the map
        // is still consistent, so keep using it.
        let mut memory = self.memory.write().unwrap_or_else(|e| e.into_inner());
        if !memory.contains_key(domain) {
            // Any copy may go: the backend has it.
            super::memory::make_room(&mut memory, self.capacity, |slot| slot.entry.policy.is_none());
        }
        memory.insert(domain.clone(), Slot { entry, stored: Instant::now() });
    }

    fn forget(&self, domain: &Domain) -> bool {
        self.memory.write().unwrap_or_else(|e| e.into_inner()).remove(domain).is_some()
    }
}

impl Store for LayeredStore {
    fn lock(&self, domain: &Domain, wait: Duration) -> Option<DomainLock> {
        let lock = self.backend.lock(domain, wait);
        // The previous holder may have just stored this domain: read it through next time.
        self.forget(domain);
        lock
    }

    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>, StoreError> {
        let remembered = {
            let memory = self.memory.read().unwrap_or_else(|e| e.into_inner());
            match memory.get(domain) {
                Some(slot) if slot.stored.elapsed() < self.memory_ttl => return Ok(Some(slot.entry.clone())),
                Some(slot) => Some(slot.entry.clone()),
                None => None,
            }
        };
        match self.backend.get(domain) {
            Ok(Some(stored)) => {
                // Every resolver write sets `checked_at`, so a memory copy checked later than the
                // stored row is one whose backend write failed: keep the newer answer.
                let entry = match remembered {
                    Some(mine) if mine.checked_at > stored.checked_at => mine,
                    _ => stored,
                };
                self.remember(domain, entry.clone());
                Ok(Some(entry))
            }
            Ok(None) => {
                // Removed elsewhere (`mta-sts cache purge`): the backend is the authority.
                if remembered.is_some() {
                    self.forget(domain);
                }
                Ok(None)
            }
            Err(e) => match remembered {
                // The copy keeps its old insertion time, so the next lookup tries the backend again.
                Some(mine) => {
                    tracing::debug!(domain = %domain, error = %e, "cache backend unreadable, using the memory copy");
                    Ok(Some(mine))
                }
                None => Err(e),
            },
        }
    }

    fn put(&self, domain: &Domain, entry: Arc<Entry>) -> Result<(), StoreError> {
        // Memory first: when the backend is busy, this process still remembers the answer.
        self.remember(domain, entry.clone());
        self.backend.put(domain, entry)
    }

    fn remove(&self, domain: &Domain) -> Result<bool, StoreError> {
        let in_memory = self.forget(domain);
        Ok(self.backend.remove(domain)? || in_memory)
    }

    fn list(&self) -> Result<Vec<(Domain, Arc<Entry>)>, StoreError> {
        self.backend.list()
    }
}

impl fmt::Debug for LayeredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.memory.read().map_or(0, |m| m.len());
        f.debug_struct("LayeredStore").field("memory_ttl", &self.memory_ttl).field("memory_entries", &entries).finish()
    }
}

/// A memory copy and when it entered memory.
struct Slot {
    entry: Arc<Entry>,
    stored: Instant,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use super::*;
    use crate::store::MemoryStore;

    /// A memory backend that counts reads and fails on demand.
    #[derive(Default)]
    struct Backend {
        inner: MemoryStore,
        failing: AtomicBool,
        reads: AtomicUsize,
    }

    impl Backend {
        fn check(&self) -> Result<(), StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                Err(StoreError::Busy)
            } else {
                Ok(())
            }
        }
    }

    impl Store for Backend {
        fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>, StoreError> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.check()?;
            self.inner.get(domain)
        }
        fn put(&self, domain: &Domain, entry: Arc<Entry>) -> Result<(), StoreError> {
            self.check()?;
            self.inner.put(domain, entry)
        }
        fn remove(&self, domain: &Domain) -> Result<bool, StoreError> {
            self.check()?;
            self.inner.remove(domain)
        }
        fn list(&self) -> Result<Vec<(Domain, Arc<Entry>)>, StoreError> {
            self.check()?;
            self.inner.list()
        }
    }

    fn entry(checked_at: u64) -> Arc<Entry> {
        Arc::new(Entry { checked_at, ..Entry::default() })
    }

    fn setup(ttl: Duration) -> (Arc<Backend>, LayeredStore, Domain) {
        let backend = Arc::new(Backend::default());
        let layered = LayeredStore::new(backend.clone(), ttl);
        (backend, layered, Domain::parse("example.com").unwrap())
    }

    #[test]
    fn a_young_memory_copy_is_served_without_reading_the_backend() {
        let (backend, layered, d) = setup(Duration::from_secs(3600));
        layered.put(&d, entry(1)).unwrap();
        for _ in 0..10 {
            assert_eq!(layered.get(&d).unwrap(), Some(entry(1)));
        }
        assert_eq!(backend.reads.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_miss_fills_memory_from_the_backend() {
        let (backend, layered, d) = setup(Duration::from_secs(3600));
        backend.inner.put(&d, entry(5)).unwrap();
        assert_eq!(layered.get(&d).unwrap(), Some(entry(5)));
        assert_eq!(layered.get(&d).unwrap(), Some(entry(5)));
        assert_eq!(backend.reads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failing_backend_falls_back_to_the_memory_copy() {
        let (backend, layered, d) = setup(Duration::ZERO);
        layered.put(&d, entry(1)).unwrap();
        backend.failing.store(true, Ordering::SeqCst);
        assert_eq!(layered.get(&d).unwrap(), Some(entry(1)));
        // A write the backend refused is still remembered here, and reported.
        assert_eq!(layered.put(&d, entry(2)), Err(StoreError::Busy));
        assert_eq!(layered.get(&d).unwrap(), Some(entry(2)));
        // Nothing in memory: the error is the caller's to handle.
        assert_eq!(layered.get(&Domain::parse("other.example").unwrap()), Err(StoreError::Busy));
        // Once the backend answers again, the newer memory copy beats the older stored one.
        backend.failing.store(false, Ordering::SeqCst);
        assert_eq!(layered.get(&d).unwrap(), Some(entry(2)));
    }

    #[test]
    fn newer_backend_entries_and_removals_replace_stale_memory_copies() {
        let (backend, layered, d) = setup(Duration::ZERO);
        layered.put(&d, entry(1)).unwrap();
        backend.inner.put(&d, entry(9)).unwrap();
        assert_eq!(layered.get(&d).unwrap(), Some(entry(9)));
        backend.inner.remove(&d).unwrap();
        assert_eq!(layered.get(&d).unwrap(), None);
        assert_eq!(layered.remove(&d), Ok(false));
    }
}
