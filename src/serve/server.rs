//! Connections, limits, reload, drain and the proactive refresh task.
//!
//! One Tokio task per connection reads requests; the complete requests found in what has
//! arrived are answered as one batch on Tokio's blocking pool (a lookup may wait for DNS and
//! HTTPS, and a cached one takes well under a microsecond, so a batch amortises the hand-over),
//! and the replies go out in request order in one write. Pipelined requests are therefore
//! answered in order, as upstream does, and a slow lookup holds back the answers after it on the
//! same connection only.
//!
//! Bounds, all from `[serve]`: `max_connections` connections at once (more wait in the listen
//! backlog), `max_request` bytes per request (at most that plus one read is buffered per
//! connection), `idle_timeout` for a connection with no complete request or a reply the client
//! does not read.
//!
//! [`Server::reload`] swaps the configuration, zones and resolver for the requests that follow,
//! keeping the cache and every connection; listener and privilege settings need a restart.
//! [`Server::stop`] stops accepting, lets each connection answer what it has received, and
//! closes idle ones at once.

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{watch, Semaphore};

use super::error::ServeError;
use super::line;
use crate::line::{Item, Splitter};
use super::listener::{self, Listeners, Protocol, Socket};
use super::netstring::{self, NetstringError};
use super::socketmap::{self, Reply};
use super::zones::Zones;
use crate::config::Config;
use crate::render::Answer;
use crate::resolve::{Outcome, Resolver, Source};
use crate::store::{self, Store};

/// Most requests answered in one batch, so that one connection's pipeline cannot hold a
/// blocking thread for long.
const MAX_BATCH: usize = 1024;

/// A batch stops taking requests once its replies reach this size, so that a client which
/// pipelines requests for a domain with a huge policy (a 64 KiB policy renders to hundreds of
/// kilobytes in the `postfix-tlsrpt` dialect) and reads nothing holds at most this much and one
/// reply, not `MAX_BATCH` replies. The requests left over are answered in the next batch.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Free buffer space ensured before each read.
const READ_CHUNK: usize = 16 * 1024;

/// An idle connection's buffer is given back above this size.
const KEEP_BUFFER: usize = 64 * 1024;

/// The running daemon. Create it inside a Tokio runtime with [`Server::start`].
pub struct Server {
    shared: Arc<Shared>,
}

struct Shared {
    state: RwLock<Arc<State>>,
    shutdown: watch::Sender<bool>,
    connections: Arc<Semaphore>,
    max_connections: u32,
    socket_files: Vec<PathBuf>,
}

/// What a reload replaces.
struct State {
    config: Config,
    zones: Zones,
    resolver: Arc<Resolver>,
    store: Arc<dyn Store>,
}

impl Server {
    /// Opens the cache (checking the file, as a long-running process can afford), builds the
    /// resolver and serves every listener. Must be called inside a multi-threaded Tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// [`ServeError`] when the zones contradict each other, the resolver cannot be built or a
    /// socket cannot be handed to the runtime.
    pub fn start(config: Config, listeners: Listeners) -> Result<Self, ServeError> {
        let zones = Zones::new(&config.serve, &config.output)?;
        let store = store::open(&config.cache, true);
        let resolver = Arc::new(Resolver::builder(config.clone()).store(store.clone()).build()?);
        // `listener::bind` refuses more than fit in a u32.
        let max_connections = u32::try_from(config.serve.max_connections).unwrap_or(u32::MAX >> 3);
        let socket_files = listeners
            .bound
            .iter()
            .filter_map(|b| match &b.socket {
                Socket::Unix(_, path) => Some(path.clone()),
                Socket::Tcp(_) => None,
            })
            .collect();
        let shared = Arc::new(Shared {
            state: RwLock::new(Arc::new(State { config, zones, resolver, store })),
            shutdown: watch::Sender::new(false),
            connections: Arc::new(Semaphore::new(max_connections as usize)),
            max_connections,
            socket_files,
        });
        let mut accepting = Vec::new();
        for bound in listeners.bound {
            let address = bound.address();
            let socket = match bound.socket {
                Socket::Tcp(l) => tokio::net::TcpListener::from_std(l).map(Listener::Tcp),
                Socket::Unix(l, _) => tokio::net::UnixListener::from_std(l).map(Listener::Unix),
            };
            let socket = socket.map_err(|source| ServeError::Bind { address: address.clone(), source })?;
            accepting.push((socket, bound.protocol, address));
        }
        for (socket, protocol, address) in accepting {
            let kind = match &protocol {
                Protocol::Socketmap => "socketmap".to_owned(),
                Protocol::Line { zone } => format!("line zone={zone}"),
            };
            tracing::info!(protocol = %kind, address = %address, "listening");
            tokio::spawn(accept_loop(socket, protocol, address, shared.clone()));
        }
        tokio::spawn(refresh_loop(shared.clone()));
        Ok(Self { shared })
    }

