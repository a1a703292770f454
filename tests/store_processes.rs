//! The SQLite store shared by many processes: concurrent writers, writers killed with SIGKILL,
//! and a store kept across `fork()`.
//!
//! Worker processes are this test binary run again with [`ROLE`] set: each test function first
//! checks whether it was started as a worker, and then does the worker's part and exits.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{fs, thread};

use common::pki::TempDir;
use mta_sts::store::{CachedPolicy, Entry, Negative, NegativeKind, SqliteStore, Store};
use mta_sts::{Domain, Policy};

/// Environment variable naming the worker role of a child process.
const ROLE: &str = "MTA_STS_TEST_STORE_ROLE";
/// Environment variable with the cache path for a worker.
const DB: &str = "MTA_STS_TEST_STORE_DB";
/// Environment variable with the worker's number.
const WORKER: &str = "MTA_STS_TEST_STORE_WORKER";

const MODE: u32 = 0o660;

/// This process's worker role, if it is a worker.
fn role() -> Option<String> {
    std::env::var(ROLE).ok()
}

/// Starts this test binary as a worker running only `test`, in `role`.
fn worker(test: &str, role: &str, db: &Path, n: usize) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env(ROLE, role)
        .env(DB, db)
        .env(WORKER, n.to_string())
        .stdin(Stdio::null());
    cmd
}

fn env_db() -> PathBuf {
    PathBuf::from(std::env::var_os(DB).unwrap())
}

fn env_worker() -> u64 {
    std::env::var(WORKER).unwrap().parse().unwrap()
}

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

/// The one entry every process writes for `name`, so that any interleaving ends in the same
/// state.
fn expected(name: &str) -> Entry {
    let n: u64 = name.bytes().map(u64::from).sum();
    let mut entry = Entry::default();
    let text = format!("version: STSv1\nmode: enforce\nmx: mx1.{name}\nmx: *.backup.{name}\nmax_age: {}\n", 86400 + n);
    entry.policy = Some(Arc::new(CachedPolicy {
        policy: Policy::parse(text.as_bytes()).unwrap(),
        record_id: format!("id{n}"),
        fetched_at: 1_700_000_000 + n,
        expires_at: 1_700_086_400 + 2 * n,
    }));
    entry.checked_at = 1_700_000_000 + n;
    if n % 2 == 0 {
        entry.negative = Some(Negative { kind: NegativeKind::NoPolicy, until: 1_700_001_800, reason: None });
    }
    entry
}

fn integrity_check(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap()
}

