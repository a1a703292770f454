//! An authoritative test DNS server (hickory-proto message types over std
//! sockets) answering over UDP and TCP on the same 127.0.0.1 port.
//!
//! * A name with no entries at all -> NXDOMAIN + SOA in authority.
//! * A name with entries but none of the queried type -> NOERROR, no
//!   answers, SOA in authority (NODATA).
//! * Answers carry AA and RA, echo id/RD/question, TTL 300 (see `set_ttl`).
//! * UDP responses larger than max(512, client EDNS size) are sent with TC set
//!   and no records; TCP responses are never truncated.
//! * Malformed queries are ignored; nothing a client sends can panic it.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// Poll interval of the server threads (bounds shutdown latency).
const POLL: Duration = Duration::from_millis(20);
/// Longest CNAME chain followed.
const MAX_CNAME_CHAIN: usize = 8;

/// What the server answers for a name (or a (name, type)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// TXT RRset: each record is a list of character-strings (each <= 255
    /// bytes; a longer one makes the server answer SERVFAIL).
    Txt(Vec<Vec<Vec<u8>>>),
    A(Vec<Ipv4Addr>),
    Aaaa(Vec<Ipv6Addr>),
    /// (preference, exchange); exchange "." is the null MX.
    Mx(Vec<(u16, String)>),
    /// CNAME at this name. Queries for other types get the CNAME plus the
    /// target's records of the queried type (chain followed up to 8 links);
    /// an unknown target gives NXDOMAIN (with the CNAMEs in the answer), like
    /// an authoritative server for both names.
    Cname(String),
    /// NXDOMAIN for this name, whatever the type.
    NxDomain,
    /// SERVFAIL (no records).
    ServFail,
    /// REFUSED (no records).
    Refused,
    /// Never answer (the client times out). The query is still counted.
    Drop,
    /// Over UDP: TC bit, no records. Over TCP: the inner answer.
    Truncated(Box<Answer>),
}

impl Answer {
    /// Convenience: a TXT RRset where each record is a single string.
    pub fn txt<S: AsRef<str>>(records: &[S]) -> Answer {
        Answer::Txt(
            records
                .iter()
                .map(|r| vec![r.as_ref().as_bytes().to_vec()])
                .collect(),
        )
    }

    /// Convenience: one TXT record made of several character-strings.
    pub fn txt_split<S: AsRef<str>>(strings: &[S]) -> Answer {
        Answer::Txt(vec![strings
            .iter()
            .map(|s| s.as_ref().as_bytes().to_vec())
            .collect()])
    }

    /// Convenience: MX RRset from (preference, host) pairs.
    pub fn mx(records: &[(u16, &str)]) -> Answer {
        Answer::Mx(records.iter().map(|(p, h)| (*p, h.to_string())).collect())
    }

    /// Record type this answer provides, or None for whole-name answers
    /// (NxDomain, ServFail, Refused, Drop, and Truncated of those).
    pub fn record_type(&self) -> Option<RecordType> {
        match self {
            Answer::Txt(_) => Some(RecordType::TXT),
            Answer::A(_) => Some(RecordType::A),
            Answer::Aaaa(_) => Some(RecordType::AAAA),
            Answer::Mx(_) => Some(RecordType::MX),
            Answer::Cname(_) => Some(RecordType::CNAME),
            Answer::NxDomain | Answer::ServFail | Answer::Refused | Answer::Drop => None,
            Answer::Truncated(inner) => inner.record_type(),
        }
    }
}

/// Records of one name.
#[derive(Clone, Debug)]
enum Entry {
    /// Applies to every query type.
    Whole(Answer),
    /// Per-type answers (data or, via `set_for`, failures).
    Types(HashMap<RecordType, Answer>),
}

