//! End-to-end deliveries through a real Exim running the shipped `exim/` configurations
//! (issue 7): DNS on 127.0.0.1:53 (the namespace's resolver), policy hosts over HTTPS with a
//! test CA, and receiving SMTP servers on port 25 of 127.0.0.10 and up, all inside the
//! sandbox's own network namespace. Results are read from Exim's main log, its queue and what
//! each receiving server got.
//!
//! | scenario | domain | expected |
//! |---|---|---|
//! | 1 enforce, MX matches, valid certificate | enforce.test | delivered, `CV=yes` |
//! | 2 enforce, certificate for another name | badcert.test | deferred, no MAIL command sent |
//! | 3 enforce, MX without STARTTLS | notls.test | deferred, no MAIL command sent |
//! | 4 enforce, MX not in the policy | spoofed.test | that host never contacted, deferred, queued |
//! | 4 enforce, a spoofed MX before a good one | mixed.test | delivered to the good one only |
//! | 5 testing, certificate for another name | testing.test | delivered, violation logged |
//! | 6 mode none; no policy | none.test, nopolicy.test | delivered as plain Exim would |
//! | 7 policy host down, valid cached policy | cached.test | still enforced |
//! | 8 policy host down, nothing cached | fresh.test | delivered, with a log line |
//! | lookup fails temporarily | tempfail.test | deferred |
//! | the daemon is down (`${readsocket}`) | enforce.test | deferred |
//!
//! The `${dlfunc}` variant runs them all; the `${run}` and `${readsocket}` variants run 1, 2,
//! 4, 8 and the temporary failure.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use hickory_proto::rr::RecordType;

use crate::common::dns::{Answer, DnsServer};
use crate::common::https::{HttpsServer, Site};
use crate::common::pki::{TestCa, Validity};
use crate::common::smtp::{Behaviour, SmtpServer};
use crate::daemon::Daemon;
use crate::sandbox::{self, Sandbox};

#[test]
fn dlfunc_variant_enforces_mta_sts_in_real_deliveries() {
    let Some(sb) = sandbox::enter(module_path!(), "dlfunc_variant_enforces_mta_sts_in_real_deliveries") else { return };
    let t = Test::start(&sb, Variant::Dlfunc);
    t.enforce_with_a_matching_mx_and_a_valid_certificate_delivers();
    t.enforce_with_a_certificate_for_another_name_defers();
    t.enforce_without_starttls_defers();
    t.enforce_never_contacts_an_mx_outside_the_policy();
    t.testing_delivers_and_logs_the_violation();
    t.none_and_no_policy_deliver_as_plain_exim();
    t.policy_host_down_with_a_cached_policy_still_enforces();
    t.policy_host_down_with_nothing_cached_delivers_and_logs();
    t.temporary_lookup_failure_defers();
    t.finish();
}

#[test]
fn run_variant_enforces_mta_sts_in_real_deliveries() {
    let Some(sb) = sandbox::enter(module_path!(), "run_variant_enforces_mta_sts_in_real_deliveries") else { return };
    let t = Test::start(&sb, Variant::Run);
    t.enforce_with_a_matching_mx_and_a_valid_certificate_delivers();
    t.enforce_with_a_certificate_for_another_name_defers();
    t.enforce_never_contacts_an_mx_outside_the_policy();
    t.policy_host_down_with_nothing_cached_delivers_and_logs();
    t.temporary_lookup_failure_defers();
    t.finish();
}

#[test]
fn readsocket_variant_enforces_mta_sts_in_real_deliveries() {
    let Some(sb) = sandbox::enter(module_path!(), "readsocket_variant_enforces_mta_sts_in_real_deliveries") else {
        return;
    };
    let t = Test::start(&sb, Variant::Readsocket);
    t.enforce_with_a_matching_mx_and_a_valid_certificate_delivers();
    t.enforce_with_a_certificate_for_another_name_defers();
    t.enforce_never_contacts_an_mx_outside_the_policy();
    t.policy_host_down_with_nothing_cached_delivers_and_logs();
    t.temporary_lookup_failure_defers();
    t.daemon_down_defers();
    t.finish();
}

