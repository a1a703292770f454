//! Side-by-side benchmark against postfix-mta-sts-resolver (issue #8): both daemons, one run,
//! one machine, the same DNS and HTTPS servers, alternating rounds, medians and ratios.
//!
//! One command, as root: `bash benches/compare/run.sh`. It installs postfix-mta-sts-resolver
//! 1.5.1 from PyPI into `target/bench-compare/venv` (their side is skipped, with the reason in
//! the table, when that fails), builds `libmtasts.so`, and runs `cargo bench --bench compare`,
//! which writes `docs/benchmarks.md` and prints it. About five minutes on 2 cores.
//!
//! The process first moves into a private network and mount namespace (see [`netns`]): loopback
//! only, with a resolv.conf naming 127.0.0.1. There the DNS fixture answers on 127.0.0.1:53 and
//! the HTTPS fixture (test CA, `SSL_CERT_FILE`) on 127.0.0.1:443, so that both daemons resolve
//! and fetch exactly as in production. Then, for ours (`mta-sts serve`, SQLite cache) and
//! theirs (`mta-sts-daemon` with its `internal` and with its `sqlite` cache), side by side in
//! every round, in a rotating order:
//! - cached socketmap lookups per second: 1 and 8 connections, one request at a time (as
//!   Postfix and Sendmail ask) and pipelined;
//! - cold: 1,000 distinct domains asked at once on 1,000 connections, time until all answered;
//! - stampede: 100 concurrent requests for one cold domain, HTTPS requests at its policy host;
//! - one-shot: a fresh process answering one domain (`mta-sts query`, `mta-sts-query`);
//! - memory: VmRSS of a daemon holding 100,000 cached policies;
//!
//! and for ours alone, `mta_sts_lookup` calls per second through `dlopen`ed `libmtasts.so`, and
//! `mta-sts stdio` lines per second.
//!
//! Under `cargo test` (no `--bench` argument) it is a smoke run of a few seconds with tiny
//! counts: their side only if the virtualenv already exists, and without root (no namespace) our
//! side alone on random loopback ports. Its table goes to `target/bench-compare/smoke.md`.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/daemon/mod.rs"]
mod daemon;

mod client;
mod netns;
mod report;
mod theirs;

use std::collections::BTreeMap;
use std::ffi::{c_int, c_uchar, CStr, CString};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use client::{burst, load, request, Plan};
use common::dns::{Answer, DnsServer};
use common::https::{HttpsServer, Site};
use common::pki::{TempDir, TestCa};
use daemon::{Daemon, BIN};
use report::Samples;
use theirs::{PyDaemon, Theirs};

/// Set in the child process that measures the library (see [`dlfunc_child`]).
const ROLE_VAR: &str = "MTA_STS_COMPARE_ROLE";
/// Where the harness keeps the virtualenv and the smoke table, under the target directory.
const WORK_DIR: &str = "bench-compare";
/// Policies held for the memory row.
const MEMORY_POLICIES: usize = 100_000;
/// Requests in flight per connection when pipelining (upstream answers up to 128 per connection).
const WINDOW: usize = 64;
/// The record id every synthetic domain publishes.
const RECORD_ID: &str = "20250101";

/// How much of everything one run does.
struct Scale {
    /// Rounds of the cheap measurements (cached throughput, one-shot pairs).
    rounds: usize,
    /// Rounds of the cold and stampede bursts.
    burst_rounds: usize,
    /// Length of one cached-throughput measurement.
    slice: Duration,
    /// Warm domains the cached lookups cycle through.
    warm: usize,
    /// Domains of one cold burst.
    cold: usize,
    /// Requests of one stampede.
    stampede: usize,
    /// Fresh processes per one-shot variant and round.
    oneshot: usize,
    /// Policies ours holds for the memory row.
    memory_ours: usize,
    /// Policies both fetch for the memory rows (theirs' rest to 100,000 is extrapolated).
    memory_fetch: usize,
    /// Lines per `mta-sts stdio` run.
    stdio_lines: usize,
}

const FULL: Scale = Scale {
    rounds: 10,
    burst_rounds: 3,
    slice: Duration::from_millis(600),
    warm: 64,
    cold: 1000,
    stampede: 100,
    oneshot: 4,
    memory_ours: MEMORY_POLICIES,
    memory_fetch: 18_000,
    stdio_lines: 300_000,
};

const SMOKE: Scale = Scale {
    rounds: 1,
    burst_rounds: 1,
    slice: Duration::from_millis(100),
    warm: 4,
    cold: 20,
    stampede: 10,
    oneshot: 1,
    memory_ours: 500,
    memory_fetch: 60,
    stdio_lines: 2000,
};

/// The daemons compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ours,
    TheirsInternal,
    TheirsSqlite,
    /// [`client::responder`]: no daemon, the ceiling of the machine and the client.
    Ceiling,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Ours => "ours",
            Kind::TheirsInternal => "theirs (internal cache)",
            Kind::TheirsSqlite => "theirs (sqlite cache)",
            Kind::Ceiling => "trivial responder",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Kind::Ours => "o",
            Kind::TheirsInternal => "i",
            Kind::TheirsSqlite => "s",
            Kind::Ceiling => "c",
        }
    }
}

/// Where the fixtures listen.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Net {
    /// The private namespace: DNS on 127.0.0.1:53 via resolv.conf, HTTPS on 443.
    Private,
    /// No namespace (not root): random loopback ports, which only ours can be told about.
    Loopback,
}

/// One daemon under test.
struct Side {
    kind: Kind,
    addr: SocketAddr,
    /// Why its measurements stopped (theirs only; ours panics instead).
    failed: Option<String>,
}

impl Side {
    /// Keeps the value, or records why this side stopped (ours: panics, so that the smoke run
    /// catches it).
    fn check<T>(&mut self, what: &str, r: Result<T, String>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) if self.kind == Kind::Ours => panic!("ours, {what}: {e}"),
            Err(e) => {
                eprintln!("compare: {}, {what}: {e}; no further measurements of this side", self.kind.label());
                self.failed = Some(format!("{what}: {e}"));
                None
            }
        }
    }
}

/// Everything measured, by (measurement, side).
#[derive(Default)]
struct Results {
    samples: BTreeMap<(&'static str, Kind), Samples>,
    notes: Vec<String>,
}

impl Results {
    fn push(&mut self, what: &'static str, kind: Kind, v: f64) {
        self.samples.entry((what, kind)).or_default().push(v);
    }

