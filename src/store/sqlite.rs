//! The persistent [`Store`]: one SQLite file shared by every process of the MTA.
//!
//! MTA-STS is trust on first use ([RFC 8461 §5.1]): a cache that dies with the process protects
//! nothing, and Exim forks a process per delivery, Sendmail starts a helper per lookup, daemons
//! restart. So entries live in one SQLite file that dozens of processes read and write at once.
//!
//! - **Layout**: one table, `entries`, one row per policy domain. The policy is kept as the text
//!   [`Policy::to_text`] renders and parsed again on read; the other structured fields
//!   ([`Negative`], [`FailedFetch`], the last error) are JSON; times are integer Unix seconds.
//!   Inspect it with `sqlite3 /var/cache/mta-sts/cache.db 'SELECT * FROM entries'`.
//! - **Schema**: versioned with `PRAGMA user_version` and marked as ours with
//!   `PRAGMA application_id`; [`MIGRATIONS`] lists the steps from one version to the next.
//! - **Concurrency**: WAL journal, so readers never wait for the writer; writes are one short
//!   `BEGIN IMMEDIATE` transaction each, and every lock wait is bounded by the busy timeout, after
//!   which the operation fails with [`StoreError::Busy`] and the resolver carries on without the
//!   cache instead of blocking the MTA.
//! - **Crash safety**: a committed transaction survives the process being killed at any moment
//!   (WAL recovery on the next open). `synchronous = NORMAL` does not fsync each commit, so a
//!   power loss or kernel crash may lose the last few commits, never consistency: the lost
//!   entries are looked up again, which costs a DNS query, not protection already in force
//!   elsewhere. `FULL` would fsync the WAL on every commit for no gain a cache needs.
//! - **Damage**: a file that is not SQLite, belongs to another program, or fails
//!   `PRAGMA quick_check` when opened (see [`SqliteOptions::quick_check`]) or after a query
//!   reported damage, is renamed to `<path>.corrupt-<unix time>` with a warning, together with
//!   its -wal and -shm files, and an empty cache takes its place. A row that does not parse is
//!   treated as absent. A file written by a newer schema is refused, not replaced, so a
//!   downgrade never wipes the cache.
//! - **Processes and threads**: one connection per process behind a mutex. A SQLite connection
//!   must never be used across `fork()`, so the store remembers the process id that opened it;
//!   in a forked child it opens a new connection and leaks the inherited one without closing it,
//!   since closing would release or checkpoint on behalf of the parent. As with any mutex, a
//!   fork while another thread of the parent is inside a store operation leaves the child's copy
//!   locked: fork from single-threaded processes (as Exim does) or between operations.
//!
//! [RFC 8461 §5.1]: https://www.rfc-editor.org/rfc/rfc8461#section-5.1

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{CachedPolicy, DomainLock, Entry, Store, StoreError};
use crate::domain::Domain;
use crate::policy::Policy;

/// The cache in an SQLite file. Cheap to share between threads; safe to keep across `fork()`.
pub struct SqliteStore {
    path: PathBuf,
    options: SqliteOptions,
    handle: Mutex<Handle>,
    /// Entries without a policy written by this process, to prune them every so often.
    negative_puts: AtomicU64,
}

/// How [`SqliteStore::open_with`] opens the cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// The permissions of a newly created (or rebuilt) file, whatever the umask; an existing
    /// file keeps its own. Defaults to [`SqliteOptions::DEFAULT_MODE`].
    pub mode: u32,
    /// How long an operation waits for another process's lock before failing with
    /// [`StoreError::Busy`]. Defaults to [`SqliteOptions::DEFAULT_BUSY_TIMEOUT`].
    pub busy_timeout: Duration,
    /// Whether opening runs `PRAGMA quick_check`, which reads the whole file: about 0.3 ms per
    /// MB, so 3 ms for a cache of ten thousand domains. Defaults to `true`. A process that opens
    /// the cache for each message (Exim's forked workers, one-shot helpers) may turn it off and
    /// leave the check to the daemon or `mta-sts refresh`: damage is then still found when a
    /// query touches it, and the file is moved aside at that point.
    pub quick_check: bool,
    /// Most entries without a policy (remembered "no policy" and temporary failures) the file
    /// keeps; the least recently written go first. Defaults to
    /// [`SqliteOptions::DEFAULT_MAX_NEGATIVE_ENTRIES`].
    pub max_negative_entries: u64,
}

