//! The persistent cache seen from the command line: a policy fetched by one process protects the
//! next one, even when the network is gone (RFC 8461 §5.1: the cached policy is the protection).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::dns::{Answer, DnsServer};
use common::https::{HttpsServer, Site};
use common::pki::{TempDir, TestCa};

const POLICY: &str = "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n";

#[test]
fn a_new_process_answers_from_the_cache_file_with_the_network_gone() {
    let dir = TempDir::new("mta-sts-cache");
    let ca = TestCa::new();
    let dns = DnsServer::start();
    let https = HttpsServer::start(&ca);
    dns.set("_mta-sts.example.com", Answer::txt(&["v=STSv1; id=1;"]));
    dns.set("mta-sts.example.com", Answer::A(vec!["127.0.0.1".parse().unwrap()]));
    https.set("mta-sts.example.com", Site::policy(POLICY));
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[dns]\nservers = [\"{}\"]\ntimeout = \"1s\"\n[fetch]\ntimeout = \"2s\"\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n",
            dns.addr(),
            ca.ca_file().display(),
            https.port()
        ),
    )
    .unwrap();
    let cache = dir.join("sub/dir/cache.db");

    let (code, line) = mta_sts(&config, &cache, &["query", "--json", "example.com"]);
    assert_eq!(code, 0, "{line}");
    assert!(line.contains(r#""source":"fetched""#), "{line}");
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    drop(https);
    drop(dns);
    let (code, line) = mta_sts(&config, &cache, &["query", "--json", "example.com"]);
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

fn mta_sts(config: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mta-sts"))
        .args(&args[..1])
        .arg("--config")
        .arg(config)
        .arg("--cache")
        .arg(cache)
        .args(&args[1..])
        .output()
        .unwrap();
    let code = out.status.code().unwrap();
    // Only bad input has something to say on stderr.
    assert!(code == 64 || out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    (code, String::from_utf8(out.stdout).unwrap())
}