    fn get(&self, what: &'static str, kind: Kind) -> Samples {
        self.samples.get(&(what, kind)).cloned().unwrap_or_default()
    }
}

fn main() {
    if std::env::var(ROLE_VAR).as_deref() == Ok("dlfunc") {
        dlfunc_child();
        return;
    }
    let started = Instant::now();
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load_before = load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    // No thread exists yet: changing the environment is safe, and every child inherits it.
    for var in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "NETRC"] {
        std::env::remove_var(var);
    }
    netns::raise_nofile();
    let work = TempDir::new("mta-sts-compare");
    let resolv = work.join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n").unwrap();
    let net = match netns::enter(&resolv) {
        Ok(()) => Net::Private,
        Err(e) if full => {
            eprintln!("compare: cannot make the private network namespace ({e}); run as root (benches/compare/run.sh)");
            std::process::exit(2);
        }
        Err(e) => {
            println!(
                "compare: no private network namespace ({e}): smoke run of our side only, on random loopback ports"
            );
            Net::Loopback
        }
    };
    let target_dir = Path::new(BIN).parent().and_then(Path::parent).expect("the binary lives in target/<profile>/");
    let venv = target_dir.join(WORK_DIR).join("venv");
    let theirs = match net {
        Net::Private => Theirs::find(&venv),
        Net::Loopback => Err("needs the private network namespace (port 53 and 443 fixtures); run as root".to_owned()),
    };
    let theirs_versions = match &theirs {
        Ok(t) => format!("{}{}", t.versions, if t.uvloop { ", daemon on uvloop" } else { "" }),
        Err(e) => format!("not measured: {e}"),
    };
    if let Err(e) = &theirs {
        println!("compare: their side skipped: {e}");
    }

    // The fixtures, and every domain the run asks for, published before anything is timed.
    let ca = TestCa::new();
    let (dns, https) = match net {
        Net::Private => (
            DnsServer::start_on(SocketAddr::from(([127, 0, 0, 1], 53))).expect("bind 127.0.0.1:53 in the namespace"),
            HttpsServer::start_on(&ca, SocketAddr::from(([127, 0, 0, 1], 443)))
                .expect("bind 127.0.0.1:443 in the namespace"),
        ),
        Net::Loopback => (DnsServer::start(), HttpsServer::start(&ca)),
    };
    let ca_file = ca.ca_file().to_str().expect("a UTF-8 temp path").to_owned();
    let cert_env = [("SSL_CERT_FILE", ca_file.as_str())];
    let publishing = Instant::now();
    let warm: Vec<String> = (0..scale.warm).map(|n| format!("w{n}.warm.example")).collect();
    let kinds: Vec<Kind> = match theirs {
        Ok(_) => vec![Kind::Ours, Kind::TheirsInternal, Kind::TheirsSqlite],
        Err(_) => vec![Kind::Ours],
    };
    // Cold bursts take disjoint slices of one pool; the memory fills fetch from the same pool
    // again (in fresh daemons), so that no more certificates are issued than the bursts need.
    let pool_len = (scale.cold * 3 * scale.burst_rounds).max(scale.memory_fetch);
    let pool: Vec<String> = (0..pool_len).map(|n| format!("p{n}.pool.example")).collect();
    let stampede: Vec<Vec<String>> = (0..scale.burst_rounds)
        .map(|r| kinds.iter().map(|k| format!("s{r}{}.stampede.example", k.tag())).collect())
        .collect();
    for d in warm.iter().chain(&pool).chain(stampede.iter().flatten()) {
        publish(&dns, &https, d);
    }
    let publishing = publishing.elapsed();
    println!("compare: {} policy domains published in {:.1} s", warm.len() + pool.len(), publishing.as_secs_f64());

    // The daemons.
    let addr = |port: u16| match net {
        Net::Private => SocketAddr::from(([127, 0, 0, 1], port)),
        Net::Loopback => SocketAddr::from(([127, 0, 0, 1], 0)),
    };
    let ours_cache = work.join("ours-cache.db");
    let ours_toml = work.join("ours.toml");
    std::fs::write(&ours_toml, ours_config(net, &dns, &https, &ca_file, &ours_cache, addr(8461))).unwrap();
    let ours_daemon = Daemon::start_with(&ours_toml, &cert_env);
    let mut py_daemons: Vec<PyDaemon> = Vec::new();
    let mut sides = vec![Side { kind: Kind::Ours, addr: ours_daemon.addr(), failed: None }];
    if let Ok(t) = &theirs {
        let caches = [
            (Kind::TheirsInternal, 8462, "  type: internal\n  options:\n    cache_size: 200000\n".to_owned()),
            (
                Kind::TheirsSqlite,
                8463,
                format!("  type: sqlite\n  options:\n    filename: {}\n", work.join("theirs-cache.db").display()),
            ),
        ];
        for (kind, port, cache) in caches {
            match t.start(work.path(), kind.tag(), addr(port), &cache, &cert_env) {
                Ok(d) => {
                    sides.push(Side { kind, addr: d.addr, failed: None });
                    py_daemons.push(d);
                }
                Err(e) => sides.push(Side { kind, addr: addr(port), failed: Some(e) }),
            }
        }
    }

    sides.push(Side {
        kind: Kind::Ceiling,
        addr: client::responder().expect("start the trivial responder"),
        failed: None,
    });
    let mut results = Results::default();
    let mut sample_replies = Vec::new();
    // Warm every daemon: one fetch per warm domain, then each must answer from its cache.
    let warm_requests = Arc::new(warm.iter().map(|d| request(d)).collect::<Vec<_>>());
    for side in sides.iter_mut().filter(|s| s.failed.is_none() && s.kind != Kind::Ceiling) {
        let before = https.total_requests();
        let first = load(side.addr, 4, 4, &warm_requests, Plan::Once).map_err(|e| e.to_string());
        let Some(first) = side.check("warming", first) else { continue };
        let again = load(side.addr, 1, 1, &warm_requests, Plan::Once).map_err(|e| e.to_string());
        let Some(again) = side.check("warming", again) else { continue };
        let fetched = https.total_requests() - before;
        let ok = first.not_ok == 0 && again.not_ok == 0 && fetched == warm.len();
        let why = format!(
            "{} + {} replies without a policy, {fetched} fetches for {} domains",
            first.not_ok,
            again.not_ok,
            warm.len()
        );
        if side.check("warming", if ok { Ok(()) } else { Err(why) }).is_none() {
            continue;
        }
        let mut s = std::net::TcpStream::connect(side.addr).unwrap();
        let reply = daemon::ask(&mut s, "postfix", &warm[0]);
        sample_replies.push(format!("{}: `{reply}`", side.kind.label()));
    }

