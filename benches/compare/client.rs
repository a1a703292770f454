//! Socketmap clients that load a daemon the way Postfix and Sendmail do, and the same with
//! pipelining: every request is one netstring `NAME KEY`, every reply one netstring.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::daemon::{netstring, read_netstring};

/// How long any single reply may take before the client gives up.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A request `postfix DOMAIN`, framed.
pub fn request(domain: &str) -> Vec<u8> {
    netstring(format!("postfix {domain}").as_bytes())
}

/// What a run of [`load`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Replies received.
    pub replies: usize,
    /// Replies that did not start with `OK` (no policy, or a failure).
    pub not_ok: usize,
    /// From the first request sent to the last reply received.
    pub elapsed: Duration,
}

impl Load {
    /// Replies per second.
    pub fn rate(&self) -> f64 {
        self.replies as f64 / self.elapsed.as_secs_f64()
    }
}

/// Which requests the connections send.
#[derive(Clone, Copy)]
pub enum Plan {
    /// Cycle through the requests until the time is up, then wait for the replies in flight.
    For(Duration),
    /// Send each request once, spread over the connections.
    Once,
}

/// `connections` connections, each keeping up to `window` requests in flight: 1 is how Postfix
/// and Sendmail ask (one request, then wait for its reply); more is pipelining.
///
/// # Errors
///
/// A connection that failed or closed early.
pub fn load(
    addr: SocketAddr,
    connections: usize,
    window: usize,
    requests: &Arc<Vec<Vec<u8>>>,
    plan: Plan,
) -> io::Result<Load> {
    let start_line = Arc::new(Barrier::new(connections + 1));
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
            let requests = requests.clone();
            let start_line = start_line.clone();
            Ok(thread::spawn(move || {
                start_line.wait();
                one_connection(stream, window, &requests, plan, c, connections)
            }))
        })
        .collect::<io::Result<_>>()?;
    start_line.wait();
    let started = Instant::now();
    let (mut replies, mut not_ok, mut last) = (0, 0, started);
    for w in workers {
        let (r, n, end) = w.join().map_err(|_| io::Error::other("client thread panicked"))??;
        replies += r;
        not_ok += n;
        last = last.max(end);
    }
    Ok(Load { replies, not_ok, elapsed: last - started })
}

/// One connection of [`load`]: returns (replies, not OK, time of the last reply).
fn one_connection(
    mut stream: TcpStream,
    window: usize,
    requests: &[Vec<u8>],
    plan: Plan,
    index: usize,
    connections: usize,
) -> io::Result<(usize, usize, Instant)> {
    let deadline = match plan {
        Plan::For(d) => Some(Instant::now() + d),
        Plan::Once => None,
    };
    // Plan::For: start at a different request per connection; Plan::Once: every
    // `connections`-th request.
    let mut next = index;
    let mut more = |out: &mut Vec<u8>| -> bool {
        match deadline {
            Some(deadline) => {
                if Instant::now() >= deadline {
                    return false;
                }
                out.extend_from_slice(&requests[next % requests.len()]);
                next += 1;
                true
            }
            None => match requests.get(next) {
                Some(r) => {
                    out.extend_from_slice(r);
                    next += connections;
                    true
                }
                None => false,
            },
        }
    };
    let (mut in_flight, mut replies, mut not_ok) = (0usize, 0usize, 0usize);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    loop {
        out.clear();
        while in_flight < window && more(&mut out) {
            in_flight += 1;
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
        }
        if in_flight == 0 {
            return Ok((replies, not_ok, Instant::now()));
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, format!("daemon closed after {replies} replies")));
        }
        filled += n;
        let mut pos = 0;
        while let Some(colon) = buf[pos..filled].iter().position(|&b| b == b':') {
            let len: usize = std::str::from_utf8(&buf[pos..pos + colon])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad netstring length"))?;
            let end = pos + colon + 1 + len + 1;
            if end > filled {
                break;
            }
            if !buf[pos + colon + 1..end].starts_with(b"OK") {
                not_ok += 1;
            }
            pos = end;
            in_flight -= 1;
            replies += 1;
        }
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}

/// What a [`burst`] saw.
#[derive(Debug)]
pub struct Burst {
    /// From the first request sent to the last reply received.
    pub elapsed: Duration,
    /// The replies, in request order.
    pub replies: Vec<Vec<u8>>,
}

impl Burst {
    /// Replies that carry a policy (`OK secure ...`).
    pub fn with_policy(&self) -> usize {
        self.replies.iter().filter(|r| r.starts_with(b"OK secure")).count()
    }
}

/// Opens one connection per request and lets the daemon accept them all (not timed), then
/// sends every request at once and waits until every one is answered: many MTA processes
/// asking at the same moment.
///
/// # Errors
///
/// A connection that failed, closed or timed out.
pub fn burst(addr: SocketAddr, requests: &[Vec<u8>]) -> io::Result<Burst> {
    let streams: Vec<TcpStream> = requests
        .iter()
        .map(|_| {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(REPLY_TIMEOUT))?;
            Ok(s)
        })
        .collect::<io::Result<_>>()?;
    // Let the daemon's accept loop catch up, so that its listen backlog is not measured.
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for (mut s, r) in streams.iter().zip(requests) {
        s.write_all(r)?;
    }
    let mut replies = Vec::with_capacity(requests.len());
    for s in &streams {
        let reply = read_netstring(&mut BufReader::new(s))?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed without a reply"))?;
        replies.push(reply);
    }
    Ok(Burst { elapsed: started.elapsed(), replies })
}

/// A socketmap responder that does no work: it answers every request at once with a fixed
/// policy reply (thread per connection, replies to a batch of pipelined requests in one write).
/// Measured with the same client, it is the ceiling this machine and client allow.
pub fn responder() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || respond(stream));
        }
    });
    Ok(addr)
}

fn respond(mut stream: TcpStream) {
    let reply = netstring(b"OK secure match=mx1.example.com:.mx.example.com servername=hostname");
    let _ = stream.set_nodelay(true);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    let mut filled = 0;
    loop {
        let n = match stream.read(&mut buf[filled..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        filled += n;
        let mut pos = 0;
        while let Some(colon) = buf[pos..filled].iter().position(|&b| b == b':') {
            let Some(len) = std::str::from_utf8(&buf[pos..pos + colon]).ok().and_then(|s| s.parse::<usize>().ok())
            else {
                return;
            };
            let end = pos + colon + 1 + len + 1;
            if end > filled {
                break;
            }
            out.extend_from_slice(&reply);
            pos = end;
        }
        if stream.write_all(&out).is_err() {
            return;
        }
        out.clear();
        buf.copy_within(pos..filled, 0);
        filled -= pos;
    }
}
