//! `mta-sts check` and `mta-sts generate` against the loopback DNS, HTTPS and SMTP fixtures:
//! the pass, warning and failure paths of every check, the text and JSON forms, the exit
//! codes, and generated records and policies read back by our own parsers.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::dns::Answer;
use common::https::{CertKind, Reply, Site};
use common::pki::{TestCa, Validity};
use common::smtp::{Behaviour, Group, SmtpServer};
use common::world::World;
use hickory_proto::rr::RecordType;
use mta_sts::check::report::{Check, Report, Verdict, CAN_DELIVER};
use mta_sts::check::run::Checker;
use mta_sts::clock::{Clock, SystemClock};
use mta_sts::dns::HickoryDns;
use mta_sts::policy::Policy;
use mta_sts::{Config, Domain};

const BIN: &str = env!("CARGO_BIN_EXE_mta-sts");
const DAY: u64 = 86_400;

/// A domain published as the README recommends: enforce, two MX hosts, TLSRPT.
const GOOD_POLICY: &str = "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 1209600\n";

/// The fixtures plus SMTP servers on 127.0.0.1, 127.0.0.2, ... sharing one port.
struct Net {
    world: World,
    smtp: Group,
}

impl Net {
    /// Starts the fixtures; `smtp` gives the behaviour of the SMTP server on each loopback
    /// address (None: nothing listens there), with certificates from the world's CA.
    fn start(smtp: impl FnOnce(&TestCa) -> Vec<Option<Behaviour>>) -> Net {
        let world = World::start("mta-sts-check");
        let smtp = Group::start(smtp(&world.ca));
        Net { world, smtp }
    }

    fn config_toml(&self) -> String {
        self.world.config_toml(&format!("[check]\ntest_smtp_port = {}\nsmtp_timeout = \"5s\"\n", self.smtp.port))
    }

    fn config_file(&self) -> std::path::PathBuf {
        let path = self.world.dir.join("check.toml");
        std::fs::write(&path, self.config_toml()).unwrap();
        path
    }

    fn checker_at(&self, clock: Arc<dyn Clock>) -> Checker {
        let config = Config::from_toml(&self.config_toml()).unwrap();
        let dns = Arc::new(HickoryDns::new(&config.dns).unwrap());
        Checker::with_parts(config, dns, clock)
    }

    fn check(&self, domain: &str) -> Report {
        self.checker_at(Arc::new(SystemClock)).check(&Domain::parse(domain).unwrap())
    }

    /// The records of a well-configured domain, with `policy` served; MX hosts
    /// `(preference, name, server index)` on the loopback addresses of the SMTP group.
    fn publish(&self, domain: &str, policy: &str, mx: &[(u16, &str, usize)]) {
        self.world.publish(domain, "20240101T120000Z", Site::policy(policy));
        self.world
            .dns
            .set(&format!("_smtp._tls.{domain}"), Answer::txt(&[format!("v=TLSRPTv1; rua=mailto:tlsrpt@{domain}")]));
        self.world.dns.set(domain, Answer::mx(&mx.iter().map(|(p, h, _)| (*p, *h)).collect::<Vec<_>>()));
        for (_, host, n) in mx {
            self.world.dns.set(host, Answer::A(vec![ipv4(*n)]));
        }
    }

    fn set_txt(&self, name: &str, records: &[&str]) {
        self.world.dns.set(name, Answer::txt(records));
    }
}

fn ipv4(n: usize) -> std::net::Ipv4Addr {
    match Group::ip(n) {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(_) => unreachable!("the group uses IPv4 loopback"),
    }
}

/// Good STARTTLS servers for mx1.example.com and mx2.example.com.
fn good_mx(ca: &TestCa) -> Vec<Option<Behaviour>> {
    vec![
        Some(Behaviour::Starttls(ca.issue(&["mx1.example.com"], Validity::Valid))),
        Some(Behaviour::Starttls(ca.issue(&["mx2.example.com"], Validity::Valid))),
    ]
}

fn good_net() -> Net {
    let net = Net::start(good_mx);
    net.publish("example.com", GOOD_POLICY, &[(10, "mx1.example.com", 0), (20, "mx2.example.com", 1)]);
    net
}

/// The one check of `kind` (about `subject`, if given).
fn find<'a>(report: &'a Report, kind: &str, subject: Option<&str>) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.kind.as_str() == kind && c.subject.as_deref() == subject)
        .unwrap_or_else(|| panic!("no {kind} {subject:?} in\n{}", report.to_text()))
}