    // Cached throughput, alternating sides within every round.
    let cases: [(&'static str, usize, usize); 4] = [
        ("1 connection, one request at a time", 1, 1),
        ("8 connections, one request at a time", 8, 1),
        ("1 connection, pipelined", 1, WINDOW),
        ("8 connections, pipelined", 8, WINDOW),
    ];
    for round in 0..scale.rounds {
        for (what, connections, window) in cases {
            for i in rotation(sides.len(), round) {
                let side = &mut sides[i];
                if side.failed.is_some() {
                    continue;
                }
                let l = load(side.addr, connections, window, &warm_requests, Plan::For(scale.slice))
                    .map_err(|e| e.to_string())
                    .and_then(|l| {
                        if l.not_ok == 0 {
                            Ok(l)
                        } else {
                            Err(format!("{} cached lookups without a policy", l.not_ok))
                        }
                    });
                if let Some(l) = side.check(what, l) {
                    results.push(what, side.kind, l.rate());
                }
            }
        }
    }
    let throughput_done = started.elapsed();

    // Cold bursts and stampedes.
    let mut next_pool = 0;
    for (round, stampede) in stampede.iter().enumerate() {
        for i in rotation(sides.len(), round) {
            let side = &mut sides[i];
            if side.failed.is_some() || side.kind == Kind::Ceiling {
                continue;
            }
            let domains = &pool[next_pool..next_pool + scale.cold];
            next_pool += scale.cold;
            let requests: Vec<Vec<u8>> = domains.iter().map(|d| request(d)).collect();
            let b = burst(side.addr, &requests).map_err(|e| e.to_string());
            if let Some(b) = side.check("cold burst", b) {
                results.push("cold", side.kind, b.elapsed.as_secs_f64());
                results.push("cold answered", side.kind, b.with_policy() as f64);
            }
        }
        for i in rotation(sides.len(), round) {
            let side = &mut sides[i];
            if side.failed.is_some() || side.kind == Kind::Ceiling {
                continue;
            }
            let domain = &stampede[kinds.iter().position(|k| *k == side.kind).unwrap()];
            let requests = vec![request(domain); scale.stampede];
            let b = burst(side.addr, &requests).map_err(|e| e.to_string());
            if let Some(b) = side.check("stampede", b) {
                results.push("stampede fetches", side.kind, https.requests(&format!("mta-sts.{domain}")) as f64);
                results.push(
                    "stampede txt",
                    side.kind,
                    dns.queries(&format!("_mta-sts.{domain}"), hickory_proto::rr::RecordType::TXT) as f64,
                );
                results.push("stampede", side.kind, b.elapsed.as_secs_f64());
                results.push("stampede answered", side.kind, b.with_policy() as f64);
            }
        }
    }
    let bursts_done = started.elapsed();

    // One-shot: fresh processes, alternating.
    let nocache_toml = work.join("ours-nocache.toml");
    std::fs::write(&nocache_toml, ours_config(net, &dns, &https, &ca_file, Path::new(""), addr(8461))).unwrap();
    let theirs_query_ok = theirs.is_ok()
        && sides.iter().any(|s| matches!(s.kind, Kind::TheirsInternal | Kind::TheirsSqlite) && s.failed.is_none());
    for round in 0..scale.rounds {
        for _ in 0..scale.oneshot {
            let variants: [(&'static str, bool); 4] = [
                ("oneshot warm", true),
                ("oneshot nocache", true),
                ("oneshot theirs", theirs_query_ok),
                ("oneshot floor", true),
            ];
            for i in rotation(variants.len(), round) {
                let (what, run) = variants[i];
                if !run {
                    continue;
                }
                let mut cmd = match what {
                    "oneshot warm" => ours_query(&ours_toml, &warm[0]),
                    "oneshot nocache" => ours_query(&nocache_toml, &warm[0]),
                    "oneshot floor" => {
                        let mut c = Command::new(BIN);
                        c.arg("--version");
                        c
                    }
                    _ => theirs.as_ref().unwrap().query(&warm[0]),
                };
                cmd.envs(cert_env);
                let t = Instant::now();
                let out = cmd.stdin(Stdio::null()).stderr(Stdio::piped()).output().expect("run a one-shot query");
                let elapsed = t.elapsed();
                let stdout = String::from_utf8_lossy(&out.stdout);
                let ok = match what {
                    "oneshot theirs" => stdout.contains("VALID"),
                    "oneshot floor" => out.status.success(),
                    _ => out.status.success() && stdout.contains("enforce"),
                };
                assert!(ok, "{what}: {} {stdout} {}", out.status, String::from_utf8_lossy(&out.stderr));
                results.push(what, Kind::Ours, elapsed.as_secs_f64());
            }
        }
    }
    let oneshot_done = started.elapsed();

    // Memory: fresh daemons, each filled to its count.
    let memory = memory_rows(
        &scale,
        net,
        &dns,
        &https,
        &ca_file,
        &cert_env,
        &work,
        &ours_toml,
        &warm,
        theirs.as_ref().ok(),
        &pool,
        addr,
    );
    for (kind, what, v) in memory.values {
        results.push(what, kind, v);
    }
    results.notes.extend(memory.notes);
    let memory_done = started.elapsed();

    // Ours alone: the Exim library in process, and stdio.
    // Built next to the binary: by run.sh (release), or by `cargo test --workspace` (debug).
    let lib = Path::new(BIN).with_file_name("libmtasts.so");
    if lib.exists() {
        for rate in dlfunc(&lib, &ours_toml, &warm, scale.rounds, scale.slice) {
            results.push("dlfunc", Kind::Ours, rate);
        }
    } else {
        results.notes.push(format!("dlfunc row skipped: {} not built (run.sh builds it)", lib.display()));
    }
    for _ in 0..scale.rounds {
        results.push("stdio", Kind::Ours, stdio(&ours_toml, &warm, scale.stdio_lines, &cert_env));
    }
    let total = started.elapsed();
    results.notes.push(format!(
        "timeline: publishing {:.0} s (untimed setup), cached throughput done at {:.0} s, bursts at {:.0} s, one-shot at {:.0} s, memory at {:.0} s, total {:.0} s",
        publishing.as_secs_f64(),
        throughput_done.as_secs_f64(),
        bursts_done.as_secs_f64(),
        oneshot_done.as_secs_f64(),
        memory_done.as_secs_f64(),
        total.as_secs_f64()
    ));
    drop(py_daemons);
    drop(ours_daemon);

    let machine = report::machine(env!("CARGO_MANIFEST_DIR"), &theirs_versions, &load_before);
    let text = render(full, &scale, &sides, &results, &machine, &sample_replies);
    println!("{text}");
    let out = if full {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md")
    } else {
        let dir = target_dir.join(WORK_DIR);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("smoke.md")
    };
    std::fs::write(&out, text).unwrap();
    println!("compare: written to {} in {:.0} s", out.display(), total.as_secs_f64());
}

/// The synthetic policy of `domain`.
fn policy(domain: &str) -> String {
    format!("version: STSv1\nmode: enforce\nmx: mx1.{domain}\nmx: *.mx.{domain}\nmax_age: 604800\n")
}

/// Publishes `domain`: its TXT record, its policy host at 127.0.0.1, the policy on 443.
fn publish(dns: &DnsServer, https: &HttpsServer, domain: &str) {
    dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={RECORD_ID}")]));
    dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
    https.set(&format!("mta-sts.{domain}"), Site::policy(&policy(domain)));
}

/// Our configuration: the same servers as theirs (resolv.conf, port 443) in the namespace.
/// The re-check interval is as long as the run, like theirs' `cache_grace`; timeouts are 20 s
/// like theirs; background renewal is off (theirs' proactive fetching is off by default).
fn ours_config(
    net: Net,
    dns: &DnsServer,
    https: &HttpsServer,
    ca_file: &str,
    cache: &Path,
    listen: SocketAddr,
) -> String {
    let (servers, port) = match net {
        Net::Private => (String::new(), String::new()),
        Net::Loopback => {
            (format!("servers = [\"{}\"]\n", dns.addr()), format!("test_policy_port = {}\n", https.port()))
        }
    };
    format!(
        "[dns]\n{servers}timeout = \"20s\"\n\
         [fetch]\ntimeout = \"20s\"\nca_file = \"{ca_file}\"\nallow_private_addresses = true\n{port}\
         [cache]\npath = \"{}\"\nrecheck_interval = \"1h\"\n\
         [serve]\nmax_connections = 4096\nrefresh_interval = \"0s\"\n\
         [[serve.socketmap]]\naddress = \"{listen}\"\n",
        cache.display()
    )
}

/// `mta-sts query --config CONFIG DOMAIN`.
fn ours_query(config: &Path, domain: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["query", "--config"]).arg(config).arg(domain);
    cmd
}

/// Side indexes in the order of `round`: each side goes first in turn.
fn rotation(n: usize, round: usize) -> Vec<usize> {
    (0..n).map(|i| (i + round) % n).collect()
}

/// What [`memory_rows`] measured.
struct Memory {
    values: Vec<(Kind, &'static str, f64)>,
    notes: Vec<String>,
}

/// VmRSS of a fresh daemon of each kind holding [`MEMORY_POLICIES`] policies.
///
/// Ours is filled through `mta-sts cache import` (100,000 entries made from one real exported
/// entry), then every domain is asked once through the socketmap so that the daemon holds them
/// in its memory layer as well as in its file. Theirs (internal cache) can only be filled by
/// fetching, too slow for 100,000 in the time budget: fresh daemons of both kinds fetch the
/// same `scale.memory_fetch` pool domains (see [`fill_by_fetch`]), and theirs' figure at
/// 100,000 is extrapolated from its growth over the last part, which the table says.
#[allow(clippy::too_many_arguments)]
fn memory_rows(
    scale: &Scale,
    net: Net,
    dns: &DnsServer,
    https: &HttpsServer,
    ca_file: &str,
    cert_env: &[(&str, &str)],
    work: &TempDir,
    ours_toml: &Path,
    warm: &[String],
    theirs: Option<&Theirs>,
    pool: &[String],
    addr: impl Fn(u16) -> SocketAddr,
) -> Memory {
    let mut values = Vec::new();
    let mut notes = Vec::new();
    // Ours.
    let export = Command::new(BIN)
        .args(["cache", "--config"])
        .arg(ours_toml)
        .arg("export")
        .envs(cert_env.iter().copied())
        .output()
        .unwrap();
    assert!(export.status.success(), "cache export: {}", String::from_utf8_lossy(&export.stderr));
    let export = String::from_utf8(export.stdout).unwrap();
    let needle = format!("\"domain\":\"{}\"", warm[0]);
    let template = export.lines().find(|l| l.contains(&needle)).expect("the warm domain in the export");
    let domains: Vec<String> = (0..scale.memory_ours).map(|n| format!("m{n}.mem.example")).collect();
    let mut lines = String::new();
    for d in &domains {
        lines.push_str(&template.replace(&warm[0], d));
        lines.push('\n');
    }
    let mem_toml = work.join("ours-mem.toml");
    std::fs::write(&mem_toml, ours_config(net, dns, https, ca_file, &work.join("ours-mem.db"), addr(8464))).unwrap();
    let t = Instant::now();
    let mut import = Command::new(BIN)
        .args(["cache", "--config"])
        .arg(&mem_toml)
        .arg("import")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    import.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success(), "cache import");
    let import_time = t.elapsed();
    let fetches = https.total_requests();
    let d = Daemon::start_with(&mem_toml, cert_env);
    let pid = d.child.id();
    let idle = netns::rss_bytes(pid).unwrap_or(0);
    let requests = Arc::new(domains.iter().map(|d| request(d)).collect::<Vec<_>>());
    let t = Instant::now();
    let l = load(d.addr(), 8, WINDOW, &requests, Plan::Once).expect("ask every imported domain");
    assert_eq!((l.replies, l.not_ok), (domains.len(), 0), "every imported policy answered");
    assert_eq!(https.total_requests(), fetches, "no fetch: all from the imported cache");
    let held = netns::rss_bytes(pid).unwrap_or(0);
    values.push((Kind::Ours, "rss idle", idle as f64));
    values.push((Kind::Ours, "rss held", held as f64));
    values.push((Kind::Ours, "rss count", domains.len() as f64));
    notes.push(format!(
        "memory, ours: {} entries imported with `mta-sts cache import` in {:.1} s, then each asked once through the socketmap ({:.1} s) so that the daemon holds them in memory too; VmRSS {} idle, {} holding them",
        domains.len(),
        import_time.as_secs_f64(),
        t.elapsed().as_secs_f64(),
        report::mib(idle as f64),
        report::mib(held as f64),
    ));
    drop(d);

