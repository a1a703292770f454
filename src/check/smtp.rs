//! One MX host over SMTP for `mta-sts check`: what a sender that enforces the policy needs of it
//! ([RFC 8461 §4.2]): it accepts a connection on port 25, greets with 220, offers STARTTLS
//! ([RFC 3207]), completes a TLS handshake, and presents a certificate valid for the MX host
//! name that is not about to expire.
//!
//! A small client: greeting, `EHLO`, `STARTTLS`, the handshake, `QUIT`. Every read and write is
//! bounded by one deadline per host; replies are read with limits on line length and count,
//! and everything the server says is escaped before it reaches a report line.
//!
//! [RFC 8461 §4.2]: https://www.rfc-editor.org/rfc/rfc8461#section-4.2
//! [RFC 3207]: https://www.rfc-editor.org/rfc/rfc3207

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, RootCertStore};

use super::report::{Check, Kind};
use super::tls::{self, CertificateKinds, ProbeError};
use crate::dns::Dns;
use crate::domain::Domain;
use crate::error::escape;
use crate::fetch::is_public;

/// The SMTP port, fixed by RFC 5321 for relaying between MTAs.
pub const SMTP_PORT: u16 = 25;

/// Longest reply line read (RFC 5321 §4.5.3.1.5 allows 512 bytes; some servers send more).
const MAX_LINE: usize = 2048;

/// Most lines in one multi-line reply.
const MAX_LINES: usize = 64;

/// Most addresses of one MX host tried.
const MAX_ADDRESSES: usize = 4;

/// The certificate checks of an MX host.
const KINDS: CertificateKinds = CertificateKinds {
    name: Kind::SmtpCertificateName,
    chain: Kind::SmtpCertificateChain,
    expiry: Kind::SmtpCertificateExpiry,
};

/// What probing MX hosts needs.
pub struct Probe<'a> {
    /// Resolves the MX hosts.
    pub dns: &'a dyn Dns,
    /// The port to connect to: [`SMTP_PORT`] except in tests.
    pub port: u16,
    /// The deadline for one host, from connecting to `QUIT`.
    pub timeout: Duration,
    /// Whether loopback and private addresses may be probed.
    pub allow_private_addresses: bool,
    /// From [`tls::probe_config`].
    pub tls: &'a Arc<ClientConfig>,
    /// The trust store certificates are judged against; `None` when it could not be loaded.
    pub roots: Option<&'a RootCertStore>,
    /// The time certificates are judged at, in Unix seconds.
    pub now: u64,
}

