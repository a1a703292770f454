//! The resolver against real DNS and HTTPS servers on loopback: every rule of RFC 8461 §3 and §5
//! that involves the network, through hickory-resolver, ureq and rustls as shipped.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dns::{Answer, DnsServer};
use common::https::{CertKind, HttpsServer, Reply, Site};
use common::pki::TestCa;
use hickory_proto::rr::RecordType;
use mta_sts::clock::Clock;
use mta_sts::error::{FetchError, Phase, PolicyError, RecordError};
use mta_sts::{Config, Decision, Domain, Error, Mode, Outcome, Resolver, Source};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

struct Net {
    dns: DnsServer,
    https: HttpsServer,
    ca: TestCa,
    clock: Arc<TestClock>,
}

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Net {
    fn start() -> Self {
        let ca = TestCa::new();
        Net { dns: DnsServer::start(), https: HttpsServer::start(&ca), ca, clock: Arc::new(TestClock(AtomicU64::new(1_700_000_000))) }
    }

    fn config(&self) -> Config {
        let mut c = Config::default();
        c.dns.servers = vec![self.dns.addr()];
        c.dns.timeout = Duration::from_secs(1);
        c.fetch.timeout = Duration::from_secs(2);
        c.fetch.ca_file = Some(self.ca.ca_file().to_owned());
        c.fetch.allow_private_addresses = true;
        c.fetch.test_policy_port = Some(self.https.port());
        c.cache.path = Default::default();
        c
    }

    fn resolver(&self) -> Resolver {
        self.resolver_with(self.config())
    }

    fn resolver_with(&self, config: Config) -> Resolver {
        Resolver::builder(config).clock(self.clock.clone()).build().unwrap()
    }

    /// A domain with a TXT record, a policy host address and a site.
    fn publish(&self, domain: &str, id: &str, site: Site) {
        self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={id};")]));
        self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        self.https.set(&format!("mta-sts.{domain}"), site);
    }

    fn fetches(&self, domain: &str) -> usize {
        self.https.requests(&format!("mta-sts.{domain}"))
    }

    fn advance(&self, secs: u64) {
        self.clock.0.fetch_add(secs, Ordering::SeqCst);
    }
}

fn lookup(r: &Resolver, domain: &str) -> Decision {
    r.lookup(&Domain::parse(domain).unwrap())
}

fn reason(d: &Decision) -> Option<&Error> {
    match &d.outcome {
        Outcome::NoPolicy { reason, .. } => reason.as_ref(),
        Outcome::Tempfail { error, .. } => Some(error),
        Outcome::Policy { warning, .. } => warning.as_ref(),
    }
}

fn fetch_error(d: &Decision) -> Option<&FetchError> {
    match (&d.outcome, reason(d)) {
        (Outcome::NoPolicy { .. }, Some(Error::Fetch(e))) => Some(e),
        _ => None,
    }
}

fn source(d: &Decision) -> Option<Source> {
    match &d.outcome {
        Outcome::Policy { source, .. } => Some(*source),
        _ => None,
    }
}

#[test]
fn valid_policy_is_fetched_with_sni_and_the_well_known_path() {
    let net = Net::start();
    net.publish("example.com", "20240101", Site::policy(POLICY));
    let d = lookup(&net.resolver(), "Example.COM.");
    let p = d.active_policy().expect("policy");
    assert_eq!(p.mode, Mode::Enforce);
    assert_eq!(p.max_age, 86400);
    assert_eq!(source(&d), Some(Source::Fetched));
    let request = net.https.last_request("mta-sts.example.com").unwrap();
    assert!(request.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"), "{request}");
    assert!(request.to_ascii_lowercase().contains("\r\nhost: mta-sts.example.com"), "{request}");
    assert_eq!(d.mx_allowed(&Domain::parse("x.example.net").unwrap()), Some(true));
    assert_eq!(d.mx_allowed(&Domain::parse("example.net").unwrap()), Some(false));
}

#[test]
fn split_txt_strings_are_concatenated() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    net.dns.set("_mta-sts.example.com", Answer::txt_split(&["v=STSv1; ", "id=split", "42;"]));
    let d = lookup(&net.resolver(), "example.com");
    assert!(matches!(&d.outcome, Outcome::Policy { policy, .. } if policy.record_id == "split42"), "{d:?}");
}

#[test]
fn cname_on_the_txt_name_is_followed() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    net.dns.clear("_mta-sts.example.com");
    net.dns.set("_mta-sts.example.com", Answer::Cname("_mta-sts.provider.example.".into()));
    net.dns.set("_mta-sts.provider.example", Answer::txt(&["v=STSv1; id=viacname;"]));
    let d = lookup(&net.resolver(), "example.com");
    assert!(matches!(&d.outcome, Outcome::Policy { policy, .. } if policy.record_id == "viacname"), "{d:?}");
}