    // Both filled the way production fills them: by fetching, the same pool domains, each in a
    // fresh daemon.
    let k = scale.memory_fetch.min(pool.len());
    let fetch_toml = work.join("ours-fetch.toml");
    std::fs::write(&fetch_toml, ours_config(net, dns, https, ca_file, &work.join("ours-fetch.db"), addr(8466)))
        .unwrap();
    let d = Daemon::start_with(&fetch_toml, cert_env);
    let fill = fill_by_fetch(d.addr(), d.child.id(), &pool[..k]).unwrap_or_else(|e| panic!("ours, memory fill: {e}"));
    values.push((Kind::Ours, "fetch per policy", fill.per_policy()));
    values.push((Kind::Ours, "fetch rss", fill.rss() as f64));
    values.push((Kind::Ours, "fetch estimate", fill.estimate(MEMORY_POLICIES)));
    notes.push(fill.describe("ours", k));
    drop(d);
    let Some(theirs) = theirs else { return Memory { values, notes } };
    let cache = "  type: internal\n  options:\n    cache_size: 200000\n";
    let d = match theirs.start(work.path(), "mem", addr(8465), cache, cert_env) {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!("memory, theirs: not measured: {e}"));
            return Memory { values, notes };
        }
    };
    let fill = match fill_by_fetch(d.addr, d.pid(), &pool[..k]) {
        Ok(f) => f,
        Err(e) => {
            notes.push(format!("memory, theirs: fill failed: {e}; {}", d.log_tail()));
            return Memory { values, notes };
        }
    };
    values.push((Kind::TheirsInternal, "fetch per policy", fill.per_policy()));
    values.push((Kind::TheirsInternal, "fetch rss", fill.rss() as f64));
    values.push((Kind::TheirsInternal, "fetch estimate", fill.estimate(MEMORY_POLICIES)));
    values.push((Kind::TheirsInternal, "rss count", fill.held() as f64));
    notes.push(fill.describe("theirs (internal cache)", k));
    Memory { values, notes }
}