fn verdict(report: &Report, kind: &str, subject: Option<&str>) -> Verdict {
    find(report, kind, subject).verdict
}

fn has(report: &Report, kind: &str) -> bool {
    report.checks.iter().any(|c| c.kind.as_str() == kind)
}

/// Runs the binary; returns the exit code, stdout and stderr.
fn mta_sts(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

fn run_check(config: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    mta_sts(&all)
}

// ------------------------------------------------------------------ whole domains, CLI

#[test]
fn a_well_configured_domain_passes_every_check_and_exits_0() {
    let net = good_net();
    let config = net.config_file();
    let (code, out, err) = run_check(&config, &["example.com"]);
    println!("{out}");
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.is_empty(), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("pass    ")), "{out}");
    assert_eq!(*lines.last().unwrap(), format!("pass    verdict example.com: {CAN_DELIVER}"));
    for expected in [
        "pass    sts-record: _mta-sts.example.com has one v=STSv1 record",
        "pass    sts-record-id: id 20240101T120000Z is 1 to 32 letters or digits",
        "pass    tlsrpt-rua: reports go to \"mailto:tlsrpt@example.com\"",
        "pass    policy-host-a: mta-sts.example.com has A 127.0.0.1",
        "pass    policy-host-https ipv4: https://mta-sts.example.com/.well-known/mta-sts.txt answers over ipv4",
        "pass    policy-host-certificate-name: the certificate is valid for mta-sts.example.com",
        "pass    policy-mode: enforce: senders deliver only to listed MX hosts with valid TLS",
        "pass    mx-records: 2 MX records: 10 mx1.example.com, 20 mx2.example.com",
        "pass    mx-match mx2.example.com: matched by mx: mx2.example.com",
        "pass    smtp-starttls mx1.example.com: STARTTLS offered and accepted",
        "pass    smtp-certificate-name mx2.example.com: the certificate is valid for mx2.example.com",
    ] {
        assert!(lines.contains(&expected), "missing {expected:?} in\n{out}");
    }
    assert!(
        lines.iter().any(|l| l.starts_with("pass    smtp-tls mx1.example.com: TLS 1.3 handshake completed")),
        "{out}"
    );
    // Each MX host saw a whole session: greeting, EHLO, STARTTLS, handshake, QUIT.
    for server in &net.smtp.servers {
        assert_eq!((server.connections(), server.starttls(), server.handshakes(), server.quits()), (1, 1, 1, 1));
    }
    // Nothing is cached: a second run fetches the policy again.
    assert_eq!(run_check(&config, &["example.com"]).0, 0);
    assert_eq!(net.world.https.requests("mta-sts.example.com"), 2);
}

#[test]
fn a_broken_domain_fails_with_what_to_fix_and_exits_2() {
    let net = Net::start(|ca| {
        vec![
            Some(Behaviour::Starttls(ca.issue(&["mx1.broken.example"], Validity::Expired))),
            Some(Behaviour::NoStarttls),
            None,
        ]
    });
    let d = "broken.example";
    net.publish(d, "version: STSv1\nmode: enforce\nmx: mx1.broken.example\nmx: mx3.broken.example\nmax_age: 3600\nmx_host: mx2.broken.example\n", &[
        (10, "mx1.broken.example", 0),
        (20, "mx2.broken.example", 1),
        (30, "mx3.broken.example", 2),
    ]);
    net.set_txt(&format!("_mta-sts.{d}"), &["v=STSv1; id=2024-01-01;"]);
    net.set_txt(&format!("_smtp._tls.{d}"), &["v=TLSRPTv1; rua=postmaster@broken.example"]);
    let (code, out, _) = run_check(&net.config_file(), &[d]);
    println!("{out}");
    assert_eq!(code, 2, "{out}");
    for expected in [
        "failure sts-record-id: id \"2024-01-01\" is not 1-32 letters or digits; fix: use an id of 1 to 32 letters and digits, such as the UTC time 20240101T120000Z",
        "failure tlsrpt-rua: rua \"postmaster@broken.example\": no scheme; use mailto: or https:; fix: give each rua as mailto:address or https://host/path, separated by \",\", with \",\" \"!\" and \";\" inside a URI percent-encoded",
        "warning policy-max-age: max_age 3600 s (under a day): a sender's cached policy lapses within a day, leaving a window to strip TLS; fix: raise max_age to weeks, for example 1209600 (RFC 8461 §3.2 expects weeks or more)",
        "warning policy-fields: line 6: unknown field \"mx_host\" is ignored; fix: remove or correct these lines (field names are lower case: version, mode, mx, max_age)",
        "failure mx-match mx2.broken.example: not matched by any mx pattern of the policy (mx1.broken.example, mx3.broken.example); fix: add \"mx: mx2.broken.example\" to the policy file, then change the record id",
        "failure smtp-certificate-expiry mx1.broken.example: the certificate expired on",
        "failure smtp-starttls mx2.broken.example: STARTTLS is not offered, so senders that enforce MTA-STS cannot deliver; fix: enable STARTTLS with a certificate for mx2.broken.example (Postfix: smtpd_tls_security_level = may)",
        "failure smtp-connect mx3.broken.example: cannot connect to port",
        "failure verdict broken.example: senders cannot apply this domain's MTA-STS policy, so mail to it is not protected (sts-record-id: id \"2024-01-01\" is not 1-32 letters or digits), and 5 more failures",
    ] {
        assert!(out.lines().any(|l| l.starts_with(expected)), "missing {expected:?} in\n{out}");
    }
}