#[test]
fn nxdomain_and_nodata_are_no_policy_but_servfail_is_temporary() {
    let net = Net::start();
    let r = net.resolver();
    // NXDOMAIN: the name does not exist at all.
    assert_eq!(lookup(&r, "nx.example").outcome, Outcome::NoPolicy { reason: None, source: Source::Fetched });
    // NODATA: the name exists with other types only.
    net.dns.set("_mta-sts.nodata.example", Answer::A(vec!["192.0.2.1".parse().unwrap()]));
    assert_eq!(lookup(&r, "nodata.example").outcome, Outcome::NoPolicy { reason: None, source: Source::Fetched });
    // SERVFAIL and a server that never answers: temporary failures, kept apart.
    net.dns.set("_mta-sts.servfail.example", Answer::ServFail);
    let d = lookup(&r, "servfail.example");
    assert!(matches!(d.outcome, Outcome::Tempfail { error: Error::Record(RecordError::Dns(_)), .. }), "{d:?}");
    net.dns.set("_mta-sts.silent.example", Answer::Drop);
    let started = Instant::now();
    let d = lookup(&r, "silent.example");
    assert!(matches!(d.outcome, Outcome::Tempfail { .. }), "{d:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "bounded by the DNS deadline");
}

#[test]
fn several_sts_records_mean_no_policy() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    net.dns.set("_mta-sts.example.com", Answer::txt(&["v=STSv1; id=1;", "v=STSv1; id=2;", "v=spf1 -all"]));
    let d = lookup(&net.resolver(), "example.com");
    assert_eq!(reason(&d), Some(&Error::Record(RecordError::Multiple { count: 2 })));
    assert_eq!(net.fetches("example.com"), 0);
}

#[test]
fn a_large_txt_answer_falls_back_to_tcp() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    let mut records: Vec<String> = (0..100).map(|n| format!("unrelated record number {n}")).collect();
    records.push("v=STSv1; id=big;".into());
    net.dns.set("_mta-sts.example.com", Answer::txt(&records));
    let d = lookup(&net.resolver(), "example.com");
    assert!(matches!(&d.outcome, Outcome::Policy { policy, .. } if policy.record_id == "big"), "{d:?}");
}

#[test]
fn http_answers_other_than_200_text_plain_are_refused() {
    let net = Net::start();
    let r = net.resolver();
    let cases: Vec<(&str, Reply, fn(&FetchError) -> bool)> = vec![
        ("redirect", Reply::redirect(301, "https://mta-sts.elsewhere.example/.well-known/mta-sts.txt"), |e| *e == FetchError::Redirect { status: 301 }),
        ("temporary-redirect", Reply::redirect(307, "/other"), |e| *e == FetchError::Redirect { status: 307 }),
        ("notfound", Reply::status(404, "no"), |e| *e == FetchError::Status { status: 404 }),
        ("nocontent", Reply::Response { status: 204, headers: vec![], body: vec![] }, |e| *e == FetchError::Status { status: 204 }),
        ("html", Reply::Response { status: 200, headers: vec![("Content-Type".into(), "text/html".into())], body: POLICY.into() },
            |e| matches!(e, FetchError::ContentType { found } if found.contains("text/html"))),
        ("notype", Reply::Response { status: 200, headers: vec![], body: POLICY.into() },
            |e| matches!(e, FetchError::ContentType { found } if found.is_empty())),
    ];
    for (name, reply, check) in cases {
        let domain = format!("{name}.example");
        net.publish(&domain, "1", Site::new(CertKind::Valid, reply));
        let d = lookup(&r, &domain);
        let e = fetch_error(&d).unwrap_or_else(|| panic!("{name}: {d:?}"));
        assert!(check(e), "{name}: {e:?}");
    }
    assert_eq!(net.fetches("elsewhere.example"), 0, "redirect not followed");
}

#[test]
fn content_type_parameters_and_case_are_accepted() {
    let net = Net::start();
    let reply = Reply::Response {
        status: 200,
        headers: vec![("Content-Type".into(), "Text/Plain; charset=utf-8".into())],
        body: POLICY.into(),
    };
    net.publish("example.com", "1", Site::new(CertKind::Valid, reply));
    assert!(lookup(&net.resolver(), "example.com").active_policy().is_some());
}

