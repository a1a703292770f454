//! Exim with the project: Debian's `exim4-daemon-heavy`, unpacked without installing it, runs
//! the shipped configurations of `exim/` against in-process DNS, HTTPS and SMTP servers.
//!
//! - `be`: Exim's `-be` expansion of the `${dlfunc}` entry points of libmtasts.so (issue 5);
//! - `delivery`: real deliveries through the `${dlfunc}`, `${run}` and `${readsocket}`
//!   configurations, scenario by scenario (issue 7);
//! - below: the shipped files themselves, and the receiving side of `tests/common/smtp.rs`.
//!
//! Exim needs root, the Debian archive (once) and namespaces; each test runs in its own
//! network and mount namespace (`exim/sandbox.rs`) and prints `SKIP` without them.

mod common;
mod daemon;
mod mta;

#[path = "exim/be.rs"]
mod be;
#[path = "exim/delivery.rs"]
mod delivery;
#[path = "exim/sandbox.rs"]
mod sandbox;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;

use common::smtp::{Behaviour, SmtpServer};

const VARIANTS: [&str; 3] = ["mta-sts-dlfunc.conf", "mta-sts-run.conf", "mta-sts-readsocket.conf"];

fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("exim").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The named blocks of one configuration file: each router, ACL and transport (a name line
/// ending in `:` and the indented lines after it) and the retry rules, without comments.
fn blocks(text: &str) -> BTreeMap<String, String> {
    let mut blocks = BTreeMap::new();
    let mut section = String::from("main");
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("begin ") {
            section = name.trim().to_owned();
            current = None;
            continue;
        }
        if line.starts_with('#') {
            current = None;
            continue;
        }
        if !line.starts_with(' ') && line.trim_end().ends_with(':') {
            current = Some(format!("{section}/{}", line.trim_end().trim_end_matches(':')));
        }
        if section == "retry" && !line.starts_with('#') && !line.trim().is_empty() {
            current = Some("retry".to_owned());
        }
        if let Some(name) = &current {
            let block: &mut String = blocks.entry(name.clone()).or_default();
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

#[test]
fn shipped_configurations_keep_comments_on_lines_of_their_own() {
    // mta-integration.md §1.8.7: a "# ..." after a setting becomes part of its value.
    for name in VARIANTS {
        for (n, line) in shipped(name).lines().enumerate() {
            if let Some(hash) = line.find('#') {
                assert!(line[..hash].trim().is_empty(), "{name}:{}: comment after a setting: {line}", n + 1);
            }
        }
    }
}

#[test]
fn shipped_variants_differ_only_in_the_lookup() {
    // Everything after the lookup router is shared: the routers read the same line
    // ("mode=... error=..."), whether it came from ${dlfunc}, ${run} or ${readsocket}.
    let dlfunc = blocks(&shipped(VARIANTS[0]));
    for name in ["acl/acl_mtasts_report", "acl/acl_mtasts_nopolicy"]
        .into_iter()
        .chain(["routers/mta_sts_defer", "routers/mta_sts", "routers/mta_sts_nomatch"])
        .chain(["routers/mta_sts_nopolicy_log", "routers/dnslookup"])
        .chain(["transports/remote_smtp", "transports/remote_smtp_mtasts", "transports/remote_smtp_mtasts_testing"])
        .chain(["retry"])
    {
        let first = dlfunc.get(name).unwrap_or_else(|| panic!("{} has no {name}", VARIANTS[0]));
        for variant in &VARIANTS[1..] {
            assert_eq!(blocks(&shipped(variant)).get(name), Some(first), "{name} differs in {variant}");
        }
    }
    // The same routers in the same order: the lookup first, the plain dnslookup router last.
    for variant in VARIANTS {
        let text = shipped(variant);
        let routers: Vec<&str> = text
            .split("begin routers")
            .nth(1)
            .and_then(|r| r.split("begin transports").next())
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.starts_with([' ', '#']) && l.ends_with(':'))
            .collect();
        assert_eq!(
            routers,
            [
                "mta_sts_lookup:",
                "mta_sts_defer:",
                "mta_sts:",
                "mta_sts_nomatch:",
                "mta_sts_nopolicy_log:",
                "dnslookup:"
            ],
            "{variant}"
        );
        // The lookup router only sets $address_data and declines.
        let lookup = &blocks(&text)["routers/mta_sts_lookup"];
        assert!(lookup.contains("\n  driver = redirect\n"), "{variant}: {lookup}");
        assert!(lookup.trim_end().ends_with("\n  data ="), "{variant}: {lookup}");
    }
    // ${dlfunc} uses the entry point that always answers with the line.
    let lookup = &dlfunc["routers/mta_sts_lookup"];
    assert!(lookup.contains("{mta_sts_policy}{$domain}"), "{lookup}");
    assert!(!shipped(VARIANTS[0]).contains("dnsdb"), "the dlfunc variant needs no DNS lookup of its own");
}

#[test]
fn smtp_test_server_keeps_what_it_receives() {
    // The receiving MX hosts of `delivery.rs`, in clear text (the TLS side is what Exim tests).
    let server = SmtpServer::start(Behaviour::NoStarttls);
    let stream = TcpStream::connect(server.addr()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut reply = || {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            text.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return text;
            }
        }
    };
    assert!(reply().starts_with("220 "));
    for (command, want) in [
        ("EHLO client.test\r\n", "250"),
        ("RCPT TO:<early@rcpt.test>\r\n", "503"),
        ("MAIL FROM:<sender@sender.test> SIZE=10\r\n", "250"),
        ("RCPT TO:<a@rcpt.test>\r\n", "250"),
        ("rcpt to:<b@rcpt.test>\r\n", "250"),
        ("DATA\r\n", "354"),
        ("Subject: x\r\n\r\n..leading dot\r\nend\r\n.\r\n", "250"),
        ("DATA\r\n", "503"),
        ("QUIT\r\n", "221"),
    ] {
        writer.write_all(command.as_bytes()).unwrap();
        let got = reply();
        assert!(got.starts_with(want), "{command:?}: {got}");
    }
    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!((message.tls, message.sni.as_deref()), (false, None));
    assert_eq!(message.mail_from, "sender@sender.test");
    assert_eq!(message.rcpt_to, ["a@rcpt.test", "b@rcpt.test"]);
    assert_eq!(message.data, "Subject: x\r\n\r\n.leading dot\r\nend\r\n");
    assert_eq!(server.mail_commands(), 1);
}