    /// Replaces the configuration for the requests that follow: zones, output settings and the
    /// resolver (DNS, fetch, decision and cache settings). The cache is kept unless its
    /// settings changed. Open connections stay open. Listener, connection-limit and privilege
    /// settings take effect at the next start, and a warning says so.
    ///
    /// # Errors
    ///
    /// [`ServeError`] when the new configuration is unusable; the old one stays in force.
    pub async fn reload(&self, config: Config) -> Result<(), ServeError> {
        let old = self.shared.state();
        let zones = Zones::new(&config.serve, &config.output)?;
        let build = {
            let config = config.clone();
            let old = old.clone();
            move || -> Result<(Arc<Resolver>, Arc<dyn Store>), ServeError> {
                let store =
                    if config.cache == old.config.cache { old.store.clone() } else { store::open(&config.cache, true) };
                let resolver = Resolver::builder(config).store(store.clone()).build()?;
                Ok((Arc::new(resolver), store))
            }
        };
        let (resolver, store) =
            tokio::task::spawn_blocking(build).await.map_err(|e| ServeError::Task { reason: e.to_string() })??;
        let (was, now) = (&old.config.serve, &config.serve);
        if was.socketmap != now.socketmap
            || was.line != now.line
            || was.reuse_port != now.reuse_port
            || was.max_connections != now.max_connections
            || was.user != now.user
            || was.group != now.group
        {
            tracing::warn!("reload: listener, max_connections, user and group changes take effect at the next start");
        }
        let state = Arc::new(State { config, zones, resolver, store });
        *self.shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Stops accepting connections, lets open ones answer what they have received, and waits
    /// up to `timeout` for them to close. Returns whether they all did. Unix socket files are
    /// removed.
    pub async fn stop(&self, timeout: Duration) -> bool {
        self.shared.shutdown.send_replace(true);
        // New clients get "no such file" at once rather than a socket nobody accepts on.
        for path in &self.shared.socket_files {
            listener::remove_socket_file(path);
        }
        let open = self.shared.max_connections as usize - self.shared.connections.available_permits();
        tracing::info!(connections = open, "stopping: no new connections, finishing open ones");
        let drained = tokio::time::timeout(timeout, self.shared.connections.acquire_many(self.shared.max_connections))
            .await
            .is_ok_and(|r| r.is_ok());
        if !drained {
            let open = self.shared.max_connections as usize - self.shared.connections.available_permits();
            tracing::warn!(connections = open, "shutdown timeout expired, closing the remaining connections");
        }
        drained
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.max_connections as usize - self.shared.connections.available_permits()
    }
}

impl Shared {
    fn state(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

enum Listener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

async fn accept_loop(listener: Listener, protocol: Protocol, address: String, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener) => accepted,
            _ = shutdown.wait_for(|&s| s) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, most likely: pause rather than spin.
                tracing::warn!(address = %address, error = %e, "accept failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.wait_for(|&s| s) => return,
                }
                continue;
            }
        };
        // At the limit, this connection waits for a slot and the listener stops accepting, so
        // that further clients wait in the backlog.
        let permit = match shared.connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                tracing::warn!(address = %address, limit = shared.max_connections, "connection limit reached, new connections wait");
                tokio::select! {
                    permit = shared.connections.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                    _ = shutdown.wait_for(|&s| s) => return,
                }
            }
        };
        let (shared, protocol) = (shared.clone(), protocol.clone());
        tokio::spawn(async move {
            match stream {
                Stream::Tcp(s) => connection(s, &protocol, &peer, &shared).await,
                Stream::Unix(s) => connection(s, &protocol, &peer, &shared).await,
            }
            drop(permit);
        });
    }
}