#[test]
fn body_is_capped_at_64_kib_with_and_without_content_length() {
    let net = Net::start();
    let r = net.resolver();
    let padded = |len: usize| {
        let mut body = POLICY.to_owned();
        body.push_str("x: ");
        body.push_str(&"a".repeat(len - body.len() - 1));
        body.push('\n');
        assert_eq!(body.len(), len);
        body
    };
    let text = || vec![("Content-Type".to_owned(), "text/plain".to_owned())];
    net.publish("exact.example", "1", Site::policy(&padded(65536)));
    assert!(lookup(&r, "exact.example").active_policy().is_some(), "64 KiB exactly is fine");
    net.publish("length.example", "1", Site::policy(&padded(65537)));
    assert_eq!(fetch_error(&lookup(&r, "length.example")), Some(&FetchError::TooLarge));
    let close_delimited = Reply::NoContentLength { headers: text(), body: padded(65537).into() };
    net.publish("close.example", "1", Site::new(CertKind::Valid, close_delimited));
    assert_eq!(fetch_error(&lookup(&r, "close.example")), Some(&FetchError::TooLarge));
    let chunks = padded(65537).into_bytes().chunks(1000).map(<[u8]>::to_vec).collect();
    net.publish("chunked.example", "1", Site::new(CertKind::Valid, Reply::Chunked { headers: text(), chunks }));
    assert_eq!(fetch_error(&lookup(&r, "chunked.example")), Some(&FetchError::TooLarge));
    net.publish("endless.example", "1", Site::new(CertKind::Valid, Reply::EndlessChunked));
    assert_eq!(fetch_error(&lookup(&r, "endless.example")), Some(&FetchError::TooLarge));
    net.publish("huge.example", "1", Site::new(CertKind::Valid, Reply::HugeContentLength));
    assert_eq!(fetch_error(&lookup(&r, "huge.example")), Some(&FetchError::TooLarge));
}

#[test]
fn one_deadline_bounds_a_trickling_or_stalled_policy_host() {
    let net = Net::start();
    let mut config = net.config();
    config.fetch.timeout = Duration::from_millis(1500);
    let r = net.resolver_with(config);
    let raw = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{POLICY}", POLICY.len());
    let trickle = Reply::Trickle { head_and_body: raw.into_bytes(), interval: Duration::from_millis(100) };
    for (name, reply) in [("trickle", trickle), ("stall-tls", Reply::StallTls), ("stall-accept", Reply::StallAfterAccept)] {
        let domain = format!("{name}.example");
        net.publish(&domain, "1", Site::new(CertKind::Valid, reply));
        let started = Instant::now();
        let d = lookup(&r, &domain);
        let elapsed = started.elapsed();
        assert!(matches!(fetch_error(&d), Some(FetchError::Timeout { .. })), "{name}: {d:?}");
        assert!(elapsed < Duration::from_millis(2500), "{name} took {elapsed:?}");
    }
}

#[test]
fn trickled_body_names_the_body_phase() {
    let net = Net::start();
    let mut config = net.config();
    config.fetch.timeout = Duration::from_millis(800);
    let r = net.resolver_with(config);
    // Headers arrive at once; the body one byte every 100 ms.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut raw = head.as_bytes().to_vec();
    for b in POLICY.bytes() {
        raw.extend_from_slice(format!("1\r\n{}\r\n", b as char).as_bytes());
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    net.publish("slow.example", "1", Site::new(CertKind::Valid, Reply::Trickle { head_and_body: raw, interval: Duration::from_millis(2) }));
    let d = lookup(&r, "slow.example");
    assert!(matches!(fetch_error(&d), Some(FetchError::Timeout { phase: Phase::Body | Phase::Headers })), "{d:?}");
}

#[test]
fn policy_host_certificate_must_be_valid_for_the_name() {
    let net = Net::start();
    let r = net.resolver();
    for (name, cert, want) in [
        ("untrusted", CertKind::Untrusted, FetchError::CertificateUntrusted),
        ("wrongname", CertKind::WrongName, FetchError::CertificateWrongName),
        ("expired", CertKind::Expired, FetchError::CertificateExpired),
        ("notyet", CertKind::NotYetValid, FetchError::CertificateExpired),
    ] {
        let domain = format!("{name}.example");
        net.publish(&domain, "1", Site::new(cert, Reply::policy(POLICY)));
        let d = lookup(&r, &domain);
        assert_eq!(fetch_error(&d), Some(&want), "{name}: {d:?}");
        assert_eq!(net.fetches(&domain), 0, "{name}: no request sent over an unverified connection");
    }
}

#[test]
fn policy_host_on_private_addresses_is_refused_by_default() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    let mut config = net.config();
    config.fetch.allow_private_addresses = false;
    let d = lookup(&net.resolver_with(config), "example.com");
    assert_eq!(fetch_error(&d), Some(&FetchError::RefusedAddress { addr: "127.0.0.1".into() }));
    assert_eq!(net.https.total_connections(), 0);
}