#[test]
fn json_form_is_one_object_with_every_check() {
    let net = good_net();
    // Testing mode: warnings only.
    net.world.https.set("mta-sts.example.com", Site::policy(&GOOD_POLICY.replace("enforce", "testing")));
    let (code, out, _) = run_check(&net.config_file(), &["--json", "Example.COM."]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["domain"], "example.com");
    assert_eq!(v["verdict"], "warning");
    assert_eq!(v["summary"], format!("{CAN_DELIVER}, with 1 warning"));
    let checks = v["checks"].as_array().unwrap();
    let mode = checks.iter().find(|c| c["check"] == "policy-mode").unwrap();
    assert_eq!(mode["verdict"], "warning");
    assert!(mode["fix"].as_str().unwrap().contains("switch to mode: enforce"));
    let smtp = checks.iter().find(|c| c["check"] == "smtp-tls" && c["subject"] == "mx2.example.com").unwrap();
    assert_eq!(smtp["verdict"], "pass");
    assert!(smtp.get("fix").is_none());
    assert!(checks.iter().all(|c| c["verdict"] != "failure"));
}

#[test]
fn exit_codes_follow_the_worst_verdict_and_bad_input_is_64() {
    let net = good_net();
    let config = net.config_file();
    assert_eq!(run_check(&config, &["example.com"]).0, 0);
    // A warning only: no TLSRPT record.
    net.world.dns.clear("_smtp._tls.example.com");
    assert_eq!(run_check(&config, &["example.com"]).0, 1);
    // A failure: an MX host the policy does not list.
    net.world.dns.set("example.com", Answer::mx(&[(10, "mx1.example.com"), (20, "mx9.example.com")]));
    net.world.dns.set("mx9.example.com", Answer::A(vec![ipv4(0)]));
    assert_eq!(run_check(&config, &["example.com"]).0, 2);
    let (code, out, err) = run_check(&config, &["exa mple.com"]);
    assert_eq!((code, out.as_str()), (64, ""));
    assert!(err.contains("invalid character"), "{err}");
    assert_eq!(run_check(&config, &["192.0.2.1"]).0, 64);
    assert_eq!(mta_sts(&["check"]).0, 64, "missing DOMAIN");
    assert_eq!(mta_sts(&["check", "--config", "/nonexistent/mta-sts.toml", "example.com"]).0, 78);
}

// ------------------------------------------------------------------ DNS records

