//! Where decisions are remembered between lookups: the [`Store`] trait and what it holds.
//!
//! MTA-STS is trust on first use ([RFC 8461 §5.1]): the protection a sender gets is the policy it
//! cached. Entries record the last valid policy with its expiry, when the TXT record was last
//! checked, remembered negative answers, and the last failure, so that the resolver can apply the
//! rules of [`crate::resolve`] across calls, threads and processes.
//!
//! [RFC 8461 §5.1]: https://www.rfc-editor.org/rfc/rfc8461#section-5.1

pub mod exchange;
mod layered;
mod memory;
mod sqlite;

use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::CacheConfig;
use crate::domain::Domain;
use crate::error::Error;
use crate::policy::Policy;

pub use layered::LayeredStore;
pub use memory::MemoryStore;
pub use sqlite::{SqliteOptions, SqliteStore};

/// Opens the store the configuration names: the SQLite file at `cache.path` behind an in-process
/// memory layer, or memory only when the path is empty. A file that cannot be opened is logged
/// and the cache falls back to memory, so lookups keep working, unprotected across restarts.
/// `verify` runs SQLite's `quick_check` on open (a full read of the file): worth it for the daemon
/// and `mta-sts refresh`, too slow for a process that opens the cache for each message.
///
/// The memory layer answers without reading the file for `cache.recheck_interval`, the time
/// during which the resolver would not look at anything newer anyway.
pub fn open(cache: &CacheConfig, verify: bool) -> Arc<dyn Store> {
    if cache.path.as_os_str().is_empty() {
        return Arc::new(MemoryStore::with_capacity(cache.memory_entries));
    }
    if let Some(dir) = cache.path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        // Group-writable so that every MTA user in the group can create the file.
        if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o770).create(dir) {
            tracing::warn!(path = %dir.display(), error = %e, "cannot create the cache directory");
        }
    }
    let options = SqliteOptions { mode: cache.file_mode, quick_check: verify, ..SqliteOptions::default() };
    match SqliteStore::open_with(&cache.path, &options) {
        Ok(sqlite) => Arc::new(LayeredStore::with_capacity(Arc::new(sqlite), cache.recheck_interval, cache.memory_entries)),
        Err(e) => {
            tracing::warn!(path = %cache.path.display(), error = %e, "cache file unusable, caching in memory only");
            Arc::new(MemoryStore::with_capacity(cache.memory_entries))
        }
    }
}

/// Storage for cache entries, keyed by policy domain. Implementations must be usable from many
/// threads at once.
pub trait Store: Send + Sync {
    /// The entry for `domain`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backing storage cannot be read; the resolver then carries on as if
    /// nothing were cached.
    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>, StoreError>;

    /// Replaces the entry for `domain`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backing storage cannot be written.
    fn put(&self, domain: &Domain, entry: Arc<Entry>) -> Result<(), StoreError>;

    /// Removes the entry for `domain`; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backing storage cannot be written.
    fn remove(&self, domain: &Domain) -> Result<bool, StoreError>;

    /// Every entry, in domain order.
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the backing storage cannot be read.
    fn list(&self) -> Result<Vec<(Domain, Arc<Entry>)>, StoreError>;

    /// Holds other processes sharing this store off `domain` until the guard is dropped, so that
    /// a burst of processes with the same cold domain makes one fetch (best effort). Waits at
    /// most `wait` for another holder, then returns `None` and the caller goes ahead unlocked.
    /// After it returns, [`Store::get`] reads what the previous holder stored. Stores not shared
    /// between processes need no lock: the default returns `None` at once.
    fn lock(&self, domain: &Domain, wait: Duration) -> Option<DomainLock> {
        let _ = (domain, wait);
        None
    }
}

/// A held cross-process lock on one domain (see [`Store::lock`]); dropping it releases it.
#[derive(Debug)]
pub struct DomainLock {
    _file: std::fs::File,
}

impl DomainLock {
    /// Takes the advisory lock on `file`, waiting at most `wait`.
    pub(crate) fn acquire(file: std::fs::File, wait: Duration) -> Option<Self> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(Self { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(_) => return None,
            }
        }
    }
}

/// What is remembered about one policy domain.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Entry {
    /// The last valid policy fetched, expired or not.
    pub policy: Option<Arc<CachedPolicy>>,
    /// When the `_mta-sts` record was last looked up (or the policy fetched), Unix seconds.
    pub checked_at: u64,
    /// A remembered "no policy" or "temporary failure", for domains with no valid policy.
    pub negative: Option<Negative>,
    /// The last failed fetch, which holds back fetches of the same record id for a while.
    pub failed_fetch: Option<FailedFetch>,
    /// The most recent failure of any kind, for operators.
    pub last_error: Option<Error>,
}

/// A valid policy as fetched, with the record id that announced it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedPolicy {
    /// The parsed policy.
    pub policy: Policy,
    /// The `id` of the `_mta-sts` record when the policy was fetched.
    pub record_id: String,
    /// When it was fetched, Unix seconds.
    pub fetched_at: u64,
    /// `fetched_at + max_age`: from then on it is never applied.
    pub expires_at: u64,
}

impl CachedPolicy {
    /// Whether the policy may still be applied at `now`.
    pub fn is_valid_at(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

/// A remembered answer for a domain with no valid policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Negative {
    /// Which answer.
    pub kind: NegativeKind,
    /// Until when it is given without asking DNS again, Unix seconds.
    pub until: u64,
    /// Why, if known.
    pub reason: Option<Error>,
}

/// The two remembered answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NegativeKind {
    /// The domain has no usable policy.
    NoPolicy,
    /// The lookup failed temporarily.
    Tempfail,
}

/// A failed fetch for one record id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedFetch {
    /// The record id whose policy could not be fetched.
    pub record_id: String,
    /// When, Unix seconds.
    pub at: u64,
    /// Why.
    pub error: Error,
}

/// The backing storage failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage is busy (locked by another process) past the configured wait.
    Busy,
    /// Anything else, with the backend's message.
    Backend {
        /// What the backend reported.
        reason: String,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Busy => f.write_str("store: busy"),
            Self::Backend { reason } => write!(f, "store: {reason}"),
        }
    }
}

impl std::error::Error for StoreError {}