impl SqliteOptions {
    /// Read and write for the MTA's user and group.
    pub const DEFAULT_MODE: u32 = 0o660;

    /// 2 s. Writes hold the lock for well under a millisecond, so the wait only runs out when
    /// something is wrong (a stuck process, a very slow disk), and an MTA lookup should not wait
    /// longer than that for a cache.
    pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

    /// 100,000: a flood of lookups for random domains cannot grow the file past a few tens of
    /// megabytes, while entries with a policy, the ones that protect mail, are never pruned.
    pub const DEFAULT_MAX_NEGATIVE_ENTRIES: u64 = 100_000;
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            mode: Self::DEFAULT_MODE,
            busy_timeout: Self::DEFAULT_BUSY_TIMEOUT,
            quick_check: true,
            max_negative_entries: Self::DEFAULT_MAX_NEGATIVE_ENTRIES,
        }
    }
}

impl SqliteStore {
    /// Opens the cache file at `path` with the default [`SqliteOptions`] but for `mode`, the
    /// permissions the file gets if it is created (for example [`SqliteOptions::DEFAULT_MODE`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open_with`].
    pub fn open(path: &Path, mode: u32) -> Result<Self, StoreError> {
        Self::open_with(path, &SqliteOptions { mode, ..SqliteOptions::default() })
    }

    /// Opens the cache file at `path`, creating it if it does not exist.
    ///
    /// A file that is not an SQLite database of this program, or is damaged, is moved aside to
    /// `<path>.corrupt-<unix time>` with a warning and replaced by an empty cache.
    ///
    /// # Errors
    ///
    /// [`StoreError::Busy`] when another process holds the lock past the timeout;
    /// [`StoreError::Backend`] when the file cannot be created or opened (missing directory,
    /// permissions), or was written by a newer version of the schema.
    pub fn open_with(path: &Path, options: &SqliteOptions) -> Result<Self, StoreError> {
        let (conn, identity) = open_file(path, options)?;
        Ok(Self {
            path: path.to_owned(),
            options: options.clone(),
            handle: Mutex::new(Handle { pid: std::process::id(), conn: Some(conn), identity }),
            negative_puts: AtomicU64::new(0),
        })
    }

    /// The path of the cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on this process's connection, opening a new one in a forked child, and replaces
    /// a file found damaged.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        // A poisoned lock means a thread panicked during an operation; rusqlite rolled back its
        // transaction when the panic unwound, so the connection is still usable.
        let mut handle = self.handle.lock().unwrap_or_else(|e| e.into_inner());
        let conn = handle.connection(&self.path, self.options.busy_timeout)?;
        f(conn).map_err(|e| {
            if is_damage(&e) {
                self.recover(&mut handle, &e);
            }
            store_error(e)
        })
    }

    /// After a query reported damage: confirms it with `quick_check`, then moves the file aside
    /// and opens a fresh one, so that the next operation works again. This operation still fails.
    fn recover(&self, handle: &mut Handle, error: &rusqlite::Error) {
        let Some(conn) = handle.conn.as_ref() else { return };
        let reason = match conn.query_row(QUICK_CHECK, [], |row| row.get::<_, String>(0)) {
            Ok(check) if check == "ok" => return,
            Ok(check) => format!("{error}; quick_check: {check}"),
            Err(e) if is_damage(&e) => format!("{error}; quick_check: {e}"),
            Err(_) => return,
        };
        // `connection()` just ran, so this process opened it: close it normally.
        handle.conn = None;
        if let Err(e) = move_aside(&self.path, handle.identity, &reason) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot move damaged cache file aside");
            return;
        }
        match open_file(&self.path, &self.options) {
            Ok((conn, identity)) => {
                handle.conn = Some(conn);
                handle.identity = identity;
            }
            Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "cannot rebuild the cache file"),
        }
    }
}

