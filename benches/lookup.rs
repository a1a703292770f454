//! Lookups answered from the cache (policy cached, TXT check skipped): in process (issue #2: under
//! 2 µs), and from the cache file in a fresh process (issue #3: under 1 ms). The network parts are
//! stubbed because they are only reached once, to fill the cache.

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
    fn mx(&self, _name: &str) -> Result<Vec<mta_sts::dns::MxRecord>, DnsError> {
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

/// What a fresh process (an Exim worker, a one-shot helper) pays with a warm cache file: open the
/// store, read the entry, answer. Issue #3 asks for under 1 ms. Also the memory layer in front of
/// the file once the entry is in memory (under 2 µs).
fn persistent_cache(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("mta-sts-bench-{}", std::process::id()));
    let mut config = Config::default();
    config.cache.path = dir.join("cache.db");
    let build = || Resolver::builder(config.clone()).dns(Arc::new(Once)).fetcher(Arc::new(Once)).build().unwrap();
    let domain = Domain::parse("example.com").unwrap();
    // Warm the file with the domain and a thousand others, as a live cache would be.
    let warm = build();
    for n in 0..1000 {
        warm.lookup(&Domain::parse(&format!("d{n}.example")).unwrap());
    }
    assert!(warm.lookup(&domain).active_policy().is_some());
    drop(warm);
    // The real resolver, as `mta-sts query` or the C library builds it: it reads the cache and
    // never reaches the network.
    c.bench_function("fresh process: build resolver, open cache file, cached lookup", |b| {
        b.iter(|| Resolver::builder(config.clone()).build().unwrap().lookup(std::hint::black_box(&domain)))
    });
    let resolver = build();
    resolver.lookup(&domain);
    c.bench_function("cached lookup through the memory layer over the file", |b| {
        b.iter(|| resolver.lookup(std::hint::black_box(&domain)))
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, cached_lookup, persistent_cache);
criterion_main!(benches);
