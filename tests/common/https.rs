//! A test HTTPS server: std `TcpListener` + rustls (ring), one thread per
//! connection, certificate chosen by SNI, one request per connection.
//!
//! * Unknown SNI (no `Site` set for it) or no SNI at all: the ClientHello is
//!   answered with a TLS alert and the connection is closed. Such
//!   connections are counted by `connections()` but never by `requests()`.
//! * Every response carries `Connection: close`; after it the server sends
//!   close_notify, shuts down its write side and closes.
//! * Dropping the server stops every thread within ~100 ms (all socket I/O
//!   uses short timeouts and checks a shutdown flag).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::{ServerConfig, ServerConnection};

use super::pki::{ring_provider, CertifiedKey, TestCa, Validity};

/// Socket timeout used everywhere (bounds shutdown latency).
const POLL: Duration = Duration::from_millis(50);
/// A connection that has not finished its handshake / request head by then
/// is closed.
const IO_DEADLINE: Duration = Duration::from_secs(10);
/// Longest request head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The path an MTA-STS client fetches.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// Which certificate the server presents for a host.
#[derive(Clone, Debug)]
pub enum CertKind {
    /// Issued by the server's CA for the host.
    Valid,
    /// Issued by the CA for "wrong.invalid".
    WrongName,
    /// Issued by the CA for the host, but expired.
    Expired,
    /// Issued by the CA for the host, but not valid yet.
    NotYetValid,
    /// Issued for the host by a different CA (created per server).
    Untrusted,
    /// Exactly this chain and key.
    Custom(CertifiedKey),
}

/// What to send after the request head has been read (or, for the stall
/// variants, instead of completing the handshake).
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200, `Content-Type: text/plain`, `Content-Length`, the body.
    Policy(String),
    /// Exact control. `headers` are sent as given, in order; the server adds
    /// `Content-Length: <body len>` unless a Content-Length or
    /// Transfer-Encoding header is present or the status is 1xx/204/304, and
    /// `Connection: close` unless a Connection header is present. No
    /// Content-Type is added.
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200, `headers` as given (no Content-Type added) + `Connection: close`,
    /// no length: the body is ended by closing the connection.
    NoContentLength {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// 200, `headers` as given + `Transfer-Encoding: chunked` +
    /// `Connection: close`, one HTTP chunk per non-empty element, then the
    /// terminating zero chunk.
    Chunked {
        headers: Vec<(String, String)>,
        chunks: Vec<Vec<u8>>,
    },
    /// 200 text/plain chunked; a policy-looking first chunk and then 4 KiB
    /// chunks forever (~4 MB/s), until the client goes away.
    EndlessChunked,
    /// 200 text/plain, `Content-Length: 10000000000`, then
    /// "version: STSv1\n", then stalls (until the client closes).
    HugeContentLength,
    /// The full raw response (status line, headers, body), one byte per
    /// `interval`, after the request head has been read.
    Trickle {
        head_and_body: Vec<u8>,
        interval: Duration,
    },
    /// Never reads or writes anything: the ClientHello is only peeked at
    /// (MSG_PEEK, not consumed) to learn the SNI, then the connection is
    /// held open until the server is dropped.
    StallAfterAccept,
    /// Reads the ClientHello, then never answers (until the client closes
    /// or the server is dropped).
    StallTls,
}

impl Reply {
    /// `Reply::Policy(text.to_string())`.
    pub fn policy(text: &str) -> Reply {
        Reply::Policy(text.to_string())
    }

    /// A `Response` with the given status, `Content-Type: text/plain` and body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Response {
            status,
            headers: text_plain(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// A redirect (`Location: location`, empty body).
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply::Response {
            status,
            headers: vec![("Location".to_string(), location.to_string())],
            body: Vec::new(),
        }
    }
}

/// `vec![("Content-Type", "text/plain")]`, for the header lists.
pub fn text_plain() -> Vec<(String, String)> {
    vec![("Content-Type".to_string(), "text/plain".to_string())]
}

/// What the server does for one SNI host.
#[derive(Clone, Debug)]
pub struct Site {
    pub cert: CertKind,
    pub reply: Reply,
}

impl Site {
    pub fn new(cert: CertKind, reply: Reply) -> Site {
        Site { cert, reply }
    }