impl Store for SqliteStore {
    fn lock(&self, domain: &Domain, wait: Duration) -> Option<DomainLock> {
        // Sixteen lock files next to the cache, chosen by a hash that every process computes
        // alike: unrelated domains rarely share one, and the number of files stays fixed.
        let bucket = domain.as_str().bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)) % 16;
        let path = with_suffix(&self.path, &format!(".lock-{bucket:x}"));
        let opened = create_file(&path, self.options.mode).and_then(|_| OpenOptions::new().write(true).open(&path));
        match opened {
            Ok(file) => DomainLock::acquire(file, wait),
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "no lock file, fetching unlocked");
                None
            }
        }
    }

    fn get(&self, domain: &Domain) -> Result<Option<Arc<Entry>>, StoreError> {
        let row = self.with_conn(|conn| {
            conn.prepare_cached(SELECT_ENTRY)?
                .query_row(params![domain.as_str()], |row| Ok(Row::read(row, 0)))
                .optional()
        })?;
        Ok(row.and_then(|row| decode(domain, row)).map(Arc::new))
    }

    fn put(&self, domain: &Domain, entry: Arc<Entry>) -> Result<(), StoreError> {
        let row = Encoded::new(&entry)?;
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached(UPSERT_ENTRY)?.execute(params![
                domain.as_str(),
                row.policy_text,
                row.record_id,
                row.fetched_at,
                row.expires_at,
                row.checked_at,
                row.negative,
                row.failed_fetch,
                row.last_error,
                sql_time(unix_now()),
            ])?;
            // Pruning scans the policy-less rows, so do it once every PRUNE_EVERY of them.
            if row.policy_text.is_none() && self.negative_puts.fetch_add(1, Ordering::Relaxed).is_multiple_of(PRUNE_EVERY) {
                let keep = i64::try_from(self.options.max_negative_entries).unwrap_or(i64::MAX);
                tx.prepare_cached(PRUNE_NEGATIVE)?.execute(params![keep])?;
            }
            tx.commit()
        })
    }

    fn remove(&self, domain: &Domain) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let removed = tx.prepare_cached(DELETE_ENTRY)?.execute(params![domain.as_str()])?;
            tx.commit()?;
            Ok(removed > 0)
        })
    }

    fn list(&self) -> Result<Vec<(Domain, Arc<Entry>)>, StoreError> {
        let rows = self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(SELECT_ALL)?;
            let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0).ok(), Row::read(row, 1))))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, row)| {
                // Only names stored by `put`, which are already normalised, are accepted.
                let domain = match name.as_deref().map(Domain::parse) {
                    Some(Ok(domain)) if Some(domain.as_str()) == name.as_deref() => domain,
                    _ => {
                        tracing::warn!(domain = ?name, "cache row has an invalid domain, ignored");
                        return None;
                    }
                };
                let entry = decode(&domain, row)?;
                Some((domain, Arc::new(entry)))
            })
            .collect())
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).field("options", &self.options).finish()
    }
}

/// The connection, the process that opened it and the file it opened.
struct Handle {
    pid: u32,
    /// `None` only after a failed reconnection or rebuild.
    conn: Option<Connection>,
    identity: Option<Identity>,
}

