//! The SQLite store in one process: round trips, reopening, damaged and foreign files, file
//! permissions, lock time-outs, threads, and the memory layer in front of it.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mta_sts::error::{DnsError, Error, FetchError, Phase, PolicyError, RecordError};
use mta_sts::store::{
    CachedPolicy, Entry, FailedFetch, LayeredStore, Negative, NegativeKind, SqliteOptions, SqliteStore, Store,
    StoreError,
};
use common::pki::TempDir;
use mta_sts::{Domain, Policy};

const MODE: u32 = 0o660;

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

fn policy(text: &str) -> Policy {
    Policy::parse(text.as_bytes()).unwrap()
}

/// An entry with every field set, values chosen to survive only an exact round trip.
fn full_entry() -> Entry {
    let mut entry = Entry::default();
    entry.policy = Some(Arc::new(CachedPolicy {
        policy: policy(
            "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n\
             ext_field: v\u{e9}lue with  spaces\r\nmx: mail.example.com\r\n",
        ),
        record_id: "20240101T000000".to_owned(),
        fetched_at: 1_700_000_000,
        expires_at: 1_700_604_800,
    }));
    entry.checked_at = 1_700_000_123;
    entry.negative = Some(Negative {
        kind: NegativeKind::Tempfail,
        until: 1_700_000_183,
        reason: Some(Error::Record(RecordError::Dns(DnsError::Timeout { name: "_mta-sts.example.com.".to_owned() }))),
    });
    entry.failed_fetch = Some(FailedFetch {
        record_id: "abc123".to_owned(),
        at: 1_699_999_000,
        error: Error::Fetch(FetchError::Timeout { phase: Phase::Body }),
    });
    entry.last_error = Some(Error::Policy(PolicyError::BadMx { line: 3, found: "\\x00bad".to_owned() }));
    entry
}

fn simple_entry(record_id: &str, checked_at: u64) -> Entry {
    let mut entry = Entry::default();
    entry.policy = Some(Arc::new(CachedPolicy {
        policy: policy("version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n"),
        record_id: record_id.to_owned(),
        fetched_at: checked_at,
        expires_at: checked_at + 86400,
    }));
    entry.checked_at = checked_at;
    entry
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn corrupt_copies(dir: &TempDir) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("cache.db.corrupt-"))
        .filter(|p| !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm"))
        .collect();
    found.sort();
    found
}

#[test]
fn every_entry_field_round_trips() {
    let dir = TempDir::new("roundtrip");
    let store = SqliteStore::open(&dir.join("cache.db"), MODE).unwrap();
    let full = full_entry();
    let mut bare = Entry::default();
    bare.checked_at = 42;
    let mut negative_only = Entry::default();
    negative_only.checked_at = 1_700_000_000;
    negative_only.negative = Some(Negative { kind: NegativeKind::NoPolicy, until: 1_700_001_800, reason: None });

    for (name, entry) in [("full.example", &full), ("bare.example", &bare), ("negative.example", &negative_only)] {
        store.put(&domain(name), Arc::new(entry.clone())).unwrap();
        assert_eq!(store.get(&domain(name)).unwrap().as_deref(), Some(entry), "{name}");
    }
    // The policy keeps every served line, repeats and unknown keys included.
    let got = store.get(&domain("full.example")).unwrap().unwrap();
    assert_eq!(got.policy.as_ref().unwrap().policy.fields.len(), 7);
    assert_eq!(store.get(&domain("absent.example")).unwrap(), None);
}

#[test]
fn put_replaces_and_remove_and_list_work_in_domain_order() {
    let dir = TempDir::new("list");
    let store = SqliteStore::open(&dir.join("cache.db"), MODE).unwrap();
    for (name, id) in [("b.example", "1"), ("a.example", "2"), ("c.example", "3"), ("a.example", "4")] {
        store.put(&domain(name), Arc::new(simple_entry(id, 1000))).unwrap();
    }
    let listed: Vec<(String, String)> = store
        .list()
        .unwrap()
        .iter()
        .map(|(d, e)| (d.to_string(), e.policy.as_ref().unwrap().record_id.clone()))
        .collect();
    assert_eq!(
        listed,
        [("a.example".into(), "4".into()), ("b.example".into(), "1".into()), ("c.example".into(), "3".into())]
    );
    assert!(store.remove(&domain("b.example")).unwrap());
    assert!(!store.remove(&domain("b.example")).unwrap());
    assert_eq!(store.get(&domain("b.example")).unwrap(), None);
    assert_eq!(store.list().unwrap().len(), 2);
}

