//! The hot path: a lookup answered from the in-process cache (policy cached, TXT check skipped).
//! Issue #2 asks for under 2 µs; the network parts are stubbed because they are never reached.

use std::net::IpAddr;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mta_sts::dns::Dns;
use mta_sts::error::{DnsError, FetchError};
use mta_sts::fetch::Fetcher;
use mta_sts::{Config, Domain, Resolver};

/// One domain with a policy; answers once, then the cache must serve.
struct Once;

impl Dns for Once {
    fn txt(&self, _name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        Ok(vec![b"v=STSv1; id=20240101".to_vec()])
    }
    fn addresses(&self, _host: &str) -> Result<Vec<IpAddr>, DnsError> {
        Ok(vec![])
    }
}

impl Fetcher for Once {
    fn fetch(&self, _domain: &Domain) -> Result<Vec<u8>, FetchError> {
        Ok(b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n".to_vec())
    }
}

fn cached_lookup(c: &mut Criterion) {
    let mut config = Config::default();
    config.cache.path = Default::default();
    let resolver = Resolver::builder(config).dns(Arc::new(Once)).fetcher(Arc::new(Once)).build().unwrap();
    let domain = Domain::parse("example.com").unwrap();
    assert!(resolver.lookup(&domain).active_policy().is_some());
    c.bench_function("cached lookup (validated domain)", |b| b.iter(|| resolver.lookup(std::hint::black_box(&domain))));
    c.bench_function("cached lookup (parse request string + lookup)", |b| {
        b.iter(|| resolver.lookup(&Domain::parse(std::hint::black_box("Example.COM.")).unwrap()))
    });
}

criterion_group!(benches, cached_lookup);
criterion_main!(benches);