#[test]
fn policy_host_without_address_is_no_policy() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy(POLICY));
    net.dns.clear("mta-sts.example.com");
    assert_eq!(fetch_error(&lookup(&net.resolver(), "example.com")), Some(&FetchError::NoAddress));
}

#[test]
fn invalid_policy_is_no_policy_with_the_rule_named() {
    let net = Net::start();
    net.publish("example.com", "1", Site::policy("version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: +1\n"));
    let d = lookup(&net.resolver(), "example.com");
    assert!(matches!(reason(&d), Some(Error::Policy(PolicyError::BadMaxAge { .. }))), "{d:?}");
}

#[test]
fn unchanged_id_makes_no_https_request_and_changed_id_refetches() {
    let net = Net::start();
    let r = net.resolver();
    net.publish("example.com", "1", Site::policy(POLICY));
    lookup(&r, "example.com");
    assert_eq!(net.fetches("example.com"), 1);
    // Inside the re-check interval: no DNS either.
    let txt_queries = net.dns.queries("_mta-sts.example.com", RecordType::TXT);
    assert_eq!(source(&lookup(&r, "example.com")), Some(Source::Cache));
    assert_eq!(net.dns.queries("_mta-sts.example.com", RecordType::TXT), txt_queries);
    // After it: TXT checked, same id, no fetch.
    net.advance(61);
    assert_eq!(source(&lookup(&r, "example.com")), Some(Source::Cache));
    assert_eq!(net.dns.queries("_mta-sts.example.com", RecordType::TXT), txt_queries + 1);
    assert_eq!(net.fetches("example.com"), 1);
    // New id: fetched again.
    net.advance(61);
    net.dns.set("_mta-sts.example.com", Answer::txt(&["v=STSv1; id=2;"]));
    net.https.set("mta-sts.example.com", Site::policy(&POLICY.replace("enforce", "testing")));
    let d = lookup(&r, "example.com");
    assert_eq!(source(&d), Some(Source::Fetched));
    assert_eq!(d.policy().unwrap().mode, Mode::Testing);
    assert_eq!(net.fetches("example.com"), 2);
}

#[test]
fn cached_policy_survives_txt_removal_and_fetch_failure_until_max_age() {
    let net = Net::start();
    let r = net.resolver();
    net.publish("example.com", "1", Site::policy(POLICY));
    lookup(&r, "example.com");
    // TXT gone.
    net.advance(61);
    net.dns.clear("_mta-sts.example.com");
    assert_eq!(lookup(&r, "example.com").active_policy().map(|p| p.mode), Some(Mode::Enforce));
    // TXT back with a new id, policy host broken.
    net.advance(61);
    net.dns.set("_mta-sts.example.com", Answer::txt(&["v=STSv1; id=2;"]));
    net.https.set("mta-sts.example.com", Site::new(CertKind::Expired, Reply::policy(POLICY)));
    let d = lookup(&r, "example.com");
    assert_eq!(d.active_policy().map(|p| p.mode), Some(Mode::Enforce));
    assert_eq!(reason(&d), Some(&Error::Fetch(FetchError::CertificateExpired)));
    // DNS failing.
    net.advance(61);
    net.dns.set("_mta-sts.example.com", Answer::ServFail);
    assert!(lookup(&r, "example.com").active_policy().is_some());
    // max_age passes: never applied again.
    net.advance(86400);
    let d = lookup(&r, "example.com");
    assert!(d.policy().is_none(), "{d:?}");
}

#[test]
fn expired_policy_with_unchanged_id_is_refetched_not_revived() {
    let net = Net::start();
    let r = net.resolver();
    net.publish("example.com", "1", Site::policy(&POLICY.replace("86400", "100")));
    lookup(&r, "example.com");
    net.advance(100);
    assert_eq!(source(&lookup(&r, "example.com")), Some(Source::Fetched));
    assert_eq!(net.fetches("example.com"), 2);
}

#[test]
fn coalescing_makes_one_fetch_for_a_hundred_concurrent_lookups() {
    let net = Net::start();
    let raw = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{POLICY}", POLICY.len());
    // Slow enough that every thread arrives while the fetch is in flight.
    net.publish("example.com", "1", Site::new(CertKind::Valid, Reply::Trickle { head_and_body: raw.into_bytes(), interval: Duration::from_millis(2) }));
    let r = Arc::new(net.resolver());
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || lookup(&r, "example.com").active_policy().is_some())
        })
        .collect();
    assert!(threads.into_iter().all(|t| t.join().unwrap()));
    assert_eq!(net.fetches("example.com"), 1);
    assert_eq!(net.dns.queries("_mta-sts.example.com", RecordType::TXT), 1);
}
