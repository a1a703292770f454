//! A test SMTP server with STARTTLS: std `TcpListener` + rustls (ring), one thread per
//! connection, on a loopback address and port.
//!
//! * What it does is fixed per server by a [`Behaviour`]: a good certificate, a wrong name, an
//!   expired one (all via [`Behaviour::Starttls`] with a certificate from the test CA), TLS 1.2
//!   only, no STARTTLS, STARTTLS refused, a 554 greeting, or closing at once. "Connection
//!   refused" needs no server: use an address of a [`Group`] where none listens.
//! * Several MX hosts on one port: [`Group::start`] binds one server per loopback address
//!   (127.0.0.1, 127.0.0.2, ...) on the same port, because the checker connects to every MX
//!   host on one (test) port.
//! * Commands: `EHLO`/`HELO`, `STARTTLS`, `NOOP`, `RSET`, `QUIT`, and `MAIL`, `RCPT`, `DATA`,
//!   which accept every message and keep it ([`SmtpServer::received`]) with whether it came
//!   over TLS and the SNI it was sent with, so that tests of a sending MTA can see what was
//!   delivered and how; anything else gets 502.
//!   Client input never panics the server: lines are bounded (longer ones end the connection
//!   with 500), bytes need not be UTF-8, and every read has a deadline.
//! * Dropping the server stops every thread within ~100 ms (all socket I/O uses short timeouts
//!   and checks a shutdown flag).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::pki::{ring_provider, CertifiedKey};

/// Socket timeout used everywhere (bounds shutdown latency).
const POLL: Duration = Duration::from_millis(50);
/// A connection idle for this long is closed.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// Longest command line accepted, CRLF included (RFC 5321 §4.5.3.1.4 says 512).
const MAX_LINE: usize = 4096;
/// Longest message kept; the rest of a longer one is read and dropped, and the message refused.
const MAX_MESSAGE: usize = 1 << 20;

/// A message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Whether it came over TLS (after STARTTLS).
    pub tls: bool,
    /// The server name the client sent in its TLS ClientHello (SNI), if any.
    pub sni: Option<String>,
    /// The reverse path of `MAIL FROM`, without the angle brackets.
    pub mail_from: String,
    /// The forward paths of `RCPT TO`, without the angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message, dot-unstuffed, each line ending in CRLF.
    pub data: String,
}

/// What a server does with each connection.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Greets with 220, offers STARTTLS in EHLO, and completes TLS 1.2 or 1.3 with this chain.
    Starttls(CertifiedKey),
    /// Like `Starttls`, but TLS 1.2 only.
    StarttlsTls12(CertifiedKey),
    /// Greets with 220; EHLO lists no STARTTLS, and STARTTLS gets 502.
    NoStarttls,
    /// Offers STARTTLS in EHLO but answers it with 454.
    StarttlsRefused,
    /// Greets with 554 and closes.
    Reject,
    /// Accepts the connection and closes it without a word.
    CloseAtOnce,
}

