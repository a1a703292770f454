//! A sandbox for running Debian's Exim (heavy) without installing it: each test runs again as a
//! child process in new network and mount namespaces (`unshare --net --mount`), where it owns
//! the loopback interface (so that its servers can bind ports 25 and 53 on 127.0.0.0/8) and
//! changes files for itself alone:
//! - `/etc/resolv.conf` points at 127.0.0.1, where a test can run its DNS server;
//! - `/etc/passwd` and `/etc/group` gain the `Debian-exim` account that Exim's binary insists
//!   on (`mta-integration.md` §1.6), unless the machine has one;
//! - `/etc/ld.so.cache` also names the unpacked libraries Exim needs and the machine lacks
//!   (libmariadb3, libidn12, libspf2-2). An ld.so cache, unlike `LD_LIBRARY_PATH`, survives
//!   Exim purging its environment and re-executing its set-uid binary for each delivery.
//!
//! Outside (root, the Debian archive), the test unpacks the packages (`tests/mta/`), checks that
//! the library is built, then waits for its child and fails with the child's output. Without
//! root, the archive or namespaces it prints `SKIP` and passes. Nothing on the machine changes
//! but `target/tmp/mta`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::pki::TempDir;
use crate::mta;

/// What Exim needs from Debian: the heavy daemon (the only build with `${dlfunc}`), its base
/// and configuration packages as `mta-integration.md` §5 lists them, and the three libraries
/// a standard bookworm image lacks.
const PACKAGES: [&str; 6] =
    ["exim4-daemon-heavy", "exim4-base", "exim4-config", "libmariadb3", "libidn12", "libspf2-2"];

/// The Exim binary in the unpacked tree.
const EXIM: &str = "usr/sbin/exim4";

/// Set in the child: the name of the test it runs.
const INSIDE: &str = "MTA_STS_EXIM_SANDBOX";
/// Set in the child: the unpacked tree and the built library.
const ROOT_VAR: &str = "MTA_STS_EXIM_ROOT";
const LIB_VAR: &str = "MTA_STS_EXIM_LIB";

/// How long the child may take; the whole suite must stay under five minutes.
const CHILD_TIMEOUT: Duration = Duration::from_secs(240);

/// The `mta-sts` binary of this build.
pub const MTA_STS_BIN: &str = env!("CARGO_BIN_EXE_mta-sts");

/// The test's view inside the namespaces.
pub struct Sandbox {
    /// The Exim binary (set-uid root, as packaged).
    pub exim: PathBuf,
    /// libmtasts.so and the mta-sts binary, linked or copied into the work space so that the
    /// Exim user can read them wherever the build tree is.
    pub lib: PathBuf,
    pub helper: PathBuf,
    /// Scratch space, removed at the end.
    pub work: TempDir,
    /// Exim's user and group ids.
    pub uid: u32,
    pub gid: u32,
}

/// Runs the test `name` of `module` (`module_path!()`) inside the sandbox: returns the sandbox
/// when called in the child, `None` in the parent (after the child passed, or after printing
/// why the test is skipped).
pub fn enter(module: &str, name: &str) -> Option<Sandbox> {
    // The harness names tests by their path without the crate: "delivery::dlfunc_...".
    let test = match module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{name}"),
        None => name.to_owned(),
    };
    let test = test.as_str();
    if std::env::var(INSIDE).as_deref() == Ok(test) {
        return Some(Sandbox::set_up().unwrap_or_else(|e| panic!("setting up the sandbox: {e}")));
    }
    match prepared() {
        Ok(root) => run_child(test, root, built_library()),
        Err(why) => mta::skip(test, why),
    }
    None
}

