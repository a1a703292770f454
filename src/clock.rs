//! Wall-clock time, injected so that expiry and re-check intervals can be tested without sleeping.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in whole Unix seconds, the unit of every time in the cache.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A clock set before 1970 reads as 1970: every entry then looks fresh until it is fixed,
        // which is safer than failing every lookup.
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}