/// Parts of a [`fill_by_fetch`], with VmRSS read after each.
const FILL_PARTS: usize = 3;
/// Fetches at once during a fill: connections, each asking one domain at a time.
const FILL_CONNECTIONS: usize = 256;

/// A daemon's VmRSS as it fetched and cached policies.
struct Fill {
    idle: u64,
    /// (policies cached so far, VmRSS then), one per part.
    points: Vec<(usize, u64)>,
    elapsed: Duration,
}

impl Fill {
    fn held(&self) -> usize {
        self.points.last().map_or(0, |p| p.0)
    }

    fn rss(&self) -> u64 {
        self.points.last().map_or(self.idle, |p| p.1)
    }

    /// Growth per policy after the first part, by when thread pools, connection buffers and
    /// the allocator's high-water mark from the transient objects of the fetches are in place.
    /// Two parts rather than one smooth the steps in which allocators grow.
    fn per_policy(&self) -> f64 {
        match self.points.as_slice() {
            [(n0, r0), .., (n1, r1)] if n1 > n0 => r1.saturating_sub(*r0) as f64 / (n1 - n0) as f64,
            _ => 0.0,
        }
    }

    /// VmRSS at `n` policies, extrapolated linearly from [`Fill::per_policy`].
    fn estimate(&self, n: usize) -> f64 {
        self.rss() as f64 + self.per_policy() * n.saturating_sub(self.held()) as f64
    }

    fn describe(&self, who: &str, asked: usize) -> String {
        let points: Vec<String> = self
            .points
            .iter()
            .map(|(n, r)| format!("{} at {}", report::mib(*r as f64), report::thousands(*n as f64)))
            .collect();
        format!(
            "memory, {who}, filled by fetching: {} of {asked} policies cached in {:.1} s ({:.0}/s, {FILL_CONNECTIONS} at once); VmRSS {} idle, {}; {:.0} bytes per policy over the last two thirds, so {} at {} if that held",
            self.held(),
            self.elapsed.as_secs_f64(),
            self.held() as f64 / self.elapsed.as_secs_f64(),
            report::mib(self.idle as f64),
            points.join(", "),
            self.per_policy(),
            report::mib(self.estimate(MEMORY_POLICIES)),
            report::thousands(MEMORY_POLICIES as f64),
        )
    }
}

/// Has the daemon at `addr` (process `pid`) fetch and cache every one of `domains`, in
/// [`FILL_PARTS`] parts.
///
/// # Errors
///
/// A connection that failed.
fn fill_by_fetch(addr: SocketAddr, pid: u32, domains: &[String]) -> Result<Fill, String> {
    let idle = netns::rss_bytes(pid).unwrap_or(0);
    let t = Instant::now();
    let mut points = Vec::new();
    let mut held = 0;
    let part = domains.len().div_ceil(FILL_PARTS).max(1);
    for chunk in domains.chunks(part) {
        let requests = Arc::new(chunk.iter().map(|d| request(d)).collect::<Vec<_>>());
        let l = load(addr, FILL_CONNECTIONS.min(chunk.len()), 1, &requests, Plan::Once).map_err(|e| e.to_string())?;
        held += l.replies - l.not_ok;
        points.push((held, netns::rss_bytes(pid).unwrap_or(0)));
    }
    Ok(Fill { idle, points, elapsed: t.elapsed() })
}

/// Lines per second of `mta-sts stdio --format exim` over `lines` cached lookups.
fn stdio(config: &Path, warm: &[String], lines: usize, env: &[(&str, &str)]) -> f64 {
    let mut input = String::new();
    for n in 0..lines {
        input.push_str(&warm[n % warm.len()]);
        input.push('\n');
    }
    let mut child = Command::new(BIN)
        .args(["stdio", "--format", "exim", "--config"])
        .arg(config)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let t = Instant::now();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).unwrap();
    let elapsed = t.elapsed();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    let answered = out.split(|&b| b == b'\n').filter(|l| l.starts_with(b"mode=enforce")).count();
    assert_eq!(answered, lines, "every stdio line answered from the cache");
    lines as f64 / elapsed.as_secs_f64()
}

/// Calls per second of `mta_sts_lookup`, measured in a child process (so that the library's
/// configuration comes from its environment, as in Exim): one rate per round.
fn dlfunc(lib: &Path, config: &Path, warm: &[String], rounds: usize, slice: Duration) -> Vec<f64> {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(ROLE_VAR, "dlfunc")
        .env("MTA_STS_CONFIG", config)
        .env("MTA_STS_COMPARE_LIB", lib)
        .env("MTA_STS_COMPARE_DOMAINS", warm.join(","))
        .env("MTA_STS_COMPARE_ROUNDS", rounds.to_string())
        .env("MTA_STS_COMPARE_SLICE_MS", slice.as_millis().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "dlfunc child: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.strip_prefix("rate ")?.parse().ok()).collect()
}

/// The child of [`dlfunc`]: `dlopen`s the library as Exim does and calls `mta_sts_lookup`
/// through Exim's ABI, cycling over the warm domains.
fn dlfunc_child() {
    type Entry = unsafe extern "C" fn(*mut *mut c_uchar, c_int, *mut *mut c_uchar) -> c_int;
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} unset"));
    let lib = CString::new(var("MTA_STS_COMPARE_LIB")).unwrap();
    let domains: Vec<CString> = var("MTA_STS_COMPARE_DOMAINS").split(',').map(|d| CString::new(d).unwrap()).collect();
    let rounds: usize = var("MTA_STS_COMPARE_ROUNDS").parse().unwrap();
    let slice = Duration::from_millis(var("MTA_STS_COMPARE_SLICE_MS").parse().unwrap());
    // SAFETY: a NUL-terminated path; the handle is never closed.
    let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!handle.is_null(), "dlopen {lib:?} failed");
    // SAFETY: a live handle and a NUL-terminated symbol name.
    let sym = unsafe { libc::dlsym(handle, c"mta_sts_lookup".as_ptr()) };
    assert!(!sym.is_null(), "no mta_sts_lookup in {lib:?}");
    // SAFETY: mta_sts_lookup has Exim's dlfunc signature (include/mtasts.h).
    let entry: Entry = unsafe { std::mem::transmute::<*mut libc::c_void, Entry>(sym) };
    let call = |d: &CString| {
        let mut args = [d.as_ptr().cast_mut().cast::<c_uchar>()];
        let mut y: *mut c_uchar = std::ptr::null_mut();
        // SAFETY: Exim's ABI: a writable yield pointer and one valid C string argument.
        let code = unsafe { entry(&mut y, 1, args.as_mut_ptr()) };
        (code, y)
    };
    for d in &domains {
        let (code, y) = call(d);
        // SAFETY: the library sets the yield to a NUL-terminated string it owns.
        let text = if y.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(y.cast()) }.to_string_lossy().into_owned()
        };
        assert!(code == 0 && text.starts_with("mode=enforce"), "{d:?}: {code} {text}");
    }
    for _ in 0..rounds {
        let t = Instant::now();
        let mut calls = 0usize;
        while t.elapsed() < slice {
            for d in &domains {
                let (code, _) = call(d);
                assert_eq!(code, 0);
            }
            calls += domains.len();
        }
        println!("rate {}", calls as f64 / t.elapsed().as_secs_f64());
    }
    let _ = io::stdout().flush();
}

