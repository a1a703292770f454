//! `mta-sts serve` as a child process over real sockets (loopback TCP on random ports, Unix
//! sockets in temporary directories), against the loopback DNS and HTTPS fixtures: every
//! dialect and the compatibility replies byte for byte, key normalisation, pipelining, many
//! clients, framing faults, half-closed and idle connections, limits, line mode, SIGHUP reload,
//! SIGTERM drain, systemd notify, privilege drop, the refresh task, the shared cache, and
//! `migrate-config`.

mod common;
mod daemon;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::https::{Reply, Site};
use daemon::{ask, netstring, read_netstring, Daemon, World, BIN};

const RFC_SECURE: &str = "secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
/// compat-postfix-mta-sts-resolver.md §1, the format illustration: byte for byte.
const RFC_TLSRPT: &str = "OK secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname policy_type=sts policy_domain=example.com mx_host_pattern=mail.example.com mx_host_pattern=*.example.net mx_host_pattern=backupmx.example.com { policy_string = mx: mail.example.com } { policy_string = mx: *.example.net } { policy_string = mx: backupmx.example.com } { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = max_age: 604800 }";
const ENFORCE_SECURE: &str = "secure match=mail.enforce.example:.mx.enforce.example servername=hostname";
const ENFORCE_EXIM: &str = r#"mode=enforce ignore="!^mail[.]enforce[.]example$ : !^[^.]+[.]mx[.]enforce[.]example$ : *" match="^(mail[.]enforce[.]example|[^.]+[.]mx[.]enforce[.]example)$" max_age=86400 id="e1" mx="mail.enforce.example *.mx.enforce.example""#;
const TEMP_PREFIX: &str = "TEMP dns: _mta-sts.tempfail.example.: ";

/// The zones the dialect tests use besides the built-in names.
const ZONES: &str = "\
[serve.zones.strict]\nstrict_testing = true\n\
[serve.zones.nosni]\nrequire_sni = false\n\
[serve.zones.failopen]\non_tempfail = \"notfound\"\n\
[serve.zones.postfix310]\ntlsrpt = true\n";