struct State {
    behaviour: Behaviour,
    tls: Option<Arc<ServerConfig>>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    ehlos: AtomicUsize,
    starttls: AtomicUsize,
    handshakes: AtomicUsize,
    quits: AtomicUsize,
    mails: AtomicUsize,
    received: Mutex<Vec<Received>>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test SMTP server. Dropping it stops all its threads.
pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept_thread: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Binds 127.0.0.1 on a random port and starts serving.
    pub fn start(behaviour: Behaviour) -> SmtpServer {
        SmtpServer::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), behaviour).expect("bind smtp listener")
    }

    /// Binds exactly `addr` (port 0 for a random one) and starts serving.
    pub fn start_on(addr: SocketAddr, behaviour: Behaviour) -> io::Result<SmtpServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let tls = match &behaviour {
            Behaviour::Starttls(ck) => Some(ck.server_config()),
            Behaviour::StarttlsTls12(ck) => {
                let config = ServerConfig::builder_with_provider(ring_provider())
                    .with_protocol_versions(&[&rustls::version::TLS12])
                    .expect("ring supports TLS 1.2")
                    .with_no_client_auth()
                    .with_single_cert(ck.chain.clone(), ck.key.clone_key())
                    .expect("issued certificate/key pair is usable by rustls");
                Some(Arc::new(config))
            }
            _ => None,
        };
        let state = Arc::new(State {
            behaviour,
            tls,
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            ehlos: AtomicUsize::new(0),
            starttls: AtomicUsize::new(0),
            handshakes: AtomicUsize::new(0),
            quits: AtomicUsize::new(0),
            mails: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let accept_thread =
            thread::Builder::new().name("test-smtp-accept".into()).spawn(move || accept_loop(listener, st))?;
        Ok(SmtpServer { addr, state, accept_thread: Some(accept_thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// EHLO or HELO commands received, before and after TLS.
    pub fn ehlos(&self) -> usize {
        self.state.ehlos.load(Ordering::SeqCst)
    }

    /// STARTTLS commands answered with 220.
    pub fn starttls(&self) -> usize {
        self.state.starttls.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.state.handshakes.load(Ordering::SeqCst)
    }

    /// QUIT commands received.
    pub fn quits(&self) -> usize {
        self.state.quits.load(Ordering::SeqCst)
    }

    /// MAIL commands received, over TLS or not, whatever happened next.
    pub fn mail_commands(&self) -> usize {
        self.state.mails.load(Ordering::SeqCst)
    }

    /// The messages accepted so far, in order.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state.received).clone()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        let conns: Vec<_> = lock(&self.state.conns).drain(..).collect();
        for t in conns {
            let _ = t.join();
        }
    }
}

/// Servers on consecutive loopback addresses (127.0.0.1, 127.0.0.2, ...) sharing one port.
pub struct Group {
    pub port: u16,
    pub servers: Vec<SmtpServer>,
}

impl Group {
    /// Starts one server per behaviour: the first on 127.0.0.1, the next on 127.0.0.2, and so
    /// on, all on one random port. `None` leaves that address without a server, so that
    /// connections to it are refused.
    pub fn start(behaviours: Vec<Option<Behaviour>>) -> Group {
        for _ in 0..20 {
            if let Some(group) = Group::try_start(&behaviours) {
                return group;
            }
        }
        panic!("cannot bind {} loopback addresses on one port", behaviours.len());
    }

    fn try_start(behaviours: &[Option<Behaviour>]) -> Option<Group> {
        // Reserve the port on 127.0.0.1 first, whatever stands there.
        let probe = TcpListener::bind("127.0.0.1:0").ok()?;
        let port = probe.local_addr().ok()?.port();
        drop(probe);
        let mut servers = Vec::new();
        for (n, behaviour) in behaviours.iter().enumerate() {
            if let Some(b) = behaviour {
                servers.push(SmtpServer::start_on(SocketAddr::new(Group::ip(n), port), b.clone()).ok()?);
            }
        }
        Some(Group { port, servers })
    }

    /// The address of the `n`th behaviour: 127.0.0.(n+1).
    pub fn ip(n: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(n + 1).expect("at most 254 servers")))
    }
}

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while !state.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                state.connections.fetch_add(1, Ordering::SeqCst);
                let st = state.clone();
                let h = thread::Builder::new().name("test-smtp-conn".into()).spawn(move || handle_conn(stream, &st));
                if let Ok(h) = h {
                    let mut conns = lock(&state.conns);
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// A line-oriented session over plain TCP or TLS.
struct Session<'a, S: Read + Write> {
    stream: S,
    buf: Vec<u8>,
    state: &'a State,
    /// The SNI of the TLS session, if any.
    sni: Option<String>,
}

enum Line {
    Command(String),
    /// EOF, error, overlong line, deadline or shutdown: close.
    End,
}

impl<S: Read + Write> Session<'_, S> {
    fn send(&mut self, text: &str) -> bool {
        self.stream.write_all(text.as_bytes()).and_then(|()| self.stream.flush()).is_ok()
    }

    fn read_line(&mut self) -> Line {
        let deadline = Instant::now() + IO_DEADLINE;
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Line::Command(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_LINE {
                let _ = self.send("500 5.5.2 line too long\r\n");
                return Line::End;
            }
            if self.state.shutdown.load(Ordering::SeqCst) || Instant::now() > deadline {
                return Line::End;
            }
            let mut chunk = [0u8; 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Line::End,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if transient(&e) => {}
                Err(_) => return Line::End,
            }
        }
    }
}