#[test]
fn a_new_store_on_the_same_file_reads_what_the_last_one_wrote() {
    let dir = TempDir::new("reopen");
    let path = dir.join("cache.db");
    {
        let store = SqliteStore::open(&path, MODE).unwrap();
        store.put(&domain("example.com"), Arc::new(full_entry())).unwrap();
    }
    let store = SqliteStore::open(&path, MODE).unwrap();
    assert_eq!(store.get(&domain("example.com")).unwrap().as_deref(), Some(&full_entry()));
    assert!(corrupt_copies(&dir).is_empty());
}

#[test]
fn garbage_file_is_moved_aside_and_rebuilt() {
    let dir = TempDir::new("garbage");
    let path = dir.join("cache.db");
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(&path, &garbage).unwrap();

    let store = SqliteStore::open(&path, MODE).unwrap();
    store.put(&domain("example.com"), Arc::new(full_entry())).unwrap();
    assert_eq!(store.get(&domain("example.com")).unwrap().as_deref(), Some(&full_entry()));
    let moved = corrupt_copies(&dir);
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(fs::read(&moved[0]).unwrap(), garbage, "the damaged file is kept as it was");
    drop(store);
    // The rebuilt file is a good one: opening it again moves nothing.
    let store = SqliteStore::open(&path, MODE).unwrap();
    assert!(store.get(&domain("example.com")).unwrap().is_some());
    assert_eq!(corrupt_copies(&dir).len(), 1);
}

#[test]
fn sqlite_header_with_damaged_pages_is_moved_aside() {
    let dir = TempDir::new("damaged");
    let path = dir.join("cache.db");
    {
        let store = SqliteStore::open(&path, MODE).unwrap();
        for i in 0..300 {
            store.put(&domain(&format!("d{i}.example")), Arc::new(full_entry())).unwrap();
        }
    }
    // Keep the 100-byte header, overwrite the rest of the first pages.
    let mut bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 3 * 4096, "all in the main file after the last close");
    for b in &mut bytes[100..3 * 4096] {
        *b = 0xa5;
    }
    fs::write(&path, &bytes).unwrap();

    let store = SqliteStore::open(&path, MODE).unwrap();
    assert_eq!(store.list().unwrap(), []);
    assert_eq!(corrupt_copies(&dir).len(), 1);
}

#[test]
fn damage_found_by_a_query_moves_the_file_aside_when_open_skipped_the_check() {
    let dir = TempDir::new("lazy");
    let path = dir.join("cache.db");
    {
        let store = SqliteStore::open(&path, MODE).unwrap();
        for i in 0..300 {
            store.put(&domain(&format!("d{i}.example")), Arc::new(full_entry())).unwrap();
        }
    }
    // Page 1 (header and schema) intact, the table's pages overwritten.
    let mut bytes = fs::read(&path).unwrap();
    for b in &mut bytes[4096..] {
        *b = 0xa5;
    }
    fs::write(&path, &bytes).unwrap();

    let mut options = SqliteOptions::default();
    options.quick_check = false;
    let store = SqliteStore::open_with(&path, &options).unwrap();
    assert!(corrupt_copies(&dir).is_empty(), "opening did not read the table");
    let err = store.get(&domain("d1.example")).unwrap_err();
    assert!(matches!(&err, StoreError::Backend { reason } if reason.contains("malformed")), "{err}");
    assert_eq!(corrupt_copies(&dir).len(), 1);
    // The same store goes on with the rebuilt file.
    assert_eq!(store.get(&domain("d1.example")).unwrap(), None);
    store.put(&domain("d1.example"), Arc::new(full_entry())).unwrap();
    drop(store);
    assert_eq!(SqliteStore::open(&path, MODE).unwrap().list().unwrap().len(), 1);
    assert_eq!(corrupt_copies(&dir).len(), 1);
}