/// What a reply must be: exactly, or starting with.
enum Want {
    Is(String),
    Starts(&'static str),
}

fn is(s: &str) -> Want {
    Want::Is(s.to_owned())
}

fn check(got: &str, want: &Want, what: &str) {
    match want {
        Want::Is(w) => assert_eq!(got, w, "{what}"),
        Want::Starts(p) => assert!(got.starts_with(p), "{what}: {got:?} should start with {p:?}"),
    }
}

/// The table of compatibility replies: (map, key, reply).
fn compat_cases() -> Vec<(&'static str, &'static str, Want)> {
    let nf = || is("NOTFOUND ");
    vec![
        // enforce / testing / none / no policy / failures, Postfix dialect (upstream's replies)
        ("postfix", "example.com", Want::Is(format!("OK {RFC_SECURE}"))),
        ("postfix", "enforce.example", Want::Is(format!("OK {ENFORCE_SECURE}"))),
        ("postfix", "testing.example", nf()),
        ("postfix", "none.example", nf()),
        ("postfix", "nopolicy.example", nf()),
        ("postfix", "broken.example", nf()),
        ("postfix", "tempfail.example", Want::Starts(TEMP_PREFIX)),
        // keys as Postfix and Sendmail send them
        ("postfix", ".example.com", nf()),
        ("postfix", ".com", nf()),
        ("postfix", "[example.com]", Want::Is(format!("OK {RFC_SECURE}"))),
        ("postfix", "[example.com]:25", Want::Is(format!("OK {RFC_SECURE}"))),
        ("postfix", "example.com:587", Want::Is(format!("OK {RFC_SECURE}"))),
        ("postfix", "EXAMPLE.COM.", Want::Is(format!("OK {RFC_SECURE}"))),
        ("postfix", "192.0.2.1", nf()),
        ("postfix", "[192.0.2.1]:25", nf()),
        ("postfix", "[2001:db8::1]", nf()),
        ("postfix", "", nf()),
        ("postfix", "example.com extra", nf()),
        ("postfix", "bad..name", nf()),
        // zones: strict_testing, require_sni, on_tempfail, tlsrpt
        ("strict", "testing.example", is("OK secure match=mx.testing.example servername=hostname")),
        ("strict", "none.example", nf()),
        ("nosni", "example.com", is("OK secure match=mail.example.com:.example.net:backupmx.example.com")),
        ("failopen", "tempfail.example", nf()),
        ("postfix310", "example.com", is(RFC_TLSRPT)),
        ("postfix310", "testing.example", nf()),
        ("postfix-tlsrpt", "example.com", is(RFC_TLSRPT)),
        // unknown names use the default zone: Postfix dialect
        ("anything", "example.com", Want::Is(format!("OK {RFC_SECURE}"))),
        // Sendmail FEATURE(sts): classic reply, never the TLSRPT attributes
        ("sts", "example.com", Want::Is(format!("OK {RFC_SECURE}"))),
        ("sts", "testing.example", nf()),
        ("sts", "nopolicy.example", nf()),
        ("sts", "tempfail.example", Want::Starts(TEMP_PREFIX)),
        // Exim and JSON: the line, OK for every looked-up answer
        ("exim", "enforce.example", Want::Is(format!("OK {ENFORCE_EXIM}"))),
        ("exim", "nopolicy.example", is("OK mode=none")),
        ("exim", "none.example", is("OK mode=none max_age=600 id=\"n1\"")),
        ("exim", "tempfail.example", Want::Starts("OK mode=defer error=\"dns: _mta-sts.tempfail.example.")),
        ("exim", ".enforce.example", nf()),
        (
            "json",
            "enforce.example",
            Want::Starts("OK {\"domain\":\"enforce.example\",\"status\":\"policy\",\"mode\":\"enforce\""),
        ),
        ("json", "nopolicy.example", is("OK {\"domain\":\"nopolicy.example\",\"status\":\"no-policy\"}")),
        ("json", "tempfail.example", Want::Starts("OK {\"domain\":\"tempfail.example\",\"status\":\"tempfail\"")),
    ]
}

#[test]
fn every_dialect_and_key_form_gets_the_compatible_reply() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("dialects.toml", "", ZONES));
    let mut s = daemon.connect();
    for (map, key, want) in compat_cases() {
        check(&ask(&mut s, map, key), &want, &format!("{map} {key}"));
    }
    // The wire bytes of the two upstream shapes.
    s.write_all(&netstring(b"postfix nopolicy.example")).unwrap();
    let mut wire = [0u8; 12];
    s.read_exact(&mut wire).unwrap();
    assert_eq!(&wire, b"9:NOTFOUND ,");
    s.write_all(&netstring(b"postfix enforce.example")).unwrap();
    let want = format!("{}:OK {ENFORCE_SECURE},", ENFORCE_SECURE.len() + 3);
    let mut wire = vec![0u8; want.len()];
    s.read_exact(&mut wire).unwrap();
    assert_eq!(String::from_utf8(wire).unwrap(), want);
    // Each domain was fetched once whatever the number of maps that asked.
    assert_eq!(world.https.requests("mta-sts.example.com"), 1);
    assert!(daemon.log().contains("policy domain=example.com mode=enforce source=fetched"), "{}", daemon.log());
}

#[test]
fn a_thousand_pipelined_requests_are_answered_in_order() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("pipeline.toml", "", ZONES));
    let cases = compat_cases();
    // Warm the cache so that the answers are stable (the tempfail one is remembered too).
    let mut warm = daemon.connect();
    for (map, key, _) in &cases {
        ask(&mut warm, map, key);
    }
    let mut request = Vec::new();
    let mut wants = Vec::new();
    for n in 0..1000 {
        let (map, key, want) = &cases[n % cases.len()];
        request.extend_from_slice(&netstring(format!("{map} {key}").as_bytes()));
        wants.push((format!("{map} {key}"), want));
    }
    let mut s = daemon.connect();
    let mut writer = s.try_clone().unwrap();
    // All of it in one go, from another thread, while the replies come back.
    let sender = thread::spawn(move || writer.write_all(&request));
    for (n, (what, want)) in wants.iter().enumerate() {
        let reply = read_netstring(&mut s).unwrap().unwrap_or_else(|| panic!("reply {n} missing"));
        check(&String::from_utf8(reply).unwrap(), want, &format!("#{n} {what}"));
    }
    sender.join().unwrap().unwrap();
}

