//! `mta-sts stdio` and `mta-sts query` as child processes, against the loopback DNS and HTTPS
//! fixtures: one answer line per request in every dialect, bad input answered and survived,
//! end of input, and the exit codes that Exim `${run}` and Sendmail program maps rely on.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::dns::{Answer, DnsServer};
use common::https::{HttpsServer, Site};
use common::pki::{TempDir, TestCa};
use hickory_proto::rr::RecordType;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mta-sts");

const ENFORCE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.enforce.example\nmx: *.mx.enforce.example\nmax_age: 86400\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: mx.testing.example\nmax_age: 3600\n";
const NONE: &str = "version: STSv1\nmode: none\nmax_age: 600\n";
const BROKEN: &str = "version: STSv2\nmode: enforce\nmx: mx.broken.example\nmax_age: 600\n";

const ENFORCE_EXIM: &str = r#"mode=enforce ignore="!^mail[.]enforce[.]example$ : !^[^.]+[.]mx[.]enforce[.]example$ : *" match="^(mail[.]enforce[.]example|[^.]+[.]mx[.]enforce[.]example)$" max_age=86400 id="e1" mx="mail.enforce.example *.mx.enforce.example""#;
const TESTING_EXIM: &str = r#"mode=testing ignore="!^mx[.]testing[.]example$ : *" match="^(mx[.]testing[.]example)$" max_age=3600 id="t1" mx="mx.testing.example""#;
const ENFORCE_SECURE: &str = "secure match=mail.enforce.example:.mx.enforce.example servername=hostname";

const FORMATS: [&str; 5] = ["text", "json", "exim", "postfix", "sendmail"];

/// DNS and HTTPS fixtures publishing one domain per outcome, and a config file pointing at them.
struct World {
    dns: DnsServer,
    https: HttpsServer,
    ca: TestCa,
    dir: TempDir,
}

impl World {
    fn start() -> World {
        let ca = TestCa::new();
        let world =
            World { dns: DnsServer::start(), https: HttpsServer::start(&ca), ca, dir: TempDir::new("mta-sts-stdio") };
        world.publish("enforce.example", "e1", ENFORCE);
        world.publish("testing.example", "t1", TESTING);
        world.publish("none.example", "n1", NONE);
        world.publish("broken.example", "b1", BROKEN);
        world.dns.set_for("_mta-sts.tempfail.example", RecordType::TXT, Answer::ServFail);
        // nopolicy.example has no records at all: NXDOMAIN.
        world
    }

    fn publish(&self, domain: &str, id: &str, policy: &str) {
        self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={id}")]));
        self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        self.https.set(&format!("mta-sts.{domain}"), Site::policy(policy));
    }