#[test]
fn foreign_databases_are_moved_aside() {
    let setups: [&str; 3] = [
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, body TEXT);",
        "CREATE TABLE entries (domain TEXT PRIMARY KEY, x INTEGER); PRAGMA user_version = 1;",
        "PRAGMA application_id = 1234; PRAGMA user_version = 1;",
    ];
    for setup in setups {
        let dir = TempDir::new("foreign");
        let path = dir.join("cache.db");
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(setup).unwrap();
        drop(conn);

        let store = SqliteStore::open(&path, MODE).unwrap_or_else(|e| panic!("{setup}: {e}"));
        store.put(&domain("example.com"), Arc::new(simple_entry("1", 5))).unwrap();
        assert!(store.get(&domain("example.com")).unwrap().is_some(), "{setup}");
        assert_eq!(corrupt_copies(&dir).len(), 1, "{setup}");
    }
}

#[test]
fn a_schema_newer_than_this_program_is_refused_and_left_alone() {
    let dir = TempDir::new("newer");
    let path = dir.join("cache.db");
    drop(SqliteStore::open(&path, MODE).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    drop(conn);

    let err = SqliteStore::open(&path, MODE).unwrap_err();
    assert!(matches!(&err, StoreError::Backend { reason } if reason.contains("newer")), "{err}");
    assert!(corrupt_copies(&dir).is_empty());
}

#[test]
fn rows_that_do_not_parse_read_as_absent() {
    let dir = TempDir::new("badrow");
    let path = dir.join("cache.db");
    let store = SqliteStore::open(&path, MODE).unwrap();
    for name in ["policy.example", "json.example", "type.example", "good.example"] {
        store.put(&domain(name), Arc::new(full_entry())).unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE entries SET policy_text = 'mode: sideways' WHERE domain = 'policy.example';
         UPDATE entries SET negative = '{\"kind\":\"maybe\"}' WHERE domain = 'json.example';
         UPDATE entries SET checked_at = x'00ff' WHERE domain = 'type.example';
         INSERT INTO entries (domain, checked_at, updated_at) VALUES ('NOT A DOMAIN', 1, 1);",
    )
    .unwrap();
    drop(conn);

    for name in ["policy.example", "json.example", "type.example"] {
        assert_eq!(store.get(&domain(name)).unwrap(), None, "{name}");
    }
    let listed: Vec<String> = store.list().unwrap().iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(listed, ["good.example"]);
    // A new answer replaces the bad row.
    store.put(&domain("policy.example"), Arc::new(full_entry())).unwrap();
    assert!(store.get(&domain("policy.example")).unwrap().is_some());
}

#[test]
fn new_files_get_the_requested_mode_whatever_the_umask() {
    let dir = TempDir::new("mode");
    // SAFETY: umask only changes the creation mask of this process; it is restored below.
    let old = unsafe { libc::umask(0o077) };
    let result = std::panic::catch_unwind(|| {
        let path = dir.join("cache.db");
        let store = SqliteStore::open(&path, MODE).unwrap();
        store.put(&domain("example.com"), Arc::new(simple_entry("1", 5))).unwrap();
        assert_eq!(mode_of(&path), 0o660);
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode_of(&side), 0o660, "{suffix}");
        }
        // Another mode, and a rebuilt file gets it too.
        let other = dir.join("other.db");
        fs::write(&other, b"not sqlite at all, not even close, but long enough to be read").unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
        drop(SqliteStore::open(&other, 0o640).unwrap());
        assert_eq!(mode_of(&other), 0o640);
        // An existing file keeps the mode its owner chose.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        drop(store);
        drop(SqliteStore::open(&path, MODE).unwrap());
        assert_eq!(mode_of(&path), 0o600);
    });
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    result.unwrap();
}

#[test]
fn missing_directory_is_an_error_not_a_panic() {
    let dir = TempDir::new("nodir");
    let err = SqliteStore::open(&dir.join("no/such/dir/cache.db"), MODE).unwrap_err();
    assert!(matches!(err, StoreError::Backend { .. }), "{err}");
}