#[test]
fn sts_record_checks() {
    let net = Net::start(|_| vec![]);
    let cases: [(&str, &[&str], _); 6] = [
        ("a.example", &["v=STSv1; id=1;"], [Some(Verdict::Pass), Some(Verdict::Pass), Some(Verdict::Pass)]),
        ("b.example", &[], [Some(Verdict::Failure), None, None]),
        ("c.example", &["v=STSv1; id=1;", "v=STSv1; id=2;"], [Some(Verdict::Failure), None, None]),
        ("d.example", &["v=STSv1;id=1;junk"], [Some(Verdict::Pass), Some(Verdict::Failure), None]),
        (
            "e.example",
            &["v=STSv1; id=toolong-with-dash"],
            [Some(Verdict::Pass), Some(Verdict::Pass), Some(Verdict::Failure)],
        ),
        ("f.example", &["v=STSV1; id=1"], [Some(Verdict::Failure), None, None]),
    ];
    for (domain, records, want) in cases {
        if !records.is_empty() {
            net.set_txt(&format!("_mta-sts.{domain}"), records);
        }
        let report = net.check(domain);
        let got: Vec<Option<Verdict>> = ["sts-record", "sts-record-syntax", "sts-record-id"]
            .iter()
            .map(|k| report.checks.iter().find(|c| c.kind.as_str() == *k).map(|c| c.verdict))
            .collect();
        assert_eq!(got, want, "{domain}\n{}", report.to_text());
    }
    let report = net.check("d.example");
    assert_eq!(find(&report, "sts-record-syntax", None).summary, "field \"junk\" is not name=value");
    let report = net.check("f.example");
    assert!(find(&report, "sts-record", None).summary.contains("begins with exactly \"v=STSv1;\""));
    // SERVFAIL is a failed lookup, not a missing record.
    net.world.dns.set_for("_mta-sts.g.example", RecordType::TXT, Answer::ServFail);
    let report = net.check("g.example");
    assert!(find(&report, "sts-record", None).summary.starts_with("the lookup failed: dns:"), "{}", report.to_text());
}

#[test]
fn tlsrpt_record_checks() {
    let net = Net::start(|_| vec![]);
    for (records, want) in [
        (
            &["v=TLSRPTv1; rua=mailto:r@a.example,https://r.a.example/v1"][..],
            [Verdict::Pass, Verdict::Pass, Verdict::Pass],
        ),
        (&["v=TLSRPTv1; rua=mailto:r@a.example;;"][..], [Verdict::Pass, Verdict::Failure, Verdict::Pass]),
        (&["v=TLSRPTv1; rua=http://r.a.example/"][..], [Verdict::Pass, Verdict::Pass, Verdict::Failure]),
    ] {
        net.set_txt("_smtp._tls.a.example", records);
        let report = net.check("a.example");
        let got: Vec<Verdict> = ["tlsrpt-record", "tlsrpt-syntax", "tlsrpt-rua"]
            .iter()
            .map(|k| report.checks.iter().find(|c| c.kind.as_str() == *k).map_or(Verdict::Pass, |c| c.verdict))
            .collect();
        assert_eq!(got, want, "{records:?}\n{}", report.to_text());
    }
    net.world.dns.clear("_smtp._tls.a.example");
    let report = net.check("a.example");
    assert_eq!(verdict(&report, "tlsrpt-record", None), Verdict::Warning);
    assert!(!has(&report, "tlsrpt-syntax"));
    net.set_txt("_smtp._tls.a.example", &["v=TLSRPTv1; rua=mailto:a@a.example", "v=TLSRPTv1; rua=mailto:b@a.example"]);
    assert_eq!(verdict(&net.check("a.example"), "tlsrpt-record", None), Verdict::Failure);
}

// ------------------------------------------------------------------ the policy host

#[test]
fn address_families_of_the_policy_host() {
    let net = good_net();
    let host = "mta-sts.example.com";
    // Also IPv6, where no HTTPS server listens: that family fails.
    net.world.dns.set(host, Answer::Aaaa(vec!["::1".parse().unwrap()]));
    let report = net.check("example.com");
    assert_eq!(verdict(&report, "policy-host-a", None), Verdict::Pass);
    assert_eq!(verdict(&report, "policy-host-aaaa", None), Verdict::Pass);
    assert_eq!(verdict(&report, "policy-host-https", Some("ipv4")), Verdict::Pass);
    let v6 = find(&report, "policy-host-https", Some("ipv6"));
    assert_eq!(v6.verdict, Verdict::Failure, "{}", report.to_text());
    assert!(v6.fix.as_deref().unwrap().contains("port 443"), "{v6:?}");
    // The policy was still read over IPv4.
    assert_eq!(verdict(&report, "policy-syntax", None), Verdict::Pass);

    // IPv6 only: a warning for the missing A record, and nothing to fetch from.
    net.world.dns.remove(host, RecordType::A);
    let report = net.check("example.com");
    assert_eq!(verdict(&report, "policy-host-a", None), Verdict::Warning);
    assert_eq!(verdict(&report, "policy-host-https", Some("ipv6")), Verdict::Failure);
    assert!(!has(&report, "policy-syntax"));

    // Neither.
    net.world.dns.clear(host);
    let report = net.check("example.com");
    assert_eq!(verdict(&report, "policy-host-a", None), Verdict::Failure);
    assert!(!has(&report, "policy-host-aaaa") && !has(&report, "policy-host-https"));

    // An address where nothing listens.
    net.world.dns.set(host, Answer::A(vec!["127.0.0.99".parse().unwrap()]));
    let report = net.check("example.com");
    let v4 = find(&report, "policy-host-https", Some("ipv4"));
    assert_eq!(v4.verdict, Verdict::Failure);
    assert!(v4.summary.contains("cannot connect"), "{v4:?}");
}