/// The unpacked tree, once per test binary, or why the test cannot run here.
fn prepared() -> Result<&'static Path, &'static str> {
    static PREPARED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PREPARED
        .get_or_init(|| {
            if mta::skip_requested().is_none() && !mta::is_root() {
                return Err("needs root (namespaces, ports 25 and 53, Exim's own account)".to_owned());
            }
            let unpacked = mta::unpack(&PACKAGES)?;
            if !unpacked.path(EXIM).exists() {
                return Err(format!("{} is missing", unpacked.path(EXIM).display()));
            }
            let probe = Command::new("unshare").args(["--net", "--mount", "true"]).output();
            match probe {
                Ok(out) if out.status.success() => {}
                Ok(out) => return Err(format!("no namespaces: {}", String::from_utf8_lossy(&out.stderr).trim())),
                Err(e) => return Err(format!("no unshare: {e}")),
            }
            Ok(unpacked.root)
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(String::as_str)
}

/// The library, once per test binary. A library that cannot be built fails the test.
fn built_library() -> &'static Path {
    static LIBRARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match LIBRARY.get_or_init(library) {
        Ok(lib) => lib,
        Err(e) => panic!("no libmtasts.so: {e}"),
    }
}

/// libmtasts.so of this build profile: the one `cargo test --workspace` builds for the C
/// tests (`deps/`, which `cargo test` does not copy up), or the one `cargo build -p mtasts`
/// leaves in the profile directory, whichever is newer; built first if both are missing or
/// older than a source file (`cargo test --test exim` alone builds neither).
fn library() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/<profile>/deps/exim-<hash>
    let deps = exe.parent().ok_or("no deps directory")?.to_owned();
    let profile_dir = deps.parent().ok_or("no target directory")?.to_owned();
    let newest_lib = || {
        [deps.join("libmtasts.so"), profile_dir.join("libmtasts.so")]
            .into_iter()
            .filter_map(|lib| Some((std::fs::metadata(&lib).and_then(|m| m.modified()).ok()?, lib)))
            .max()
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let newest_source =
        ["src", "ffi/src", "Cargo.lock", "ffi/Cargo.toml"].iter().filter_map(|p| newest(&manifest.join(p))).max();
    if newest_lib().is_none_or(|(built, _)| Some(built) < newest_source) {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "-p", "mtasts"]).current_dir(manifest);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cargo.arg("--release");
        }
        let _ = writeln!(std::io::stderr(), "exim: building libmtasts.so (cargo build -p mtasts)");
        mta::run_quiet(&mut cargo)?;
    }
    newest_lib()
        .map(|(_, lib)| lib)
        .ok_or_else(|| format!("cargo build -p mtasts made no libmtasts.so in {}", profile_dir.display()))
}

/// The newest modification time of a file, or of the files below a directory.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path).ok()?.flatten().filter_map(|e| newest(&e.path())).max()
}

/// Runs this test binary again, filtered to `test`, in new namespaces; fails with its output.
fn run_child(test: &str, root: &Path, lib: &Path) {
    let start = Instant::now();
    let exe = std::env::current_exe().expect("test executable");
    let mut child = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, test)
        .env(ROOT_VAR, root)
        .env(LIB_VAR, lib)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start unshare");
    let collect = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = r.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = collect(Box::new(child.stdout.take().unwrap()));
    let stderr = collect(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the sandbox") {
            break Some(status);
        }
        if start.elapsed() > CHILD_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    let secs = start.elapsed().as_secs_f64();
    match status {
        Some(status) if status.success() && !stdout.contains("test result: ok. 1 passed") => {
            panic!("{test} did not run in its sandbox:\n{stdout}\n{stderr}")
        }
        Some(status) if status.success() => {
            if std::env::var_os("MTA_STS_TEST_ECHO").is_some() {
                let _ = writeln!(std::io::stderr(), "{stdout}{stderr}");
            }
            let _ = writeln!(std::io::stderr(), "exim: {test} passed in {secs:.1} s (own network namespace)");
        }
        Some(status) => panic!("{test} failed in its sandbox ({status}, {secs:.1} s):\n{stdout}\n{stderr}"),
        None => panic!("{test} timed out in its sandbox after {secs:.1} s:\n{stdout}\n{stderr}"),
    }
}

