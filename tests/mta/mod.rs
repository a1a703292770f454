//! Debian MTA packages unpacked without installing them, shared by the tests that run real MTAs
//! (`tests/serve_mta.rs`, `tests/exim.rs`; include with `mod mta;`).
//!
//! The MTAs conflict with each other as packages and must never replace the machine's own, so
//! each package is fetched with `apt-get download` and unpacked with `dpkg-deb -x` into one tree,
//! `target/tmp/mta/root`, once (`mta-integration.md` §5). That needs root and the Debian archive;
//! without them the tests print `SKIP` and pass. `MTA_STS_MTA_ROOT` names another (or a
//! pre-filled) directory; `MTA_STS_SKIP_MTA_TESTS=1` skips on purpose.
//!
//! Each package leaves a marker in `root/.unpacked/`, so that test binaries asking for different
//! packages share the tree and unpack only what is missing. A lock file keeps two test
//! processes from unpacking at the same time.
#![allow(dead_code)]

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The unpacked packages.
pub struct Unpacked {
    /// The tree every package was unpacked into (`usr/sbin/...` below it).
    pub root: PathBuf,
}

impl Unpacked {
    /// `root` joined with `relative`.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// The directories of the tree that hold shared libraries, for `LD_LIBRARY_PATH` or an
    /// ld.so cache: `extra` (relative to the root), then `usr/lib`, then each
    /// `usr/lib/<triplet>` and `lib/<triplet>`.
    pub fn library_dirs(&self, extra: &[&str]) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = extra.iter().map(|d| self.root.join(d)).collect();
        dirs.push(self.root.join("usr/lib"));
        for lib in ["usr/lib", "lib"] {
            if let Ok(entries) = std::fs::read_dir(self.root.join(lib)) {
                dirs.extend(
                    entries.flatten().map(|e| e.path()).filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
                );
            }
        }
        dirs
    }

    /// The shared libraries `ldd` cannot find for `program` (relative to the root) with
    /// `library_path` as `LD_LIBRARY_PATH` ("" for the system's loader paths only): one
    /// `libx.so.1 => not found` line each.
    pub fn missing_libraries(&self, program: &str, library_path: &str) -> Vec<String> {
        let out = Command::new("ldd").arg(self.root.join(program)).env("LD_LIBRARY_PATH", library_path).output();
        match out {
            Ok(out) => String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("not found"))
                .map(|l| l.trim().to_owned())
                .collect(),
            Err(e) => vec![format!("ldd: {e}")],
        }
    }
}

/// Makes sure `packages` are unpacked, downloading and unpacking the missing ones; returns the
/// tree, or why it cannot be had (the caller prints it as a skip).
pub fn unpack(packages: &[&str]) -> Result<Unpacked, String> {
    if let Some(why) = skip_requested() {
        return Err(why);
    }
    let base = std::env::var_os("MTA_STS_MTA_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("mta"));
    let root = base.join("root");
    let markers = root.join(".unpacked");
    let missing = |packages: &[&str]| -> Vec<String> {
        packages.iter().filter(|p| !markers.join(p).exists()).map(|p| (*p).to_owned()).collect()
    };
    if missing(packages).is_empty() {
        return Ok(Unpacked { root });
    }
    if !is_root() {
        return Err(format!(
            "the Debian packages are not unpacked in {} and only root can fetch them (apt-get download {})",
            root.display(),
            missing(packages).join(" ")
        ));
    }
    std::fs::create_dir_all(&markers).map_err(|e| format!("cannot create {}: {e}", markers.display()))?;
    let lock = File::create(base.join("lock")).map_err(|e| format!("cannot create the lock file: {e}"))?;
    lock.lock().map_err(|e| format!("cannot lock {}: {e}", base.join("lock").display()))?;
    // Another process may have unpacked them while this one waited for the lock.
    let todo = missing(packages);
    if todo.is_empty() {
        return Ok(Unpacked { root });
    }
    let debs = base.join("debs").join(format!("{}", std::process::id()));
    std::fs::create_dir_all(&debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    let result = download_and_unpack(&todo, &debs, &root, &markers);
    let _ = std::fs::remove_dir_all(&debs);
    result.map(|()| Unpacked { root })
}

fn download_and_unpack(todo: &[String], debs: &Path, root: &Path, markers: &Path) -> Result<(), String> {
    let download =
        || run_quiet(Command::new("timeout").args(["300", "apt-get", "download"]).args(todo).current_dir(debs));
    if let Err(first) = download() {
        // A fresh machine has no package lists yet, and old lists name versions the archive
        // no longer has.
        let _ = writeln!(std::io::stderr(), "mta: apt-get download failed ({first}); running apt-get update");
        run_quiet(Command::new("timeout").args(["300", "apt-get", "update"]))?;
        download()?;
    }
    for entry in std::fs::read_dir(debs).map_err(|e| e.to_string())? {
        let deb = entry.map_err(|e| e.to_string())?.path();
        if deb.extension().is_some_and(|e| e == "deb") {
            run_quiet(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root))?;
        }
    }
    for package in todo {
        std::fs::write(markers.join(package), "").map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Runs `cmd` with its output captured; an error names the command and the last line it wrote
/// to stderr.
pub fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("{:?} failed ({}): {}", cmd.get_program(), out.status, stderr.lines().last().unwrap_or("")))
    }
}

/// Why the MTA tests are switched off, if `MTA_STS_SKIP_MTA_TESTS` says so.
pub fn skip_requested() -> Option<String> {
    std::env::var_os("MTA_STS_SKIP_MTA_TESTS")
        .filter(|v| !v.is_empty() && v != "0")
        .map(|_| "MTA_STS_SKIP_MTA_TESTS is set".to_owned())
}

/// Whether this process runs as root (effective uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

/// Says why a test did not run, on the real standard error: the test harness captures
/// `eprintln!` of passing tests, and a skip must show in CI's log.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}