#[test]
fn policy_host_certificate_defects_each_get_a_line() {
    let net = good_net();
    let host = "mta-sts.example.com";
    for (cert, kind) in [
        (CertKind::WrongName, "policy-host-certificate-name"),
        (CertKind::Expired, "policy-host-certificate-expiry"),
        (CertKind::NotYetValid, "policy-host-certificate-expiry"),
        (CertKind::Untrusted, "policy-host-certificate-chain"),
    ] {
        net.world.https.set(host, Site::new(cert.clone(), Reply::policy(GOOD_POLICY)));
        let report = net.check("example.com");
        assert_eq!(
            verdict(&report, "policy-host-https", Some("ipv4")),
            Verdict::Failure,
            "{cert:?}\n{}",
            report.to_text()
        );
        for other in ["policy-host-certificate-name", "policy-host-certificate-chain", "policy-host-certificate-expiry"]
        {
            let want = if other == kind { Verdict::Failure } else { Verdict::Pass };
            assert_eq!(verdict(&report, other, None), want, "{cert:?} {other}\n{}", report.to_text());
        }
    }
    // The fixture sends the untrusted CA's certificate after the leaf.
    let report = net.check("example.com");
    let chain = &find(&report, "policy-host-certificate-chain", None).summary;
    assert!(
        chain.starts_with("the server sent 2 certificates ending in the self-signed \"CN=mta-sts test CA"),
        "{chain}"
    );
}

#[test]
fn certificates_about_to_expire_are_warnings() {
    let net = good_net();
    // The fixtures' certificates are valid for 365 days from yesterday.
    let later = SystemClock.now() + 355 * DAY;
    struct At(u64);
    impl Clock for At {
        fn now(&self) -> u64 {
            self.0
        }
    }
    let report = net.checker_at(Arc::new(At(later))).check(&Domain::parse("example.com").unwrap());
    for (kind, subject) in [
        ("policy-host-certificate-expiry", None),
        ("smtp-certificate-expiry", Some("mx1.example.com")),
        ("smtp-certificate-expiry", Some("mx2.example.com")),
    ] {
        let check = find(&report, kind, subject);
        assert_eq!(check.verdict, Verdict::Warning, "{check:?}");
        // 365 days from the issue, 355 days from the check a moment later.
        let days = &check.summary["the certificate expires in ".len()..][..2];
        assert!(["9 ", "10"].contains(&days), "{check:?}");
    }
    assert_eq!(report.verdict, Verdict::Warning);
}

// ------------------------------------------------------------------ the policy file

#[test]
fn http_answers_of_the_policy_host() {
    let net = good_net();
    let host = "mta-sts.example.com";
    let big = format!("{GOOD_POLICY}# {}\n", "x".repeat(70_000));
    for (reply, kind, text) in [
        (Reply::status(404, "not found"), "policy-status", "HTTP 404, expected 200"),
        (
            Reply::redirect(301, "https://www.example.com/"),
            "policy-status",
            "HTTP 301: senders do not follow redirects (RFC 8461 §3.3)",
        ),
        (
            Reply::Response {
                status: 200,
                headers: vec![("Content-Type".into(), "text/html".into())],
                body: GOOD_POLICY.into(),
            },
            "policy-content-type",
            "Content-Type \"text/html\", expected text/plain",
        ),
        (
            Reply::policy(&big),
            "policy-size",
            "the body exceeds 65536 bytes, and senders stop reading there (RFC 8461 §3.3)",
        ),
    ] {
        net.world.https.set(host, Site::new(CertKind::Valid, reply));
        let report = net.check("example.com");
        // The host answered: reachable, and the answer is the policy file's problem.
        assert_eq!(verdict(&report, "policy-host-https", Some("ipv4")), Verdict::Pass, "{}", report.to_text());
        let check = find(&report, kind, None);
        assert_eq!((check.verdict, check.summary.as_str()), (Verdict::Failure, text));
        assert!(!has(&report, "policy-syntax") && !has(&report, "mx-match"), "{}", report.to_text());
    }
}

