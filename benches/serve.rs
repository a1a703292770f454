//! Throughput of `mta-sts serve` on cached socketmap lookups: N pipelined requests over 1 and
//! then 8 TCP connections on loopback, against DNS and HTTPS fixtures (only the first request
//! of each domain reaches them). Issue #6 asks for 200,000 lookups/s or more with pipelining on
//! a 2-core machine; the client runs on the same machine and its time is included.
//!
//! `cargo bench --bench serve` runs 1,000,000 requests per case; under `cargo test` it runs
//! 5,000 as a smoke test.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/daemon/mod.rs"]
mod daemon;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use daemon::{ask, netstring, Daemon, World};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let total = if full { 1_000_000 } else { 5_000 };
    let world = World::start();
    // Cached answers stay fresh for the whole run: no DNS query once warm.
    let text = world
        .config_text("", "")
        .replace("[cache]\npath = \"\"\n", "[cache]\npath = \"\"\nrecheck_interval = \"1h\"\n");
    let config = world.dir.join("bench.toml");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config);
    // The requests Postfix and Sendmail send for policy domains: one fetch each, then the cache.
    let requests = [
        "postfix example.com",
        "postfix enforce.example",
        "sts example.com",
        "postfix testing.example",
        "postfix-tlsrpt example.com",
        "postfix nopolicy.example",
        "postfix .example.com",
        "postfix [enforce.example]:25",
    ];
    let mut warm = daemon.connect();
    for r in requests {
        let (map, key) = r.split_once(' ').unwrap();
        ask(&mut warm, map, key);
    }
    let fetches = world.https.total_requests();
    for connections in [1usize, 8] {
        let per = total / connections;
        let mut payload = Vec::new();
        for n in 0..per {
            payload.extend_from_slice(&netstring(requests[n % requests.len()].as_bytes()));
        }
        let started = Instant::now();
        let clients: Vec<_> = (0..connections)
            .map(|_| {
                let stream = TcpStream::connect(daemon.addr()).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let payload = payload.clone();
                thread::spawn(move || run(stream, &payload, per))
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        let elapsed = started.elapsed();
        let rate = (per * connections) as f64 / elapsed.as_secs_f64();
        let verdict = match (full, rate >= 200_000.0) {
            (false, _) => "smoke run, not a measurement",
            (true, true) => "target 200000: met",
            (true, false) => "target 200000: MISSED",
        };
        println!(
            "serve socketmap, {connections} connection(s), {} cached requests pipelined: {:.0} ms, {rate:.0} lookups/s ({verdict})",
            per * connections,
            elapsed.as_secs_f64() * 1e3,
        );
    }
    // For comparison: Postfix and Sendmail send one request and wait for its reply.
    let lockstep = total / 10;
    let per = lockstep / 8;
    let started = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let mut stream = daemon.connect();
            thread::spawn(move || {
                for n in 0..per {
                    let (map, key) = requests[n % requests.len()].split_once(' ').unwrap();
                    ask(&mut stream, map, key);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "serve socketmap, 8 connection(s), {} cached requests one at a time (no pipelining): {:.0} ms, {:.0} lookups/s",
        per * 8,
        elapsed.as_secs_f64() * 1e3,
        (per * 8) as f64 / elapsed.as_secs_f64(),
    );
    assert_eq!(world.https.total_requests(), fetches, "every measured lookup came from the cache");
}

/// Writes `payload` from one thread while this one reads and counts `count` replies.
fn run(stream: TcpStream, payload: &[u8], count: usize) {
    let mut writer = stream.try_clone().unwrap();
    let payload = payload.to_vec();
    let sender = thread::spawn(move || writer.write_all(&payload));
    let mut reader = stream;
    let mut buf = vec![0u8; 256 * 1024];
    let (mut filled, mut seen) = (0usize, 0usize);
    while seen < count {
        let n = reader.read(&mut buf[filled..]).unwrap();
        assert!(n > 0, "daemon closed after {seen} replies");
        filled += n;
        // Count the complete netstrings, keep the partial one.
        let mut pos = 0;
        while let Some(colon) = buf[pos..filled].iter().position(|&b| b == b':') {
            let len: usize = std::str::from_utf8(&buf[pos..pos + colon]).unwrap().parse().unwrap();
            let end = pos + colon + 1 + len + 1;
            if end > filled {
                break;
            }
            assert_eq!(buf[end - 1], b',');
            pos = end;
            seen += 1;
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
    sender.join().unwrap().unwrap();
}