enum Stream {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(listener: &Listener) -> io::Result<(Stream, String)> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            // Replies go out in one write per batch; nothing gains from waiting to coalesce.
            let _ = stream.set_nodelay(true);
            Ok((Stream::Tcp(stream), peer.to_string()))
        }
        Listener::Unix(l) => {
            let (stream, _) = l.accept().await?;
            Ok((Stream::Unix(stream), "unix".to_owned()))
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed (or half-closed) and every request was answered.
    Eof,
    /// Nothing complete arrived, or a reply was not read, within the idle timeout.
    Idle,
    /// The daemon is stopping.
    Shutdown,
    /// A framing fault; answered `PERM` where possible.
    Fault,
    /// The socket failed.
    Io,
    /// A lookup task failed (a bug); logged.
    Bug,
}

async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    protocol: &Protocol,
    peer: &str,
    shared: &Shared,
) {
    let (end, requests) = match protocol {
        Protocol::Socketmap => socketmap_loop(&mut stream, peer, shared).await,
        Protocol::Line { zone } => line_loop(&mut stream, zone, peer, shared).await,
    };
    tracing::debug!(peer = %peer, requests, end = ?end, "connection closed");
    // Send our FIN now: a client that half-closed (Exim's readsocket) reads until it.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
}

/// Serves netstring requests until the connection ends; returns why, and how many requests
/// were answered.
async fn socketmap_loop<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    shared: &Shared,
) -> (End, usize) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut answered = 0;
    loop {
        let state = shared.state();
        let (limit, idle) = (state.config.serve.max_request, state.config.serve.idle_timeout);
        let mut frames: Vec<Range<usize>> = Vec::new();
        let mut used = 0;
        let mut fault = None;
        while frames.len() < MAX_BATCH {
            match netstring::decode(&buf[used..], limit) {
                Ok(Some(frame)) => {
                    frames.push(used + frame.data.start..used + frame.data.end);
                    used += frame.len;
                }
                Ok(None) => break,
                Err(e) => {
                    fault = Some(e);
                    break;
                }
            }
        }
        if !frames.is_empty() {
            let batch = move || {
                let mut out = Vec::with_capacity(frames.len() * 96);
                let mut requests = 0;
                for frame in &frames {
                    if out.len() >= MAX_BATCH_BYTES {
                        break;
                    }
                    socketmap::respond(&state.resolver, &state.zones, &buf[frame.clone()]).encode(&mut out);
                    requests += 1;
                }
                // Up to the `,` after the data of the last netstring answered.
                let consumed = frames[..requests].last().map_or(0, |frame| frame.end + 1);
                Answered { buf, out, requests, consumed }
            };
            let done = match answer_batch(stream, peer, idle, batch).await {
                Ok(done) => done,
                Err(end) => return (end, answered),
            };
            answered += done.requests;
            buf = done.buf;
            buf.drain(..done.consumed);
            continue;
        }
        if let Some(e) = fault {
            tracing::warn!(peer = %peer, error = %e, "bad netstring, closing connection");
            let mut out = Vec::new();
            Reply::perm(&e.to_string()).encode(&mut out);
            let _ = write(stream, &out, idle).await;
            return (End::Fault, answered);
        }
        if eof {
            if !buf.is_empty() {
                let e = NetstringError::Truncated { received: buf.len() };
                tracing::warn!(peer = %peer, error = %e, "connection closed inside a request");
            }
            return (End::Eof, answered);
        }
        if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
        match read_more(stream, &mut buf, idle, &mut shutdown).await {
            Ok(Read::Data) => {}
            Ok(Read::Eof) => eof = true,
            Ok(Read::Idle) => return (End::Idle, answered),
            Ok(Read::Shutdown) => return (End::Shutdown, answered),
            Err(_) => return (End::Io, answered),
        }
    }
}