#[test]
fn policy_syntax_errors_name_the_line() {
    let net = good_net();
    net.world.https.set(
        "mta-sts.example.com",
        Site::policy("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx mx2.example.com\nmax_age: 86400\n"),
    );
    let report = net.check("example.com");
    let check = find(&report, "policy-syntax", None);
    assert_eq!(check.verdict, Verdict::Failure);
    assert_eq!(check.summary, "line 4: expected key: value, found \"mx mx2.example.com\"");
    assert!(report.summary.starts_with("senders cannot apply this domain's MTA-STS policy"), "{}", report.summary);
    net.world.https.set(
        "mta-sts.example.com",
        Site::policy("version: STSv1\nmode: enforce\nmx: mx1.example.com\nmax_age: 2 weeks\n"),
    );
    let report = net.check("example.com");
    assert_eq!(
        find(&report, "policy-syntax", None).summary,
        "line 4: max_age \"2 weeks\" is not a number from 0 to 31557600"
    );
}

#[test]
fn policy_values_get_advice() {
    let net = good_net();
    let host = "mta-sts.example.com";
    for (policy, kind, want) in [
        (GOOD_POLICY.replace("enforce", "testing"), "policy-mode", Verdict::Warning),
        ("version: STSv1\nmode: none\nmax_age: 86400\n".to_owned(), "policy-mode", Verdict::Warning),
        (GOOD_POLICY.replace("1209600", "600"), "policy-max-age", Verdict::Warning),
        (GOOD_POLICY.replace("enforce", "testing").replace("1209600", "600"), "policy-max-age", Verdict::Pass),
        (format!("{GOOD_POLICY}Mode: testing\n"), "policy-fields", Verdict::Warning),
        (format!("{GOOD_POLICY}max_age: 1\n"), "policy-fields", Verdict::Warning),
    ] {
        net.world.https.set(host, Site::policy(&policy));
        let report = net.check("example.com");
        assert_eq!(verdict(&report, kind, None), want, "{policy:?}\n{}", report.to_text());
        assert_ne!(report.verdict, Verdict::Failure, "{}", report.to_text());
    }
    // Mode none has no mx patterns to match against.
    net.world.https.set(host, Site::policy("version: STSv1\nmode: none\nmax_age: 86400\n"));
    assert!(!has(&net.check("example.com"), "mx-match"));
}

// ------------------------------------------------------------------ MX records and hosts

#[test]
fn mx_records_and_matching() {
    let net = good_net();
    // A wildcard pattern matches one label only.
    net.world.https.set(
        "mta-sts.example.com",
        Site::policy("version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: 1209600\n"),
    );
    net.world.dns.set("example.com", Answer::mx(&[(10, "mx1.example.com"), (20, "a.mx2.example.com")]));
    net.world.dns.set("a.mx2.example.com", Answer::A(vec![ipv4(1)]));
    let report = net.check("example.com");
    let m1 = find(&report, "mx-match", Some("mx1.example.com"));
    assert_eq!((m1.verdict, m1.summary.as_str()), (Verdict::Pass, "matched by mx: *.example.com"));
    assert_eq!(verdict(&report, "mx-match", Some("a.mx2.example.com")), Verdict::Failure);
    assert!(
        report.summary.starts_with("senders that enforce MTA-STS cannot deliver to every MX host"),
        "{}",
        report.summary
    );

    // No MX record: the domain itself is the mail host.
    net.world.dns.remove("example.com", RecordType::MX);
    let report = net.check("example.com");
    assert_eq!(verdict(&report, "mx-records", None), Verdict::Warning);
    assert_eq!(verdict(&report, "mx-match", Some("example.com")), Verdict::Failure);

    // A null MX: no mail at all.
    net.world.dns.set("example.com", Answer::mx(&[(0, ".")]));
    let report = net.check("example.com");
    let null = find(&report, "mx-records", None);
    assert_eq!(null.verdict, Verdict::Warning);
    assert!(null.summary.contains("null MX"), "{null:?}");
    assert!(!has(&report, "mx-match") && !has(&report, "smtp-connect"));
}