/// Waits for `child` and returns its exit status and both outputs.
fn finish(child: Child) -> (bool, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

const PROCESSES: usize = 32;
const OPERATIONS: u64 = 200;
const DOMAINS: u64 = 50;

#[test]
fn thirty_two_processes_share_one_file_without_errors_or_lost_entries() {
    if role().as_deref() == Some("hammer") {
        std::process::exit(hammer());
    }
    let dir = TempDir::new("hammer");
    // No file yet: the workers also race to create it and its schema.
    let db = dir.join("cache.db");
    let children: Vec<Child> = (0..PROCESSES)
        .map(|n| {
            worker("thirty_two_processes_share_one_file_without_errors_or_lost_entries", "hammer", &db, n)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let started = Instant::now();
    fs::write(dir.join("go"), b"").unwrap();
    let mut failures = Vec::new();
    for (n, child) in children.into_iter().enumerate() {
        let (ok, output) = finish(child);
        if !ok {
            failures.push(format!("worker {n}: {output}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("{PROCESSES} processes x {OPERATIONS} operations: {:?}", started.elapsed());

    assert_eq!(integrity_check(&db), "ok");
    let store = SqliteStore::open(&db, MODE).unwrap();
    let all = store.list().unwrap();
    assert_eq!(all.len(), DOMAINS as usize);
    for (d, entry) in all {
        assert_eq!(*entry, expected(d.as_str()), "{d}");
    }
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("corrupt")));
}

/// Alternates puts and gets over the shared domains; returns the exit code.
fn hammer() -> i32 {
    let n = env_worker();
    // Start together, so that the workers also race to create the file.
    let go = env_db().with_file_name("go");
    let waiting = Instant::now();
    while !go.exists() && waiting.elapsed() < Duration::from_secs(30) {
        thread::sleep(Duration::from_millis(1));
    }
    let store = match SqliteStore::open(&env_db(), MODE) {
        Ok(store) => store,
        Err(e) => {
            println!("worker {n}: open: {e}");
            return 1;
        }
    };
    let mut errors = 0;
    for i in 0..OPERATIONS {
        let name = format!("d{}.example", (i * 7 + n) % DOMAINS);
        let d = domain(&name);
        let want = expected(&name);
        if i % 2 == 0 {
            if let Err(e) = store.put(&d, Arc::new(want)) {
                println!("worker {n}: put {name}: {e}");
                errors += 1;
            }
        } else {
            match store.get(&d) {
                Ok(None) => {}
                Ok(Some(got)) if *got == want => {}
                Ok(Some(got)) => {
                    println!("worker {n}: get {name}: {got:?}");
                    errors += 1;
                }
                Err(e) => {
                    println!("worker {n}: get {name}: {e}");
                    errors += 1;
                }
            }
        }
    }
    i32::from(errors > 0)
}

const KILLS: usize = 20;

#[test]
fn writers_killed_with_sigkill_never_lose_a_committed_entry() {
    match role().as_deref() {
        Some("writer") => writer(),
        Some("reader") => std::process::exit(reader()),
        _ => {}
    }
    let test = "writers_killed_with_sigkill_never_lose_a_committed_entry";
    let dir = TempDir::new("kill");
    let db = dir.join("cache.db");
    let stop = dir.join("stop");
    let mut reader = worker(test, "reader", &db, 0).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();

    let seed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() | 1;
    eprintln!("kill schedule seed {seed}");
    let mut random = XorShift(u64::from(seed));
    let mut committed: Vec<(String, u64)> = Vec::new();
    for round in 0..KILLS {
        let mut child = worker(test, "writer", &db, round).stdout(Stdio::piped()).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = thread::spawn(move || complete_lines(stdout));
        // Somewhere between during start-up and well into the writes.
        thread::sleep(Duration::from_millis(random.below(150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        committed.extend(lines.join().unwrap());
    }
    fs::write(&stop, b"").unwrap();
    let stop_wait = Instant::now();
    while reader.try_wait().unwrap().is_none() && stop_wait.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(20));
    }
    let _ = reader.kill();
    let (ok, output) = finish(reader);
    assert!(ok, "reader: {output}");
    eprintln!("{} committed writes reported over {KILLS} kills; reader: {}", committed.len(), output.trim());
    assert!(committed.len() > 100, "the writers hardly ran: {}", committed.len());

    assert_eq!(integrity_check(&db), "ok");
    let store = SqliteStore::open(&db, MODE).unwrap();
    let mut latest: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (name, stamp) in &committed {
        let best = latest.entry(name.clone()).or_default();
        *best = (*best).max(*stamp);
    }
    for (name, stamp) in latest {
        let entry = store.get(&domain(&name)).unwrap().unwrap_or_else(|| panic!("{name} lost"));
        let (entry_name, entry_stamp) = decode_stamp(&entry);
        assert_eq!(entry_name, name);
        // A later write may have committed just before the kill, without being reported.
        assert!(entry_stamp >= stamp, "{name}: stored {entry_stamp} older than committed {stamp}");
    }
}

/// The lines of `out` that were written completely; a line cut by the kill is dropped.
fn complete_lines(out: impl std::io::Read) -> Vec<(String, u64)> {
    let mut reader = BufReader::new(out);
    let mut found = Vec::new();
    let mut line = Vec::new();
    while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
        if line.ends_with(b"\n") {
            let text = String::from_utf8_lossy(&line);
            // The test harness prints its own lines too.
            let mut parts = text.split_whitespace();
            if let (Some("committed"), Some(name), Some(stamp)) = (parts.next(), parts.next(), parts.next()) {
                found.push((name.to_owned(), stamp.parse().unwrap()));
            }
        }
        line.clear();
    }
    found
}

/// An entry that names its domain and write stamp, so a torn or mixed-up row is detected.
fn stamped(name: &str, stamp: u64) -> Entry {
    let mut entry = expected(name);
    entry.checked_at = stamp;
    if let Some(policy) = &mut entry.policy {
        let policy = Arc::make_mut(policy);
        policy.record_id = format!("{stamp}");
        policy.policy.fields.push(("x_domain".to_owned(), name.to_owned()));
    }
    entry
}

fn decode_stamp(entry: &Entry) -> (String, u64) {
    let policy = entry.policy.as_ref().unwrap();
    let name = policy.policy.fields.iter().find(|(k, _)| k == "x_domain").unwrap().1.clone();
    let stamp: u64 = policy.record_id.parse().unwrap();
    assert_eq!(*entry, stamped(&name, stamp), "row is exactly what was written");
    (name, stamp)
}

/// Writes until killed: new domains and rewrites of a few shared ones, reporting each commit.
fn writer() -> ! {
    let round = env_worker();
    let store = SqliteStore::open(&env_db(), MODE).unwrap();
    let mut out = std::io::stdout().lock();
    for seq in 0u64.. {
        let name = if seq % 2 == 0 { format!("r{round}-{seq}.example") } else { format!("shared{}.example", seq % 5) };
        let stamp = round * 1_000_000 + seq;
        match store.put(&domain(&name), Arc::new(stamped(&name, stamp))) {
            Ok(()) => {
                writeln!(out, "committed {name} {stamp}").unwrap();
                out.flush().unwrap();
            }
            Err(e) => eprintln!("put {name}: {e}"),
        }
    }
    unreachable!()
}

/// Reads everything over and over until the stop file appears; every row must decode exactly.
fn reader() -> i32 {
    let db = env_db();
    let stop = db.with_file_name("stop");
    let mut errors = 0;
    let mut reads = 0;
    let mut rounds = 0;
    // Opening may meet a writer killed while creating the file, which is part of the test.
    let store = loop {
        match SqliteStore::open(&db, MODE) {
            Ok(store) => break store,
            Err(e) => {
                println!("open: {e}");
                errors += 1;
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    while !stop.exists() {
        rounds += 1;
        match store.list() {
            Ok(all) => {
                for (d, entry) in all {
                    reads += 1;
                    let (name, _) = decode_stamp(&entry);
                    if name != d.as_str() {
                        println!("row {d} holds {name}");
                        errors += 1;
                    }
                    match store.get(&d) {
                        Ok(Some(_)) => {}
                        other => {
                            println!("get {d}: {other:?}");
                            errors += 1;
                        }
                    }
                }
            }
            Err(e) => {
                println!("list: {e}");
                errors += 1;
            }
        }
    }
    println!("{rounds} rounds, {reads} rows read, {errors} errors");
    i32::from(errors > 0)
}

#[test]
fn a_store_kept_across_fork_works_in_parent_and_child() {
    if role().as_deref() == Some("fork") {
        // Forking is done in a single-threaded worker: the test harness runs other tests on
        // other threads, and a fork while one of them holds a lock would be a test artefact.
        std::process::exit(fork_worker());
    }
    let dir = TempDir::new("fork");
    let db = dir.join("cache.db");
    let child = worker("a_store_kept_across_fork_works_in_parent_and_child", "fork", &db, 0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (ok, output) = finish(child);
    assert!(ok, "{output}");
    assert_eq!(integrity_check(&db), "ok");
    let store = SqliteStore::open(&db, MODE).unwrap();
    let names: Vec<String> = store.list().unwrap().iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(names, ["after.example", "child0.example", "child1.example", "child2.example", "parent.example"]);
}

/// Uses a store, forks three children that use (or just drop) the inherited store, and checks
/// the parent's store still works. Returns the exit code.
fn fork_worker() -> i32 {
    let store = SqliteStore::open(&env_db(), MODE).unwrap();
    let parent = domain("parent.example");
    store.put(&parent, Arc::new(expected("parent.example"))).unwrap();
    assert_eq!(store.get(&parent).unwrap().as_deref(), Some(&expected("parent.example")));

    for n in 0..3 {
        // SAFETY: this worker process runs one thread (see the caller); the child only uses the
        // store and leaves with `_exit`, which runs no destructors and flushes nothing inherited.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = match n {
                // Never used in the child: dropping it must not close the parent's connection.
                2 => {
                    drop(store);
                    let again = SqliteStore::open(&env_db(), MODE).unwrap();
                    let name = "child2.example";
                    again.put(&domain(name), Arc::new(expected(name))).map_or(21, |()| 0)
                }
                _ => fork_child(&store, n),
            };
            // SAFETY: ends the child without running the parent's atexit handlers or destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {n}: status {status:#x}");
        // The parent keeps working on its own connection and sees the child's write.
        for name in [format!("child{n}.example"), "parent.example".to_owned()] {
            assert_eq!(store.get(&domain(&name)).unwrap().as_deref(), Some(&expected(&name)), "{name}");
        }
        store.put(&parent, Arc::new(expected("parent.example"))).unwrap();
    }
    store.put(&domain("after.example"), Arc::new(expected("after.example"))).unwrap();
    0
}

fn fork_child(store: &SqliteStore, n: usize) -> i32 {
    let inherited = open_descriptors(&env_db());
    if store.get(&domain("parent.example")).ok().flatten().as_deref() != Some(&expected("parent.example")) {
        return 10;
    }
    // The child's first use opened a connection of its own instead of using the parent's.
    if open_descriptors(&env_db()) != inherited + 1 {
        return 13;
    }
    let name = format!("child{n}.example");
    for _ in 0..20 {
        if store.put(&domain(&name), Arc::new(expected(&name))).is_err() {
            return 11;
        }
        if store.get(&domain(&name)).ok().flatten().as_deref() != Some(&expected(&name)) {
            return 12;
        }
    }
    0
}

/// How many of this process's file descriptors are open on `path` itself.
fn open_descriptors(path: &Path) -> usize {
    fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
        .filter(|target| Some(target) == fs::canonicalize(path).ok().as_ref())
        .count()
}

/// A small deterministic generator for the kill schedule.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
