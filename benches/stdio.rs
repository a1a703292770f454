//! Whole-process throughput of `mta-sts stdio` on cached lookups: N request lines piped in, N
//! answer lines read back, against DNS and HTTPS fixtures on loopback (only the first line of
//! each domain reaches them). Issue #4 asks for 200,000 lines/s or more. `cat` over the same
//! input is measured in the same run as the baseline, and the ratio printed.
//!
//! `cargo bench --bench stdio` runs 500,000 lines; under `cargo test` it runs 2,000 as a smoke
//! test.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dns::{Answer, DnsServer};
use common::https::{HttpsServer, Site};
use common::pki::{TempDir, TestCa};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n";

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let lines = if full { 500_000 } else { 2_000 };
    let ca = TestCa::new();
    let dns = DnsServer::start();
    let https = HttpsServer::start(&ca);
    let dir = TempDir::new("mta-sts-bench-stdio");
    let domains = ["example.com", "example.org", "example.net"];
    for d in domains {
        dns.set(&format!("_mta-sts.{d}"), Answer::txt(&["v=STSv1; id=1;"]));
        dns.set(&format!("mta-sts.{d}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        https.set(&format!("mta-sts.{d}"), Site::policy(POLICY));
    }
    let config = dir.join("bench.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nservers = [\"{}\"]\n[fetch]\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n[cache]\npath = \"\"\nrecheck_interval = \"1h\"\n",
            dns.addr(),
            ca.ca_file().display(),
            https.port()
        ),
    )
    .unwrap();
    let mut input = String::new();
    for n in 0..lines {
        let d = domains[n % domains.len()];
        if n % 2 == 0 {
            input.push_str(&format!("{d}\n"));
        } else {
            input.push_str(&format!("{d} mx{}.example.net\n", n % 10));
        }
    }
    let bin = env!("CARGO_BIN_EXE_mta-sts");
    let ours = run(Command::new(bin).args(["stdio", "--format", "exim", "--config"]).arg(&config), &input, lines);
    let cat = run(&mut Command::new("cat"), &input, lines);
    let rate = lines as f64 / ours.as_secs_f64();
    let verdict = match (full, rate >= 200_000.0) {
        (false, _) => "smoke run, not a measurement",
        (true, true) => "target 200000: met",
        (true, false) => "target 200000: MISSED",
    };
    println!(
        "stdio exim, {lines} cached lines: {:.0} ms, {rate:.0} lines/s ({verdict}); cat baseline {:.0} ms, ratio ours/cat {:.1}",
        ours.as_secs_f64() * 1e3,
        cat.as_secs_f64() * 1e3,
        ours.as_secs_f64() / cat.as_secs_f64(),
    );
    assert_eq!(https.total_requests(), domains.len(), "one fetch per domain, then the cache");
}

/// Pipes `input` through the command and returns the wall time until `lines` lines came back.
fn run(cmd: &mut Command, input: &str, lines: usize) -> Duration {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let started = Instant::now();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let mut out = Vec::new();
    stdout.read_to_end(&mut out).unwrap();
    let elapsed = started.elapsed();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), lines);
    elapsed
}