/// Serves request lines until the connection ends; returns why, and how many lines were
/// answered.
async fn line_loop<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    zone_name: &str,
    peer: &str,
    shared: &Shared,
) -> (End, usize) {
    enum Owned {
        Line(Range<usize>),
        TooLong(usize),
    }
    let mut shutdown = shared.shutdown.subscribe();
    let mut buf: Vec<u8> = Vec::new();
    let limit = shared.state().config.serve.max_request;
    let mut splitter = Splitter::new(limit);
    let mut eof = false;
    let mut answered = 0;
    loop {
        let state = shared.state();
        let idle = state.config.serve.idle_timeout;
        // Each item with the offset just past it.
        let mut items = Vec::new();
        let mut used = 0;
        while items.len() < MAX_BATCH {
            let (item, n) = splitter.next(&buf[used..], eof);
            let start = used;
            used += n;
            match item {
                Some(Item::Line(l)) => items.push((Owned::Line(start..start + l.len()), used)),
                Some(Item::TooLong { len }) => items.push((Owned::TooLong(len), used)),
                None if n == 0 => break,
                None => {}
            }
        }
        if !items.is_empty() {
            let total = items.len();
            let zone_name = zone_name.to_owned();
            let batch = move || {
                let zone = state.zones.get(zone_name.as_bytes());
                let mut out = Vec::with_capacity(items.len() * 96);
                let mut consumed = 0;
                let mut requests = 0;
                for (item, end) in items {
                    if out.len() >= MAX_BATCH_BYTES {
                        break;
                    }
                    let item = match item {
                        Owned::Line(range) => Item::Line(&buf[range]),
                        Owned::TooLong(len) => Item::TooLong { len },
                    };
                    out.extend_from_slice(line::respond(&state.resolver, zone, &zone_name, &item).as_bytes());
                    (consumed, requests) = (end, requests + 1);
                }
                Answered { buf, out, requests, consumed }
            };
            let done = match answer_batch(stream, peer, idle, batch).await {
                Ok(done) => done,
                Err(end) => return (end, answered),
            };
            answered += done.requests;
            buf = done.buf;
            if done.requests < total {
                // Lines were left for the next batch: split them again from just after the last
                // one answered, where the splitter held nothing back.
                buf.drain(..done.consumed);
                splitter = Splitter::new(limit);
            } else {
                buf.drain(..used);
            }
            continue;
        }
        buf.drain(..used);
        if eof {
            return (End::Eof, answered);
        }
        if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
            buf = Vec::new();
        }
        match read_more(stream, &mut buf, idle, &mut shutdown).await {
            Ok(Read::Data) => {}
            Ok(Read::Eof) => eof = true,
            Ok(Read::Idle) => return (End::Idle, answered),
            Ok(Read::Shutdown) => return (End::Shutdown, answered),
            Err(_) => return (End::Io, answered),
        }
    }
}

enum Read {
    Data,
    Eof,
    Idle,
    Shutdown,
}

async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    idle: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> io::Result<Read> {
    buf.reserve(READ_CHUNK);
    tokio::select! {
        read = tokio::time::timeout(idle, stream.read_buf(buf)) => match read {
            Err(_) => Ok(Read::Idle),
            Ok(Ok(0)) => Ok(Read::Eof),
            Ok(Ok(_)) => Ok(Read::Data),
            Ok(Err(e)) => Err(e),
        },
        _ = shutdown.wait_for(|&s| s) => Ok(Read::Shutdown),
    }
}

/// What a batch of lookups hands back.
struct Answered {
    /// The input buffer the batch borrowed.
    buf: Vec<u8>,
    /// The replies, in request order.
    out: Vec<u8>,
    /// How many requests were answered: all of the batch, unless [`MAX_BATCH_BYTES`] was reached.
    requests: usize,
    /// How many bytes at the front of `buf` those requests took.
    consumed: usize,
}

/// Runs `batch`, the lookups of the requests read so far, on the blocking pool (a lookup may wait
/// for DNS and HTTPS), writes the answers it returns in request order, and hands back what it
/// returned.
async fn answer_batch<S: AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    idle: Duration,
    batch: impl FnOnce() -> Answered + Send + 'static,
) -> Result<Answered, End> {
    let done = match tokio::task::spawn_blocking(batch).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(peer = %peer, error = %e, "lookup task failed, closing connection");
            return Err(End::Bug);
        }
    };
    write(stream, &done.out, idle).await?;
    Ok(done)
}

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, out: &[u8], idle: Duration) -> Result<(), End> {
    match tokio::time::timeout(idle, stream.write_all(out)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Io),
        Err(_) => Err(End::Idle),
    }
}