impl Sandbox {
    /// Sets up the namespaces the child runs in.
    fn set_up() -> Result<Sandbox, String> {
        let root = PathBuf::from(std::env::var_os(ROOT_VAR).ok_or("no unpacked tree given")?);
        let built_lib = PathBuf::from(std::env::var_os(LIB_VAR).ok_or("no library given")?);
        loopback_up()?;
        let work = TempDir::new("mta-sts-exim");
        let (uid, gid) = exim_account(&work)?;
        std::fs::write(work.join("resolv.conf"), "nameserver 127.0.0.1\noptions timeout:2 attempts:2\n")
            .map_err(|e| e.to_string())?;
        bind(&work.join("resolv.conf"), Path::new("/etc/resolv.conf"))?;
        let exim = root.join(EXIM);
        libraries(&root, &work)?;
        let bin = work.join("bin");
        std::fs::create_dir(&bin).map_err(|e| e.to_string())?;
        let lib = bin.join("libmtasts.so");
        let helper = bin.join("mta-sts");
        link_or_copy(&built_lib, &lib)?;
        link_or_copy(Path::new(MTA_STS_BIN), &helper)?;
        for dir in [work.path(), &bin] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        }
        Ok(Sandbox { exim, lib, helper, work, uid, gid })
    }

    /// A directory in the work space owned by the Exim user (spool, logs, cache).
    pub fn exim_dir(&self, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(self.uid), Some(self.gid)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        dir
    }

    /// Writes an Exim configuration file as Exim wants it: owned by root, mode 0644.
    pub fn config(&self, name: &str, text: &str) -> PathBuf {
        let path = self.work.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        path
    }

    /// `exim -C config`, with the mta-sts configuration in the environment (the test
    /// configurations keep `MTA_STS_CONFIG`).
    pub fn command(&self, config: &Path, mta_sts_config: Option<&Path>) -> Command {
        let mut cmd = Command::new(&self.exim);
        cmd.arg("-C").arg(config).stdin(Stdio::null());
        match mta_sts_config {
            Some(path) => cmd.env("MTA_STS_CONFIG", path),
            None => cmd.env_remove("MTA_STS_CONFIG"),
        };
        cmd
    }

    /// Runs `cmd` with `input` on its standard input.
    pub fn run(cmd: &mut Command, input: &str) -> Output {
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

/// A hard link to `from` at `to` (a rebuild writes a new file, so the link keeps this one), or a
/// copy where the two are on different file systems.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

/// Brings `lo` up in the new network namespace (it starts down), which routes all of
/// 127.0.0.0/8.
fn loopback_up() -> Result<(), String> {
    // SAFETY: a socket used for two ioctls on a zeroed ifreq that names "lo", then closed.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let mut result = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if result == 0 {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            result = libc::ioctl(fd, libc::SIOCSIFFLAGS, &req);
        }
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if result != 0 {
            return Err(format!("bringing lo up: {error}"));
        }
    }
    Ok(())
}

/// `mount --bind from to`, in this mount namespace only.
fn bind(from: &Path, to: &Path) -> Result<(), String> {
    mta::run_quiet(Command::new("mount").arg("--bind").arg(from).arg(to))
}

/// Exim's account: the machine's `Debian-exim` if it has one, else one added to private copies
/// of /etc/passwd and /etc/group with ids that are free in both.
fn exim_account(work: &TempDir) -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let group = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
    let field = |line: &str, n: usize| line.split(':').nth(n).and_then(|f| f.parse::<u32>().ok());
    if let Some(line) = passwd.lines().find(|l| l.starts_with("Debian-exim:")) {
        let (uid, gid) = (field(line, 2), field(line, 3));
        return uid.zip(gid).ok_or_else(|| format!("unreadable passwd line {line:?}"));
    }
    let used: Vec<u32> = passwd.lines().chain(group.lines()).filter_map(|l| field(l, 2)).collect();
    let id = (900..999).find(|id| !used.contains(id)).ok_or("no free system id")?;
    let entries = [
        ("passwd", format!("{passwd}Debian-exim:x:{id}:{id}:Exim (mta-sts tests):/nonexistent:/usr/sbin/nologin\n")),
        ("group", format!("{group}Debian-exim:x:{id}:\n")),
    ];
    for (name, text) in entries {
        let copy = work.join(name);
        std::fs::write(&copy, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
        bind(&copy, &Path::new("/etc").join(name))?;
    }
    Ok((id, id))
}

/// Makes the libraries Exim lacks on this machine loadable: a directory of links to them in
/// the unpacked tree, and an ld.so cache of the system's directories plus that one, mounted
/// over /etc/ld.so.cache.
fn libraries(root: &Path, work: &TempDir) -> Result<(), String> {
    let unpacked = mta::Unpacked { root: root.to_owned() };
    let missing = unpacked.missing_libraries(EXIM, "");
    if missing.is_empty() {
        return Ok(());
    }
    let dirs = unpacked.library_dirs(&[]);
    let links = work.join("lib");
    std::fs::create_dir(&links).map_err(|e| e.to_string())?;
    for line in &missing {
        let soname = line.split_whitespace().next().unwrap_or_default();
        let found = dirs.iter().map(|d| d.join(soname)).find(|p| p.exists());
        let found = found.ok_or_else(|| format!("{soname} is neither installed nor unpacked"))?;
        std::os::unix::fs::symlink(&found, links.join(soname)).map_err(|e| e.to_string())?;
    }
    let conf = work.join("ld.so.conf");
    std::fs::write(&conf, format!("include /etc/ld.so.conf\n{}\n", links.display())).map_err(|e| e.to_string())?;
    let cache = work.join("ld.so.cache");
    mta::run_quiet(Command::new("ldconfig").arg("-X").arg("-C").arg(&cache).arg("-f").arg(&conf))?;
    bind(&cache, Path::new("/etc/ld.so.cache"))?;
    let still = unpacked.missing_libraries(EXIM, "");
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("{EXIM} still lacks {}", still.join(", ")))
    }
}