impl Handle {
    /// The connection of this process: the one it opened, or a new one in a forked child.
    fn connection(&mut self, path: &Path, busy_timeout: Duration) -> Result<&mut Connection, StoreError> {
        let pid = std::process::id();
        if self.pid != pid || self.conn.is_none() {
            // "Do not open an SQLite database connection, then fork(), then try to use that
            // database connection in the child process" (sqlite.org/howtocorrupt.html §2.6).
            if self.pid != pid {
                std::mem::forget(self.conn.take());
            }
            self.pid = pid;
            self.identity = identity(path);
            self.conn = Some(connect(path, busy_timeout).map_err(store_error)?);
        }
        self.conn.as_mut().ok_or_else(|| StoreError::Backend { reason: "no connection".to_owned() })
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.pid != std::process::id() {
            std::mem::forget(self.conn.take());
        }
    }
}

/// One row as stored, before its text is parsed.
struct Row {
    policy_text: Option<String>,
    record_id: Option<String>,
    fetched_at: Option<i64>,
    expires_at: Option<i64>,
    checked_at: i64,
    negative: Option<String>,
    failed_fetch: Option<String>,
    last_error: Option<String>,
}

impl Row {
    /// Reads the entry columns starting at `first`. A value of the wrong type (a row edited by
    /// hand) is a bad row, not a failed query.
    fn read(row: &rusqlite::Row<'_>, first: usize) -> Result<Self, String> {
        let read = || -> rusqlite::Result<Self> {
            Ok(Self {
                policy_text: row.get(first)?,
                record_id: row.get(first + 1)?,
                fetched_at: row.get(first + 2)?,
                expires_at: row.get(first + 3)?,
                checked_at: row.get(first + 4)?,
                negative: row.get(first + 5)?,
                failed_fetch: row.get(first + 6)?,
                last_error: row.get(first + 7)?,
            })
        };
        read().map_err(|e| e.to_string())
    }
}

/// An entry's columns, ready to bind.
struct Encoded {
    policy_text: Option<String>,
    record_id: Option<String>,
    fetched_at: Option<i64>,
    expires_at: Option<i64>,
    checked_at: i64,
    negative: Option<String>,
    failed_fetch: Option<String>,
    last_error: Option<String>,
}

impl Encoded {
    fn new(entry: &Entry) -> Result<Self, StoreError> {
        let policy = entry.policy.as_deref();
        Ok(Self {
            policy_text: policy.map(|p| p.policy.to_text()),
            record_id: policy.map(|p| p.record_id.clone()),
            fetched_at: policy.map(|p| sql_time(p.fetched_at)),
            expires_at: policy.map(|p| sql_time(p.expires_at)),
            checked_at: sql_time(entry.checked_at),
            negative: entry.negative.as_ref().map(to_json).transpose()?,
            failed_fetch: entry.failed_fetch.as_ref().map(to_json).transpose()?,
            last_error: entry.last_error.as_ref().map(to_json).transpose()?,
        })
    }
}

/// Why a file could not be opened as the cache.
enum OpenError {
    /// Not an SQLite database of this program, or damaged: move it aside and start afresh.
    Unusable(String),
    /// Anything else (a lock, permissions, I/O): report it and leave the file alone.
    Store(StoreError),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> Self {
        if is_damage(&e) {
            Self::Unusable(e.to_string())
        } else {
            Self::Store(store_error(e))
        }
    }
}