/// What the plain session ended with.
enum Next {
    Close,
    Tls,
}

fn handle_conn(sock: TcpStream, state: &State) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(POLL));
    let _ = sock.set_write_timeout(Some(Duration::from_secs(1)));
    let mut plain = Session { stream: &sock, buf: Vec::new(), state, sni: None };
    let next = match state.behaviour {
        Behaviour::CloseAtOnce => Next::Close,
        Behaviour::Reject => {
            let _ = plain.send("554 5.3.2 test server: no SMTP service here\r\n");
            Next::Close
        }
        _ => {
            if plain.send("220 mx.test ESMTP test server\r\n") {
                commands(&mut plain, false)
            } else {
                Next::Close
            }
        }
    };
    let leftover = std::mem::take(&mut plain.buf);
    if let (Next::Tls, Some(config)) = (next, &state.tls) {
        // Bytes pipelined after STARTTLS would be an injection attempt (RFC 3207 §4.2): refuse.
        if leftover.is_empty() {
            serve_tls(&sock, config.clone(), state);
        }
    }
    // Half-close, then read what the client still sends (<= 500 ms), so that unread client
    // bytes do not turn our FIN into a RST that could destroy our last reply.
    let _ = sock.shutdown(Shutdown::Write);
    drain(&sock, state, Duration::from_millis(500));
}

/// Reads and discards until EOF, an error, `max`, or shutdown.
fn drain(mut sock: &TcpStream, state: &State, max: Duration) {
    let end = Instant::now() + max;
    let mut buf = [0u8; 4096];
    while !state.shutdown.load(Ordering::SeqCst) && Instant::now() < end {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(_) => return,
        }
    }
}

/// Answers commands until QUIT, STARTTLS accepted, or the end of the connection.
fn commands<S: Read + Write>(session: &mut Session<'_, S>, tls: bool) -> Next {
    let state = session.state;
    let offers_starttls = !tls
        && matches!(state.behaviour, Behaviour::Starttls(_) | Behaviour::StarttlsTls12(_) | Behaviour::StarttlsRefused);
    // The mail transaction: the reverse path once MAIL was accepted, then the forward paths.
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let line = match session.read_line() {
            Line::Command(line) => line,
            Line::End => return Next::Close,
        };
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply = match verb.as_str() {
            "MAIL" => {
                state.mails.fetch_add(1, Ordering::SeqCst);
                match (&mail_from, argument(&line, "MAIL FROM:")) {
                    (Some(_), _) => "503 5.5.1 nested MAIL command\r\n",
                    (None, None) => "501 5.5.4 syntax: MAIL FROM:<address>\r\n",
                    (None, Some(path)) => {
                        mail_from = Some(path);
                        "250 2.1.0 ok\r\n"
                    }
                }
            }
            "RCPT" => match (&mail_from, argument(&line, "RCPT TO:")) {
                (None, _) => "503 5.5.1 need MAIL first\r\n",
                (Some(_), None) => "501 5.5.4 syntax: RCPT TO:<address>\r\n",
                (Some(_), Some(path)) => {
                    rcpt_to.push(path);
                    "250 2.1.5 ok\r\n"
                }
            },
            "DATA" if rcpt_to.is_empty() => "503 5.5.1 need RCPT first\r\n",
            "DATA" => {
                if !session.send("354 end data with <CR><LF>.<CR><LF>\r\n") {
                    return Next::Close;
                }
                let Some(data) = read_data(session) else { return Next::Close };
                let from = mail_from.take().unwrap_or_default();
                let to = std::mem::take(&mut rcpt_to);
                match data {
                    Some(data) => {
                        let sni = session.sni.clone();
                        lock(&state.received).push(Received { tls, sni, mail_from: from, rcpt_to: to, data });
                        "250 2.0.0 accepted\r\n"
                    }
                    None => "552 5.3.4 message too big\r\n",
                }
            }
            "EHLO" => {
                mail_from = None;
                rcpt_to.clear();
                state.ehlos.fetch_add(1, Ordering::SeqCst);
                if offers_starttls {
                    "250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
                } else {
                    "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                }
            }
            "HELO" => {
                state.ehlos.fetch_add(1, Ordering::SeqCst);
                "250 mx.test\r\n"
            }
            "STARTTLS" if tls => "503 5.5.1 TLS already active\r\n",
            "STARTTLS" => match state.behaviour {
                Behaviour::Starttls(_) | Behaviour::StarttlsTls12(_) => {
                    if !session.send("220 2.0.0 ready to start TLS\r\n") {
                        return Next::Close;
                    }
                    state.starttls.fetch_add(1, Ordering::SeqCst);
                    return Next::Tls;
                }
                Behaviour::StarttlsRefused => "454 4.7.0 TLS not available due to temporary reason\r\n",
                _ => "502 5.5.1 command not implemented\r\n",
            },
            "RSET" => {
                mail_from = None;
                rcpt_to.clear();
                "250 2.0.0 ok\r\n"
            }
            "NOOP" => "250 2.0.0 ok\r\n",
            "QUIT" => {
                state.quits.fetch_add(1, Ordering::SeqCst);
                let _ = session.send("221 2.0.0 bye\r\n");
                return Next::Close;
            }
            _ => "502 5.5.1 command not implemented\r\n",
        };
        if !session.send(reply) {
            return Next::Close;
        }
    }
}