/// The markdown page.
fn render(
    full: bool,
    scale: &Scale,
    sides: &[Side],
    r: &Results,
    machine: &[String],
    sample_replies: &[String],
) -> String {
    use report::{count, mib, ms, rate, times};
    let has = |k: Kind| sides.iter().any(|s| s.kind == k);
    let theirs: Vec<Kind> = [Kind::TheirsInternal, Kind::TheirsSqlite].into_iter().filter(|k| has(*k)).collect();
    let mut out = String::new();
    let w = &mut out;
    let line = |w: &mut String, s: String| {
        w.push_str(&s);
        w.push('\n');
    };
    line(w, "# Benchmarks: mta-sts side by side with postfix-mta-sts-resolver".into());
    line(w, String::new());
    if !full {
        line(w, "**Smoke run (`cargo test`): tiny counts, not a measurement.**".into());
        line(w, String::new());
    }
    line(w, "Generated by `bash benches/compare/run.sh` (as root; about five minutes on 2 cores). Both daemons run in one private network namespace against the same DNS server (127.0.0.1:53, through /etc/resolv.conf) and the same HTTPS server (127.0.0.1:443, a test CA through `SSL_CERT_FILE`), each unchanged. Every figure is the median of the rounds, with the range over the rounds in parentheses; the sides take turns within each round, in a rotating order, so that a noisy moment hits all of them. The ratios are what to read: absolute numbers on a shared machine drift.".into());
    line(w, String::new());
    // How many times better ours is than each of theirs: the median of the per-round ratios.
    let ratios = |what: &'static str, higher_is_better: bool| -> Vec<Option<f64>> {
        let o = r.get(what, Kind::Ours);
        theirs
            .iter()
            .map(|k| {
                let t = r.get(what, *k);
                let better = |o: f64, t: f64| if higher_is_better { o / t } else { t / o };
                if o.0.len() == t.0.len() && !o.is_empty() && o.0.iter().chain(&t.0).all(|v| *v > 0.0) {
                    Samples(o.0.iter().zip(&t.0).map(|(o, t)| better(*o, *t)).collect()).median()
                } else {
                    match (o.median(), t.median()) {
                        (Some(o), Some(t)) if o > 0.0 && t > 0.0 => Some(better(o, t)),
                        _ => None,
                    }
                }
            })
            .collect()
    };
    let ratio_cell = |v: &[Option<f64>]| -> String {
        let parts: Vec<String> = v.iter().map(|x| x.map_or("–".into(), times)).collect();
        if v.iter().all(Option::is_none) {
            "–".into()
        } else {
            parts.join(" / ")
        }
    };
    let theirs_cells = |what: &'static str, fmt: fn(f64) -> String| -> Vec<String> {
        [Kind::TheirsInternal, Kind::TheirsSqlite]
            .iter()
            .map(|k| match sides.iter().find(|s| s.kind == *k) {
                None => "not run".into(),
                Some(s) => {
                    let v = r.get(what, *k);
                    if v.is_empty() {
                        match &s.failed {
                            Some(_) => "failed (see notes)".into(),
                            None => "–".into(),
                        }
                    } else {
                        v.cell(fmt)
                    }
                }
            })
            .collect()
    };
    let medians = |what: &'static str| -> (Option<f64>, Vec<Option<f64>>) {
        (r.get(what, Kind::Ours).median(), theirs.iter().map(|k| r.get(what, *k).median()).collect())
    };
    let verdict = |ok: Option<bool>, target: &str| match ok {
        Some(true) => format!("{target}: met"),
        Some(false) => format!("{target}: **missed**"),
        None => format!("{target}: not measured"),
    };
    line(w, "| measurement | ours | theirs, internal cache | theirs, SQLite cache | ours vs theirs (internal / SQLite): times better, above 1× ours is better | target |".into());
    line(w, "|---|---|---|---|---|---|".into());
    for (what, label) in [
        ("1 connection, one request at a time", "cached socketmap lookups/s, 1 connection, one request at a time"),
        ("8 connections, one request at a time", "cached socketmap lookups/s, 8 connections, one request at a time"),
        ("1 connection, pipelined", "cached socketmap lookups/s, 1 connection, pipelined (64 in flight)"),
        ("8 connections, pipelined", "cached socketmap lookups/s, 8 connections, pipelined (64 in flight each)"),
    ] {
        let x = ratios(what, true);
        let target = if what.starts_with("8 connections") {
            let ok = if full && !x.is_empty() && x.iter().all(Option::is_some) {
                Some(x.iter().all(|x| x.unwrap() >= 10.0))
            } else {
                None
            };
            verdict(ok, "≥ 10× theirs")
        } else {
            String::new()
        };
        let tc = theirs_cells(what, rate);
        line(
            w,
            format!(
                "| {label} | {} | {} | {} | {} | {target} |",
                r.get(what, Kind::Ours).cell(rate),
                tc[0],
                tc[1],
                ratio_cell(&x)
            ),
        );
    }
    let tc = theirs_cells("cold", ms);
    line(w, format!("| cold: {} distinct domains asked at once (one connection each), time until all answered | {} | {} | {} | {} | |", scale.cold, r.get("cold", Kind::Ours).cell(ms), tc[0], tc[1], ratio_cell(&ratios("cold", false))));
    let tc = theirs_cells("cold answered", count);
    line(
        w,
        format!(
            "| cold: of those, answered with the policy | {} | {} | {} | | {} |",
            r.get("cold answered", Kind::Ours).cell(count),
            tc[0],
            tc[1],
            scale.cold
        ),
    );
    let (o, t) = medians("stampede fetches");
    let tc = theirs_cells("stampede fetches", count);
    let ok = if full && o.is_some() { Some(o == Some(1.0)) } else { None };
    line(w, format!("| stampede: {} concurrent requests for one cold domain, HTTPS requests at its policy host | {} | {} | {} | {} | {} |", scale.stampede, r.get("stampede fetches", Kind::Ours).cell(count), tc[0], tc[1], t.iter().map(|t| t.map_or("–".into(), |t| format!("1 vs {}", count(t)))).collect::<Vec<_>>().join(" / "), verdict(ok.filter(|_| o.is_some()), "1 (theirs: one per request)")));
    let tc = theirs_cells("stampede txt", count);
    line(
        w,
        format!(
            "| stampede: TXT queries for `_mta-sts` of that domain | {} | {} | {} | | |",
            r.get("stampede txt", Kind::Ours).cell(count),
            tc[0],
            tc[1]
        ),
    );
    let tc = theirs_cells("stampede", ms);
    line(
        w,
        format!(
            "| stampede: time until all {} answered | {} | {} | {} | {} | |",
            scale.stampede,
            r.get("stampede", Kind::Ours).cell(ms),
            tc[0],
            tc[1],
            ratio_cell(&ratios("stampede", false))
        ),
    );
    // One-shot: theirs has no persistent cache.
    let warm = r.get("oneshot warm", Kind::Ours);
    let nocache = r.get("oneshot nocache", Kind::Ours);
    let q = r.get("oneshot theirs", Kind::Ours);
    // Paired: the n-th run of each variant came in the same rotation.
    let speedup_of = |a: &Samples| -> Option<f64> {
        if a.0.len() == q.0.len() && !a.is_empty() && a.0.iter().all(|v| *v > 0.0) {
            Samples(a.0.iter().zip(&q.0).map(|(a, q)| q / a).collect()).median()
        } else {
            None
        }
    };
    let speedup = |a: &Samples| speedup_of(a).map_or("–".into(), |x| format!("{} faster", times(x)));
    let q_cell = if q.is_empty() { "not run".to_owned() } else { q.cell(ms) };
    let ok = match speedup_of(&warm) {
        Some(x) if full => Some(x >= 50.0),
        _ => None,
    };
    line(w, format!("| one-shot: fresh process answering one domain; ours `mta-sts query` from its warm cache file, theirs `mta-sts-query` (which has no cache: DNS + HTTPS every time) | {} | {q_cell} | | {} | {} |", warm.cell(ms), speedup(&warm), verdict(ok, "≥ 50× faster")));
    line(w, format!("| one-shot, like for like: ours `mta-sts query` with no cache (DNS + HTTPS every time) vs `mta-sts-query` | {} | {q_cell} | | {} | |", nocache.cell(ms), speedup(&nocache)));
    let floor = r.get("oneshot floor", Kind::Ours);
    line(
        w,
        format!(
            "| one-shot floor: `mta-sts --version` (starting the process, no lookup) | {} | | | {} | |",
            floor.cell(ms),
            speedup(&floor)
        ),
    );
    // Memory.
    let get = |what: &'static str, k: Kind| r.get(what, k).median();
    let o_held = get("rss held", Kind::Ours);
    let o_count = get("rss count", Kind::Ours).unwrap_or(0.0);
    let t_count = get("rss count", Kind::TheirsInternal).unwrap_or(0.0);
    let (o_fetch, t_fetch) = (get("fetch estimate", Kind::Ours), get("fetch estimate", Kind::TheirsInternal));
    let t_est = t_fetch;
    let size = |o: Option<f64>, t: Option<f64>| match (o, t) {
        (Some(o), Some(t)) if t > 0.0 => format!("{} the size", times(o / t)),
        _ => "–".into(),
    };
    let o_cell = o_held.map_or("–".into(), |v| {
        format!("{} ({} policies, measured; filled by `cache import`)", mib(v), count(o_count))
    });
    let t_cell = match t_est {
        Some(e) if t_count as usize >= MEMORY_POLICIES => format!("{} (measured)", mib(e)),
        Some(e) => format!("{} **extrapolated** from {} policies fetched", mib(e), count(t_count)),
        None if has(Kind::TheirsInternal) => "failed (see notes)".into(),
        None => "not run".into(),
    };
    // Met without any extrapolation when theirs, measured with fewer policies, is already
    // larger than ours measured with all of them; otherwise only if ours is smaller both ways:
    // as measured at 100,000, and when both are filled and extrapolated the same way, by more
    // than the 10 % that the extrapolations move between runs.
    let t_measured = get("fetch rss", Kind::TheirsInternal);
    let verdict_memory = match (o_held, t_est, o_fetch) {
        (Some(o), Some(_), Some(_))
            if full && o_count as usize >= MEMORY_POLICIES && t_measured.is_some_and(|t| t > o) =>
        {
            format!("smaller: met (theirs measured at {} policies is already larger)", count(t_count))
        }
        (Some(o), Some(t), Some(of)) if full && o_count as usize >= MEMORY_POLICIES => {
            match (o < t, of < 0.9 * t, of > 1.1 * t) {
                (true, true, _) => "smaller: met".to_owned(),
                (false, _, true) => "smaller: **missed**".to_owned(),
                _ => "smaller: **not shown**: smaller than theirs' extrapolation as filled by import, about the same size when both fetch (next rows)".to_owned(),
            }
        }
        _ => "smaller: not measured".to_owned(),
    };
    line(w, format!("| memory: VmRSS of the daemon holding {} cached policies | {o_cell} | {t_cell} | not measured (policies live in the file) | {} | {verdict_memory} |", count(MEMORY_POLICIES as f64), size(o_held, t_est)));
    let o_rss = get("fetch rss", Kind::Ours);
    let t_rss = get("fetch rss", Kind::TheirsInternal);
    let tc = theirs_cells("fetch rss", mib);
    line(w, format!("| memory, like for like: VmRSS after fresh daemons fetched the same {} policies ({FILL_CONNECTIONS} at once), measured | {} | {} | not measured | {} | |", count(scale.memory_fetch as f64), r.get("fetch rss", Kind::Ours).cell(mib), tc[0], size(o_rss, t_rss)));
    let bytes = |v: f64| format!("{} bytes", count(v));
    let tc = theirs_cells("fetch per policy", bytes);
    line(w, format!("| memory, like for like: growth per policy over the last two thirds of that fill | {} | {} | not measured | {} | |", r.get("fetch per policy", Kind::Ours).cell(bytes), tc[0], size(get("fetch per policy", Kind::Ours), get("fetch per policy", Kind::TheirsInternal))));
    let tc = theirs_cells("fetch estimate", mib);
    line(w, format!("| memory, like for like: both extrapolated from that fill to {} policies | {} | {} | not measured | {} | |", count(MEMORY_POLICIES as f64), r.get("fetch estimate", Kind::Ours).cell(mib), tc[0], size(o_fetch, t_fetch)));
    line(w, String::new());
    line(w, "The ceiling of this machine and client for the cached rows above: a trivial responder in the harness process that answers every request at once with a fixed reply (thread per connection), measured in the same rounds:".into());
    line(w, String::new());
    line(w, "| client | trivial responder | ours as a share of it | trivial responder vs theirs (internal cache): the best ratio any daemon could show here |".into());
    line(w, "|---|---|---|---|".into());
    for what in [
        "1 connection, one request at a time",
        "8 connections, one request at a time",
        "1 connection, pipelined",
        "8 connections, pipelined",
    ] {
        let c = r.get(what, Kind::Ceiling);
        let share = match (r.get(what, Kind::Ours).median(), c.median()) {
            (Some(o), Some(c)) => format!("{:.0} %", 100.0 * o / c),
            _ => "–".into(),
        };
        let t = r.get(what, Kind::TheirsInternal);
        let best = if c.0.len() == t.0.len() && !t.is_empty() && t.0.iter().all(|v| *v > 0.0) {
            Samples(c.0.iter().zip(&t.0).map(|(c, t)| c / t).collect()).median().map_or("–".into(), times)
        } else {
            "–".into()
        };
        line(w, format!("| {what} | {} | {share} | {best} |", c.cell(rate)));
    }
    let best = |what: &'static str| {
        let (c, t) = (r.get(what, Kind::Ceiling), r.get(what, Kind::TheirsInternal));
        if c.0.len() == t.0.len() && !t.is_empty() && t.0.iter().all(|v| *v > 0.0) {
            Samples(c.0.iter().zip(&t.0).map(|(c, t)| c / t).collect()).median()
        } else {
            None
        }
    };
    if let Some(b) = best("8 connections, one request at a time").filter(|b| *b < 10.0) {
        line(w, String::new());
        line(w, format!("With 8 connections asking one request at a time, even the trivial responder is only {} faster than theirs here: with this client on this machine no daemon can show the ≥ 10× target in that row; the round trips and the client's own threads bound it, not the lookup.", times(b)));
    }
    line(w, String::new());
    line(w, "Ours alone (theirs has no equivalent):".into());
    line(w, String::new());
    line(w, "| measurement | ours |".into());
    line(w, "|---|---|".into());
    line(w, format!("| `mta_sts_lookup` (Exim `${{dlfunc}}` ABI) calls/s in process, cached, through `dlopen`ed libmtasts.so | {} |", r.get("dlfunc", Kind::Ours).cell(rate)));
    line(
        w,
        format!(
            "| `mta-sts stdio --format exim` lines/s, {} cached lookups piped through one process | {} |",
            count(scale.stdio_lines as f64),
            r.get("stdio", Kind::Ours).cell(rate)
        ),
    );
    line(w, String::new());
    line(w, "## What each side does".into());
    line(w, String::new());
    line(w, "- **ours**: `mta-sts serve`, one process (tokio, lookups on its blocking pool), persistent SQLite cache with its memory layer; `recheck_interval = \"1h\"`, fetch and DNS timeouts 20 s, `allow_private_addresses = true` (the policy hosts are on 127.0.0.1), the test CA as `[fetch] ca_file` and `SSL_CERT_FILE`, background renewal off. DNS from /etc/resolv.conf, policies from port 443.".into());
    line(w, "- **theirs**: `mta-sts-daemon` 1.5.1, one process (asyncio, on uvloop when installed, as its README recommends), `-v warn`, `cache_grace: 3600`, zone `timeout: 20`, with `cache: {type: internal, options: {cache_size: 200000}}` or `cache: {type: sqlite}` (its default 2 threads). Proactive fetching off (its default).".into());
    line(w, "- Cached lookups: every request is `postfix <domain>` over the warm domains, each answered `OK secure match=... servername=hostname` from the cache; a client thread per connection on the same machine, so the client's CPU time is in every figure. \"One request at a time\" is what Postfix and Sendmail do; \"pipelined\" keeps 64 requests in flight per connection (theirs answers up to 128 per connection in order).".into());
    line(w, "- Cold and stampede: every connection is opened and accepted first (not timed), then all requests are written at once; the time runs until the last reply. The cold domains are fresh for every side and round. The HTTPS count is read from the fixture's per-host counter.".into());
    line(w, "- One-shot: wall time of the whole process, spawned by the harness. `mta-sts-query` has no cache at all: it always resolves the TXT record and fetches the policy, so the like-for-like row runs ours with `[cache] path = \"\"` (fetch every time) too.".into());
    line(w, "- Memory: fresh daemons. Ours gets its 100,000 entries through `mta-sts cache import` (filling it through the network would need 100,000 policy-host certificates) and then answers each once, so that they are in its memory layer as well. Theirs can only fill its cache by fetching, which at its rate here takes longer than the whole time budget for 100,000: it fetches fewer and its figure at 100,000 is extrapolated from its growth over the last two thirds of the fill, which the row says. The growth-per-policy row fills both the same way (fetching the same domains) for a like-for-like check of the extrapolation; its VmRSS includes what the allocator keeps from the transient objects of the fetches, which is part of what a daemon filled in production holds.".into());
    line(w, String::new());
    line(w, "## Noise and fairness".into());
    line(w, String::new());
    line(w, "- Two cores shared by the daemon under test, the load-generating client threads, the DNS and HTTPS fixtures and (on the development machine) other builds. Medians over alternating rounds cancel slow drift but not a busy neighbour during one slice: the ranges show how much a figure moved.".into());
    line(w, "- Theirs is single-threaded by design; its README scales with several processes on one port (`reuse_port`), each with its own internal cache or a shared SQLite/Redis cache. One process of each is measured, as installed by default; two processes would at best double theirs on 2 cores.".into());
    line(w, "- The fixtures cost both sides the same per fetch (one TLS handshake, certificate verification of a P-256 chain); they are thread-per-connection and so slower than a real web server, which flattens the cold-burst ratio.".into());
    line(w, "- Ours answers `TEMP` on temporary failures where theirs answers `NOTFOUND `; nothing in this run fails, so the replies compared are the same shape.".into());
    line(w, String::new());
    if !sample_replies.is_empty() {
        line(w, "## The same reply from each".into());
        line(w, String::new());
        for s in sample_replies {
            line(w, format!("- {s}"));
        }
        line(w, String::new());
    }
    line(w, "## Notes from this run".into());
    line(w, String::new());
    for s in sides {
        if let Some(f) = &s.failed {
            line(w, format!("- {}: stopped: {f}", s.kind.label()));
        }
    }
    for n in &r.notes {
        line(w, format!("- {n}"));
    }
    line(w, String::new());
    line(w, "## Machine".into());
    line(w, String::new());
    for m in machine {
        line(w, format!("- {m}"));
    }
    out
}
