//! The decision: which policy applies to a domain now ([RFC 8461 §5.1], [§10.2]).
//!
//! [`Resolver::lookup`] reads top to bottom:
//! 1. a cached entry checked less than `cache.recheck_interval` ago answers with no network
//!    traffic: its unexpired policy, or its remembered negative answer;
//! 2. otherwise one thread per domain (the others wait for its answer) looks up the TXT record;
//! 3. an unexpired cached policy with the same record id is kept without a fetch;
//! 4. a new id, no cached policy or an expired one means a fetch, unless a fetch for that id
//!    failed less than `cache.fetch_retry_interval` ago;
//! 5. whatever fails (DNS, TXT record, fetch, policy syntax), an unexpired cached policy keeps
//!    applying; an expired one never applies.
//!
//! [RFC 8461 §5.1]: https://www.rfc-editor.org/rfc/rfc8461#section-5.1
//! [§10.2]: https://www.rfc-editor.org/rfc/rfc8461#section-10.2

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, OnDnsFailure};
use crate::dns::{Dns, HickoryDns};
use crate::domain::Domain;
use crate::error::{Error, RecordError};
use crate::fetch::{Fetcher, HttpsFetcher};
use crate::policy::{Mode, Policy};
use crate::record;
use crate::store::{CachedPolicy, Entry, FailedFetch, Negative, NegativeKind, Store, StoreError};

/// Answers "which MTA-STS policy applies to this domain now?". Cheap to share between threads.
pub struct Resolver {
    config: Config,
    dns: Arc<dyn Dns>,
    fetcher: Arc<dyn Fetcher>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    flights: Mutex<HashMap<Domain, Arc<Mutex<()>>>>,
}

/// What a lookup decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The policy domain.
    pub domain: Domain,
    /// The outcome.
    pub outcome: Outcome,
}

/// The three outcomes of a lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A valid, unexpired policy applies (its mode may be `none`).
    Policy {
        /// The policy with its record id and times.
        policy: Arc<CachedPolicy>,
        /// Fetched now, or taken from the cache.
        source: Source,
        /// A failure that the cached policy outlived (DNS, TXT record or fetch), for the log.
        warning: Option<Error>,
    },
    /// No policy applies: deliver as if the domain had no MTA-STS.
    NoPolicy {
        /// Why, when there is more to say than "no record".
        reason: Option<Error>,
        /// Decided now, or remembered.
        source: Source,
    },
    /// The lookup failed temporarily and nothing usable is cached: defer the message.
    Tempfail {
        /// What failed.
        error: Error,
        /// Decided now, or remembered.
        source: Source,
    },
}

/// What [`Resolver::refresh_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refreshed {
    /// Domains whose policy was fetched again.
    pub renewed: Vec<Domain>,
    /// Domains whose renewal failed; their cached policy still applies until it expires.
    pub failed: Vec<Domain>,
    /// Entries removed because nothing in them applies any more.
    pub forgotten: Vec<Domain>,
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Looked up on the network for this request.
    Fetched,
    /// Answered from the cache.
    Cache,
}

impl Source {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fetched => "fetched",
            Self::Cache => "cache",
        }
    }
}

impl Decision {
    /// The policy that applies, if any; `mode: none` included.
    pub fn policy(&self) -> Option<&Policy> {
        match &self.outcome {
            Outcome::Policy { policy, .. } => Some(&policy.policy),
            _ => None,
        }
    }

    /// The policy to enforce or report on: an applied policy whose mode is not `none`.
    pub fn active_policy(&self) -> Option<&Policy> {
        self.policy().filter(|p| p.mode != Mode::None)
    }

    /// Whether `host` is an MX host the policy allows; `None` when no policy applies (mode `none`
    /// included: such a policy allows nothing and forbids nothing).
    pub fn mx_allowed(&self, host: &Domain) -> Option<bool> {
        self.active_policy().map(|p| crate::mx::allowed(&p.mx, host))
    }
}