#[derive(Default)]
struct State {
    zone: Mutex<HashMap<String, Entry>>,
    counts: Mutex<HashMap<(String, RecordType), usize>>,
    total: AtomicUsize,
    ttl: AtomicU32,
    shutdown: AtomicBool,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Normalizes a name for keys: IDNA/punycode via hickory, lowercase, no
/// trailing dot. "" and "." both mean the root.
pub fn normalize_name(name: &str) -> String {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed == "." {
        return String::new();
    }
    match Name::from_str_relaxed(trimmed) {
        Ok(n) => name_key(&n),
        Err(_) => trimmed.trim_end_matches('.').to_ascii_lowercase(),
    }
}

fn name_key(name: &Name) -> String {
    name.to_lowercase()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn parse_name(name: &str) -> Option<Name> {
    let t = name.trim();
    if t.is_empty() || t == "." {
        return Some(Name::root());
    }
    let mut n = Name::from_str_relaxed(t).ok()?;
    n.set_fqdn(true);
    Some(n)
}

/// The authoritative test DNS server. Dropping it stops all its threads.
pub struct DnsServer {
    addr: SocketAddr,
    state: Arc<State>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Binds UDP and TCP on the same random 127.0.0.1 port and starts serving.
    pub fn start() -> DnsServer {
        let (udp, tcp) = bind_pair();
        DnsServer::serve(udp, tcp)
    }

    /// Binds UDP and TCP on exactly `addr` (for example 127.0.0.1:53 inside a network
    /// namespace, where programs that read /etc/resolv.conf find it) and starts serving.
    pub fn start_on(addr: SocketAddr) -> io::Result<DnsServer> {
        let udp = UdpSocket::bind(addr)?;
        let tcp = TcpListener::bind(udp.local_addr()?)?;
        Ok(DnsServer::serve(udp, tcp))
    }

    fn serve(udp: UdpSocket, tcp: TcpListener) -> DnsServer {
        let addr = udp.local_addr().expect("udp local addr");
        udp.set_read_timeout(Some(POLL)).expect("udp read timeout");
        tcp.set_nonblocking(true).expect("tcp nonblocking");
        let state = Arc::new(State::default());
        state.ttl.store(300, Ordering::Relaxed);
        let mut threads = Vec::new();
        {
            let state = state.clone();
            threads.push(
                thread::Builder::new()
                    .name("test-dns-udp".into())
                    .spawn(move || udp_loop(udp, state))
                    .expect("spawn dns udp thread"),
            );
        }
        {
            let state = state.clone();
            threads.push(
                thread::Builder::new()
                    .name("test-dns-tcp".into())
                    .spawn(move || tcp_accept_loop(tcp, state))
                    .expect("spawn dns tcp thread"),
            );
        }
        DnsServer {
            addr,
            state,
            threads,
        }
    }

    /// The UDP and TCP address (same port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Replace the records for (name, type of `answer`). `name` is absolute
    /// or relative (no search domain is applied), case-insensitive, trailing
    /// dot optional. Whole-name answers (NxDomain, ServFail, Refused, Drop)
    /// replace every record of the name; a data answer set afterwards
    /// replaces such a whole-name answer.
    pub fn set(&self, name: &str, answer: Answer) {
        let key = normalize_name(name);
        let mut zone = lock(&self.state.zone);
        match answer.record_type() {
            None => {
                zone.insert(key, Entry::Whole(answer));
            }
            Some(rtype) => {
                let entry = zone
                    .entry(key)
                    .or_insert_with(|| Entry::Types(HashMap::new()));
                if let Entry::Whole(_) = entry {
                    *entry = Entry::Types(HashMap::new());
                }
                if let Entry::Types(map) = entry {
                    map.insert(rtype, answer);
                }
            }
        }
    }

    /// Like `set` but for an explicit query type, so that e.g. only TXT
    /// queries of a name get SERVFAIL/Drop/Truncated while its other types
    /// still work. (Queries of type `rtype` get `answer` as is.)
    pub fn set_for(&self, name: &str, rtype: RecordType, answer: Answer) {
        let key = normalize_name(name);
        let mut zone = lock(&self.state.zone);
        let entry = zone
            .entry(key)
            .or_insert_with(|| Entry::Types(HashMap::new()));
        if let Entry::Whole(_) = entry {
            *entry = Entry::Types(HashMap::new());
        }
        if let Entry::Types(map) = entry {
            map.insert(rtype, answer);
        }
    }

    /// Removes the records of one type of a name (a whole-name answer is
    /// removed whatever `rtype`).
    pub fn remove(&self, name: &str, rtype: RecordType) {
        let key = normalize_name(name);
        let mut zone = lock(&self.state.zone);
        let remove_all = match zone.get_mut(&key) {
            Some(Entry::Whole(_)) => true,
            Some(Entry::Types(map)) => {
                map.remove(&rtype);
                map.is_empty()
            }
            None => false,
        };
        if remove_all {
            zone.remove(&key);
        }
    }

    /// Remove every record of that name (it becomes NXDOMAIN).
    pub fn clear(&self, name: &str) {
        lock(&self.state.zone).remove(&normalize_name(name));
    }

    /// Remove every record of every name.
    pub fn clear_all(&self) {
        lock(&self.state.zone).clear();
    }

    /// TTL of answers and of the SOA (default 300). Also the SOA minimum.
    pub fn set_ttl(&self, ttl: u32) {
        self.state.ttl.store(ttl, Ordering::Relaxed);
    }

    /// Number of queries received for (name, type), UDP + TCP. Malformed
    /// packets are not counted; dropped (Answer::Drop) queries are.
    pub fn queries(&self, name: &str, rtype: RecordType) -> usize {
        lock(&self.state.counts)
            .get(&(normalize_name(name), rtype))
            .copied()
            .unwrap_or(0)
    }

    /// Number of queries received for `name`, any type.
    pub fn queries_any(&self, name: &str) -> usize {
        let key = normalize_name(name);
        lock(&self.state.counts)
            .iter()
            .filter(|((n, _), _)| *n == key)
            .map(|(_, c)| *c)
            .sum()
    }

    /// Number of well-formed queries received, all names.
    pub fn total_queries(&self) -> usize {
        self.state.total.load(Ordering::SeqCst)
    }

    /// Resets all query counters to zero.
    pub fn reset_queries(&self) {
        lock(&self.state.counts).clear();
        self.state.total.store(0, Ordering::SeqCst);
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let conns: Vec<_> = lock(&self.state.conns).drain(..).collect();
        for t in conns {
            let _ = t.join();
        }
    }
}

fn bind_pair() -> (UdpSocket, TcpListener) {
    let mut last_err = None;
    for _ in 0..50 {
        let udp = match UdpSocket::bind("127.0.0.1:0") {
            Ok(s) => s,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        let addr = match udp.local_addr() {
            Ok(a) => a,
            Err(e) => {
                last_err = Some(e);
                continue;
            }
        };
        match TcpListener::bind(addr) {
            Ok(tcp) => return (udp, tcp),
            Err(e) => last_err = Some(e),
        }
    }
    panic!("cannot bind UDP+TCP on the same 127.0.0.1 port: {last_err:?}");
}

fn udp_loop(sock: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 65_535];
    while !state.shutdown.load(Ordering::SeqCst) {
        let (n, peer) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue, // timeout (or ICMP error): poll again
        };
        if let Some(resp) = handle_packet(&buf[..n], &state, false) {
            let _ = sock.send_to(&resp, peer);
        }
    }
}

fn tcp_accept_loop(listener: TcpListener, state: Arc<State>) {
    while !state.shutdown.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let st = state.clone();
                let h = thread::Builder::new()
                    .name("test-dns-tcp-conn".into())
                    .spawn(move || tcp_conn(stream, st));
                if let Ok(h) = h {
                    let mut conns = lock(&state.conns);
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            }
            Err(ref e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(POLL / 4),
            Err(_) => thread::sleep(POLL / 4),
        }
    }
}