#[test]
fn smtp_failures_stop_at_the_step_that_failed() {
    let other_ca = TestCa::new();
    let net = Net::start(|ca| {
        vec![
            Some(Behaviour::Reject),
            Some(Behaviour::CloseAtOnce),
            None,
            Some(Behaviour::NoStarttls),
            Some(Behaviour::StarttlsRefused),
            Some(Behaviour::Starttls(ca.issue(&["wrong.invalid"], Validity::Valid))),
            Some(Behaviour::Starttls(ca.issue(&["m7.example.org"], Validity::Expired))),
            Some(Behaviour::Starttls(other_ca.issue(&["m8.example.org"], Validity::Valid))),
            Some(Behaviour::StarttlsTls12(ca.issue(&["m9.example.org"], Validity::Valid))),
        ]
    });
    let mx: Vec<(u16, String, usize)> = (1..=9).map(|n| (n as u16 * 10, format!("m{n}.example.org"), n - 1)).collect();
    let mx_ref: Vec<(u16, &str, usize)> = mx.iter().map(|(p, h, n)| (*p, h.as_str(), *n)).collect();
    net.publish("example.org", "version: STSv1\nmode: enforce\nmx: *.example.org\nmax_age: 1209600\n", &mx_ref);
    let report = net.check("example.org");
    let steps = [
        "smtp-connect",
        "smtp-starttls",
        "smtp-tls",
        "smtp-certificate-name",
        "smtp-certificate-chain",
        "smtp-certificate-expiry",
    ];
    let outline = |host: &str| -> Vec<(&str, Verdict)> {
        report
            .checks
            .iter()
            .filter(|c| c.subject.as_deref() == Some(host) && steps.contains(&c.kind.as_str()))
            .map(|c| (c.kind.as_str(), c.verdict))
            .collect()
    };
    use Verdict::*;
    assert_eq!(outline("m1.example.org"), [("smtp-connect", Failure)]);
    assert_eq!(outline("m2.example.org"), [("smtp-connect", Failure)]);
    assert_eq!(outline("m3.example.org"), [("smtp-connect", Failure)]);
    assert_eq!(outline("m4.example.org"), [("smtp-connect", Pass), ("smtp-starttls", Failure)]);
    assert_eq!(outline("m5.example.org"), [("smtp-connect", Pass), ("smtp-starttls", Failure)]);
    let tls_ok = |name: Verdict, chain: Verdict, expiry: Verdict| {
        vec![
            ("smtp-connect", Pass),
            ("smtp-starttls", Pass),
            ("smtp-tls", Pass),
            ("smtp-certificate-name", name),
            ("smtp-certificate-chain", chain),
            ("smtp-certificate-expiry", expiry),
        ]
    };
    assert_eq!(outline("m6.example.org"), tls_ok(Failure, Pass, Pass));
    assert_eq!(outline("m7.example.org"), tls_ok(Pass, Pass, Failure));
    assert_eq!(outline("m8.example.org"), tls_ok(Pass, Failure, Pass));
    assert_eq!(outline("m9.example.org"), tls_ok(Pass, Pass, Pass));

    let summary = |kind: &str, host: &str| find(&report, kind, Some(host)).summary.clone();
    assert!(
        summary("smtp-connect", "m1.example.org").ends_with("greets with 554 5.3.2 test server: no SMTP service here"),
        "{}",
        report.to_text()
    );
    assert!(
        summary("smtp-connect", "m2.example.org").contains("the server closed the connection"),
        "{}",
        report.to_text()
    );
    assert!(
        summary("smtp-connect", "m3.example.org")
            .starts_with(&format!("cannot connect to port {}: 127.0.0.3:", net.smtp.port)),
        "{}",
        report.to_text()
    );
    assert_eq!(
        summary("smtp-starttls", "m5.example.org"),
        "STARTTLS is offered but answered with 454 4.7.0 TLS not available due to temporary reason"
    );
    assert_eq!(
        summary("smtp-certificate-name", "m6.example.org"),
        "the certificate is for wrong.invalid, not m6.example.org"
    );
    assert_eq!(summary("smtp-tls", "m9.example.org"), "TLS 1.2 handshake completed");
    assert_eq!(summary("smtp-tls", "m8.example.org"), "TLS 1.3 handshake completed");
}

// ------------------------------------------------------------------ generate

/// The quoted TXT text of the record line starting with `name`.
fn txt_of(text: &str, name: &str) -> String {
    let line = text.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    let quoted = &line[line.find('"').unwrap()..];
    quoted.split('"').enumerate().filter(|(n, _)| n % 2 == 1).map(|(_, s)| s).collect()
}