impl Resolver {
    /// Starts building a resolver with the default DNS, fetcher, store and clock for `config`.
    pub fn builder(config: Config) -> ResolverBuilder {
        ResolverBuilder { config, dns: None, fetcher: None, store: None, clock: None }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store, for the cache commands.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Decides which policy applies to `domain` now. Never fails: failures are outcomes.
    pub fn lookup(&self, domain: &Domain) -> Decision {
        if let Some(decision) = self.cached_answer(domain, self.load(domain).as_deref()) {
            return decision;
        }
        self.in_flight(domain, |entry| match self.cached_answer(domain, entry) {
            // Another thread finished this very lookup while we waited for our turn.
            Some(decision) => (decision, None),
            None => {
                let (decision, entry) = self.refresh(domain, entry.cloned().unwrap_or_default(), false);
                (decision, Some(entry))
            }
        })
    }

    /// Checks the TXT record and fetches the policy now, even when the cached policy is fresh and
    /// its id unchanged, so that it is renewed before it expires ([RFC 8461 §10.2]). A failure
    /// keeps the cached policy, as in [`Resolver::lookup`].
    ///
    /// [RFC 8461 §10.2]: https://www.rfc-editor.org/rfc/rfc8461#section-10.2
    pub fn renew(&self, domain: &Domain) -> Decision {
        self.in_flight(domain, |entry| {
            let (decision, entry) = self.refresh(domain, entry.cloned().unwrap_or_default(), true);
            (decision, Some(entry))
        })
    }

    /// Renews every cached policy that is past a random point between half and three quarters
    /// of its max_age, and forgets entries that hold neither a valid policy nor a live negative
    /// answer. Meant to run periodically (a timer, or the daemon); random renewal times keep an
    /// observer from predicting when a policy host will be asked ([RFC 8461 §10.2]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] when the store cannot be listed.
    ///
    /// [RFC 8461 §10.2]: https://www.rfc-editor.org/rfc/rfc8461#section-10.2
    pub fn refresh_due(&self) -> Result<Refreshed, StoreError> {
        let now = self.clock.now();
        // A fresh RandomState is randomly keyed: unpredictable, and different on every run.
        let random = RandomState::new();
        let mut done = Refreshed::default();
        for (domain, entry) in self.store.list()? {
            match entry.policy.as_ref().filter(|p| p.is_valid_at(now)) {
                Some(p) => {
                    let max_age = p.policy.max_age;
                    let jitter = random.hash_one((&domain, p.fetched_at)) % (max_age / 4).max(1);
                    if now >= p.fetched_at.saturating_add(max_age / 2 + jitter) {
                        match self.renew(&domain).outcome {
                            Outcome::Policy { source: Source::Fetched, .. } => done.renewed.push(domain),
                            _ => done.failed.push(domain),
                        }
                    }
                }
                None if entry.negative.as_ref().is_none_or(|n| n.until <= now) && self.store.remove(&domain)? => {
                    done.forgotten.push(domain);
                }
                None => {}
            }
        }
        Ok(done)
    }

    /// Runs `work` as the only network lookup of `domain` in this process (and, as far as the
    /// store can tell, among the processes sharing it): others wait for it, then find its answer
    /// in the cache. `work` gets the entry as it is once its turn comes
    /// and returns the decision and, if it changed, the entry to store.
    fn in_flight(&self, domain: &Domain, work: impl FnOnce(Option<&Entry>) -> (Decision, Option<Entry>)) -> Decision {
        let flight = self.flights.lock().unwrap_or_else(|e| e.into_inner()).entry(domain.clone()).or_default().clone();
        let decision = {
            let _turn = flight.lock().unwrap_or_else(|e| e.into_inner());
            // Other processes sharing the store: wait, up to about one network lookup, for one
            // that is already fetching this domain, then read what it stored.
            let wait = self.config.dns.timeout + self.config.fetch.timeout;
            let _shared_turn = self.store.lock(domain, wait);
            let (decision, entry) = work(self.load(domain).as_deref());
            if let Some(entry) = entry {
                self.save(domain, entry);
            }
            decision
        };
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        // The map and this function hold the only references: nobody else waits, so forget it.
        if Arc::strong_count(&flight) == 2 {
            flights.remove(domain);
        }
        decision
    }

    /// Answers from a recently checked entry, with no network traffic.
    fn cached_answer(&self, domain: &Domain, entry: Option<&Entry>) -> Option<Decision> {
        let entry = entry?;
        let now = self.clock.now();
        let valid = entry.policy.as_ref().filter(|p| p.is_valid_at(now));
        let outcome = match (valid, &entry.negative) {
            (Some(policy), _) if now < entry.checked_at.saturating_add(self.config.cache.recheck_interval.as_secs()) => {
                Outcome::Policy { policy: policy.clone(), source: Source::Cache, warning: None }
            }
            (None, Some(negative)) if now < negative.until => match negative.kind {
                NegativeKind::NoPolicy => Outcome::NoPolicy { reason: negative.reason.clone(), source: Source::Cache },
                NegativeKind::Tempfail => match &negative.reason {
                    Some(error) => Outcome::Tempfail { error: error.clone(), source: Source::Cache },
                    // Only a store written by something else holds a reasonless temporary
                    // failure; ask again rather than invent a reason.
                    None => return None,
                },
            },
            _ => return None,
        };
        Some(Decision { domain: domain.clone(), outcome })
    }

    /// Checks the TXT record and fetches the policy if needed (always, with `renew`); returns the
    /// decision and the entry to store.
    fn refresh(&self, domain: &Domain, mut entry: Entry, renew: bool) -> (Decision, Entry) {
        let now = self.clock.now();
        // "an expired policy is never applied": it only survives in the entry for inspection.
        let valid = entry.policy.clone().filter(|p| p.is_valid_at(now));
        entry.checked_at = now;
        entry.negative = None;
        let outcome = match record::discover(self.dns.as_ref(), domain) {
            Ok(record) => match valid {
                // "If the TXT record's id is unchanged [...] the sender does not need to refetch"
                // (§3.1 note, §5.1): a valid cached policy with the same id stays.
                Some(policy) if policy.record_id == record.id && !renew => {
                    Outcome::Policy { policy, source: Source::Cache, warning: None }
                }
                _ => self.fetch(domain, &record.id, valid, &mut entry, now),
            },
            Err(e) => {
                let temporary = matches!(e, RecordError::Dns(_));
                let error = Error::Record(e);
                entry.last_error = Some(error.clone());
                match valid {
                    // "If there is no TXT record but a valid cached policy, it continues to apply"
                    // (§3.1); so it does through DNS failures (§5.1).
                    Some(policy) => Outcome::Policy { policy, source: Source::Cache, warning: Some(error) },
                    None if temporary => {
                        // Remembered only briefly, whichever answer the configuration maps it to.
                        let ttl = self.config.cache.tempfail_ttl;
                        match self.config.decision.on_dns_failure {
                            OnDnsFailure::Tempfail => {
                                entry.negative = Some(negative(NegativeKind::Tempfail, ttl, Some(error.clone()), now));
                                Outcome::Tempfail { error, source: Source::Fetched }
                            }
                            OnDnsFailure::NoPolicy => {
                                entry.negative = Some(negative(NegativeKind::NoPolicy, ttl, Some(error.clone()), now));
                                Outcome::NoPolicy { reason: Some(error), source: Source::Fetched }
                            }
                        }
                    }
                    None => {
                        // Plain absence needs no reason; a broken record does.
                        let reason = (!matches!(error, Error::Record(RecordError::NotFound))).then_some(error);
                        let ttl = self.config.cache.negative_ttl;
                        entry.negative = Some(negative(NegativeKind::NoPolicy, ttl, reason.clone(), now));
                        Outcome::NoPolicy { reason, source: Source::Fetched }
                    }
                }
            }
        };
        (Decision { domain: domain.clone(), outcome }, entry)
    }

    /// Fetches and parses the policy announced by `record_id`.
    fn fetch(
        &self,
        domain: &Domain,
        record_id: &str,
        valid: Option<Arc<CachedPolicy>>,
        entry: &mut Entry,
        now: u64,
    ) -> Outcome {
        let retry_after = self.config.cache.fetch_retry_interval.as_secs();
        let result = match &entry.failed_fetch {
            Some(failed) if failed.record_id == record_id && now < failed.at.saturating_add(retry_after) => {
                Err(failed.error.clone())
            }
            _ => self
                .fetcher
                .fetch(domain)
                .map_err(Error::Fetch)
                .and_then(|body| Policy::parse(&body).map_err(Error::Policy)),
        };
        match result {
            Ok(policy) => {
                let expires_at = now.saturating_add(policy.max_age);
                let cached = Arc::new(CachedPolicy { policy, record_id: record_id.to_owned(), fetched_at: now, expires_at });
                entry.policy = Some(cached.clone());
                entry.failed_fetch = None;
                Outcome::Policy { policy: cached, source: Source::Fetched, warning: None }
            }
            Err(error) => {
                if entry.failed_fetch.as_ref().is_none_or(|f| f.record_id != record_id || f.error != error) {
                    entry.failed_fetch = Some(FailedFetch { record_id: record_id.to_owned(), at: now, error: error.clone() });
                }
                entry.last_error = Some(error.clone());
                match valid {
                    Some(policy) => Outcome::Policy { policy, source: Source::Cache, warning: Some(error) },
                    // "If a valid TXT record is found but no policy can be fetched via HTTPS (for
                    // any reason), and there is no valid (non-expired) previously cached policy,
                    // senders MUST continue with delivery as though the Policy Domain has not
                    // implemented MTA-STS" (§3.3).
                    None => {
                        let ttl = self.config.cache.fetch_retry_interval.min(self.config.cache.negative_ttl);
                        entry.negative = Some(negative(NegativeKind::NoPolicy, ttl, Some(error.clone()), now));
                        Outcome::NoPolicy { reason: Some(error), source: Source::Fetched }
                    }
                }
            }
        }
    }

    fn load(&self, domain: &Domain) -> Option<Arc<Entry>> {
        self.store.get(domain).unwrap_or_else(|e| {
            tracing::warn!(domain = %domain, error = %e, "cache read failed, looking up afresh");
            None
        })
    }

    fn save(&self, domain: &Domain, entry: Entry) {
        if let Err(e) = self.store.put(domain, Arc::new(entry)) {
            tracing::warn!(domain = %domain, error = %e, "cache write failed, answer not remembered");
        }
    }
}

/// A negative answer remembered for `ttl` from `now`.
fn negative(kind: NegativeKind, ttl: Duration, reason: Option<Error>, now: u64) -> Negative {
    Negative { kind, until: now.saturating_add(ttl.as_secs()), reason }
}

/// Builds a [`Resolver`], with parts replaced where tests or other backends need it.
#[must_use]
pub struct ResolverBuilder {
    config: Config,
    dns: Option<Arc<dyn Dns>>,
    fetcher: Option<Arc<dyn Fetcher>>,
    store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
}

impl ResolverBuilder {
    /// Uses this DNS instead of hickory-resolver with the configured servers.
    pub fn dns(mut self, dns: Arc<dyn Dns>) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Uses this fetcher instead of HTTPS.
    pub fn fetcher(mut self, fetcher: Arc<dyn Fetcher>) -> Self {
        self.fetcher = Some(fetcher);
        self
    }

