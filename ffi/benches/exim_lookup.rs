//! The hot path of the library: `mta_sts_lookup` answered from the in-process cache, as Exim
//! calls it for every recipient domain of a delivery. Issue #5 asks for under 1 µs.
//!
//! The policy is fetched once, for real, from the in-process DNS and HTTPS fixtures; every
//! measured call is then a cache hit (the re-check interval is one hour). For comparison, the
//! same lookup through the C API (`mtasts_resolver_lookup` + `mtasts_policy_free`) and the MX
//! check are measured too.

#[path = "../../tests/common/mod.rs"]
mod common;

use std::ffi::{c_uchar, CStr};
use std::hint::black_box;
use std::ptr;

use common::dns::{Answer, DnsServer};
use common::https::{HttpsServer, Site};
use common::pki::{TempDir, TestCa};
use criterion::{criterion_group, criterion_main, Criterion};
use mtasts::error::mtasts_result;
use mtasts::exim::{mta_sts_lookup, mta_sts_mx_allowed, MTASTS_EXIM_OK};
use mtasts::policy::mtasts_policy;
use mtasts::resolver::mtasts_resolver;

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 604800\n";

fn cached_lookups(c: &mut Criterion) {
    let ca = TestCa::new();
    let dns = DnsServer::start();
    let https = HttpsServer::start(&ca);
    dns.set("_mta-sts.example.com", Answer::txt(&["v=STSv1; id=20240101;"]));
    dns.set("mta-sts.example.com", Answer::A(vec!["127.0.0.1".parse().unwrap()]));
    https.set("mta-sts.example.com", Site::policy(POLICY));
    let dir = TempDir::new("mtasts-bench");
    let config = dir.join("mta-sts.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nservers = [\"{}\"]\n[fetch]\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n\
             [cache]\npath = \"\"\nrecheck_interval = \"1h\"\n",
            dns.addr(),
            ca.ca_file().display(),
            https.port()
        ),
    )
    .unwrap();
    // The Exim entry points read the default configuration search.
    std::env::set_var("MTA_STS_CONFIG", &config);

    let domain = c"example.com";
    let host = c"mx1.example.net";
    let exim = |f: unsafe extern "C" fn(*mut *mut c_uchar, i32, *mut *mut c_uchar) -> i32,
                args: &mut [*mut c_uchar]| {
        let mut y: *mut c_uchar = ptr::null_mut();
        // SAFETY: Exim's ABI: a writable yield pointer and argc valid C strings.
        let code = unsafe { f(&mut y, args.len() as i32, args.as_mut_ptr()) };
        (code, y)
    };
    let mut lookup_args = [domain.as_ptr().cast_mut().cast::<c_uchar>()];
    let (code, y) = exim(mta_sts_lookup, &mut lookup_args);
    let line = unsafe { CStr::from_ptr(y.cast()) }.to_string_lossy().into_owned();
    assert_eq!(code, MTASTS_EXIM_OK, "{line}");
    assert!(line.starts_with("mode=enforce "), "{line}");

    c.bench_function("mta_sts_lookup (cached)", |b| {
        b.iter(|| {
            let (code, y) = exim(mta_sts_lookup, black_box(&mut lookup_args));
            black_box(y);
            code
        })
    });

    let mut mx_args = [domain.as_ptr().cast_mut().cast::<c_uchar>(), host.as_ptr().cast_mut().cast::<c_uchar>()];
    c.bench_function("mta_sts_mx_allowed (cached)", |b| {
        b.iter(|| {
            let (code, y) = exim(mta_sts_mx_allowed, black_box(&mut mx_args));
            black_box(y);
            code
        })
    });

    let mut resolver = ptr::null();
    // SAFETY: a valid path and out-parameter.
    let config_c = std::ffi::CString::new(config.to_str().unwrap()).unwrap();
    assert_eq!(
        unsafe { mtasts_resolver::mtasts_resolver_new(config_c.as_ptr(), &mut resolver) },
        mtasts_result::MTASTS_OK
    );
    c.bench_function("mtasts_resolver_lookup + mtasts_policy_free (cached)", |b| {
        b.iter(|| {
            let mut policy = ptr::null_mut();
            // SAFETY: a live resolver, a C string and an out-parameter.
            let code =
                unsafe { mtasts_resolver::mtasts_resolver_lookup(resolver, black_box(domain.as_ptr()), &mut policy) };
            // SAFETY: the policy just returned.
            unsafe { mtasts_policy::mtasts_policy_free(policy) };
            code
        })
    });
    // SAFETY: the resolver made above.
    unsafe { mtasts_resolver::mtasts_resolver_free(resolver) };
}

criterion_group!(benches, cached_lookups);
criterion_main!(benches);