#[test]
fn a_write_lock_held_past_the_timeout_is_busy_and_reads_go_on() {
    let dir = TempDir::new("busy");
    let path = dir.join("cache.db");
    let mut options = SqliteOptions::default();
    options.busy_timeout = Duration::from_millis(100);
    let store = SqliteStore::open_with(&path, &options).unwrap();
    store.put(&domain("example.com"), Arc::new(simple_entry("1", 5))).unwrap();

    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE; UPDATE entries SET checked_at = 6;").unwrap();
    assert_eq!(store.put(&domain("example.com"), Arc::new(simple_entry("2", 7))), Err(StoreError::Busy));
    assert_eq!(store.remove(&domain("example.com")), Err(StoreError::Busy));
    // WAL: readers see the last commit while the writer works.
    assert_eq!(store.get(&domain("example.com")).unwrap().unwrap().checked_at, 5);
    other.execute_batch("COMMIT;").unwrap();
    assert_eq!(store.get(&domain("example.com")).unwrap().unwrap().checked_at, 6);
    store.put(&domain("example.com"), Arc::new(simple_entry("2", 7))).unwrap();
}

#[test]
fn threads_share_one_store() {
    let dir = TempDir::new("threads");
    let store = Arc::new(SqliteStore::open(&dir.join("cache.db"), MODE).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    let d = domain(&format!("d{}.example", (t * 7 + i) % 20));
                    if i % 2 == 0 {
                        store.put(&d, Arc::new(simple_entry("same", 1000))).unwrap();
                    } else if let Some(e) = store.get(&d).unwrap() {
                        assert_eq!(*e, simple_entry("same", 1000));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.list().unwrap().len(), 20);
}

#[test]
fn the_memory_layer_sees_other_writers_once_its_copy_is_older_than_memory_ttl() {
    let dir = TempDir::new("layered");
    let path = dir.join("cache.db");
    let d = domain("example.com");
    let writer = LayeredStore::new(Arc::new(SqliteStore::open(&path, MODE).unwrap()), Duration::from_secs(3600));
    let sticky = LayeredStore::new(Arc::new(SqliteStore::open(&path, MODE).unwrap()), Duration::from_secs(3600));
    let eager = LayeredStore::new(Arc::new(SqliteStore::open(&path, MODE).unwrap()), Duration::ZERO);

    writer.put(&d, Arc::new(simple_entry("1", 100))).unwrap();
    assert_eq!(sticky.get(&d).unwrap().unwrap().checked_at, 100);
    assert_eq!(eager.get(&d).unwrap().unwrap().checked_at, 100);

    writer.put(&d, Arc::new(simple_entry("2", 200))).unwrap();
    assert_eq!(sticky.get(&d).unwrap().unwrap().checked_at, 100, "memory copy still young");
    assert_eq!(eager.get(&d).unwrap().unwrap().checked_at, 200, "stale copy re-read");
    assert_eq!(writer.get(&d).unwrap().unwrap().checked_at, 200);

    // A removal elsewhere is seen too.
    assert!(writer.remove(&d).unwrap());
    assert_eq!(eager.get(&d).unwrap(), None);
    assert_eq!(writer.get(&d).unwrap(), None);
    assert_eq!(writer.list().unwrap(), []);
}

#[test]
fn entries_without_a_policy_are_pruned_but_policies_never_are() {
    let dir = TempDir::new("prune");
    let mut options = SqliteOptions::default();
    options.max_negative_entries = 100;
    let store = SqliteStore::open_with(&dir.join("cache.db"), &options).unwrap();
    for n in 0..5 {
        store.put(&domain(&format!("policy{n}.example")), Arc::new(simple_entry("1", 1))).unwrap();
    }
    for n in 0..1000 {
        store.put(&domain(&format!("flood{n}.example")), Arc::new(Entry::default())).unwrap();
    }
    let all = store.list().unwrap();
    let with_policy = all.iter().filter(|(_, e)| e.policy.is_some()).count();
    assert_eq!(with_policy, 5);
    // Pruned every 256 writes down to 100: never more than 100 + 256 in between.
    assert!(all.len() - with_policy <= 356, "{} entries without a policy", all.len() - with_policy);
}