/// How the shipped configuration looks policies up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `exim/mta-sts-dlfunc.conf`: libmtasts.so through `${dlfunc}`.
    Dlfunc,
    /// `exim/mta-sts-run.conf`: `mta-sts query --format exim` through `${run}`.
    Run,
    /// `exim/mta-sts-readsocket.conf`: `mta-sts serve`'s line mode through `${readsocket}`.
    Readsocket,
}

impl Variant {
    fn file(self) -> &'static str {
        match self {
            Variant::Dlfunc => "mta-sts-dlfunc.conf",
            Variant::Run => "mta-sts-run.conf",
            Variant::Readsocket => "mta-sts-readsocket.conf",
        }
    }
}

/// What a receiving server does.
#[derive(Clone, Copy)]
enum Mx {
    /// STARTTLS with a certificate for its name from the test CA.
    Good,
    /// STARTTLS with a certificate from the test CA for another name.
    WrongName,
    /// No STARTTLS.
    NoTls,
}

/// The receiving servers: name, last octet of the address, behaviour.
const MX_HOSTS: [(&str, u8, Mx); 10] = [
    ("mx1.enforce.test", 10, Mx::Good),
    ("mx.badcert.test", 11, Mx::WrongName),
    ("mx.notls.test", 12, Mx::NoTls),
    ("evil.attacker.test", 13, Mx::Good),
    ("mx.testing.test", 14, Mx::WrongName),
    ("mx.none.test", 15, Mx::NoTls),
    ("mx.nopolicy.test", 16, Mx::WrongName),
    ("mx.cached.test", 17, Mx::Good),
    ("mx.fresh.test", 18, Mx::NoTls),
    ("mx.mixed.test", 19, Mx::Good),
];

/// An address where nothing listens: a policy host that is down.
const DOWN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 99);

/// The servers of the test network.
struct Net {
    dns: DnsServer,
    https: HttpsServer,
    ca: TestCa,
    mx: Vec<(&'static str, SmtpServer)>,
}

impl Net {
    fn start() -> Net {
        let dns = DnsServer::start_on(SocketAddr::from(([127, 0, 0, 1], 53))).expect("bind 127.0.0.1:53");
        let ca = TestCa::new();
        let https = HttpsServer::start(&ca);
        let mut mx = Vec::new();
        for (name, octet, kind) in MX_HOSTS {
            let ip = Ipv4Addr::new(127, 0, 0, octet);
            let behaviour = match kind {
                Mx::Good => Behaviour::Starttls(ca.issue(&[name], Validity::Valid)),
                Mx::WrongName => Behaviour::Starttls(ca.issue(&["wrong.invalid"], Validity::Valid)),
                Mx::NoTls => Behaviour::NoStarttls,
            };
            let server = SmtpServer::start_on(SocketAddr::from((ip, 25)), behaviour).expect("bind port 25");
            dns.set(name, Answer::A(vec![ip]));
            mx.push((name, server));
        }
        let net = Net { dns, https, ca, mx };
        let enforce = |mx: &[&str]| policy("enforce", mx);
        net.domain("enforce.test", Some(&enforce(&["mx1.enforce.test"])), &[(10, "mx1.enforce.test")]);
        net.domain("badcert.test", Some(&enforce(&["mx.badcert.test"])), &[(10, "mx.badcert.test")]);
        net.domain("notls.test", Some(&enforce(&["mx.notls.test"])), &[(10, "mx.notls.test")]);
        net.domain("spoofed.test", Some(&enforce(&["mx.spoofed.test"])), &[(10, "evil.attacker.test")]);
        net.domain(
            "mixed.test",
            Some(&enforce(&["*.mixed.test"])),
            &[(5, "evil.attacker.test"), (10, "mx.mixed.test")],
        );
        net.domain("testing.test", Some(&policy("testing", &["mx.testing.test"])), &[(10, "mx.testing.test")]);
        net.domain("none.test", Some(&policy("none", &[])), &[(10, "mx.none.test")]);
        net.domain("nopolicy.test", None, &[(10, "mx.nopolicy.test")]);
        net.domain("cached.test", Some(&enforce(&["mx.cached.test"])), &[(10, "mx.cached.test")]);
        // A record and a policy host that is down from the start: nothing can be fetched.
        net.domain("fresh.test", Some(&enforce(&["mx.fresh.test"])), &[(10, "mx.fresh.test")]);
        net.dns.set("mta-sts.fresh.test", Answer::A(vec![DOWN]));
        net.domain("tempfail.test", None, &[(10, "mx.none.test")]);
        net.dns.set_for("_mta-sts.tempfail.test", RecordType::TXT, Answer::ServFail);
        net
    }