/// Fills `buf` completely. Ok(false) on EOF before the first byte (clean
/// close between messages), Err on EOF mid-buffer, errors, or shutdown.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], state: &State) -> io::Result<bool> {
    let mut off = 0;
    while off < buf.len() {
        if state.shutdown.load(Ordering::SeqCst) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        match stream.read(&mut buf[off..]) {
            Ok(0) if off == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => off += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn tcp_conn(mut stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(POLL));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    loop {
        let mut len = [0u8; 2];
        match read_full(&mut stream, &mut len, &state) {
            Ok(true) => {}
            _ => return,
        }
        let len = u16::from_be_bytes(len) as usize;
        let mut msg = vec![0u8; len];
        if len > 0 && !matches!(read_full(&mut stream, &mut msg, &state), Ok(true)) {
            return;
        }
        if let Some(resp) = handle_packet(&msg, &state, true) {
            if resp.len() > u16::MAX as usize {
                return;
            }
            let mut out = Vec::with_capacity(resp.len() + 2);
            out.extend_from_slice(&(resp.len() as u16).to_be_bytes());
            out.extend_from_slice(&resp);
            if stream.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// Outcome of resolving one question against the zone.
enum Outcome {
    /// Send this rcode with these answers (plus SOA in authority when there
    /// are no answers and rcode is NOERROR/NXDOMAIN).
    Reply(ResponseCode, Vec<Record>),
    /// UDP truncation requested by the zone.
    Truncate,
    /// Do not answer.
    Drop,
}

fn ttl(state: &State) -> u32 {
    state.ttl.load(Ordering::Relaxed)
}

fn data_records(owner: &Name, answer: &Answer, ttl: u32) -> Vec<Record> {
    let rec = |data: RData| Record::from_rdata(owner.clone(), ttl, data);
    match answer {
        Answer::Txt(rrset) => rrset
            .iter()
            .map(|strings| {
                rec(RData::TXT(TXT::from_bytes(
                    strings.iter().map(|s| s.as_slice()).collect(),
                )))
            })
            .collect(),
        Answer::A(addrs) => addrs.iter().map(|a| rec(RData::A(A(*a)))).collect(),
        Answer::Aaaa(addrs) => addrs.iter().map(|a| rec(RData::AAAA(AAAA(*a)))).collect(),
        Answer::Mx(mxs) => mxs
            .iter()
            .filter_map(|(pref, host)| parse_name(host).map(|n| rec(RData::MX(MX::new(*pref, n)))))
            .collect(),
        Answer::Cname(target) => parse_name(target)
            .map(|n| vec![rec(RData::CNAME(CNAME(n)))])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn resolve(
    zone: &HashMap<String, Entry>,
    qname: &Name,
    qtype: RecordType,
    tcp: bool,
    ttl: u32,
) -> Outcome {
    let mut answers = Vec::new();
    let mut owner = qname.clone();
    for _ in 0..=MAX_CNAME_CHAIN {
        let key = name_key(&owner);
        let entry = match zone.get(&key) {
            None => return Outcome::Reply(ResponseCode::NXDomain, answers),
            Some(e) => e,
        };
        let mut answer: Option<&Answer> = match entry {
            Entry::Whole(a) => Some(a),
            Entry::Types(map) => {
                if qtype == RecordType::ANY {
                    // Everything we have (failures for ANY are not modelled).
                    for a in map.values() {
                        answers.extend(data_records(&owner, a, ttl));
                    }
                    return Outcome::Reply(ResponseCode::NoError, answers);
                }
                map.get(&qtype).or_else(|| map.get(&RecordType::CNAME))
            }
        };
        // Unwrap Truncated.
        while let Some(Answer::Truncated(inner)) = answer {
            if !tcp {
                return Outcome::Truncate;
            }
            answer = Some(inner);
        }
        match answer {
            None => return Outcome::Reply(ResponseCode::NoError, answers), // NODATA
            Some(Answer::NxDomain) => return Outcome::Reply(ResponseCode::NXDomain, answers),
            Some(Answer::ServFail) => return Outcome::Reply(ResponseCode::ServFail, Vec::new()),
            Some(Answer::Refused) => return Outcome::Reply(ResponseCode::Refused, Vec::new()),
            Some(Answer::Drop) => return Outcome::Drop,
            Some(Answer::Truncated(_)) => unreachable!("unwrapped above"),
            Some(a @ Answer::Cname(target)) if qtype != RecordType::CNAME => {
                answers.extend(data_records(&owner, a, ttl));
                match parse_name(target) {
                    Some(next) => owner = next,
                    None => return Outcome::Reply(ResponseCode::NoError, answers),
                }
            }
            Some(a) => {
                // Data of the right type (or set_for with a mismatching type,
                // which then yields records of the stored type).
                answers.extend(data_records(&owner, a, ttl));
                return Outcome::Reply(ResponseCode::NoError, answers);
            }
        }
    }
    // Chain too long (or a loop): stop here, like a server giving up.
    Outcome::Reply(ResponseCode::NoError, answers)
}

fn soa_for(qname: &Name, ttl: u32) -> Record {
    let labels = qname.num_labels() as usize;
    let zone = if labels > 2 {
        qname.trim_to(2)
    } else {
        qname.clone()
    };
    let mname = Name::from_ascii("ns1")
        .ok()
        .and_then(|n| n.append_domain(&zone).ok())
        .unwrap_or_else(Name::root);
    let rname = Name::from_ascii("hostmaster")
        .ok()
        .and_then(|n| n.append_domain(&zone).ok())
        .unwrap_or_else(Name::root);
    Record::from_rdata(
        zone,
        ttl,
        RData::SOA(SOA::new(mname, rname, 1, 3600, 600, 86400, ttl)),
    )
}

/// Handles one raw query; returns the raw response (without TCP length
/// prefix), or None for "no answer".
fn handle_packet(packet: &[u8], state: &State, tcp: bool) -> Option<Vec<u8>> {
    let req = Message::from_vec(packet).ok()?;
    if req.metadata.message_type != MessageType::Query {
        return None;
    }
    let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
    resp.metadata.recursion_desired = req.metadata.recursion_desired;
    resp.metadata.checking_disabled = req.metadata.checking_disabled;
    resp.metadata.recursion_available = true;
    resp.add_queries(req.queries.iter().cloned());
    if let Some(client_edns) = &req.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(client_edns.max_payload().max(512));
        edns.set_version(0);
        resp.set_edns(edns);
    }
    if req.metadata.op_code != OpCode::Query {
        resp.metadata.response_code = ResponseCode::NotImp;
        return resp.to_vec().ok();
    }
    if req.queries.len() != 1 {
        resp.metadata.response_code = ResponseCode::FormErr;
        return resp.to_vec().ok();
    }
    let q: &Query = &req.queries[0];
    let qname = q.name().clone();
    let qtype = q.query_type();
    {
        let mut counts = lock(&state.counts);
        *counts.entry((name_key(&qname), qtype)).or_insert(0) += 1;
        state.total.fetch_add(1, Ordering::SeqCst);
    }
    let ttl = ttl(state);
    let outcome = {
        let zone = lock(&state.zone);
        resolve(&zone, &qname, qtype, tcp, ttl)
    };
    let (rcode, answers) = match outcome {
        Outcome::Drop => return None,
        Outcome::Truncate => {
            resp.metadata.authoritative = true;
            resp.metadata.truncation = true;
            return resp.to_vec().ok();
        }
        Outcome::Reply(rcode, answers) => (rcode, answers),
    };
    resp.metadata.response_code = rcode;
    resp.metadata.authoritative = matches!(rcode, ResponseCode::NoError | ResponseCode::NXDomain);
    let has_final = qtype == RecordType::ANY || answers.iter().any(|r| r.record_type() == qtype);
    if rcode == ResponseCode::NXDomain || (rcode == ResponseCode::NoError && !has_final) {
        resp.add_authority(soa_for(&qname, ttl));
    }
    resp.add_answers(answers);
    let bytes = match resp.to_vec() {
        Ok(b) => b,
        Err(_) => {
            // e.g. a character-string longer than 255 bytes: SERVFAIL.
            let mut err = Message::error_msg(
                req.metadata.id,
                req.metadata.op_code,
                ResponseCode::ServFail,
            );
            err.metadata.recursion_desired = req.metadata.recursion_desired;
            err.metadata.recursion_available = true;
            err.add_queries(req.queries.iter().cloned());
            return err.to_vec().ok();
        }
    };
    let limit = if tcp {
        u16::MAX as usize
    } else {
        req.edns
            .as_ref()
            .map(|e| e.max_payload() as usize)
            .unwrap_or(512)
            .max(512)
    };
    if bytes.len() > limit {
        if tcp {
            // Cannot be framed in 64 KiB: SERVFAIL instead.
            let mut err = resp.truncate();
            err.metadata.truncation = false;
            err.metadata.authoritative = false;
            err.metadata.response_code = ResponseCode::ServFail;
            return err.to_vec().ok();
        }
        let mut tc = resp.truncate();
        tc.answers.clear();
        tc.authorities.clear();
        tc.additionals.clear();
        return tc.to_vec().ok();
    }
    Some(bytes)
}

// ---------------------------------------------------------------------------
// Minimal clients (for fixture self-tests and for tests that want to look at
// the server directly).
// ---------------------------------------------------------------------------

/// Builds a query (RD set, random id). `edns`: Some(max UDP payload) adds an
/// OPT record.
pub fn build_query(name: &str, rtype: RecordType, edns: Option<u16>) -> Message {
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    let name = parse_name(name).expect("valid query name");
    msg.add_query(Query::query(name, rtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        msg.set_edns(e);
    }
    msg
}

/// Sends `query` over UDP and waits up to `timeout` for the response with
/// the same id.
pub fn udp_exchange(server: SocketAddr, query: &Message, timeout: Duration) -> io::Result<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(server)?;
    sock.send(&query.to_vec().map_err(io::Error::other)?)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = vec![0u8; 65_535];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        sock.set_read_timeout(Some(left))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) => return Err(e),
        };
        if let Ok(msg) = Message::from_vec(&buf[..n]) {
            if msg.metadata.id == query.metadata.id {
                return Ok(msg);
            }
        }
    }
}

/// Sends `query` over a new TCP connection and reads one response.
pub fn tcp_exchange(server: SocketAddr, query: &Message, timeout: Duration) -> io::Result<Message> {
    let mut s = TcpStream::connect_timeout(&server, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let bytes = query.to_vec().map_err(io::Error::other)?;
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(&bytes);
    s.write_all(&out)?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len)?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    Message::from_vec(&buf).map_err(io::Error::other)
}

/// `udp_exchange(build_query(name, rtype, None))` with a 2 s timeout.
pub fn udp_query(server: SocketAddr, name: &str, rtype: RecordType) -> io::Result<Message> {
    udp_exchange(
        server,
        &build_query(name, rtype, None),
        Duration::from_secs(2),
    )
}

/// `tcp_exchange(build_query(name, rtype, None))` with a 2 s timeout.
pub fn tcp_query(server: SocketAddr, name: &str, rtype: RecordType) -> io::Result<Message> {
    tcp_exchange(
        server,
        &build_query(name, rtype, None),
        Duration::from_secs(2),
    )
}