    /// Valid certificate, 200 text/plain with `text`.
    pub fn policy(text: &str) -> Site {
        Site {
            cert: CertKind::Valid,
            reply: Reply::policy(text),
        }
    }
}

struct SiteEntry {
    reply: Reply,
    config: Arc<ServerConfig>,
}

#[derive(Default)]
struct Stats {
    connections: HashMap<String, usize>,
    requests: HashMap<String, usize>,
    last_request: HashMap<String, String>,
}

struct State {
    ca: TestCa,
    untrusted: Mutex<Option<TestCa>>,
    sites: Mutex<HashMap<String, Arc<SiteEntry>>>,
    stats: Mutex<Stats>,
    total_requests: AtomicUsize,
    total_connections: AtomicUsize,
    reject: Arc<ServerConfig>,
    shutdown: AtomicBool,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn norm_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Certificate resolver that never resolves: the handshake aborts with an alert.
#[derive(Debug)]
struct NoCert;

impl ResolvesServerCert for NoCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

/// The test HTTPS server. Dropping it stops all its threads.
pub struct HttpsServer {
    addr: SocketAddr,
    state: Arc<State>,
    accept_thread: Option<JoinHandle<()>>,
}

impl HttpsServer {
    /// Binds 127.0.0.1:0 and starts serving; certificates come from `ca`.
    pub fn start(ca: &TestCa) -> HttpsServer {
        Self::start_on(ca, SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind https listener")
    }

    /// Binds `addr` and starts serving: a fixed port, such as 127.0.0.1:443 inside a private
    /// network namespace (`benches/compare`), where clients that cannot be told another port
    /// must reach it.
    pub fn start_on(ca: &TestCa, addr: SocketAddr) -> io::Result<HttpsServer> {
        let listener = TcpListener::bind(addr)?;
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("https local addr");
        let reject = ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        let state = Arc::new(State {
            ca: ca.clone(),
            untrusted: Mutex::new(None),
            sites: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            total_requests: AtomicUsize::new(0),
            total_connections: AtomicUsize::new(0),
            reject: Arc::new(reject),
            shutdown: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let accept_thread = thread::Builder::new()
            .name("test-https-accept".into())
            .spawn(move || accept_loop(listener, st))
            .expect("spawn https accept thread");
        Ok(HttpsServer {
            addr,
            state,
            accept_thread: Some(accept_thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://{host}:{port}/.well-known/mta-sts.txt`.
    pub fn policy_url(&self, host: &str) -> String {
        format!("https://{}:{}{}", host, self.port(), POLICY_PATH)
    }

    /// What to serve for SNI host `host` (case-insensitive, trailing dot
    /// ignored). Replaces any previous site for that host. The certificate
    /// is issued here (a few ms).
    pub fn set(&self, host: &str, site: Site) {
        let host = norm_host(host);
        let ck = match &site.cert {
            CertKind::Valid => self.state.ca.issue(&[&host], Validity::Valid),
            CertKind::WrongName => self.state.ca.issue(&["wrong.invalid"], Validity::Valid),
            CertKind::Expired => self.state.ca.issue(&[&host], Validity::Expired),
            CertKind::NotYetValid => self.state.ca.issue(&[&host], Validity::NotYetValid),
            CertKind::Untrusted => {
                let other = lock(&self.state.untrusted)
                    .get_or_insert_with(TestCa::new)
                    .clone();
                other.issue(&[&host], Validity::Valid)
            }
            CertKind::Custom(ck) => ck.clone(),
        };
        let entry = SiteEntry {
            reply: site.reply,
            config: ck.server_config(),
        };
        lock(&self.state.sites).insert(host, Arc::new(entry));
    }

    /// Stops serving `host` (its connections then get a TLS alert).
    pub fn remove(&self, host: &str) {
        lock(&self.state.sites).remove(&norm_host(host));
    }

    /// Complete HTTP request heads received for SNI `host`.
    pub fn requests(&self, host: &str) -> usize {
        lock(&self.state.stats)
            .requests
            .get(&norm_host(host))
            .copied()
            .unwrap_or(0)
    }

    /// Complete HTTP request heads received, all hosts.
    pub fn total_requests(&self) -> usize {
        self.state.total_requests.load(Ordering::SeqCst)
    }

    /// TCP connections whose ClientHello named SNI `host` ("" = no SNI),
    /// whatever happened next (also counted for unknown hosts and stalls).
    pub fn connections(&self, host: &str) -> usize {
        lock(&self.state.stats)
            .connections
            .get(&norm_host(host))
            .copied()
            .unwrap_or(0)
    }

    /// ClientHellos received, all hosts.
    pub fn total_connections(&self) -> usize {
        self.state.total_connections.load(Ordering::SeqCst)
    }

    /// Raw head (request line + headers + blank line, lossy UTF-8) of the
    /// last request received for SNI `host`.
    pub fn last_request(&self, host: &str) -> Option<String> {
        lock(&self.state.stats)
            .last_request
            .get(&norm_host(host))
            .cloned()
    }

    /// Resets the request/connection counters and last requests.
    pub fn reset_counts(&self) {
        *lock(&self.state.stats) = Stats::default();
        self.state.total_requests.store(0, Ordering::SeqCst);
        self.state.total_connections.store(0, Ordering::SeqCst);
    }
}

impl Drop for HttpsServer {
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

fn accept_loop(listener: TcpListener, state: Arc<State>) {
    while !state.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let st = state.clone();
                let h = thread::Builder::new()
                    .name("test-https-conn".into())
                    .spawn(move || handle_conn(stream, &st));
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
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Sleeps `d` in small steps; false if the server is shutting down.
fn sleep_checked(state: &State, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if state.shutdown.load(Ordering::SeqCst) {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        thread::sleep((end - now).min(POLL));
    }
}

/// Holds the connection without touching it until shutdown.
fn hold(state: &State) {
    while sleep_checked(state, POLL) {}
}

/// Reads and discards raw bytes until EOF, error, or shutdown.
fn drain_until_eof(sock: &mut TcpStream, state: &State, max: Option<Duration>) {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    while !state.shutdown.load(Ordering::SeqCst) {
        if let Some(max) = max {
            if start.elapsed() >= max {
                return;
            }
        }
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if transient(&e) => {}
            Err(_) => return,
        }
    }
}

/// Peeks at the socket (not consuming) until a ClientHello parses; returns
/// its SNI ("" if none). None if the client went away / sent garbage.
fn peek_sni(sock: &TcpStream, state: &State) -> Option<String> {
    let deadline = Instant::now() + IO_DEADLINE;
    let mut buf = vec![0u8; 32 * 1024];
    let mut last_len = 0;
    loop {
        if state.shutdown.load(Ordering::SeqCst) || Instant::now() > deadline {
            return None;
        }
        let n = match sock.peek(&mut buf) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(e) if transient(&e) => continue,
            Err(_) => return None,
        };
        if n != last_len {
            last_len = n;
            let mut acceptor = Acceptor::default();
            let mut rd: &[u8] = &buf[..n];
            while !rd.is_empty() {
                match acceptor.read_tls(&mut rd) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            match acceptor.accept() {
                Ok(Some(acc)) => {
                    return Some(
                        acc.client_hello()
                            .server_name()
                            .map(norm_host)
                            .unwrap_or_default(),
                    )
                }
                Ok(None) => {}
                Err(_) => return None,
            }
            if n == buf.len() {
                return None; // a ClientHello this large is not one we want
            }
        }
        // Partial ClientHello: peek returns at once, so wait a little.
        thread::sleep(Duration::from_millis(5));
    }
}

fn handle_conn(mut sock: TcpStream, state: &State) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(POLL));
    let _ = sock.set_write_timeout(Some(POLL));

    let Some(sni) = peek_sni(&sock, state) else {
        return;
    };
    {
        let mut stats = lock(&state.stats);
        *stats.connections.entry(sni.clone()).or_insert(0) += 1;
        state.total_connections.fetch_add(1, Ordering::SeqCst);
    }
    let site = lock(&state.sites).get(&sni).cloned();
    if let Some(site) = &site {
        if let Reply::StallAfterAccept = site.reply {
            hold(state);
            return;
        }
    }

    // Consume the ClientHello for real.
    let deadline = Instant::now() + IO_DEADLINE;
    let mut acceptor = Acceptor::default();
    let accepted = loop {
        if state.shutdown.load(Ordering::SeqCst) || Instant::now() > deadline {
            return;
        }
        match acceptor.read_tls(&mut sock) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if transient(&e) => continue,
            Err(_) => return,
        }
        match acceptor.accept() {
            Ok(Some(acc)) => break acc,
            Ok(None) => {}
            Err((_, mut alert)) => {
                let _ = alert.write_all(&mut sock);
                return;
            }
        }
    };

    let (config, reply) = match &site {
        Some(site) => (site.config.clone(), site.reply.clone()),
        None => (state.reject.clone(), Reply::StallTls),
    };
    if site.is_some() {
        if let Reply::StallTls = reply {
            drain_until_eof(&mut sock, state, None);
            return;
        }
    }
    let conn = match accepted.into_connection(config) {
        Ok(c) => c,
        Err((_, mut alert)) => {
            // Unknown SNI ends here: the resolver refuses, we send the alert.
            let _ = alert.write_all(&mut sock);
            let _ = sock.shutdown(Shutdown::Write);
            drain_until_eof(&mut sock, state, Some(Duration::from_millis(500)));
            return;
        }
    };
    let mut tls = Tls { sock, conn, state };
    if tls.handshake().is_err() {
        return;
    }
    let head = match tls.read_head() {
        Ok(Some(h)) => h,
        _ => return,
    };
    {
        let mut stats = lock(&state.stats);
        *stats.requests.entry(sni.clone()).or_insert(0) += 1;
        stats
            .last_request
            .insert(sni.clone(), String::from_utf8_lossy(&head).into_owned());
        state.total_requests.fetch_add(1, Ordering::SeqCst);
    }
    if tls.respond(&reply).is_ok() {
        tls.finish();
    }
}

struct Tls<'a> {
    sock: TcpStream,
    conn: ServerConnection,
    state: &'a State,
}

enum Rd {
    Data,
    Idle,
    Eof,
}

impl Tls<'_> {
    fn stopping(&self) -> bool {
        self.state.shutdown.load(Ordering::SeqCst)
    }

    /// Writes all pending TLS records.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.stopping() {
                return Err(io::ErrorKind::Interrupted.into());
            }
            match self.conn.write_tls(&mut self.sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if transient(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_once(&mut self) -> io::Result<Rd> {
        if self.stopping() {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match self.conn.read_tls(&mut self.sock) {
            Ok(0) => Ok(Rd::Eof),
            Ok(_) => match self.conn.process_new_packets() {
                Ok(_) => Ok(Rd::Data),
                Err(e) => {
                    let _ = self.flush(); // send our alert, if any
                    Err(io::Error::other(e))
                }
            },
            Err(e) if transient(&e) => Ok(Rd::Idle),
            Err(e) => Err(e),
        }
    }

    fn handshake(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + IO_DEADLINE;
        while self.conn.is_handshaking() {
            self.flush()?;
            if !self.conn.is_handshaking() {
                break;
            }
            if let Rd::Eof = self.read_once()? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if Instant::now() > deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
        }
        self.flush()
    }

    /// Reads up to and including the blank line ending the request head.
    fn read_head(&mut self) -> io::Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + IO_DEADLINE;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            loop {
                match self.conn.reader().read(&mut buf) {
                    Ok(0) => return Ok(None), // close_notify
                    Ok(n) => {
                        head.extend_from_slice(&buf[..n]);
                        if let Some(end) = head_end(&head) {
                            head.truncate(end);
                            return Ok(Some(head));
                        }
                        if head.len() > MAX_HEAD {
                            return Ok(None);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return Ok(None),
                }
            }
            if let Rd::Eof = self.read_once()? {
                return Ok(None);
            }
            self.flush()?;
            if Instant::now() > deadline {
                return Ok(None);
            }
        }
    }

    fn write_plain(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n = self.conn.writer().write(data)?;
            data = &data[n..];
            self.flush()?;
        }
        Ok(())
    }

    fn respond(&mut self, reply: &Reply) -> io::Result<()> {
        match reply {
            Reply::Policy(body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                self.write_plain(head.as_bytes())?;
                self.write_plain(body.as_bytes())
            }
            Reply::Response {
                status,
                headers,
                body,
            } => {
                let mut hs = headers.clone();
                let no_body_status = *status < 200 || *status == 204 || *status == 304;
                if !no_body_status
                    && !has_header(headers, "content-length")
                    && !has_header(headers, "transfer-encoding")
                {
                    hs.push(("Content-Length".into(), body.len().to_string()));
                }
                if !has_header(headers, "connection") {
                    hs.push(("Connection".into(), "close".into()));
                }
                self.write_plain(&head_bytes(*status, &hs))?;
                self.write_plain(body)
            }
            Reply::NoContentLength { headers, body } => {
                let mut hs = headers.clone();
                if !has_header(headers, "connection") {
                    hs.push(("Connection".into(), "close".into()));
                }
                self.write_plain(&head_bytes(200, &hs))?;
                self.write_plain(body)
            }
            Reply::Chunked { headers, chunks } => {
                let mut hs = headers.clone();
                if !has_header(headers, "transfer-encoding") {
                    hs.push(("Transfer-Encoding".into(), "chunked".into()));
                }
                if !has_header(headers, "connection") {
                    hs.push(("Connection".into(), "close".into()));
                }
                self.write_plain(&head_bytes(200, &hs))?;
                for c in chunks.iter().filter(|c| !c.is_empty()) {
                    self.write_plain(&chunk_bytes(c))?;
                }
                self.write_plain(b"0\r\n\r\n")
            }
            Reply::EndlessChunked => {
                let mut hs = text_plain();
                hs.push(("Transfer-Encoding".into(), "chunked".into()));
                hs.push(("Connection".into(), "close".into()));
                self.write_plain(&head_bytes(200, &hs))?;
                self.write_plain(&chunk_bytes(
                    b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n",
                ))?;
                let filler = chunk_bytes(&[b'x'; 4096]);
                loop {
                    self.write_plain(&filler)?;
                    if !sleep_checked(self.state, Duration::from_millis(1)) {
                        return Err(io::ErrorKind::Interrupted.into());
                    }
                }
            }
            Reply::HugeContentLength => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 10000000000\r\nConnection: close\r\n\r\nversion: STSv1\n";
                self.write_plain(head.as_bytes())?;
                drain_until_eof(&mut self.sock, self.state, None);
                Err(io::ErrorKind::Interrupted.into())
            }
            Reply::Trickle {
                head_and_body,
                interval,
            } => {
                for b in head_and_body {
                    self.write_plain(std::slice::from_ref(b))?;
                    if !sleep_checked(self.state, *interval) {
                        return Err(io::ErrorKind::Interrupted.into());
                    }
                }
                Ok(())
            }
            Reply::StallAfterAccept | Reply::StallTls => {
                // Handled before the handshake; unreachable in practice.
                drain_until_eof(&mut self.sock, self.state, None);
                Err(io::ErrorKind::Interrupted.into())
            }
        }
    }

    /// close_notify, half-close, then wait (<= 1 s) for the client to close
    /// so that unread client bytes do not turn our FIN into a RST.
    fn finish(mut self) {
        self.conn.send_close_notify();
        if self.flush().is_err() {
            return;
        }
        let _ = self.sock.shutdown(Shutdown::Write);
        drain_until_eof(&mut self.sock, self.state, Some(Duration::from_secs(1)));
    }
}

fn head_end(buf: &[u8]) -> Option<usize> {
    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        return Some(p + 4);
    }
    buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
}

fn has_header(headers: &[(String, String)], name: &str) -> bool {
    headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

fn head_bytes(status: u16, headers: &[(String, String)]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    for (k, v) in headers {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

fn chunk_bytes(data: &[u8]) -> Vec<u8> {
    let mut v = format!("{:x}\r\n", data.len()).into_bytes();
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

// ---------------------------------------------------------------------------
// Minimal client (for fixture self-tests).
// ---------------------------------------------------------------------------

/// Connects to `addr`, does TLS with SNI `host` using `config`, sends
/// `GET path HTTP/1.1` (Host: host, Connection: close) and reads the raw
/// response until the server closes, at most `max` bytes. TLS failures are
/// `io::Error`s wrapping a `rustls::Error` (see `tls_error`).
pub fn raw_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
    max: usize,
) -> io::Result<Vec<u8>> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, timeout)?;
    sock.set_read_timeout(Some(timeout))?;
    sock.set_write_timeout(Some(timeout))?;
    let mut stream = rustls::StreamOwned::new(conn, sock);
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: fixture-selftest\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    stream.flush()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while out.len() < max {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !out.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The `rustls::Error` inside an `io::Error` from `raw_get`, if any.
pub fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// Splits a raw HTTP/1.x response into (status, head, body-bytes).
pub fn split_response(raw: &[u8]) -> Option<(u16, String, Vec<u8>)> {
    let end = head_end(raw)?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, raw[end..].to_vec()))
}
