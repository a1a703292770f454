//! Self-tests of the shared fixtures in tests/common, with real clients.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::dns::{self, Answer, DnsServer};
use common::https::{self, CertKind, HttpsServer, Reply, Site, POLICY_PATH};
use common::pki::{TempDir, TestCa, Validity};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const T: Duration = Duration::from_secs(2);

fn txt_strings(msg: &Message) -> Vec<Vec<Vec<u8>>> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::TXT(t) => Some(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            _ => None,
        })
        .collect()
}

fn has_soa(msg: &Message) -> bool {
    msg.authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA)
}

// ---------------------------------------------------------------- DNS

#[test]
fn dns_txt_split_strings_over_udp_and_tcp() {
    let srv = DnsServer::start();
    srv.set(
        "_MTA-STS.Example.COM.",
        Answer::Txt(vec![vec![b"v=STSv1; ".to_vec(), b"id=20240101;".to_vec()]]),
    );
    let q = dns::build_query("_mta-sts.example.com", RecordType::TXT, None);
    let udp = dns::udp_exchange(srv.addr(), &q, T).unwrap();
    assert_eq!(udp.metadata.id, q.metadata.id);
    assert_eq!(udp.metadata.response_code, ResponseCode::NoError);
    assert!(udp.metadata.authoritative && udp.metadata.recursion_available);
    assert!(!udp.metadata.truncation);
    assert_eq!(udp.queries, q.queries);
    let want = vec![vec![b"v=STSv1; ".to_vec(), b"id=20240101;".to_vec()]];
    assert_eq!(txt_strings(&udp), want);
    assert_eq!(udp.answers[0].ttl, 300);

    let tcp = dns::tcp_query(srv.addr(), "_mta-sts.example.com.", RecordType::TXT).unwrap();
    assert_eq!(txt_strings(&tcp), want);
    assert_eq!(srv.queries("_mta-sts.example.com", RecordType::TXT), 2);
    assert_eq!(srv.queries("_MTA-STS.example.com.", RecordType::TXT), 2);
    assert_eq!(srv.queries("_mta-sts.example.com", RecordType::A), 0);
    assert_eq!(srv.total_queries(), 2);

    // Several queries on one TCP connection.
    let mut s = TcpStream::connect(srv.addr()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    for _ in 0..3 {
        let b = dns::build_query("_mta-sts.example.com", RecordType::TXT, None)
            .to_vec()
            .unwrap();
        let mut out = (b.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        s.write_all(&out).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(txt_strings(&Message::from_vec(&buf).unwrap()), want);
    }
    assert_eq!(srv.total_queries(), 5);
}

#[test]
fn dns_nxdomain_nodata_servfail_refused() {
    let srv = DnsServer::start();
    srv.set(
        "example.com",
        Answer::mx(&[(10, "mx1.example.com"), (20, "mx2.example.com.")]),
    );
    srv.set("example.com", Answer::A(vec!["192.0.2.1".parse().unwrap()]));
    srv.set("fail.example", Answer::ServFail);
    srv.set("refused.example", Answer::Refused);
    srv.set(
        "gone.example",
        Answer::A(vec!["192.0.2.2".parse().unwrap()]),
    );
    srv.set("gone.example", Answer::NxDomain);
    srv.set(
        "v6.example",
        Answer::Aaaa(vec!["2001:db8::1".parse().unwrap()]),
    );

    let r = dns::udp_query(srv.addr(), "nothing.example.com", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(r.answers.is_empty() && has_soa(&r) && r.metadata.authoritative);

    let r = dns::udp_query(srv.addr(), "example.com", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty() && has_soa(&r), "NODATA: {r:?}");

    let r = dns::udp_query(srv.addr(), "example.com", RecordType::MX).unwrap();
    let mut mx: Vec<(u16, String)> = r
        .answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
            _ => None,
        })
        .collect();
    mx.sort();
    assert_eq!(
        mx,
        vec![
            (10, "mx1.example.com.".into()),
            (20, "mx2.example.com.".into())
        ]
    );
    let r = dns::tcp_query(srv.addr(), "example.com", RecordType::A).unwrap();
    assert_eq!(r.answers.len(), 1);
    let r = dns::udp_query(srv.addr(), "v6.example", RecordType::AAAA).unwrap();
    assert!(matches!(r.answers[0].data, RData::AAAA(_)));

    for t in [RecordType::TXT, RecordType::A] {
        let r = dns::udp_query(srv.addr(), "fail.example", t).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
        let r = dns::tcp_query(srv.addr(), "refused.example", t).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::Refused);
        let r = dns::udp_query(srv.addr(), "gone.example", t).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }

    // Per-type failure.
    srv.set_for("example.com", RecordType::TXT, Answer::ServFail);
    let r = dns::udp_query(srv.addr(), "example.com", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    let r = dns::udp_query(srv.addr(), "example.com", RecordType::MX).unwrap();
    assert_eq!(r.answers.len(), 2);

    srv.clear("example.com");
    let r = dns::udp_query(srv.addr(), "example.com", RecordType::MX).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn dns_truncation_udp_then_tcp() {
    let srv = DnsServer::start();
    let big: Vec<Vec<Vec<u8>>> = (0..100)
        .map(|i| vec![format!("record number {i} with some padding to make it long").into_bytes()])
        .collect();
    srv.set("big.example", Answer::Txt(big.clone()));
    let r = dns::udp_query(srv.addr(), "big.example", RecordType::TXT).unwrap();
    assert!(r.metadata.truncation, "UDP must be truncated");
    assert!(r.answers.is_empty());
    assert_eq!(r.queries.len(), 1);
    // A large EDNS buffer lets it through over UDP.
    let q = dns::build_query("big.example", RecordType::TXT, Some(65_000));
    let r = dns::udp_exchange(srv.addr(), &q, T).unwrap();
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 100);
    let r = dns::tcp_query(srv.addr(), "big.example", RecordType::TXT).unwrap();
    assert!(!r.metadata.truncation);
    let mut got = txt_strings(&r);
    got.sort();
    let mut want = big;
    want.sort();
    assert_eq!(got, want);

    // Forced truncation of a small answer.
    srv.set(
        "tc.example",
        Answer::Truncated(Box::new(Answer::txt(&["v=STSv1; id=tc1"]))),
    );
    let r = dns::udp_query(srv.addr(), "tc.example", RecordType::TXT).unwrap();
    assert!(r.metadata.truncation && r.answers.is_empty());
    let r = dns::tcp_query(srv.addr(), "tc.example", RecordType::TXT).unwrap();
    assert_eq!(txt_strings(&r), vec![vec![b"v=STSv1; id=tc1".to_vec()]]);
    assert_eq!(srv.queries("tc.example", RecordType::TXT), 2);
}

#[test]
fn dns_cname_chain_and_loop() {
    let srv = DnsServer::start();
    srv.set(
        "_mta-sts.alias.example",
        Answer::Cname("_mta-sts.real.example".into()),
    );
    srv.set("_mta-sts.real.example", Answer::txt(&["v=STSv1; id=1"]));
    let r = dns::udp_query(srv.addr(), "_mta-sts.alias.example", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 2);
    assert!(matches!(r.answers[0].data, RData::CNAME(_)));
    assert_eq!(txt_strings(&r), vec![vec![b"v=STSv1; id=1".to_vec()]]);
    // CNAME query returns just the CNAME.
    let r = dns::udp_query(srv.addr(), "_mta-sts.alias.example", RecordType::CNAME).unwrap();
    assert_eq!(r.answers.len(), 1);
    // Target with no TXT: CNAME + NODATA; dangling target: NXDOMAIN.
    let r = dns::udp_query(srv.addr(), "_mta-sts.alias.example", RecordType::A).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(r.answers.len(), 1);
    assert!(has_soa(&r));
    srv.set("dangling.example", Answer::Cname("nowhere.example".into()));
    let r = dns::udp_query(srv.addr(), "dangling.example", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    // Loop terminates.
    srv.set("loop1.example", Answer::Cname("loop2.example".into()));
    srv.set("loop2.example", Answer::Cname("loop1.example".into()));
    let r = dns::tcp_query(srv.addr(), "loop1.example", RecordType::TXT).unwrap();
    assert!(r.answers.len() <= 9, "{}", r.answers.len());
}

#[test]
fn dns_drop_and_garbage() {
    let srv = DnsServer::start();
    srv.set("slow.example", Answer::Drop);
    let q = dns::build_query("slow.example", RecordType::TXT, None);
    let e = dns::udp_exchange(srv.addr(), &q, Duration::from_millis(300)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(srv.queries("slow.example", RecordType::TXT), 1);

    // Garbage over UDP and TCP must not break the server.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for g in [
        &b""[..],
        b"\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        u.send_to(g, srv.addr()).unwrap();
    }
    let mut t = TcpStream::connect(srv.addr()).unwrap();
    t.write_all(b"\x00\x05hello\x00\x10short").unwrap();
    drop(t);
    let mut t = TcpStream::connect(srv.addr()).unwrap();
    t.write_all(b"\xff").unwrap();
    drop(t);
    srv.set("ok.example", Answer::A(vec!["192.0.2.9".parse().unwrap()]));
    let r = dns::udp_query(srv.addr(), "ok.example", RecordType::A).unwrap();
    assert_eq!(r.answers.len(), 1);
    let r = dns::tcp_query(srv.addr(), "ok.example", RecordType::A).unwrap();
    assert_eq!(r.answers.len(), 1);

    // Oversized character-string: SERVFAIL, not a panic.
    srv.set("bad.example", Answer::Txt(vec![vec![vec![b'a'; 300]]]));
    let r = dns::udp_query(srv.addr(), "bad.example", RecordType::TXT).unwrap();
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
}

#[test]
fn dns_drop_is_fast() {
    let srv = DnsServer::start();
    // An idle TCP connection must not keep the server alive.
    let _idle = TcpStream::connect(srv.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let t0 = Instant::now();
    drop(srv);
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------- PKI

#[test]
fn pki_files() {
    let ca = TestCa::new();
    assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(std::fs::read_to_string(ca.ca_file()).unwrap(), ca.ca_pem());
    let dir = TempDir::new("fixture-selftest");
    let p = ca.write_ca_file(dir.path());
    assert_eq!(std::fs::read_to_string(&p).unwrap(), ca.ca_pem());
    let ck = ca.issue(
        &["mx.example.com", "*.example.net", "127.0.0.1"],
        Validity::Valid,
    );
    assert_eq!(ck.chain.len(), 2);
    assert!(ck.chain_pem.ends_with(ca.ca_pem()));
    assert!(ck.key_pem.contains("PRIVATE KEY"));
    let (crt, key) = ck.write_files(dir.path(), "mx");
    assert!(crt.exists() && key.exists());
    let dir_path = dir.path().to_path_buf();
    drop(dir);
    assert!(!dir_path.exists());
    let ca_dir = ca.dir().to_path_buf();
    drop(ca);
    assert!(!ca_dir.exists());
}

// ---------------------------------------------------------------- HTTPS

fn get(srv: &HttpsServer, ca: &TestCa, host: &str) -> std::io::Result<(u16, String, Vec<u8>)> {
    let raw = https::raw_get(
        srv.addr(),
        host,
        POLICY_PATH,
        ca.client_config(),
        T,
        1 << 20,
    )?;
    Ok(https::split_response(&raw).expect("parsable response"))
}

const POLICY: &str =
    "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmax_age: 86400\r\n";

#[test]
fn https_policy_and_counts() {
    let ca = TestCa::new();
    let srv = HttpsServer::start(&ca);
    srv.set("mta-sts.example.com", Site::policy(POLICY));
    let (status, head, body) = get(&srv, &ca, "mta-sts.example.com").unwrap();
    assert_eq!(status, 200);
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/plain"));
    assert!(head.contains("Connection: close"));
    assert_eq!(body, POLICY.as_bytes());
    assert_eq!(srv.requests("mta-sts.example.com"), 1);
    assert_eq!(srv.requests("MTA-STS.example.com."), 1);
    assert_eq!(srv.total_requests(), 1);
    let req = srv.last_request("mta-sts.example.com").unwrap();
    assert!(
        req.starts_with("GET /.well-known/mta-sts.txt HTTP/1.1\r\n"),
        "{req}"
    );
    assert!(req.contains("Host: mta-sts.example.com\r\n"));
    assert!(req.ends_with("\r\n\r\n"));

    // A client using plain ServerConfig/ClientConfig from pki works too.
    let (status, _, _) = get(&srv, &ca, "mta-sts.example.com").unwrap();
    assert_eq!(status, 200);
    assert_eq!(srv.requests("mta-sts.example.com"), 2);
    assert_eq!(srv.connections("mta-sts.example.com"), 2);
}

#[test]
fn https_bad_certificates_fail_verification() {
    let ca = TestCa::new();
    let srv = HttpsServer::start(&ca);
    let cases = [
        ("wrongname.example", CertKind::WrongName, "NotValidForName"),
        ("expired.example", CertKind::Expired, "Expired"),
        ("notyet.example", CertKind::NotYetValid, "NotValidYet"),
        ("untrusted.example", CertKind::Untrusted, "UnknownIssuer"),
    ];
    for (host, kind, want) in cases {
        srv.set(host, Site::new(kind, Reply::policy(POLICY)));
        let e = get(&srv, &ca, host).unwrap_err();
        let tls = https::tls_error(&e).unwrap_or_else(|| panic!("{host}: not a TLS error: {e:?}"));
        assert!(
            matches!(tls, rustls::Error::InvalidCertificate(_)),
            "{host}: {tls:?}"
        );
        assert!(format!("{tls:?}").contains(want), "{host}: {tls:?}");
        assert_eq!(srv.requests(host), 0);
        assert_eq!(srv.connections(host), 1);
    }
    // A different client trust store rejects even the valid one.
    srv.set("mta-sts.example.com", Site::policy(POLICY));
    let other = TestCa::new();
    let e = https::raw_get(
        srv.addr(),
        "mta-sts.example.com",
        "/",
        other.client_config(),
        T,
        1024,
    )
    .unwrap_err();
    assert!(format!("{:?}", https::tls_error(&e)).contains("UnknownIssuer"));
    // Unknown SNI: alert, no request.
    let e = get(&srv, &ca, "unknown.example").unwrap_err();
    assert!(https::tls_error(&e).is_some(), "{e:?}");
    assert_eq!(srv.connections("unknown.example"), 1);
    assert_eq!(srv.total_requests(), 0);
}

#[test]
fn https_reply_variants() {
    let ca = TestCa::new();
    let srv = HttpsServer::start(&ca);
    srv.set(
        "notfound.example",
        Site::new(CertKind::Valid, Reply::status(404, "nope")),
    );
    let (s, _, b) = get(&srv, &ca, "notfound.example").unwrap();
    assert_eq!((s, b.as_slice()), (404, &b"nope"[..]));

    srv.set(
        "redirect.example",
        Site::new(
            CertKind::Valid,
            Reply::redirect(301, "https://elsewhere.example/"),
        ),
    );
    let (s, h, b) = get(&srv, &ca, "redirect.example").unwrap();
    assert_eq!(s, 301);
    assert!(h.contains("Location: https://elsewhere.example/\r\n"));
    assert!(h.contains("Content-Length: 0\r\n"));
    assert!(b.is_empty());

    srv.set(
        "nolen.example",
        Site::new(
            CertKind::Valid,
            Reply::NoContentLength {
                headers: https::text_plain(),
                body: POLICY.into(),
            },
        ),
    );
    let (s, h, b) = get(&srv, &ca, "nolen.example").unwrap();
    assert_eq!(s, 200);
    assert!(!h.to_ascii_lowercase().contains("content-length"));
    assert_eq!(b, POLICY.as_bytes());

    srv.set(
        "chunked.example",
        Site::new(
            CertKind::Valid,
            Reply::Chunked {
                headers: https::text_plain(),
                chunks: vec![
                    b"version: STSv1\r\n".to_vec(),
                    b"mode: testing\r\n".to_vec(),
                ],
            },
        ),
    );
    let (s, h, b) = get(&srv, &ca, "chunked.example").unwrap();
    assert_eq!(s, 200);
    assert!(h.contains("Transfer-Encoding: chunked\r\n"));
    assert_eq!(
        b,
        b"10\r\nversion: STSv1\r\n\r\nf\r\nmode: testing\r\n\r\n0\r\n\r\n"
    );

    srv.set(
        "trickle.example",
        Site::new(
            CertKind::Valid,
            Reply::Trickle {
                head_and_body: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
                interval: Duration::from_millis(2),
            },
        ),
    );
    let (s, _, b) = get(&srv, &ca, "trickle.example").unwrap();
    assert_eq!((s, b.as_slice()), (200, &b"ok"[..]));

    // Endless: read 200 KB and give up.
    srv.set(
        "endless.example",
        Site::new(CertKind::Valid, Reply::EndlessChunked),
    );
    let raw = https::raw_get(
        srv.addr(),
        "endless.example",
        POLICY_PATH,
        ca.client_config(),
        T,
        200_000,
    )
    .unwrap();
    assert!(raw.len() >= 200_000);
    assert!(raw.starts_with(b"HTTP/1.1 200 OK\r\n"));

    // Huge Content-Length: head + a few bytes, then a stall (read times out).
    srv.set(
        "huge.example",
        Site::new(CertKind::Valid, Reply::HugeContentLength),
    );
    let e = https::raw_get(
        srv.addr(),
        "huge.example",
        POLICY_PATH,
        ca.client_config(),
        Duration::from_millis(300),
        1 << 20,
    )
    .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e:?}"
    );
    assert_eq!(srv.requests("huge.example"), 1);
    assert_eq!(srv.total_requests(), 7);
}

#[test]
fn https_stalls_and_fast_drop() {
    let ca = TestCa::new();
    let srv = HttpsServer::start(&ca);
    srv.set(
        "stall-tcp.example",
        Site::new(CertKind::Valid, Reply::StallAfterAccept),
    );
    srv.set(
        "stall-tls.example",
        Site::new(CertKind::Valid, Reply::StallTls),
    );
    for host in ["stall-tcp.example", "stall-tls.example"] {
        let t0 = Instant::now();
        let e = https::raw_get(
            srv.addr(),
            host,
            POLICY_PATH,
            ca.client_config(),
            Duration::from_millis(300),
            1024,
        )
        .unwrap_err();
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{host}: {e:?}"
        );
        assert!(t0.elapsed() >= Duration::from_millis(250));
        assert_eq!(srv.connections(host), 1);
        assert_eq!(srv.requests(host), 0);
    }
    // Leave stalled and endless connections open, then drop the server.
    let _a = TcpStream::connect(srv.addr()).unwrap(); // never sends anything
    srv.set(
        "endless.example",
        Site::new(CertKind::Valid, Reply::EndlessChunked),
    );
    let config: Arc<rustls::ClientConfig> = ca.client_config();
    let conn =
        rustls::ClientConnection::new(config, "endless.example".try_into().unwrap()).unwrap();
    let sock = TcpStream::connect(srv.addr()).unwrap();
    sock.set_read_timeout(Some(T)).unwrap();
    let mut s = rustls::StreamOwned::new(conn, sock);
    s.write_all(b"GET / HTTP/1.1\r\nHost: endless.example\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 100];
    s.read_exact(&mut buf).unwrap(); // then stop reading
    let held: Vec<TcpStream> = ["stall-tcp.example", "stall-tls.example"]
        .iter()
        .map(|_| TcpStream::connect(srv.addr()).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let t0 = Instant::now();
    drop(srv);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    drop(held);
}