    /// Uses this store instead of the one `cache.path` names.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Uses this clock instead of the system's.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the resolver.
    ///
    /// # Errors
    ///
    /// [`Error`] when the DNS configuration or the trust store cannot be loaded.
    pub fn build(self) -> Result<Resolver, Error> {
        let dns = match self.dns {
            Some(dns) => dns,
            None => Arc::new(HickoryDns::new(&self.config.dns).map_err(|e| Error::Record(RecordError::Dns(e)))?),
        };
        let fetcher = match self.fetcher {
            Some(f) => f,
            None => Arc::new(HttpsFetcher::new(dns.clone(), &self.config.fetch)),
        };
        Ok(Resolver {
            dns,
            fetcher,
            store: self.store.unwrap_or_else(|| crate::store::open(&self.config.cache, false)),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            flights: Mutex::new(HashMap::new()),
            config: self.config,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::error::{DnsError, FetchError};

    const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 86400\n";

    /// Answers set by the test, with counters.
    #[derive(Default)]
    struct FakeNet {
        txt: Mutex<HashMap<String, Result<Vec<Vec<u8>>, DnsError>>>,
        body: Mutex<HashMap<String, Result<Vec<u8>, FetchError>>>,
        txt_queries: AtomicUsize,
        fetches: AtomicUsize,
        fetch_delay: Mutex<Duration>,
    }

    impl FakeNet {
        fn record(&self, domain: &str, id: &str) {
            let txt = format!("v=STSv1; id={id}").into_bytes();
            self.txt.lock().unwrap().insert(format!("_mta-sts.{domain}."), Ok(vec![txt]));
        }
        fn no_record(&self, domain: &str) {
            self.txt.lock().unwrap().insert(format!("_mta-sts.{domain}."), Ok(vec![]));
        }
        fn dns_fails(&self, domain: &str) {
            let e = DnsError::ServerFailure { name: domain.into(), rcode: "SERVFAIL".into() };
            self.txt.lock().unwrap().insert(format!("_mta-sts.{domain}."), Err(e));
        }
        fn serve(&self, domain: &str, body: Result<&str, FetchError>) {
            self.body.lock().unwrap().insert(domain.into(), body.map(|b| b.as_bytes().to_vec()));
        }
        fn counts(&self) -> (usize, usize) {
            (self.txt_queries.load(Ordering::SeqCst), self.fetches.load(Ordering::SeqCst))
        }
    }

    impl Dns for FakeNet {
        fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
            self.txt_queries.fetch_add(1, Ordering::SeqCst);
            self.txt.lock().unwrap().get(name).cloned().unwrap_or(Ok(vec![]))
        }
        fn addresses(&self, _host: &str) -> Result<Vec<std::net::IpAddr>, DnsError> {
            unreachable!("the fake fetcher resolves nothing")
        }
        fn mx(&self, _name: &str) -> Result<Vec<crate::dns::MxRecord>, DnsError> {
            unreachable!("the resolver never asks for MX records")
        }
    }

    impl Fetcher for FakeNet {
        fn fetch(&self, domain: &Domain) -> Result<Vec<u8>, FetchError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(*self.fetch_delay.lock().unwrap());
            self.body.lock().unwrap().get(domain.as_str()).cloned().unwrap_or(Err(FetchError::Status { status: 404 }))
        }
    }

    struct FakeClock(AtomicU64);

    impl FakeClock {
        fn advance(&self, secs: u64) {
            self.0.fetch_add(secs, Ordering::SeqCst);
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn setup(config: Config) -> (Resolver, Arc<FakeNet>, Arc<FakeClock>) {
        let net = Arc::new(FakeNet::default());
        let clock = Arc::new(FakeClock(AtomicU64::new(1_700_000_000)));
        let resolver = Resolver::builder(config)
            .store(Arc::new(crate::store::MemoryStore::new()))
            .dns(net.clone())
            .fetcher(net.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        (resolver, net, clock)
    }

    fn example() -> Domain {
        Domain::parse("example.com").unwrap()
    }

    fn applied(d: &Decision) -> Option<(String, Source, bool)> {
        match &d.outcome {
            Outcome::Policy { policy, source, warning } => Some((policy.record_id.clone(), *source, warning.is_some())),
            _ => None,
        }
    }

    #[test]
    fn first_lookup_fetches_then_cache_answers_without_network() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
        clock.advance(59);
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, false)));
        assert_eq!(net.counts(), (1, 1), "no DNS and no HTTPS within the re-check interval");
    }