/// Opens the file, creating it or replacing an unusable one, and returns the connection and the
/// identity of the file it is connected to.
fn open_file(path: &Path, options: &SqliteOptions) -> Result<(Connection, Option<Identity>), StoreError> {
    let mode = options.mode;
    let created = create_file(path, mode).map_err(|e| io_error(path, "cannot create", &e))?;
    let opened = identity(path);
    let (conn, opened, created) = match prepare(path, options) {
        Ok(conn) => (conn, opened, created),
        Err(OpenError::Store(e)) => return Err(e),
        Err(OpenError::Unusable(reason)) => {
            move_aside(path, opened, &reason).map_err(|e| io_error(path, "cannot move aside", &e))?;
            create_file(path, mode).map_err(|e| io_error(path, "cannot create", &e))?;
            if let Some(old) = opened {
                // Best effort, and only possible as root: a cache rebuilt by a root cron job
                // must stay writable by the MTA user that owned the old one.
                let _ = std::os::unix::fs::chown(path, Some(old.uid), Some(old.gid));
            }
            let rebuilt = identity(path);
            let conn = prepare(path, options).map_err(|e| match e {
                OpenError::Store(e) => e,
                OpenError::Unusable(reason) => StoreError::Backend {
                    reason: format!("{}: unusable even after rebuilding: {reason}", path.display()),
                },
            })?;
            (conn, rebuilt, true)
        }
    };
    if created {
        // SQLite gives the -wal and -shm files the database's permissions itself; this only
        // repairs them if an old pair was left behind with others.
        for suffix in ["-wal", "-shm"] {
            let _ = fs::set_permissions(with_suffix(path, suffix), Permissions::from_mode(mode));
        }
    }
    Ok((conn, opened))
}