    /// Writes a config file for the fixtures, with `extra` TOML appended.
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(name);
        let text = format!(
            "[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\n\
             [fetch]\ntimeout = \"5s\"\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n\
             [cache]\npath = \"\"\n{extra}",
            self.dns.addr(),
            self.ca.ca_file().display(),
            self.https.port(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

/// What a request should get.
#[derive(Clone, Copy, Debug)]
enum Case {
    /// enforce.example, optionally asking about an MX host that is (true) or is not allowed.
    Enforce(Option<bool>),
    Testing(Option<bool>),
    None,
    NoPolicy,
    /// A policy host serving an invalid policy: no policy, with the reason.
    Broken,
    Tempfail,
    /// Bad input, with the error text of the answer.
    Bad(&'static str),
}

/// The request templates the mixed sessions draw from.
fn templates() -> Vec<(Vec<u8>, Case)> {
    let mut t: Vec<(Vec<u8>, Case)> = vec![
        (b"enforce.example".to_vec(), Case::Enforce(None)),
        (b"ENFORCE.Example. ".to_vec(), Case::Enforce(None)),
        (b"enforce.example mail.enforce.example".to_vec(), Case::Enforce(Some(true))),
        (b"enforce.example\tA.MX.enforce.example\r".to_vec(), Case::Enforce(Some(true))),
        (b"enforce.example a.b.mx.enforce.example".to_vec(), Case::Enforce(Some(false))),
        (b"enforce.example mx.enforce.example".to_vec(), Case::Enforce(Some(false))),
        (b"testing.example".to_vec(), Case::Testing(None)),
        (b"testing.example mx.testing.example".to_vec(), Case::Testing(Some(true))),
        (b"testing.example evil.example".to_vec(), Case::Testing(Some(false))),
        (b"none.example".to_vec(), Case::None),
        (b"none.example mx.none.example".to_vec(), Case::None),
        (b"nopolicy.example".to_vec(), Case::NoPolicy),
        (b"nopolicy.example mx.nopolicy.example".to_vec(), Case::NoPolicy),
        (b"broken.example".to_vec(), Case::Broken),
        (b"tempfail.example".to_vec(), Case::Tempfail),
        (b"".to_vec(), Case::Bad("domain: empty")),
        (b"enforce.example\0".to_vec(), Case::Bad(r#"domain: invalid character "\x00""#)),
        (b"\0\0\0".to_vec(), Case::Bad(r#"domain: invalid character "\x00""#)),
        (b"enf\xffrce.example".to_vec(), Case::Bad(r#"domain: invalid character "\xff""#)),
        (b"enforce.example\x1b[2J".to_vec(), Case::Bad(r#"domain: invalid character "\x1b""#)),
        (b"\x0cenforce.example".to_vec(), Case::Bad(r#"domain: invalid character "\x0c""#)),
        (b"enforce.example mx.enforce.example extra".to_vec(), Case::Bad(r#"domain: invalid character " ""#)),
        (b"enforce.example [192.0.2.1]".to_vec(), Case::Bad("domain: address literals have no MTA-STS policy")),
        (b"192.0.2.1".to_vec(), Case::Bad("domain: address literals have no MTA-STS policy")),
        (b".enforce.example".to_vec(), Case::Bad("domain: empty label")),
        (b"-enforce.example".to_vec(), Case::Bad("domain: label starts or ends with a hyphen")),
        (b"\"quoted\".example".to_vec(), Case::Bad(r#"domain: invalid character "\x22""#)),
    ];
    t.push((vec![b'a'; 100 * 1024], Case::Bad("domain: 102400 bytes is too long (limit 244)")));
    t
}

/// What one answer line must be, or hold.
fn check(format: &str, case: Case, line: &str, output: &OutputKnobs) -> Result<(), String> {
    let mx = |allowed: Option<bool>| match allowed {
        Some(true) => " mx_allowed=yes",
        Some(false) => " mx_allowed=no",
        None => "",
    };
    let exact = |want: String| if line == want { Ok(()) } else { Err(format!("want {want:?}")) };
    match format {
        "exim" => match case {
            Case::Enforce(a) => exact(format!("{ENFORCE_EXIM}{}", mx(a))),
            Case::Testing(a) => exact(format!("{TESTING_EXIM}{}", mx(a))),
            Case::None => exact(r#"mode=none max_age=600 id="n1""#.into()),
            Case::NoPolicy => exact("mode=none".into()),
            Case::Broken => exact(r#"mode=none error="policy: version 'STSv2' is not STSv1""#.into()),
            Case::Tempfail if line.starts_with(r#"mode=defer error="dns: _mta-sts.tempfail.example."#) => Ok(()),
            Case::Tempfail => Err("want mode=defer".into()),
            Case::Bad(e) => exact(format!("mode=error error=\"{}\"", e.replace('"', "'").replace('\\', "/"))),
        },
        "postfix" | "sendmail" => match case {
            Case::Enforce(_) => exact(ENFORCE_SECURE.into()),
            Case::Testing(_) if output.strict_testing => {
                exact("secure match=mx.testing.example servername=hostname".into())
            }
            _ => exact(String::new()),
        },
        "json" => {
            let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
            let (status, mode, allowed, error) = match case {
                Case::Enforce(a) => ("policy", Some("enforce"), a, None),
                Case::Testing(a) => ("policy", Some("testing"), a, None),
                Case::None => ("policy", Some("none"), None, None),
                Case::NoPolicy => ("no-policy", None, None, None),
                Case::Broken => ("no-policy", None, None, Some(r#"policy: version "STSv2" is not STSv1"#)),
                Case::Tempfail => ("tempfail", None, None, None),
                Case::Bad(e) => ("error", None, None, Some(e)),
            };
            let ok = v["status"] == status
                && v["mode"].as_str() == mode
                && v["mx_allowed"].as_bool() == allowed
                && error.is_none_or(|e| v["error"] == e)
                && (status != "tempfail" || v["error"].is_string())
                && (status == "error" || v["domain"].as_str().is_some_and(|d| d.ends_with(".example")));
            if ok {
                Ok(())
            } else {
                Err(format!("want status {status}, mode {mode:?}, mx_allowed {allowed:?}, error {error:?}"))
            }
        }
        "text" => {
            let verdict = |a: Option<bool>, host: &str| match a {
                Some(true) => format!("; mx {host} allowed"),
                Some(false) => format!("; mx {host} NOT allowed"),
                None => String::new(),
            };
            let (start, end) = match case {
                Case::Enforce(_) => (
                    "enforce.example: enforce (max_age 86400, id e1, from ".to_owned(),
                    ", mx mail.enforce.example *.mx.enforce.example)".to_owned(),
                ),
                Case::Testing(_) => (
                    "testing.example: testing (max_age 3600, id t1, from ".to_owned(),
                    ", mx mx.testing.example)".to_owned(),
                ),
                Case::None => ("none.example: none (max_age 600, id n1, from ".to_owned(), ")".to_owned()),
                Case::NoPolicy => ("nopolicy.example: no policy".to_owned(), "no policy".to_owned()),
                Case::Broken => ("broken.example: no policy (policy: version".to_owned(), ")".to_owned()),
                Case::Tempfail => ("tempfail.example: temporary failure (dns: ".to_owned(), ")".to_owned()),
                Case::Bad(e) => (format!("error: {e}"), String::new()),
            };
            // The MX verdict ends the line; the host is as asked, normalised.
            let body = match case {
                Case::Enforce(Some(_)) | Case::Testing(Some(_)) => match line.rsplit_once("; mx ") {
                    Some((body, rest)) => {
                        let host = rest.trim_end_matches(" allowed").trim_end_matches(" NOT");
                        let a = match case {
                            Case::Enforce(a) | Case::Testing(a) => a,
                            _ => None,
                        };
                        if format!("; mx {rest}") != verdict(a, host) {
                            return Err(format!("bad verdict {rest:?}"));
                        }
                        body
                    }
                    None => return Err("no mx verdict".into()),
                },
                _ => line,
            };
            if body.starts_with(&start) && body.ends_with(&end) {
                Ok(())
            } else {
                Err(format!("want {start:?}...{end:?}"))
            }
        }
        _ => unreachable!(),
    }
}

#[derive(Default)]
struct OutputKnobs {
    strict_testing: bool,
}

/// Runs `mta-sts stdio`, feeding `input` from another thread; returns stdout, stderr, status.
fn stdio(config: &PathBuf, format: &str, input: Vec<u8>) -> Output {
    let mut child = Command::new(BIN)
        .args(["stdio", "--format", format, "--config"])
        .arg(config)
        .env_remove("MTA_STS_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    output
}

/// A deterministic mix of `n` requests drawn from the templates, the over-long line a few times.
fn mix(n: usize) -> Vec<(Vec<u8>, Case)> {
    let templates = templates();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let pick =
                if i % 2000 == 1999 { templates.len() - 1 } else { (state % (templates.len() as u64 - 1)) as usize };
            templates[pick].clone()
        })
        .collect()
}

fn join_lines(requests: &[(Vec<u8>, Case)], final_newline: bool) -> Vec<u8> {
    let mut input = Vec::new();
    for (line, _) in requests {
        input.extend_from_slice(line);
        input.push(b'\n');
    }
    if !final_newline {
        input.pop();
    }
    input
}

fn check_session(format: &str, requests: &[(Vec<u8>, Case)], out: &Output, knobs: &OutputKnobs) {
    assert!(out.status.success(), "{format}: {:?}, stderr {}", out.status, String::from_utf8_lossy(&out.stderr));
    let stdout = std::str::from_utf8(&out.stdout).expect("answers are UTF-8");
    assert!(stdout.ends_with('\n') || requests.is_empty(), "{format}: last answer ends with a newline");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), requests.len(), "{format}: one answer line per request");
    for (n, ((request, case), line)) in requests.iter().zip(&lines).enumerate() {
        if let Err(why) = check(format, *case, line, knobs) {
            panic!(
                "{format}: request {n} {:?}: got {line:?}: {why}",
                String::from_utf8_lossy(&request[..request.len().min(60)])
            );
        }
        assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "{format}: printable ASCII only: {line:?}");
    }
}

#[test]
fn ten_thousand_mixed_requests_in_every_dialect() {
    let world = World::start();
    let config = world.config("mixed.toml", "");
    let requests = mix(10_000);
    assert!(requests.iter().any(|(r, _)| r.len() > 100_000));
    let input = join_lines(&requests, false);
    let started = Instant::now();
    for format in FORMATS {
        world.dns.reset_queries();
        world.https.reset_counts();
        let out = stdio(&config, format, input.clone());
        check_session(format, &requests, &out, &OutputKnobs::default());
        assert_eq!(out.stderr, b"", "{format}: nothing on stderr");
        // One resolver for the session: each domain went to the network once.
        assert_eq!(world.dns.queries("_mta-sts.enforce.example", RecordType::TXT), 1, "{format}");
        assert_eq!(world.https.requests("mta-sts.enforce.example"), 1, "{format}");
        assert_eq!(world.https.requests("mta-sts.testing.example"), 1, "{format}");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
}

#[test]
fn strict_testing_answers_secure_for_testing_policies() {
    let world = World::start();
    let config = world.config("strict.toml", "[output]\nstrict_testing = true\n");
    let requests: Vec<_> = templates().into_iter().filter(|(r, _)| r.len() < 200).collect();
    for format in ["postfix", "sendmail"] {
        let out = stdio(&config, format, join_lines(&requests, true));
        check_session(format, &requests, &out, &OutputKnobs { strict_testing: true });
    }
}

#[test]
fn require_sni_off_drops_servername_for_postfix_only() {
    let world = World::start();
    let config = world.config("nosni.toml", "[output]\nrequire_sni = false\n");
    let input = b"enforce.example\n".to_vec();
    let out = stdio(&config, "postfix", input.clone());
    assert_eq!(out.stdout, b"secure match=mail.enforce.example:.mx.enforce.example\n");
    let out = stdio(&config, "sendmail", input);
    assert_eq!(out.stdout, format!("{ENFORCE_SECURE}\n").as_bytes());
}

#[test]
fn end_of_input_without_a_newline_and_empty_input() {
    let world = World::start();
    let config = world.config("eof.toml", "");
    let out = stdio(&config, "exim", b"nopolicy.example\nenforce.example".to_vec());
    assert!(out.status.success());
    assert_eq!(out.stdout, format!("mode=none\n{ENFORCE_EXIM}\n").as_bytes());
    let out = stdio(&config, "exim", Vec::new());
    assert!(out.status.success());
    assert_eq!(out.stdout, b"");
    // An over-long last line with no newline is still answered.
    let out = stdio(&config, "postfix", vec![b'x'; 5000]);
    assert!(out.status.success());
    assert_eq!(out.stdout, b"\n");
}

#[test]
fn each_answer_is_flushed_before_the_next_request_is_read() {
    let world = World::start();
    let config = world.config("flush.toml", "");
    let mut child = Command::new(BIN)
        .args(["stdio", "--format", "sendmail", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for (request, want) in [
        ("enforce.example\n", format!("{ENFORCE_SECURE}\n")),
        ("nopolicy.example\n", "\n".to_owned()),
        ("\0\n", "\n".to_owned()),
        ("enforce.example mail.enforce.example\n", format!("{ENFORCE_SECURE}\n")),
    ] {
        // Coprocess style: write one request, wait for its answer, with stdin still open.
        stdin.write_all(request.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, want);
    }
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
    assert!(child.wait().unwrap().success());
}

#[test]
fn unreachable_dns_is_a_temporary_failure() {
    let dir = TempDir::new("mta-sts-stdio-nodns");
    let config = dir.join("nodns.toml");
    std::fs::write(&config, "[dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"300ms\"\n[cache]\npath = \"\"\n").unwrap();
    let out = stdio(&config, "exim", b"example.com\nexample.com\n".to_vec());
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.starts_with("mode=defer error=\"dns: _mta-sts.example.com.")), "{lines:?}");
}

/// `mta-sts query --format F --config C KEY`, the key last as a Sendmail program map passes it.
fn query(config: &PathBuf, format: &str, key: &str) -> Output {
    Command::new(BIN)
        .args(["query", "--format", format, "--config"])
        .arg(config)
        .arg(key)
        .env_remove("MTA_STS_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn query_exit_codes_and_output_per_outcome() {
    let world = World::start();
    let config = world.config("query.toml", "");
    let cases = [
        ("enforce.example", Case::Enforce(None), 0),
        ("testing.example", Case::Testing(None), 0),
        ("none.example", Case::None, 1),
        ("nopolicy.example", Case::NoPolicy, 1),
        ("broken.example", Case::Broken, 1),
        ("tempfail.example", Case::Tempfail, 75),
        ("enforce-.example", Case::Bad("domain: label starts or ends with a hyphen"), 64),
        ("enforce..example", Case::Bad("domain: empty label"), 64),
        ("192.0.2.1", Case::Bad("domain: address literals have no MTA-STS policy"), 64),
    ];
    for format in FORMATS {
        for (key, case, code) in cases {
            let out = query(&config, format, key);
            assert_eq!(out.status.code(), Some(code), "{format} {key}: {}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(out.stderr, b"", "{format} {key}: nothing on stderr (Exim ${{run}} mixes it in)");
            let stdout = String::from_utf8(out.stdout).unwrap();
            let secure = matches!(case, Case::Enforce(_));
            if matches!(format, "postfix" | "sendmail") && !secure {
                // "exit 0 with no output means not found": no line at all.
                assert_eq!(stdout, "", "{format} {key}");
                continue;
            }
            let line = stdout.strip_suffix('\n').unwrap_or_else(|| panic!("{format} {key}: one line: {stdout:?}"));
            assert!(!line.contains('\n'), "{format} {key}: one line: {stdout:?}");
            if let Err(why) = check(format, case, line, &OutputKnobs::default()) {
                panic!("{format} {key}: got {line:?}: {why}");
            }
        }
    }
    // A key that looks like an option is a usage error: still 64, "bad input", to the MTA.
    assert_eq!(query(&config, "sendmail", "-x.example").status.code(), Some(64));
}