/// The path of `MAIL FROM:<path>` or `RCPT TO:<path>` (prefix matched without regard to case),
/// without the angle brackets and parameters.
fn argument(line: &str, prefix: &str) -> Option<String> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_start();
    let path = rest.strip_prefix('<')?;
    let end = path.find('>')?;
    Some(path[..end].to_owned())
}

/// Reads a message after 354 up to the line holding a single dot. `None` when the connection
/// ended first; `Some(None)` when the message was longer than [`MAX_MESSAGE`].
fn read_data<S: Read + Write>(session: &mut Session<'_, S>) -> Option<Option<String>> {
    let mut data = String::new();
    let mut too_big = false;
    loop {
        let line = match session.read_line() {
            Line::Command(line) => line,
            Line::End => return None,
        };
        if line == "." {
            return Some((!too_big).then_some(data));
        }
        // RFC 5321 §4.5.2: a leading dot was doubled by the client.
        let line = line.strip_prefix('.').unwrap_or(&line);
        if data.len() + line.len() + 2 > MAX_MESSAGE {
            too_big = true;
        } else {
            data.push_str(line);
            data.push_str("\r\n");
        }
    }
}

fn serve_tls(sock: &TcpStream, config: Arc<ServerConfig>, state: &State) {
    let Ok(mut conn) = ServerConnection::new(config) else {
        return;
    };
    let mut sock = sock;
    let deadline = Instant::now() + IO_DEADLINE;
    while conn.is_handshaking() {
        if state.shutdown.load(Ordering::SeqCst) || Instant::now() > deadline {
            return;
        }
        match conn.complete_io(&mut sock) {
            Ok((0, 0)) if conn.is_handshaking() => return, // EOF
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(_) => {
                let _ = conn.write_tls(&mut sock); // our alert, if any
                return;
            }
        }
    }
    state.handshakes.fetch_add(1, Ordering::SeqCst);
    let sni = conn.server_name().map(str::to_owned);
    let mut session = Session { stream: StreamOwned::new(conn, sock), buf: Vec::new(), state, sni };
    let _ = commands(&mut session, true);
    session.stream.conn.send_close_notify();
    let _ = session.stream.flush();
}