    /// Publishes a domain: its MX records, and with a policy its `_mta-sts` record (id 1) and
    /// policy host.
    fn domain(&self, domain: &str, policy: Option<&str>, mx: &[(u16, &str)]) {
        self.dns.set(domain, Answer::mx(mx));
        if let Some(policy) = policy {
            self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&["v=STSv1; id=1;"]));
            self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec![Ipv4Addr::LOCALHOST]));
            self.https.set(&format!("mta-sts.{domain}"), Site::policy(policy));
        }
    }

    fn mx(&self, name: &str) -> &SmtpServer {
        &self.mx.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no MX host {name}")).1
    }

    /// The mta-sts configuration: the namespace's resolver, the test CA, the HTTPS server's
    /// port, and the cache file that every Exim process shares.
    fn config(&self, cache: &Path, extra: &str) -> String {
        format!(
            "[dns]\ntimeout = \"3s\"\n\
             [fetch]\ntimeout = \"3s\"\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n\
             [cache]\npath = \"{}\"\n\
             # Check the TXT record on every lookup, so that scenario 7 sees the new id.\n\
             recheck_interval = \"0s\"\n{extra}",
            self.ca.ca_file().display(),
            self.https.port(),
            cache.display(),
        )
    }
}

fn policy(mode: &str, mx: &[&str]) -> String {
    let mx: String = mx.iter().map(|m| format!("mx: {m}\n")).collect();
    format!("version: STSv1\nmode: {mode}\n{mx}max_age: 86400\n")
}

/// One variant's sending Exim and the network it sends into.
struct Test<'a> {
    sb: &'a Sandbox,
    net: Net,
    variant: Variant,
    conf: PathBuf,
    mta_sts_config: PathBuf,
    log: PathBuf,
    daemon: RefCell<Option<Daemon>>,
}

impl<'a> Test<'a> {
    fn start(sb: &'a Sandbox, variant: Variant) -> Test<'a> {
        let net = Net::start();
        let spool = sb.exim_dir("spool");
        let log = sb.exim_dir("log");
        let cache = sb.exim_dir("cache");
        let mta_sts_config = sb.config("mta-sts.toml", &net.config(&cache.join("cache.db"), ""));
        let socket = sb.work.join("exim.sock");
        let daemon = (variant == Variant::Readsocket).then(|| {
            // The daemon keeps its own cache; the socket is for the Exim group only.
            let extra = format!(
                "[serve]\n[[serve.socketmap]]\naddress = \"127.0.0.1:0\"\n\
                 [[serve.line]]\npath = \"{}\"\ngroup = \"Debian-exim\"\nmode = 0o660\n",
                socket.display()
            );
            let config = sb.config("daemon.toml", &net.config(&sb.work.join("daemon-cache.db"), &extra));
            Daemon::start(&config)
        });
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("exim").join(variant.file());
        // mta-integration.md §1.6: the smallest main section for a test; the shipped file
        // unchanged after it, its paths given as macros.
        let conf = sb.config(
            "exim.conf",
            &format!(
                "primary_hostname = sender.test\n\
                 qualify_domain = sender.test\n\
                 domainlist local_domains = @ : localhost\n\
                 keep_environment = MTA_STS_CONFIG\n\
                 spool_directory = {spool}\n\
                 log_file_path = {log}/%slog\n\
                 exim_path = {exim}\n\
                 log_selector = +tls_sni\n\
                 MTA_STS_LIB = {lib}\n\
                 MTA_STS_HELPER = {helper}\n\
                 MTA_STS_SOCKET = {socket}\n\
                 MTA_STS_CA = {ca}\n\
                 .include {shipped}\n",
                spool = spool.display(),
                log = log.display(),
                exim = sb.exim.display(),
                lib = sb.lib.display(),
                helper = sb.helper.display(),
                socket = socket.display(),
                ca = net.ca.ca_file().display(),
                shipped = shipped.display(),
            ),
        );
        let out = sb.command(&conf, None).arg("-bV").output().unwrap();
        let version = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "exim -bV failed:\n{version}{}", String::from_utf8_lossy(&out.stderr));
        if variant == Variant::Dlfunc {
            assert!(version.contains("Expand_dlfunc"), "not a heavy build:\n{version}");
        }
        println!("{} with {}", version.lines().next().unwrap_or_default(), variant.file());
        Test { sb, net, variant, conf, mta_sts_config, log, daemon: RefCell::new(daemon) }
    }