/// Renews due policies every `refresh_interval` plus up to a quarter of it at random; the first
/// run comes 10 to 70 s after start, so that restarts do not postpone renewals.
async fn refresh_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut first = true;
    loop {
        let interval = shared.state().config.serve.refresh_interval;
        let delay = match (interval.is_zero(), first) {
            // Off: look again later, a reload may turn it on.
            (true, _) => Duration::from_secs(60),
            (false, true) => interval.min(Duration::from_secs(10) + random_below(Duration::from_secs(60))),
            (false, false) => interval + random_below(interval / 4),
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|&s| s) => return,
        }
        if interval.is_zero() || shared.state().config.serve.refresh_interval.is_zero() {
            continue;
        }
        first = false;
        let state = shared.state();
        let started = Instant::now();
        match tokio::task::spawn_blocking(move || state.resolver.refresh_due()).await {
            Ok(Ok(done)) => {
                for domain in &done.renewed {
                    tracing::info!(domain = %domain, "refresh: policy renewed");
                }
                for domain in &done.failed {
                    tracing::warn!(domain = %domain, "refresh: renewal failed, the cached policy applies until it expires");
                }
                for domain in &done.forgotten {
                    tracing::debug!(domain = %domain, "refresh: entry forgotten");
                }
                tracing::debug!(
                    renewed = done.renewed.len(),
                    failed = done.failed.len(),
                    forgotten = done.forgotten.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "refresh done"
                );
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "refresh: cannot list the cache"),
            Err(e) => tracing::error!(error = %e, "refresh task failed"),
        }
    }
}

/// A duration in `[0, max)`, from a randomly keyed hash: unpredictable enough to spread
/// renewals ([RFC 8461 §10.2]) without a random number generator dependency.
///
/// [RFC 8461 §10.2]: https://www.rfc-editor.org/rfc/rfc8461#section-10.2
fn random_below(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(RandomState::new().hash_one(Instant::now()) % nanos)
}

/// Logs one answer in the mail-log style: `domain=... mode=... source=...`. Lookups that went to
/// the network are logged at info (warn for failures); answers from the cache at debug, so that
/// a busy MTA does not flood the log.
pub(crate) fn log_answer(map: &str, answer: &Answer) {
    let Answer::Decided { decision, .. } = answer else {
        if let Some(e) = answer.error() {
            tracing::debug!(map = %map, error = %e, "not a valid domain");
        }
        return;
    };
    let domain = &decision.domain;
    match &decision.outcome {
        Outcome::Policy { policy, source, warning } => {
            let mode = policy.policy.mode.as_str();
            let id = &policy.record_id;
            match (source, warning) {
                (_, Some(w)) => {
                    tracing::warn!(domain = %domain, mode = %mode, source = %source.as_str(), id = %id, map = %map, error = %w, "cached policy kept")
                }
                (Source::Fetched, None) => {
                    tracing::info!(domain = %domain, mode = %mode, source = %"fetched", id = %id, map = %map, "policy")
                }
                (Source::Cache, None) => {
                    tracing::debug!(domain = %domain, mode = %mode, source = %"cache", id = %id, map = %map, "policy")
                }
            }
        }
        Outcome::NoPolicy { reason, source } => match (source, reason) {
            (Source::Fetched, Some(r)) => {
                tracing::info!(domain = %domain, mode = %"none", source = %"fetched", map = %map, error = %r, "no policy")
            }
            (Source::Fetched, None) => {
                tracing::info!(domain = %domain, mode = %"none", source = %"fetched", map = %map, "no policy")
            }
            (Source::Cache, _) => {
                tracing::debug!(domain = %domain, mode = %"none", source = %"cache", map = %map, "no policy")
            }
        },
        Outcome::Tempfail { error, source } => match source {
            Source::Fetched => {
                tracing::warn!(domain = %domain, mode = %"defer", source = %"fetched", map = %map, error = %error, "temporary failure")
            }
            Source::Cache => {
                tracing::debug!(domain = %domain, mode = %"defer", source = %"cache", map = %map, error = %error, "temporary failure")
            }
        },
    }
}