#[test]
fn many_concurrent_clients_each_get_their_own_answers() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("clients.toml", "", ZONES));
    let addr = daemon.addr();
    let clients: Vec<_> = (0..64)
        .map(|c| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let cases = compat_cases();
                for n in 0..cases.len() {
                    let (map, key, want) = &cases[(c + n) % cases.len()];
                    check(&ask(&mut s, map, key), want, &format!("client {c}: {map} {key}"));
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // Concurrent first lookups of one domain made one fetch.
    assert_eq!(world.https.requests("mta-sts.enforce.example"), 1);
}

/// Sends `bytes` and returns every byte the daemon sends back until it closes.
fn exchange(daemon: &Daemon, bytes: &[u8]) -> Vec<u8> {
    let mut s = daemon.connect();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn framing_faults_get_perm_and_a_closed_connection() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("faults.toml", "max_request = 100", ""));
    let answered = format!("{}:OK {ENFORCE_SECURE},", ENFORCE_SECURE.len() + 3);
    for (input, reason) in [
        (&b"ab:postfix x,"[..], "netstring: bad length: byte \"a\" where a digit or ':' belongs"),
        (b":,", "netstring: bad length: byte \":\" where a digit or ':' belongs"),
        (b"5:hello;", "netstring: bad terminator: byte \";\" where ',' belongs"),
        (b"5:hello\n", "netstring: bad terminator: byte 0x0a where ',' belongs"),
        (b"101:", "netstring: length over the limit of 100 bytes"),
        (b"99999999999999999999999", "netstring: length over the limit of 100 bytes"),
        (b"postfix example.com\n", "netstring: bad length: byte \"p\" where a digit or ':' belongs"),
    ] {
        let reply = exchange(&daemon, input);
        let perm = format!("PERM {reason}");
        assert_eq!(String::from_utf8_lossy(&reply), format!("{}:{perm},", perm.len()), "{input:?}");
        // A good request before the fault is answered first.
        let mut both = netstring(b"postfix enforce.example");
        both.extend_from_slice(input);
        let reply = exchange(&daemon, &both);
        assert_eq!(String::from_utf8_lossy(&reply), format!("{answered}{}:{perm},", perm.len()), "{input:?}");
    }
    assert!(daemon.log().contains("WARN bad netstring, closing connection"), "{}", daemon.log());
    // The daemon carries on.
    assert_eq!(ask(&mut daemon.connect(), "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
}

#[test]
fn an_oversized_length_is_refused_before_its_data_arrives() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("oversize.toml", "", ""));
    let mut s = daemon.connect();
    // Default limit 10000 (Postfix's own query limit): the digits alone decide.
    s.write_all(b"10001").unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"52:PERM netstring: length over the limit of 10000 bytes,");
    assert!(started.elapsed() < Duration::from_secs(5));
    // 10000 bytes of key are fine (a long key finds no policy, the connection stays).
    let mut s = daemon.connect();
    let key = format!("postfix {}", "a".repeat(10000 - 8));
    s.write_all(&netstring(key.as_bytes())).unwrap();
    assert_eq!(read_netstring(&mut s).unwrap().unwrap(), b"NOTFOUND ");
    assert_eq!(ask(&mut s, "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
}

#[test]
fn a_half_closed_client_gets_every_answer_then_eof() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("halfclose.toml", "", ""));
    let mut s = daemon.connect();
    let mut request = Vec::new();
    for key in ["enforce.example", "nopolicy.example", ".enforce.example"] {
        request.extend_from_slice(&netstring(format!("postfix {key}").as_bytes()));
    }
    s.write_all(&request).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let want = format!("{}:OK {ENFORCE_SECURE},9:NOTFOUND ,9:NOTFOUND ,", ENFORCE_SECURE.len() + 3);
    assert_eq!(String::from_utf8(out).unwrap(), want);
    // A request cut short by the end of input gets nothing, and the connection closes.
    let mut s = daemon.connect();
    s.write_all(b"30:postfix enforce").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert!(out.is_empty());
    assert!(daemon.wait_log("connection closed inside a request", Duration::from_secs(5)), "{}", daemon.log());
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("idle.toml", "idle_timeout = \"1s\"", ""));
    let started = Instant::now();
    let mut quiet = daemon.connect();
    let mut partial = daemon.connect();
    partial.write_all(b"20:postfix exa").unwrap();
    let mut busy = daemon.connect();
    for _ in 0..4 {
        // A client that keeps asking is never idle.
        thread::sleep(Duration::from_millis(400));
        assert_eq!(ask(&mut busy, "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
    }
    let mut out = Vec::new();
    assert_eq!(quiet.read_to_end(&mut out).unwrap(), 0);
    assert_eq!(partial.read_to_end(&mut out).unwrap(), 0);
    let closed = started.elapsed();
    assert!(closed >= Duration::from_millis(1000) && closed < Duration::from_secs(10), "{closed:?}");
}

#[test]
fn connections_over_the_limit_wait_for_a_free_slot() {
    let world = World::start();
    let daemon = Daemon::start(&world.config("limit.toml", "max_connections = 2", ""));
    let mut a = daemon.connect();
    let mut b = daemon.connect();
    assert_eq!(ask(&mut a, "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
    assert_eq!(ask(&mut b, "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut c = daemon.connect();
    c.write_all(&netstring(b"postfix enforce.example")).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut byte = [0u8];
    assert!(c.read(&mut byte).is_err(), "served beyond the limit");
    assert!(daemon.wait_log("connection limit reached", Duration::from_secs(5)));
    drop(a);
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_netstring(&mut c).unwrap().unwrap(), format!("OK {ENFORCE_SECURE}").into_bytes());
    assert_eq!(ask(&mut b, "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
}

#[test]
fn line_mode_answers_one_line_per_line_in_the_exim_dialect() {
    let world = World::start();
    let exim = world.dir.join("exim.sock");
    let json = world.dir.join("json.sock");
    let extra = format!(
        "[[serve.line]]\npath = \"{}\"\n[[serve.line]]\npath = \"{}\"\nzone = \"json\"\nmode = 0o600\n",
        exim.display(),
        json.display()
    );
    let _daemon = Daemon::start(&world.config("line.toml", "max_request = 100", &extra));
    assert_eq!(std::fs::metadata(&exim).unwrap().mode() & 0o777, 0o660);
    assert_eq!(std::fs::metadata(&json).unwrap().mode() & 0o777, 0o600);

    // Exim's ${readsocket{path}{$domain\n}}: write, half-close, read to EOF.
    let readsocket = |path: &std::path::Path, request: &[u8]| {
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(request).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert_eq!(readsocket(&exim, b"enforce.example\n"), format!("{ENFORCE_EXIM}\n"));
    assert_eq!(readsocket(&exim, b"enforce.example"), format!("{ENFORCE_EXIM}\n"), "no LF before EOF");
    let mut many = Vec::new();
    let mut want = String::new();
    for n in 0..300 {
        let (request, answer) = match n % 5 {
            0 => (b"enforce.example\r\n".to_vec(), format!("{ENFORCE_EXIM}\n")),
            1 => (b"nopolicy.example\n".to_vec(), "mode=none\n".to_owned()),
            2 => (b"enforce.example mail.enforce.example\n".to_vec(), format!("{ENFORCE_EXIM} mx_allowed=yes\n")),
            3 => {
                let mut long = vec![b'x'; 150];
                long.push(b'\n');
                (long, "mode=error error=\"domain: 150 bytes is too long (limit 244)\"\n".to_owned())
            }
            _ => (
                b"-bad-.example\n".to_vec(),
                "mode=error error=\"domain: label starts or ends with a hyphen\"\n".to_owned(),
            ),
        };
        many.extend_from_slice(&request);
        want.push_str(&answer);
    }
    assert_eq!(readsocket(&exim, &many), want);

    // A client that keeps the connection open gets each answer as its line arrives.
    let mut s = UnixStream::connect(&json).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
    for domain in ["enforce.example", "nopolicy.example"] {
        s.write_all(format!("{domain}\n").as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        assert!(line.starts_with(&format!("{{\"domain\":\"{domain}\"")), "{line}");
    }
}

#[test]
fn socketmap_over_a_unix_socket_with_owner_group_and_mode() {
    let world = World::start();
    let path = world.dir.join("socketmap.sock");
    let extra = format!("[[serve.socketmap]]\npath = \"{}\"\nmode = 0o640\ngroup = \"root\"\n", path.display());
    let daemon = Daemon::start(&world.config("unix.toml", "", &extra));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o640, 0));
    let mut s = UnixStream::connect(&path).unwrap();
    assert_eq!(ask(&mut s, "sts", "example.com"), format!("OK {RFC_SECURE}"));
    drop(daemon);
}

#[test]
fn sighup_reloads_zones_without_dropping_connections() {
    let world = World::start();
    let config = world.config("reload.toml", "", "");
    let daemon = Daemon::start(&config);
    let mut s = daemon.connect();
    assert_eq!(ask(&mut s, "custom", "example.com"), format!("OK {RFC_SECURE}"));
    assert_eq!(ask(&mut s, "custom", "tempfail.example").split(':').next(), Some("TEMP dns"));

    std::fs::write(
        &config,
        world.config_text("", "[serve.zones.custom]\nrequire_sni = false\non_tempfail = \"notfound\"\n"),
    )
    .unwrap();
    daemon.signal("HUP");
    assert!(daemon.wait_log("configuration reloaded", Duration::from_secs(10)), "{}", daemon.log());
    // The same connection, the new zone.
    assert_eq!(
        ask(&mut s, "custom", "example.com"),
        "OK secure match=mail.example.com:.example.net:backupmx.example.com"
    );
    assert_eq!(ask(&mut s, "custom", "tempfail.example"), "NOTFOUND ");

    // A broken file is refused and the configuration in force stays.
    std::fs::write(&config, "[serve]\nno_such_key = 1\n").unwrap();
    daemon.signal("HUP");
    assert!(daemon.wait_log("reload refused", Duration::from_secs(10)), "{}", daemon.log());
    assert_eq!(
        ask(&mut s, "custom", "example.com"),
        "OK secure match=mail.example.com:.example.net:backupmx.example.com"
    );
    assert_eq!(ask(&mut daemon.connect(), "postfix", "example.com"), format!("OK {RFC_SECURE}"));
}

#[test]
fn sigterm_finishes_requests_in_flight_then_exits() {
    let world = World::start();
    // A policy host that takes about two seconds to answer.
    let body = ENFORCE_BODY_SLOW;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    world.publish("slow.example", "s1", body);
    world.https.set(
        "mta-sts.slow.example",
        Site::new(
            common::https::CertKind::Valid,
            Reply::Trickle { head_and_body: format!("{head}{body}").into_bytes(), interval: Duration::from_millis(12) },
        ),
    );
    let notify = world.dir.join("notify.sock");
    let listener = UnixDatagram::bind(&notify).unwrap();
    listener.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let unix = world.dir.join("drain.sock");
    let extra = format!("[[serve.socketmap]]\npath = \"{}\"\n", unix.display());
    let mut daemon = Daemon::start_with(
        &world.config("drain.toml", "shutdown_timeout = \"15s\"", &extra),
        &[("NOTIFY_SOCKET", notify.to_str().unwrap())],
    );
    let mut buf = [0u8; 256];
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");

    let idle = daemon.connect();
    let mut busy = daemon.connect();
    busy.write_all(&netstring(b"postfix slow.example")).unwrap();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    daemon.signal("TERM");
    let n = listener.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1\nSTATUS=stopping");
    // The request in flight is answered...
    assert_eq!(read_netstring(&mut busy).unwrap().unwrap(), b"OK secure match=mx.slow.example servername=hostname");
    // ...the idle connection is closed, no new connection is accepted, the socket file is gone...
    let mut idle = idle;
    let mut out = Vec::new();
    assert_eq!(idle.read_to_end(&mut out).unwrap_or(0), 0);
    assert!(!unix.exists());
    // ...and the daemon exits cleanly well before the shutdown timeout.
    let status = daemon.wait_exit(Duration::from_secs(15)).expect("exited");
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(TcpStream::connect(daemon.socketmap[0]).is_err());
    assert!(daemon.log().contains("stopped"), "{}", daemon.log());
}

const ENFORCE_BODY_SLOW: &str = "version: STSv1\nmode: enforce\nmx: mx.slow.example\nmax_age: 86400\n";

#[test]
fn the_refresh_task_renews_due_policies_without_being_asked() {
    let world = World::start();
    world.publish("short.example", "r1", "version: STSv1\nmode: enforce\nmx: mx.short.example\nmax_age: 4\n");
    let daemon = Daemon::start(&world.config("refresh.toml", "refresh_interval = \"1s\"", ""));
    assert_eq!(
        ask(&mut daemon.connect(), "postfix", "short.example"),
        "OK secure match=mx.short.example servername=hostname"
    );
    assert_eq!(world.https.requests("mta-sts.short.example"), 1);
    // Due between half and three quarters of the 4 s max_age; the task runs every 1 to 1.25 s.
    assert!(
        daemon.wait_log("refresh: policy renewed domain=short.example", Duration::from_secs(10)),
        "{}",
        daemon.log()
    );
    assert!(world.https.requests("mta-sts.short.example") >= 2);
}

#[test]
fn daemon_and_query_share_the_cache_file() {
    let world = World::start();
    let cache = world.dir.join("cache.db");
    let text = world.config_text("", "").replace("path = \"\"", &format!("path = \"{}\"", cache.display()));
    let config = world.dir.join("shared.toml");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(&config);
    assert_eq!(ask(&mut daemon.connect(), "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
    assert_eq!(world.https.total_requests(), 1);
    // The stdio helper's one-shot sibling sees the daemon's policy without fetching it.
    let out = Command::new(BIN)
        .args(["query", "--format", "postfix", "--config"])
        .arg(&config)
        .arg("enforce.example")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{ENFORCE_SECURE}\n"));
    assert_eq!(world.https.total_requests(), 1, "no second fetch");
    drop(daemon);
}

#[test]
fn privileges_are_dropped_when_started_as_root() {
    if !nix_is_root() {
        // Straight to the real stderr: the harness captures eprintln! of passing tests.
        let _ = writeln!(std::io::stderr(), "SKIP privileges_are_dropped_when_started_as_root: not running as root");
        return;
    }
    let world = World::start();
    let sock = world.dir.join("priv.sock");
    let extra = format!("[[serve.line]]\npath = \"{}\"\n", sock.display());
    // Let the unprivileged user reach the socket through the temporary directory.
    std::fs::set_permissions(world.dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let daemon = Daemon::start(&world.config("priv.toml", "user = \"nobody\"", &extra));
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.child.id())).unwrap();
    let ids = |key: &str| {
        status.lines().find(|l| l.starts_with(key)).unwrap().split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    };
    let nobody = "65534 65534 65534 65534";
    assert_eq!(ids("Uid:"), nobody, "real, effective, saved and filesystem uid");
    assert_eq!(ids("Gid:"), nobody);
    assert_eq!(ids("Groups:"), "65534");
    let meta = std::fs::metadata(&sock).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
    assert_eq!(ask(&mut daemon.connect(), "postfix", "enforce.example"), format!("OK {ENFORCE_SECURE}"));
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

#[test]
fn bad_configurations_stop_the_start_with_exit_78() {
    let world = World::start();
    for (name, serve_keys, extra, want) in [
        ("zone.toml", "", "[serve.zones.sts]\ntlsrpt = true\n", "tlsrpt applies to the postfix dialect only"),
        (
            "both.toml",
            "",
            "[[serve.line]]\naddress = \"127.0.0.1:0\"\npath = \"/tmp/x\"\n",
            "set address or path, not both",
        ),
        ("user.toml", "user = \"no-such-user-mta-sts\"", "", "no such user"),
    ] {
        let out =
            Command::new(BIN).args(["serve", "--config"]).arg(world.config(name, serve_keys, extra)).output().unwrap();
        assert_eq!(out.status.code(), Some(78), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The port is taken: no silent sharing without reuse_port.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let text = world.config_text("", "").replace("127.0.0.1:0", &taken.local_addr().unwrap().to_string());
    let path = world.dir.join("taken.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot listen on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn migrate_config_turns_upstream_yaml_into_a_config_the_daemon_runs() {
    let world = World::start();
    let yaml = world.dir.join("mta-sts-daemon.yml");
    let sock = world.dir.join("migrated.sock");
    std::fs::write(
        &yaml,
        format!(
            "path: {}\nmode: 0666\nreuse_port: no\ncache_grace: 30\ndefault_zone:\n  strict_testing: yes\n  timeout: 4\nzones:\n  tlsrpt:\n    tlsrpt: on\n",
            sock.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN).args(["migrate-config"]).arg(&yaml).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(toml.contains("mode = 0o666\n"), "{toml}");
    assert!(toml.contains("[serve.zones.tlsrpt]\ntlsrpt = true\n"), "{toml}");
    // Point the migrated file at the fixtures and run it.
    let fixtures = world.config_text("", "");
    let (head, _) = fixtures.split_once("[cache]").unwrap();
    let config = world.dir.join("migrated.toml");
    let migrated = toml
        .replace("[dns]\ntimeout = \"4s\"\n", "")
        .replace("[fetch]\ntimeout = \"4s\"\n", "")
        .replace("[cache]\n", "[cache]\npath = \"\"\n");
    std::fs::write(&config, format!("{head}{migrated}")).unwrap();
    let out = Command::new(BIN).args(["query", "--config"]).arg(&config).arg("testing.example").output().unwrap();
    assert!(out.status.code() == Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let daemon = Daemon::start(&config);
    assert_eq!(std::fs::metadata(&sock).unwrap().mode() & 0o777, 0o666);
    let mut s = UnixStream::connect(&sock).unwrap();
    assert_eq!(ask(&mut s, "postfix", "testing.example"), "OK secure match=mx.testing.example servername=hostname");
    assert!(ask(&mut s, "tlsrpt", "example.com").starts_with(&format!("OK {RFC_SECURE} policy_type=sts")));
    drop(daemon);
}