impl Probe<'_> {
    /// Checks every host at once, each within its own deadline; the checks come back in host
    /// order.
    pub fn check_hosts(&self, hosts: &[Domain]) -> Vec<Check> {
        std::thread::scope(|scope| {
            let running: Vec<_> = hosts.iter().map(|host| scope.spawn(move || self.check_host(host))).collect();
            running
                .into_iter()
                .zip(hosts)
                .flat_map(|(thread, host)| {
                    thread.join().unwrap_or_else(|_| {
                        vec![Check::failure(
                            Kind::SmtpConnect,
                            "the check of this host crashed",
                            "report this as a bug",
                        )
                        .about(host.as_str())]
                    })
                })
                .collect()
        })
    }

    /// Connects to one MX host and checks its SMTP and TLS service, one check per step until a
    /// step fails.
    pub fn check_host(&self, host: &Domain) -> Vec<Check> {
        let deadline = Instant::now() + self.timeout;
        let mut checks = Vec::new();
        let (mut sock, addr) = match self.connect(host, deadline) {
            Ok(connected) => connected,
            Err(check) => return vec![check.about(host.as_str())],
        };
        let mut session = Session { sock: &mut sock, buf: Vec::new(), deadline };
        match session.read_reply() {
            Ok(reply) if reply.code == 220 => {
                checks.push(Check::pass(
                    Kind::SmtpConnect,
                    format!("{} port {}: {}", addr.ip(), self.port, reply.first()),
                ));
            }
            Ok(reply) => {
                checks.push(Check::failure(
                    Kind::SmtpConnect,
                    format!("{} port {} greets with {}", addr.ip(), self.port, reply.first()),
                    "make the server accept mail from the internet on this address (it must greet with 220)",
                ));
                return about(checks, host);
            }
            Err(e) => {
                checks.push(Check::failure(
                    Kind::SmtpConnect,
                    format!("{} port {}: {e}", addr.ip(), self.port),
                    "make the server greet with 220",
                ));
                return about(checks, host);
            }
        }
        if let Err(check) = session.starttls(host) {
            checks.push(check);
            return about(checks, host);
        }
        checks.push(Check::pass(Kind::SmtpStarttls, "STARTTLS offered and accepted"));
        let handshake = match tls::handshake(self.tls, &mut sock, host.as_str(), deadline) {
            Ok(h) => h,
            Err(e) => {
                checks.push(Check::failure(
                    Kind::SmtpTls,
                    e.to_string(),
                    format!("check the server's TLS settings and logs: it must complete TLS 1.2 or 1.3 with a certificate for {host}"),
                ));
                return about(checks, host);
            }
        };
        checks.push(Check::pass(Kind::SmtpTls, format!("{} handshake completed", handshake.version)));
        checks.extend(tls::judge(KINDS, host.as_str(), &handshake.chain, self.roots, self.now));
        quit(handshake.connection, &mut sock, deadline);
        about(checks, host)
    }

    /// Resolves the host and connects to the first address that answers.
    fn connect(&self, host: &Domain, deadline: Instant) -> Result<(TcpStream, SocketAddr), Check> {
        let addrs = self.dns.addresses(host.as_str()).map_err(|e| {
            Check::failure(
                Kind::SmtpConnect,
                format!("the address lookup failed: {e}"),
                "make sure the MX host name resolves",
            )
        })?;
        if addrs.is_empty() {
            return Err(Check::failure(
                Kind::SmtpConnect,
                "the MX host has no A or AAAA record",
                format!("publish addresses for {host}"),
            ));
        }
        let usable: Vec<IpAddr> =
            addrs.iter().copied().filter(|ip| self.allow_private_addresses || is_public(ip)).collect();
        if usable.is_empty() {
            return Err(Check::failure(
                Kind::SmtpConnect,
                format!("the MX host resolves only to non-public addresses ({})", addrs[0]),
                "publish the public addresses of the mail server",
            ));
        }
        let mut failures = Vec::new();
        for ip in usable.iter().take(MAX_ADDRESSES) {
            let addr = SocketAddr::new(*ip, self.port);
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failures.push(format!("{ip}: out of time"));
                break;
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(sock) => return Ok((sock, addr)),
                Err(e) => failures.push(format!("{ip}: {}", escape(&e.to_string(), 60).trim_matches('"'))),
            }
        }
        Err(Check::failure(
            Kind::SmtpConnect,
            format!("cannot connect to port {}: {}", self.port, failures.join(", ")),
            "make sure the mail server listens on port 25 and the firewall lets it through (some networks block outgoing port 25: run the check from a server)",
        ))
    }
}

/// The SMTP dialogue before TLS, over the plain socket.
struct Session<'a> {
    sock: &'a mut TcpStream,
    /// Bytes read but not yet used.
    buf: Vec<u8>,
    deadline: Instant,
}