/// Opens a connection to an existing file and checks, creates or migrates the schema.
fn prepare(path: &Path, options: &SqliteOptions) -> Result<Connection, OpenError> {
    let mut conn = connect(path, options.busy_timeout)?;
    // One statement, so one snapshot: another process creating the schema between two reads
    // must not make a fresh file look foreign.
    let (application_id, version, tables): (i64, i64, i64) =
        conn.query_row(SELECT_HEADER, [], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    // A fresh file has no tables and no marks; anything else must carry our application id.
    if application_id != APPLICATION_ID && (application_id != 0 || version != 0 || tables != 0) {
        return Err(OpenError::Unusable(format!(
            "not an mta-sts cache (application_id {application_id:#x}, user_version {version}, {tables} schema objects)"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::Store(StoreError::Backend {
            reason: format!(
                "{}: schema version {version} is newer than this program's {SCHEMA_VERSION}",
                path.display()
            ),
        }));
    }
    if options.quick_check {
        let check: String = conn.query_row(QUICK_CHECK, [], |row| row.get(0))?;
        if check != "ok" {
            return Err(OpenError::Unusable(format!("quick_check: {check}")));
        }
    }
    let journal: String = conn.query_row(SELECT_JOURNAL_MODE, [], |row| row.get(0))?;
    if !journal.eq_ignore_ascii_case("wal") {
        let journal = switch_to_wal(&conn, options.busy_timeout)?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(OpenError::Store(StoreError::Backend {
                reason: format!("{}: cannot switch to WAL, journal mode is {journal}", path.display()),
            }));
        }
    }
    if version < SCHEMA_VERSION {
        migrate(&mut conn)?;
    }
    // The columns this program reads must all be there.
    if let Err(e) = conn.prepare_cached(SELECT_ENTRY) {
        return Err(if store_error_is_busy(&e) {
            OpenError::Store(StoreError::Busy)
        } else {
            OpenError::Unusable(format!("unexpected schema: {e}"))
        });
    }
    Ok(conn)
}

/// Sets the WAL journal mode, once in the life of a file. This needs an exclusive lock, and when
/// processes race to create the file SQLite may report it busy without calling the busy handler,
/// so the switch is retried here within the same bound.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    let deadline = Instant::now() + busy_timeout;
    loop {
        match conn.query_row(SET_WAL, [], |row| row.get(0)) {
            Err(e) if store_error_is_busy(&e) && Instant::now() < deadline => thread::sleep(WAL_SWITCH_RETRY),
            result => return result,
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`] in one transaction. The version is read again under
/// the write lock, since another process may have migrated in the meantime.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row(SELECT_USER_VERSION, [], |row| row.get(0))?;
    let start = usize::try_from(version).unwrap_or(usize::MAX);
    if let Some(steps) = MIGRATIONS.get(start..) {
        for step in steps {
            tx.execute_batch(step)?;
        }
        if !steps.is_empty() {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
    }
    tx.commit()
}

/// Opens a connection with the per-connection settings; the file must exist.
fn connect(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_CREATE: the file is created by `create_file` with the right permissions,
    // and a file that vanished meanwhile should be an error, not a new file with the umask's.
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(busy_timeout)?;
    conn.execute_batch(CONNECTION_PRAGMAS)?;
    Ok(conn)
}

/// Turns a row into an entry; a row that does not parse is logged and treated as absent, so the
/// domain is looked up again and its row replaced.
fn decode(domain: &Domain, row: Result<Row, String>) -> Option<Entry> {
    let entry = row.and_then(|row| {
        let policy = match (row.policy_text, row.record_id) {
            (None, _) => None,
            (Some(text), Some(record_id)) => {
                let policy = Policy::parse(text.as_bytes()).map_err(|e| e.to_string())?;
                Some(Arc::new(CachedPolicy {
                    policy,
                    record_id,
                    fetched_at: unix_time(row.fetched_at.unwrap_or(0)),
                    expires_at: unix_time(row.expires_at.unwrap_or(0)),
                }))
            }
            (Some(_), None) => return Err("policy without record_id".to_owned()),
        };
        Ok(Entry {
            policy,
            checked_at: unix_time(row.checked_at),
            negative: row.negative.as_deref().map(from_json).transpose()?,
            failed_fetch: row.failed_fetch.as_deref().map(from_json).transpose()?,
            last_error: row.last_error.as_deref().map(from_json).transpose()?,
        })
    });
    entry
        .map_err(|reason| tracing::warn!(domain = %domain, reason = %reason, "cache row unreadable, treated as absent"))
        .ok()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend { reason: format!("cannot encode entry: {e}") })
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Creates `path` with exactly `mode` if it does not exist; returns whether it did.
fn create_file(path: &Path, mode: u32) -> io::Result<bool> {
    match OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
        // The umask applied to `mode` above; this sets it exactly.
        Ok(file) => file.set_permissions(Permissions::from_mode(mode)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Which file a path named when it was opened, to tell it from a replacement.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    uid: u32,
    gid: u32,
}

fn identity(path: &Path) -> Option<Identity> {
    fs::metadata(path).ok().map(|m| Identity { dev: m.dev(), ino: m.ino(), uid: m.uid(), gid: m.gid() })
}

/// Renames an unusable cache file, with its -wal and -shm files, to `<path>.corrupt-<unix
/// time>`, unless another process already replaced it.
fn move_aside(path: &Path, opened: Option<Identity>, reason: &str) -> io::Result<()> {
    let current = identity(path);
    if current.is_none() || current.map(|c| (c.dev, c.ino)) != opened.map(|o| (o.dev, o.ino)) {
        return Ok(());
    }
    let base = with_suffix(path, &format!(".corrupt-{}", unix_now()));
    let mut dest = base.clone();
    let mut n = 1;
    while fs::symlink_metadata(&dest).is_ok() {
        dest = with_suffix(&base, &format!("-{n}"));
        n += 1;
    }
    fs::rename(path, &dest)?;
    for suffix in ["-wal", "-shm"] {
        // A WAL left next to the new file would be replayed into it.
        let from = with_suffix(path, suffix);
        if let Err(e) = fs::rename(&from, with_suffix(&dest, suffix)) {
            if e.kind() != io::ErrorKind::NotFound {
                let _ = fs::remove_file(&from);
            }
        }
    }
    tracing::warn!(
        path = %path.display(),
        moved_to = %dest.display(),
        reason = %reason,
        "cache file unusable, moved aside; starting with an empty cache"
    );
    Ok(())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn io_error(path: &Path, what: &str, e: &io::Error) -> StoreError {
    StoreError::Backend { reason: format!("{}: {what}: {e}", path.display()) }
}

/// Whether SQLite found the file damaged or not a database at all.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt))
}

/// Lock time-outs are [`StoreError::Busy`], the rest is the backend's message.
fn store_error(e: rusqlite::Error) -> StoreError {
    if store_error_is_busy(&e) {
        StoreError::Busy
    } else {
        StoreError::Backend { reason: format!("sqlite: {e}") }
    }
}

/// Whether SQLite gave up waiting for another connection's lock.
fn store_error_is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

/// Unix seconds as stored: SQLite integers are signed, and times past 2^63 mean "never".
fn sql_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// A stored time; a negative one (edited by hand) reads as the epoch, that is long expired.
fn unix_time(t: i64) -> u64 {
    u64::try_from(t).unwrap_or(0)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `PRAGMA application_id` of our files: "MTSS".
const APPLICATION_ID: i64 = 0x4d54_5353;

/// `PRAGMA user_version` of the current schema: the number of [`MIGRATIONS`] applied.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Step `n` brings the schema from version `n` to `n + 1`. Never edit a step: add one.
const MIGRATIONS: [&str; 1] = [
    // Version 1. One row per policy domain; the policy columns are all NULL or all set.
    "CREATE TABLE entries (
        domain       TEXT PRIMARY KEY NOT NULL,
        policy_text  TEXT,
        record_id    TEXT,
        fetched_at   INTEGER,
        expires_at   INTEGER,
        checked_at   INTEGER NOT NULL,
        negative     TEXT,
        failed_fetch TEXT,
        last_error   TEXT,
        updated_at   INTEGER NOT NULL
    ) WITHOUT ROWID;",
];

/// Settings that do not persist in the file. `trusted_schema = OFF` because the file is
/// writable by a whole group.
const CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA trusted_schema = OFF;";

const SELECT_HEADER: &str = "SELECT (SELECT application_id FROM pragma_application_id),
        (SELECT user_version FROM pragma_user_version),
        (SELECT count(*) FROM sqlite_schema)";

const SELECT_USER_VERSION: &str = "PRAGMA user_version";

const QUICK_CHECK: &str = "PRAGMA quick_check(1)";

const SELECT_JOURNAL_MODE: &str = "PRAGMA journal_mode";

const SET_WAL: &str = "PRAGMA journal_mode = WAL";

/// The pause between attempts to switch to WAL.
const WAL_SWITCH_RETRY: Duration = Duration::from_millis(5);

const SELECT_ENTRY: &str = "SELECT policy_text, record_id, fetched_at, expires_at, checked_at, negative, failed_fetch,
        last_error
    FROM entries WHERE domain = ?1";

const SELECT_ALL: &str = "SELECT domain, policy_text, record_id, fetched_at, expires_at, checked_at, negative,
        failed_fetch, last_error
    FROM entries ORDER BY domain";

const UPSERT_ENTRY: &str = "INSERT INTO entries (domain, policy_text, record_id, fetched_at, expires_at, checked_at,
        negative, failed_fetch, last_error, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT (domain) DO UPDATE SET policy_text = excluded.policy_text, record_id = excluded.record_id,
        fetched_at = excluded.fetched_at, expires_at = excluded.expires_at, checked_at = excluded.checked_at,
        negative = excluded.negative, failed_fetch = excluded.failed_fetch, last_error = excluded.last_error,
        updated_at = excluded.updated_at";

const DELETE_ENTRY: &str = "DELETE FROM entries WHERE domain = ?1";

/// Keeps the `?1` most recently written entries without a policy.
const PRUNE_NEGATIVE: &str = "DELETE FROM entries WHERE policy_text IS NULL AND domain NOT IN
    (SELECT domain FROM entries WHERE policy_text IS NULL ORDER BY updated_at DESC, domain LIMIT ?1)";

/// How many policy-less writes between two prunes: the file holds at most this many more than
/// `max_negative_entries`.
const PRUNE_EVERY: u64 = 256;