    #[test]
    fn unchanged_id_after_recheck_interval_is_not_refetched() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        r.lookup(&example());
        clock.advance(61);
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, false)));
        assert_eq!(net.counts(), (2, 1));
    }

    #[test]
    fn changed_id_is_refetched() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        r.lookup(&example());
        clock.advance(61);
        net.record("example.com", "2");
        net.serve("example.com", Ok(&POLICY.replace("enforce", "testing")));
        let d = r.lookup(&example());
        assert_eq!(applied(&d), Some(("2".into(), Source::Fetched, false)));
        assert_eq!(d.policy().unwrap().mode, Mode::Testing);
        assert_eq!(net.counts(), (2, 2));
    }

    #[test]
    fn failures_never_erase_a_valid_cached_policy() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        r.lookup(&example());

        // TXT record gone.
        clock.advance(61);
        net.no_record("example.com");
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, true)));
        // DNS failure.
        clock.advance(61);
        net.dns_fails("example.com");
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, true)));
        // New id but the fetch fails.
        clock.advance(61);
        net.record("example.com", "2");
        net.serve("example.com", Err(FetchError::CertificateExpired));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, true)));
        // New id, invalid policy.
        clock.advance(400);
        net.serve("example.com", Ok("version: STSv1\nmode: enforce\n"));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Cache, true)));
    }

    #[test]
    fn expired_policy_is_never_applied() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        r.lookup(&example());
        clock.advance(86400);
        // Same id: refetched rather than revived.
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
        assert_eq!(net.counts(), (2, 2));
        clock.advance(86400);
        net.serve("example.com", Err(FetchError::Status { status: 500 }));
        let d = r.lookup(&example());
        assert!(matches!(d.outcome, Outcome::NoPolicy { reason: Some(Error::Fetch(_)), .. }), "{d:?}");
        clock.advance(1);
        net.dns_fails("example.com");
        assert!(matches!(r.lookup(&example()).outcome, Outcome::NoPolicy { .. }), "remembered for the retry interval");
        clock.advance(300);
        assert!(matches!(r.lookup(&example()).outcome, Outcome::Tempfail { .. }));
    }

    #[test]
    fn no_cache_and_fetch_failure_is_no_policy_with_backoff_per_id() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Err(FetchError::Status { status: 404 }));
        let d = r.lookup(&example());
        assert!(matches!(&d.outcome, Outcome::NoPolicy { reason: Some(Error::Fetch(FetchError::Status { status: 404 })), source: Source::Fetched }), "{d:?}");
        // Within five minutes: the failure is remembered, no new fetch.
        clock.advance(120);
        assert!(matches!(r.lookup(&example()).outcome, Outcome::NoPolicy { source: Source::Cache, .. }));
        assert_eq!(net.counts(), (1, 1));
        // After it: fetched again.
        clock.advance(200);
        net.serve("example.com", Ok(POLICY));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
        assert_eq!(net.counts(), (2, 2));
    }

    #[test]
    fn new_id_is_fetched_despite_a_recent_failure_of_the_old_one() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Err(FetchError::Status { status: 404 }));
        r.lookup(&example());
        clock.advance(301);
        net.record("example.com", "2");
        net.serve("example.com", Ok(POLICY));
        assert_eq!(applied(&r.lookup(&example())), Some(("2".into(), Source::Fetched, false)));
    }

    #[test]
    fn retry_interval_skips_fetch_of_a_failed_id_until_it_passes() {
        let mut config = Config::default();
        // Make the negative answer expire before the retry interval, so the TXT record is
        // checked again while the failed id is still held back.
        config.cache.negative_ttl = Duration::from_secs(10);
        let (r, net, clock) = setup(config);
        net.record("example.com", "1");
        r.lookup(&example());
        clock.advance(11);
        assert!(matches!(r.lookup(&example()).outcome, Outcome::NoPolicy { .. }));
        assert_eq!(net.counts(), (2, 1), "TXT checked again, fetch held back");
    }

    #[test]
    fn dns_failure_without_cache_is_tempfail_or_no_policy_by_config() {
        let (r, net, clock) = setup(Config::default());
        net.dns_fails("example.com");
        assert!(matches!(r.lookup(&example()).outcome, Outcome::Tempfail { source: Source::Fetched, .. }));
        assert!(matches!(r.lookup(&example()).outcome, Outcome::Tempfail { source: Source::Cache, .. }));
        assert_eq!(net.counts(), (1, 0), "temporary failure remembered briefly");
        clock.advance(61);
        r.lookup(&example());
        assert_eq!(net.counts(), (2, 0), "and only briefly");

        let mut config = Config::default();
        config.decision.on_dns_failure = OnDnsFailure::NoPolicy;
        let (r, net, _) = setup(config);
        net.dns_fails("example.com");
        assert!(matches!(r.lookup(&example()).outcome, Outcome::NoPolicy { reason: Some(Error::Record(RecordError::Dns(_))), .. }));
    }

    #[test]
    fn no_record_is_remembered_for_the_negative_ttl() {
        let (r, net, clock) = setup(Config::default());
        net.no_record("example.com");
        assert_eq!(r.lookup(&example()).outcome, Outcome::NoPolicy { reason: None, source: Source::Fetched });
        clock.advance(1799);
        assert_eq!(r.lookup(&example()).outcome, Outcome::NoPolicy { reason: None, source: Source::Cache });
        assert_eq!(net.counts(), (1, 0));
        clock.advance(1);
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
    }

    #[test]
    fn invalid_records_are_no_policy_with_a_reason() {
        let (r, net, _) = setup(Config::default());
        net.txt.lock().unwrap().insert("_mta-sts.example.com.".into(), Ok(vec![b"v=STSv1; id=a".to_vec(), b"v=STSv1; id=b".to_vec()]));
        let d = r.lookup(&example());
        assert!(matches!(d.outcome, Outcome::NoPolicy { reason: Some(Error::Record(RecordError::Multiple { count: 2 })), .. }), "{d:?}");
        assert_eq!(net.counts(), (1, 0));
    }

    #[test]
    fn mode_none_is_a_policy_that_enforces_nothing() {
        let (r, net, _) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok("version: STSv1\nmode: none\nmax_age: 86400\n"));
        let d = r.lookup(&example());
        assert_eq!(d.policy().map(|p| p.mode), Some(Mode::None));
        assert!(d.active_policy().is_none());
        assert_eq!(d.mx_allowed(&Domain::parse("anything.example").unwrap()), None);
    }

    #[test]
    fn mx_allowed_follows_the_policy() {
        let (r, net, _) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        let d = r.lookup(&example());
        assert_eq!(d.mx_allowed(&Domain::parse("MX.example.com.").unwrap()), Some(true));
        assert_eq!(d.mx_allowed(&Domain::parse("evil.example.net").unwrap()), Some(false));
    }

    #[test]
    fn max_age_zero_applies_once_and_is_never_cached() {
        let (r, net, _) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(&POLICY.replace("86400", "0")));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
        assert_eq!(applied(&r.lookup(&example())), Some(("1".into(), Source::Fetched, false)));
        assert_eq!(net.counts(), (2, 2));
    }

    #[test]
    fn refresh_renews_policies_past_half_their_life_and_forgets_dead_entries() {
        let (r, net, clock) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        net.no_record("gone.example");
        r.lookup(&example());
        r.lookup(&Domain::parse("gone.example").unwrap());
        // Inside the negative TTL and before half the max_age: nothing to do.
        clock.advance(1799);
        assert_eq!(r.refresh_due().unwrap(), Refreshed::default());
        // Negative answer expired: forgotten. Policy not yet due.
        clock.advance(86400 / 2 - 1800);
        let done = r.refresh_due().unwrap();
        assert_eq!((done.renewed, done.forgotten), (vec![], vec![Domain::parse("gone.example").unwrap()]));
        // Past three quarters: renewed whatever the jitter, with the id unchanged.
        clock.advance(86400 / 4 + 1);
        let done = r.refresh_due().unwrap();
        assert_eq!(done.renewed, vec![example()]);
        assert_eq!(net.counts().1, 2);
        // The renewed policy now lives a full max_age from now.
        clock.advance(86400 - 1);
        assert!(r.lookup(&example()).active_policy().is_some());
        // A renewal that fails keeps the policy.
        net.serve("example.com", Err(FetchError::Status { status: 500 }));
        let done = r.refresh_due().unwrap();
        assert_eq!(done.failed, vec![example()]);
        assert!(r.lookup(&example()).active_policy().is_some());
    }

    #[test]
    fn concurrent_lookups_of_a_cold_domain_fetch_once() {
        let (r, net, _) = setup(Config::default());
        net.record("example.com", "1");
        net.serve("example.com", Ok(POLICY));
        *net.fetch_delay.lock().unwrap() = Duration::from_millis(200);
        let r = Arc::new(r);
        let threads: Vec<_> = (0..100)
            .map(|_| {
                let r = r.clone();
                std::thread::spawn(move || applied(&r.lookup(&example())).map(|a| a.0))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Some("1".into()));
        }
        assert_eq!(net.counts(), (1, 1));
        assert!(r.flights.lock().unwrap().is_empty(), "no flight left behind");
    }
}