impl Session<'_> {
    /// `EHLO`, then `STARTTLS` if offered; on success the socket is ready for the handshake.
    fn starttls(&mut self, host: &Domain) -> Result<(), Check> {
        let fail = |summary: String, fix: &str| Check::failure(Kind::SmtpStarttls, summary, fix.to_owned());
        let enable = format!("enable STARTTLS with a certificate for {host} (Postfix: smtpd_tls_security_level = may)");
        // An address literal is a valid EHLO argument (RFC 5321 §4.1.4) that needs no
        // configuration.
        let helo = match self.sock.local_addr().map(|a| a.ip()) {
            Ok(IpAddr::V6(ip)) => format!("[IPv6:{ip}]"),
            Ok(ip) => format!("[{ip}]"),
            Err(_) => "[127.0.0.1]".to_owned(),
        };
        let ehlo = self.command(&format!("EHLO {helo}")).map_err(|e| fail(format!("EHLO: {e}"), &enable))?;
        if ehlo.code != 250 {
            return Err(fail(
                format!("EHLO is answered with {}", ehlo.first()),
                "make the server accept EHLO (RFC 5321)",
            ));
        }
        // The keywords are the first word of every line after the first (RFC 5321 §4.1.1.1).
        let offered = ehlo
            .lines
            .iter()
            .skip(1)
            .any(|l| l.split_whitespace().next().is_some_and(|k| k.eq_ignore_ascii_case("STARTTLS")));
        if !offered {
            return Err(fail(
                "STARTTLS is not offered, so senders that enforce MTA-STS cannot deliver".into(),
                &enable,
            ));
        }
        let reply = self.command("STARTTLS").map_err(|e| fail(format!("STARTTLS: {e}"), &enable))?;
        if reply.code != 220 {
            return Err(fail(format!("STARTTLS is offered but answered with {}", reply.first()), &enable));
        }
        if !self.buf.is_empty() {
            // RFC 3207 §4.2: nothing may follow the 220 before the handshake; a server that sends
            // more is broken or being tampered with.
            return Err(fail(
                "the server sent data after its 220 reply to STARTTLS".into(),
                "fix the server's STARTTLS implementation",
            ));
        }
        Ok(())
    }

    fn command(&mut self, line: &str) -> Result<Reply, ProbeError> {
        tls::set_deadline(self.sock, self.deadline, "sending a command")?;
        self.sock.write_all(format!("{line}\r\n").as_bytes()).map_err(|e| ProbeError::io(&e, "sending a command"))?;
        self.read_reply()
    }

    /// Reads one reply: lines `NNN-text` then one `NNN text` (RFC 5321 §4.2).
    fn read_reply(&mut self) -> Result<Reply, ProbeError> {
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let line = self.read_line()?;
            let bad = || ProbeError::Io { reason: format!("not an SMTP reply: {}", escape(&line, 60)) };
            let digits = line.get(..3).filter(|d| d.bytes().all(|b| b.is_ascii_digit())).ok_or_else(bad)?;
            let this: u16 = digits.parse().map_err(|_| bad())?;
            let last = match line.as_bytes().get(3) {
                None | Some(b' ') => true,
                Some(b'-') => false,
                Some(_) => return Err(bad()),
            };
            code.get_or_insert(this);
            lines.push(line.get(4..).unwrap_or("").to_owned());
            if last {
                break;
            }
            if lines.len() >= MAX_LINES {
                return Err(ProbeError::Io { reason: format!("reply longer than {MAX_LINES} lines") });
            }
        }
        Ok(Reply { code: code.unwrap_or(0), lines })
    }

    /// One line without its CRLF (a bare LF is accepted), lossy UTF-8.
    fn read_line(&mut self) -> Result<String, ProbeError> {
        let during = "waiting for the server's reply";
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(String::from_utf8_lossy(&line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err(ProbeError::Io { reason: format!("reply line longer than {MAX_LINE} bytes") });
            }
            tls::set_deadline(self.sock, self.deadline, during)?;
            let mut chunk = [0u8; 1024];
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(ProbeError::Io { reason: "the server closed the connection".into() }),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ProbeError::io(&e, during)),
            }
        }
    }
}

/// One SMTP reply.
struct Reply {
    code: u16,
    /// The text of each line after the code.
    lines: Vec<String>,
}

impl Reply {
    /// The code and first line, escaped, for a report line.
    fn first(&self) -> String {
        let text = self.lines.first().map(|l| escape(l, 80)).unwrap_or_default();
        format!("{} {}", self.code, text.trim_matches('"'))
    }
}

/// Ends the session politely over TLS: `QUIT` and close_notify, within the deadline and at most
/// two seconds; errors no longer matter.
fn quit(mut conn: rustls::ClientConnection, sock: &mut TcpStream, deadline: Instant) {
    let deadline = deadline.min(Instant::now() + Duration::from_secs(2));
    if tls::set_deadline(sock, deadline, "closing").is_err() {
        return;
    }
    let mut stream = rustls::Stream::new(&mut conn, sock);
    if stream.write_all(b"QUIT\r\n").and_then(|()| stream.flush()).is_ok() {
        let mut reply = [0u8; 512];
        let _ = stream.read(&mut reply);
    }
    conn.send_close_notify();
    let _ = conn.write_tls(sock);
}

fn about(checks: Vec<Check>, host: &Domain) -> Vec<Check> {
    checks.into_iter().map(|c| c.about(host.as_str())).collect()
}