    /// Submits one message to `rcpt` and lets Exim deliver it at once (`-odi`).
    fn send(&self, rcpt: &str) {
        let message = format!("From: sender@sender.test\nTo: {rcpt}\nSubject: MTA-STS test\n\nTo {rcpt}.\n");
        let mut cmd = self.sb.command(&self.conf, Some(&self.mta_sts_config));
        cmd.args(["-odi", "-f", "sender@sender.test", rcpt]);
        let out = Sandbox::run(&mut cmd, &message);
        assert!(
            out.status.success(),
            "exim -odi {rcpt}: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn mainlog(&self) -> String {
        std::fs::read_to_string(self.log.join("mainlog")).unwrap_or_default()
    }

    /// The main log lines about `rcpt`, with the whole log for failure messages.
    fn lines(&self, rcpt: &str) -> (Vec<String>, String) {
        let log = self.mainlog();
        let lines = log.lines().filter(|l| l.contains(rcpt)).map(str::to_owned).collect();
        (lines, log)
    }

    /// The delivery line of `rcpt`; fails unless it was delivered.
    fn delivered(&self, rcpt: &str) -> String {
        let (lines, log) = self.lines(rcpt);
        let delivery = lines.iter().find(|l| l.contains(&format!(" => {rcpt} ")));
        delivery.unwrap_or_else(|| panic!("{rcpt} not delivered ({:?}):\n{log}", self.variant)).clone()
    }

    /// The deferral line of `rcpt`; fails unless it was deferred, is still queued and was
    /// neither delivered nor bounced.
    fn deferred(&self, rcpt: &str) -> String {
        let (lines, log) = self.lines(rcpt);
        let deferral = lines.iter().find(|l| l.contains(&format!(" == {rcpt} ")));
        let deferral = deferral.unwrap_or_else(|| panic!("{rcpt} not deferred ({:?}):\n{log}", self.variant)).clone();
        for bad in [" => ", " ** ", " -> "] {
            assert!(!lines.iter().any(|l| l.contains(&format!("{bad}{rcpt}"))), "{rcpt}: {bad} in\n{log}");
        }
        assert!(!log.contains(" <= <> "), "a bounce was generated:\n{log}");
        let queue = self.sb.command(&self.conf, None).arg("-bp").output().unwrap();
        let queue = String::from_utf8_lossy(&queue.stdout);
        assert!(queue.contains(rcpt), "{rcpt} is not queued:\n{queue}\n{log}");
        deferral
    }

    fn received_by(&self, host: &str) -> Vec<crate::common::smtp::Received> {
        self.net.mx(host).received()
    }

    /// Scenario 1.
    fn enforce_with_a_matching_mx_and_a_valid_certificate_delivers(&self) {
        let rcpt = "s1@enforce.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts H=mx1.enforce.test [127.0.0.10]"), "{line}");
        assert!(line.contains(" X=TLS"), "{line}");
        assert!(line.contains(" CV=yes"), "{line}");
        let got = self.received_by("mx1.enforce.test");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].tls && got[0].rcpt_to == [rcpt], "{got:?}");
        // tls_sni = $host: the MX host name, as RFC 8461 section 4.2 wants it checked.
        assert_eq!(got[0].sni.as_deref(), Some("mx1.enforce.test"));
        // What exim/README.md tells the administrator to check with -bt.
        let out = self.sb.command(&self.conf, Some(&self.mta_sts_config)).args(["-bt", rcpt]).output().unwrap();
        let routed = String::from_utf8_lossy(&out.stdout);
        assert!(routed.contains("router = mta_sts, transport = remote_smtp_mtasts"), "{routed}");
        assert!(routed.contains("host mx1.enforce.test [127.0.0.10] MX=10"), "{routed}");
    }

    /// Scenario 2.
    fn enforce_with_a_certificate_for_another_name_defers(&self) {
        let rcpt = "s2@badcert.test";
        self.send(rcpt);
        let line = self.deferred(rcpt);
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts defer"), "{line}");
        assert!(line.contains("H=mx.badcert.test [127.0.0.11]"), "{line}");
        let mx = self.net.mx("mx.badcert.test");
        assert!(mx.connections() >= 1, "the MX host was not even tried");
        // Nothing in the clear: no MAIL command at all, so no message either.
        assert_eq!((mx.mail_commands(), mx.received().len()), (0, 0), "{line}");
    }

    /// Scenario 3.
    fn enforce_without_starttls_defers(&self) {
        let rcpt = "s3@notls.test";
        self.send(rcpt);
        let line = self.deferred(rcpt);
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts defer"), "{line}");
        assert!(line.contains("H=mx.notls.test [127.0.0.12]"), "{line}");
        let mx = self.net.mx("mx.notls.test");
        assert!(mx.connections() >= 1, "the MX host was not even tried");
        assert_eq!((mx.mail_commands(), mx.received().len()), (0, 0), "{line}");
    }

    /// Scenario 4, and a spoofed MX listed before a good one.
    fn enforce_never_contacts_an_mx_outside_the_policy(&self) {
        let rcpt = "s4@spoofed.test";
        self.send(rcpt);
        let line = self.deferred(rcpt);
        assert!(line.contains(" R=mta_sts_nomatch defer"), "{line}");
        assert!(line.contains("MTA-STS: no MX host of spoofed.test matches its enforced policy"), "{line}");
        let rcpt = "s4@mixed.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts H=mx.mixed.test [127.0.0.19]"), "{line}");
        assert!(line.contains(" CV=yes"), "{line}");
        assert_eq!(self.net.mx("evil.attacker.test").connections(), 0, "the spoofed MX was contacted");
    }

    /// Scenario 5.
    fn testing_delivers_and_logs_the_violation(&self) {
        let rcpt = "s5@testing.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts_testing H=mx.testing.test [127.0.0.14]"), "{line}");
        assert!(line.contains(" CV=no"), "{line}");
        let log = self.mainlog();
        let violation = log.lines().find(|l| l.contains("MTA-STS testing-mode violation for testing.test: "));
        let violation = violation.unwrap_or_else(|| panic!("no violation logged:\n{log}"));
        assert!(violation.contains("host=mx.testing.test [127.0.0.14] tls=TLS"), "{violation}");
        assert!(violation.ends_with(" verified=0"), "{violation}");
        let got = self.received_by("mx.testing.test");
        assert!(got.len() == 1 && got[0].tls, "{got:?}");
    }

    /// Scenario 6.
    fn none_and_no_policy_deliver_as_plain_exim(&self) {
        let rcpt = "s6@none.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=dnslookup T=remote_smtp H=mx.none.test [127.0.0.15]"), "{line}");
        let got = self.received_by("mx.none.test");
        assert!(got.len() == 1 && !got[0].tls, "{got:?}");
        // An MX host whose certificate names another host: plain Exim uses TLS, unverified.
        let rcpt = "s6@nopolicy.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=dnslookup T=remote_smtp H=mx.nopolicy.test [127.0.0.16]"), "{line}");
        assert!(line.contains(" CV=no"), "{line}");
        let got = self.received_by("mx.nopolicy.test");
        assert!(got.len() == 1 && got[0].tls, "{got:?}");
        // Neither has a reason to log: mode none is a policy's own choice, and no record is
        // the common case.
        for domain in ["none.test", "nopolicy.test"] {
            let log = self.mainlog();
            assert!(!log.contains(&format!("delivering to {domain} without a policy")), "{log}");
        }
    }

    /// Scenario 7: the policy is cached by a first delivery; then the policy host goes down, the
    /// record announces a new id (so the policy must be fetched again, and cannot be), and the
    /// MX record is spoofed. The cached policy still applies: the spoofed host is refused, the
    /// real one is used with a verified certificate.
    fn policy_host_down_with_a_cached_policy_still_enforces(&self) {
        self.send("s7a@cached.test");
        let line = self.delivered("s7a@cached.test");
        assert!(line.contains(" T=remote_smtp_mtasts H=mx.cached.test [127.0.0.17]") && line.contains(" CV=yes"));
        assert_eq!(self.net.https.requests("mta-sts.cached.test"), 1);

        self.net.dns.set("mta-sts.cached.test", Answer::A(vec![DOWN]));
        self.net.dns.set("_mta-sts.cached.test", Answer::txt(&["v=STSv1; id=2;"]));
        self.net.dns.set("cached.test", Answer::mx(&[(10, "evil.attacker.test")]));
        self.send("s7b@cached.test");
        let line = self.deferred("s7b@cached.test");
        assert!(line.contains(" R=mta_sts_nomatch defer"), "{line}");
        assert_eq!(self.net.mx("evil.attacker.test").connections(), 0, "the spoofed MX was contacted");
        // The lookup saw the new id and tried to fetch it: the cache file every Exim process
        // shares says so, and still holds the policy of id 1.
        let out = Command::new(&self.sb.helper)
            .args(["cache", "--config"])
            .arg(&self.mta_sts_config)
            .args(["show", "cached.test"])
            .output()
            .unwrap();
        let entry = String::from_utf8_lossy(&out.stdout);
        println!("cache entry: {entry}");
        assert!(entry.contains(r#""id":"1""#), "{entry}");
        assert!(entry.contains(r#""failed_fetch":{"record_id":"2""#), "{entry}");

        self.net.dns.set("cached.test", Answer::mx(&[(10, "mx.cached.test")]));
        self.send("s7c@cached.test");
        let line = self.delivered("s7c@cached.test");
        assert!(line.contains(" R=mta_sts T=remote_smtp_mtasts H=mx.cached.test [127.0.0.17]"), "{line}");
        assert!(line.contains(" CV=yes"), "{line}");
        assert_eq!(self.net.https.requests("mta-sts.cached.test"), 1, "the policy host was reached");
    }

    /// Scenario 8.
    fn policy_host_down_with_nothing_cached_delivers_and_logs(&self) {
        let rcpt = "s8@fresh.test";
        self.send(rcpt);
        let line = self.delivered(rcpt);
        assert!(line.contains(" R=dnslookup T=remote_smtp H=mx.fresh.test [127.0.0.18]"), "{line}");
        let log = self.mainlog();
        let note = log.lines().find(|l| l.contains("MTA-STS: delivering to fresh.test without a policy: "));
        let note = note.unwrap_or_else(|| panic!("no log line for fresh.test:\n{log}"));
        // The lookup's own reason, in every variant: the policy host could not be reached.
        assert!(
            note.ends_with(
                " MTA-STS: delivering to fresh.test without a policy: \
                 fetch: cannot connect to policy host: 'Connection refused (os error 111)'"
            ),
            "{note}"
        );
    }

    /// A temporary failure of the lookup with nothing cached defers; it never means "no policy".
    fn temporary_lookup_failure_defers(&self) {
        let rcpt = "s9@tempfail.test";
        self.send(rcpt);
        let line = self.deferred(rcpt);
        // The same router and text in every variant.
        let want = " R=mta_sts_defer defer (-1): MTA-STS policy lookup failed temporarily for tempfail.test: ";
        assert!(line.contains(want), "{line}");
        assert!(line.contains("dns: _mta-sts.tempfail.test.: server answered Server Failure"), "{line}");
    }

    /// `${readsocket}` with the daemon stopped: the lookup gives `mode=defer` and the address is
    /// deferred, never delivered without its policy.
    fn daemon_down_defers(&self) {
        drop(self.daemon.borrow_mut().take());
        let rcpt = "s10@enforce.test";
        self.send(rcpt);
        let line = self.deferred(rcpt);
        assert!(
            line.ends_with(" R=mta_sts_defer defer (-1): MTA-STS policy lookup failed temporarily for enforce.test"),
            "{line}"
        );
        assert_eq!(self.received_by("mx1.enforce.test").len(), 1, "delivered without the daemon");
    }

    /// Checks what must hold after every scenario: the spoofed MX host was never contacted, and
    /// Exim's panic log holds nothing but the expected note about `-C`.
    fn finish(&self) {
        assert_eq!(self.net.mx("evil.attacker.test").connections(), 0, "the spoofed MX was contacted");
        let panic = std::fs::read_to_string(self.log.join("paniclog")).unwrap_or_default();
        let unexpected: Vec<&str> =
            panic.lines().filter(|l| !l.contains("exim user lost privilege for using -C option")).collect();
        assert!(unexpected.is_empty(), "panic log:\n{panic}");
        println!("{:?}: main log\n{}", self.variant, self.mainlog());
    }
}