/// The policy file: every line that is neither a comment nor a record.
fn policy_of(text: &str) -> String {
    text.lines().filter(|l| !l.starts_with(';') && !l.contains(" IN TXT ")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn generate_output_parses_back_and_passes_the_check() {
    let (code, out, err) = mta_sts(&[
        "generate",
        "--domain",
        "example.com",
        "--mode",
        "enforce",
        "--max-age",
        "1209600",
        "--mx",
        "mx1.example.com",
        "mx2.example.com",
        "--rua",
        "mailto:tlsrpt@example.com",
    ]);
    println!("{out}");
    assert_eq!(code, 0, "{err}");
    let sts = txt_of(&out, "_mta-sts.example.com.");
    let record = mta_sts::record::parse(sts.as_bytes()).unwrap();
    assert_eq!(record.id.len(), 16);
    assert!(record.id.starts_with("20") && record.id.contains('T') && record.id.ends_with('Z'), "{}", record.id);
    let tlsrpt = txt_of(&out, "_smtp._tls.example.com.");
    assert_eq!(mta_sts::tlsrpt::parse(tlsrpt.as_bytes()).unwrap().rua.len(), 1);
    let policy_text = policy_of(&out);
    let policy = Policy::parse(policy_text.as_bytes()).unwrap();
    assert_eq!((policy.mode.as_str(), policy.max_age, policy.mx.len()), ("enforce", 1_209_600, 2));

    // Published as printed, it passes every check.
    let net = Net::start(good_mx);
    net.publish("example.com", &policy_text, &[(10, "mx1.example.com", 0), (20, "mx2.example.com", 1)]);
    net.set_txt("_mta-sts.example.com", &[&sts]);
    net.set_txt("_smtp._tls.example.com", &[&tlsrpt]);
    let report = net.check("example.com");
    assert_eq!(report.verdict, Verdict::Pass, "{}", report.to_text());
}

#[test]
fn generate_defaults_and_bad_input() {
    let (code, out, _) = mta_sts(&["generate", "--mx", "*.mail.example.net"]);
    assert_eq!(code, 0);
    let policy = Policy::parse(policy_of(&out).as_bytes()).unwrap();
    assert_eq!((policy.mode.as_str(), policy.max_age), ("testing", 604_800));
    assert_eq!(policy.mx[0].to_string(), "*.mail.example.net");
    assert!(mta_sts::record::parse(txt_of(&out, "_mta-sts ").as_bytes()).is_ok(), "{out}");
    assert!(!out.contains("_smtp._tls "), "no --rua, no TLSRPT record:\n{out}");
    for bad in [
        &["generate"][..],
        &["generate", "--mx", "192.0.2.1"],
        &["generate", "--mx", "mx.example.com."],
        &["generate", "--mx", "mx.example.com", "--mode", "strict"],
        &["generate", "--mx", "mx.example.com", "--max-age", "31557601"],
        &["generate", "--mx", "mx.example.com", "--rua", "tlsrpt@example.com"],
        &["generate", "--mx", "mx.example.com", "--domain", "exa mple.com"],
    ] {
        let (code, out, err) = mta_sts(bad);
        assert_eq!((code, out.as_str()), (64, ""), "{bad:?}: {err}");
        assert!(!err.is_empty());
    }
}

// ------------------------------------------------------------------ the SMTP fixture

#[test]
fn smtp_fixture_survives_hostile_clients() {
    let ca = TestCa::new();
    let server = SmtpServer::start(Behaviour::Starttls(ca.issue(&["mx.test"], Validity::Valid)));
    let long = vec![b'a'; 10_000];
    for junk in [&b"\xff\xfe\x00garbage\r\n"[..], &long, b"STARTTLS\r\n\x16\x03\x01junk", b"EHLO", b""] {
        let mut sock = TcpStream::connect(server.addr()).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = sock.write_all(junk);
        let _ = sock.shutdown(Shutdown::Write);
        let mut out = Vec::new();
        let _ = sock.read_to_end(&mut out);
        assert!(out.starts_with(b"220 "), "{:?}", String::from_utf8_lossy(&out));
    }
    // Pipelined bytes after STARTTLS were refused: no handshake.
    assert_eq!((server.starttls(), server.handshakes()), (1, 0));

    // A normal session still works.
    let mut sock = TcpStream::connect(server.addr()).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sock.write_all(b"EHLO client.test\r\nQUIT\r\n").unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("220 ") && out.contains("250-STARTTLS\r\n") && out.ends_with("221 2.0.0 bye\r\n"), "{out}");
    assert_eq!((server.connections(), server.quits()), (6, 1));
}
