//! The persistent cache seen from the command line: a policy fetched by one process protects the
//! next one, even when the network is gone (RFC 8461 §5.1: the cached policy is the protection),
//! and many processes share one file.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::https::{CertKind, Reply, Site};
use common::world::World;

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

/// Runs `mta-sts ARGS[0] --config CONFIG --cache CACHE ARGS[1..]`; returns the exit code and
/// stdout. Only bad input may write to stderr.
fn mta_sts(config: &Path, cache: &Path, args: &[&str]) -> (i32, String) {
    let out = command(config, cache, args).output().unwrap();
    let code = out.status.code().unwrap();
    assert!(code == 64 || out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (code, String::from_utf8(out.stdout).unwrap())
}

fn command(config: &Path, cache: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mta-sts"));
    cmd.args(&args[..1]).arg("--config").arg(config).arg("--cache").arg(cache).args(&args[1..]);
    cmd
}

fn world_with(domains: &[&str], site: impl Fn() -> Site) -> (World, PathBuf, PathBuf) {
    let world = World::start("mta-sts-cache");
    for d in domains {
        world.publish(d, "1", site());
    }
    let config = world.config_file("config.toml", "");
    let cache = world.dir.join("sub/dir/cache.db");
    (world, config, cache)
}

#[test]
fn a_new_process_answers_from_the_cache_file_with_the_network_gone() {
    let (world, config, cache) = world_with(&["example.com"], || Site::policy(POLICY));
    let query = ["query", "--json", "example.com"];
    let (code, line) = mta_sts(&config, &cache, &query);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains(r#""source":"fetched""#), "{line}");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    // The network goes away; the files stay.
    drop(world.dns);
    drop(world.https);
    let (code, line) = mta_sts(&config, &cache, &query);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains(r#""status":"policy","mode":"enforce""#), "{line}");
    assert!(line.contains(r#""source":"cache""#), "{line}");

    // The cache commands see the same file.
    let (code, out) = mta_sts(&config, &cache, &["cache", "list"]);
    assert_eq!((code, out.starts_with("example.com enforce id=1 expires_at=")), (0, true), "{out}");
    let (code, out) = mta_sts(&config, &cache, &["cache", "show", "Example.COM."]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["policy"]["text"], POLICY);
    // Nothing is due for renewal a moment after the fetch.
    assert_eq!(mta_sts(&config, &cache, &["refresh"]), (0, String::new()));
    assert_eq!(mta_sts(&config, &cache, &["cache", "purge", "example.com"]).0, 0);
    assert_eq!(mta_sts(&config, &cache, &["cache", "show", "example.com"]), (1, String::new()));
    assert_eq!(mta_sts(&config, &cache, &["cache", "show", "exa mple.com"]).0, 64);
}

#[test]
fn export_then_import_moves_a_cache_to_another_file() {
    let (world, config, cache) = world_with(&["a.example", "b.example"], || Site::policy(POLICY));
    let (code, _) = mta_sts(&config, &cache, &["query", "a.example", "b.example", "nopolicy.example"]);
    assert_eq!(code, 1);
    drop(world.dns);
    drop(world.https);
    let (code, exported) = mta_sts(&config, &cache, &["cache", "export"]);
    assert_eq!((code, exported.lines().count()), (0, 3), "{exported}");

    let other = cache.with_file_name("other.db");
    let mut import = command(&config, &other, &["cache", "import"]).stdin(Stdio::piped()).spawn().unwrap();
    import.stdin.take().unwrap().write_all(exported.as_bytes()).unwrap();
    assert!(import.wait().unwrap().success());
    assert_eq!(mta_sts(&config, &other, &["cache", "export"]), (0, exported.clone()));
    let (code, line) = mta_sts(&config, &other, &["query", "--json", "b.example"]);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains(r#""source":"cache""#), "{line}");

    // A bad line is refused with its line number; nothing after it is imported.
    let third = cache.with_file_name("third.db");
    let mut import = command(&config, &third, &["cache", "import"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    import.stdin.take().unwrap().write_all(b"{\"domain\":\"x.example\"}\nnot json\n").unwrap();
    let out = import.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(65));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn processes_racing_for_one_cold_domain_make_one_fetch() {
    // A policy host slow enough that every process starts while the first one is fetching.
    let raw = format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{POLICY}", POLICY.len());
    let slow = || Site::new(CertKind::Valid, Reply::Trickle { head_and_body: raw.clone().into_bytes(), interval: Duration::from_millis(3) });
    let (world, config, cache) = world_with(&["example.com"], slow);
    // Create the file first, as a running MTA would have.
    assert_eq!(mta_sts(&config, &cache, &["cache", "list"]).0, 0);
    let children: Vec<_> = (0..16)
        .map(|_| command(&config, &cache, &["query", "example.com"]).stdout(Stdio::null()).spawn().unwrap())
        .collect();
    for mut child in children {
        assert_eq!(child.wait().unwrap().code(), Some(0));
    }
    assert_eq!(world.https.requests("mta-sts.example.com"), 1);
}

#[test]
fn thirty_two_processes_share_one_cache_file() {
    let domains: Vec<String> = (0..50).map(|n| format!("d{n}.example")).collect();
    let names: Vec<&str> = domains.iter().map(String::as_str).collect();
    let (world, config, cache) = world_with(&names, || Site::policy(POLICY));
    assert_eq!(mta_sts(&config, &cache, &["cache", "list"]).0, 0);
    let input: String = (0..200).map(|n| format!("{}\n", domains[n % domains.len()])).collect();
    let children: Vec<_> = (0..32)
        .map(|_| {
            let mut child = command(&config, &cache, &["stdio", "--format", "exim"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            child
        })
        .collect();
    let want = r#"mode=enforce ignore="!^mail[.]example[.]com$ : *" match="^(mail[.]example[.]com)$" max_age=86400 id="1" mx="mail.example.com""#;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "no lock errors, no warnings");
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.lines().count(), 200);
        assert!(stdout.lines().all(|l| l == want), "{stdout}");
    }
    // Every domain fetched once across all the processes, and all of them in the file.
    for d in &domains {
        assert_eq!(world.https.requests(&format!("mta-sts.{d}")), 1, "{d}");
    }
    let (_, list) = mta_sts(&config, &cache, &["cache", "list"]);
    assert_eq!(list.lines().count(), 50);
}
