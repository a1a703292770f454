//! `mta-sts serve` as a child process against the loopback DNS and HTTPS fixtures, and a small
//! socketmap client. Shared by `tests/serve.rs`, `tests/serve_mta.rs` and `benches/serve.rs`
//! (include with `mod daemon;` next to `mod common;`).
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::dns::{Answer, DnsServer};
use crate::common::https::{HttpsServer, Site};
use crate::common::pki::{TempDir, TestCa};

pub const BIN: &str = env!("CARGO_BIN_EXE_mta-sts");

/// The RFC 8461 §3.2 example policy, served for example.com.
pub const RFC_EXAMPLE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";
pub const ENFORCE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.enforce.example\nmx: *.mx.enforce.example\nmax_age: 86400\n";
pub const TESTING: &str = "version: STSv1\nmode: testing\nmx: mx.testing.example\nmax_age: 3600\n";
pub const NONE: &str = "version: STSv1\nmode: none\nmax_age: 600\n";
pub const BROKEN: &str = "version: STSv2\nmode: enforce\nmx: mx.broken.example\nmax_age: 600\n";

/// DNS and HTTPS fixtures publishing one domain per outcome.
pub struct World {
    pub dns: DnsServer,
    pub https: HttpsServer,
    pub ca: TestCa,
    pub dir: TempDir,
}

impl World {
    /// enforce.example, testing.example, none.example, broken.example (invalid policy),
    /// tempfail.example (SERVFAIL), example.com (the RFC example); nopolicy.example has nothing.
    pub fn start() -> World {
        let ca = TestCa::new();
        let world =
            World { dns: DnsServer::start(), https: HttpsServer::start(&ca), ca, dir: TempDir::new("mta-sts-serve") };
        world.publish("example.com", "20160831085700Z", RFC_EXAMPLE);
        world.publish("enforce.example", "e1", ENFORCE);
        world.publish("testing.example", "t1", TESTING);
        world.publish("none.example", "n1", NONE);
        world.publish("broken.example", "b1", BROKEN);
        world.dns.set_for("_mta-sts.tempfail.example", hickory_proto::rr::RecordType::TXT, Answer::ServFail);
        world
    }

    pub fn publish(&self, domain: &str, id: &str, policy: &str) {
        self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={id}")]));
        self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        self.https.set(&format!("mta-sts.{domain}"), Site::policy(policy));
    }

    /// Writes a config for the fixtures: memory cache, one socketmap listener on a random
    /// loopback port, then `extra` TOML (which may add `[serve]` keys first, and listeners).
    pub fn config(&self, name: &str, serve_keys: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, self.config_text(serve_keys, extra)).unwrap();
        path
    }

    pub fn config_text(&self, serve_keys: &str, extra: &str) -> String {
        format!(
            "[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\n\
             [fetch]\ntimeout = \"5s\"\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n\
             [cache]\npath = \"\"\n\
             [serve]\n{serve_keys}\n\
             [[serve.socketmap]]\naddress = \"127.0.0.1:0\"\n{extra}",
            self.dns.addr(),
            self.ca.ca_file().display(),
            self.https.port(),
        )
    }
}

/// A running `mta-sts serve`, killed on drop.
pub struct Daemon {
    pub child: Child,
    /// The TCP socketmap listeners, in configuration order.
    pub socketmap: Vec<SocketAddr>,
    log: Arc<Mutex<String>>,
}

impl Daemon {
    /// Starts the daemon with `config` and waits until it is ready.
    pub fn start(config: &Path) -> Daemon {
        Self::start_with(config, &[])
    }

    /// The same, with extra environment variables.
    pub fn start_with(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--config"]).arg(config).env("MTA_STS_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("MTA_STS_TEST_ECHO").is_some() {
                    eprintln!("daemon: {line}");
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut daemon = Daemon { child, socketmap: Vec::new(), log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !daemon.log().contains(" ready ") {
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("daemon exited with {status}:\n{}", daemon.log());
            }
            assert!(Instant::now() < deadline, "daemon not ready:\n{}", daemon.log());
            thread::sleep(Duration::from_millis(10));
        }
        daemon.socketmap = daemon
            .log()
            .lines()
            .filter(|l| l.contains("listening protocol=socketmap address="))
            .filter_map(|l| l.rsplit_once("address=").and_then(|(_, a)| a.trim().parse().ok()))
            .collect();
        daemon
    }

    /// The first TCP socketmap address.
    pub fn addr(&self) -> SocketAddr {
        self.socketmap[0]
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log holds `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`"HUP"`, `"TERM"`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `data` as a netstring.
pub fn netstring(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// Reads one netstring; `None` at end of stream before its first byte.
pub fn read_netstring(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let mut b = [0u8];
        if r.read(&mut b)? == 0 {
            return if digits == 0 { Ok(None) } else { Err(io::ErrorKind::UnexpectedEof.into()) };
        }
        match b[0] {
            b'0'..=b'9' => {
                len = len * 10 + usize::from(b[0] - b'0');
                digits += 1;
            }
            b':' if digits > 0 => break,
            other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad length byte {other:#x}"))),
        }
    }
    let mut data = vec![0u8; len + 1];
    r.read_exact(&mut data)?;
    if data.pop() != Some(b',') {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad terminator"));
    }
    Ok(Some(data))
}

/// Sends one request `map key` and reads the reply, as text.
pub fn ask(stream: &mut (impl Read + Write), map: &str, key: &str) -> String {
    stream.write_all(&netstring(format!("{map} {key}").as_bytes())).unwrap();
    let reply = read_netstring(stream).unwrap().expect("a reply");
    String::from_utf8(reply).unwrap()
}
