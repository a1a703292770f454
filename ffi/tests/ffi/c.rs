//! The C programs of `tests/c/`, compiled with the system compiler (`$CC`, else `cc`) and the
//! header's warning flags, linked against the library cargo built for this test, and run
//! against the fixtures of [`crate::net`].
//!
//! Each program also runs under valgrind's memcheck when valgrind is installed (set
//! `MTASTS_VALGRIND=0` to skip): no error and no definitely lost byte allowed. In debug builds
//! the API and Exim programs run once more built with AddressSanitizer when the compiler
//! supports it. The fork and thread programs run at full size natively and at a reduced size
//! under valgrind, which is about fifty times slower.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::common::dns::Answer;
use crate::net::Net;

/// The flags every C program and the header compile with (style.md §4).
pub const WARNINGS: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"];

/// What a program is linked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// `libmtasts.so`, found through an rpath.
    Shared,
    /// `libmtasts.a` and the system libraries the Rust standard library needs.
    Static,
    /// `libmtasts.so`, with the program built with AddressSanitizer.
    Asan,
}

#[test]
fn api_program_covers_every_call_and_error_path() {
    let net = Net::start(0);
    let args = api_args(&net);
    let program = compile("api", Link::Shared);
    let ready = || net.dns.set("_mta-sts.warn.example", Answer::ServFail);
    expect_success("api", &run(&program, &args, &[], Runner::Native, Some(&ready)));
    if valgrind() {
        // A fresh DNS answer for warn.example: the program starts from the beginning.
        let net = Net::start(0);
        let args = api_args(&net);
        let ready = || net.dns.set("_mta-sts.warn.example", Answer::ServFail);
        expect_success("api under valgrind", &run(&program, &args, &[], Runner::Valgrind("api"), Some(&ready)));
    }
}

#[test]
fn api_program_links_against_the_static_library() {
    let net = Net::start(0);
    let args = api_args(&net);
    let program = compile("api", Link::Static);
    let ready = || net.dns.set("_mta-sts.warn.example", Answer::ServFail);
    expect_success("api (static)", &run(&program, &args, &[], Runner::Native, Some(&ready)));
}

#[test]
fn exim_entry_points_keep_exims_abi() {
    let net = Net::start(0);
    let config = net.config("mta-sts.toml", "");
    let args = [lib_dir().join("libmtasts.so").into_os_string(), config.into_os_string()];
    let program = compile("exim_abi", Link::Shared);
    expect_success("exim_abi", &run(&program, &args, &[], Runner::Native, None));
    if valgrind() {
        expect_success("exim_abi under valgrind", &run(&program, &args, &[], Runner::Valgrind("exim_abi"), None));
    }
}

#[test]
fn c_programs_pass_under_address_sanitizer() {
    if !cfg!(debug_assertions) || !asan_available() {
        eprintln!("skipped: AddressSanitizer runs in debug builds with a compiler that supports it");
        return;
    }
    let net = Net::start(0);
    let args = api_args(&net);
    let ready = || net.dns.set("_mta-sts.warn.example", Answer::ServFail);
    let api = compile("api", Link::Asan);
    expect_success("api (asan)", &run(&api, &args, &[], Runner::Native, Some(&ready)));
    let config = net.config("exim.toml", "");
    let args = [lib_dir().join("libmtasts.so").into_os_string(), config.into_os_string()];
    let exim = compile("exim_abi", Link::Asan);
    expect_success("exim_abi (asan)", &run(&exim, &args, &[], Runner::Native, None));
}

#[test]
fn forked_children_keep_using_the_library() {
    let net = Net::start(FORK_DOMAINS);
    let config = net.config("mta-sts.toml", "");
    run_fork(&config, "fork");
    // Every child fetched each policy itself, through each of the two interfaces (the
    // parent's resolver had only d000 cached, the Exim resolver is rebuilt in each child).
    let fetches = net.https.requests("mta-sts.d050.fork.example");
    assert!(fetches >= 2 * FORK_CHILDREN, "{fetches} fetches");
}

#[test]
fn forked_children_share_the_cache_file() {
    let net = Net::start(FORK_DOMAINS);
    let cache = net.dir.join("cache.db");
    let config = net.config("mta-sts.toml", &format!("path = \"{}\"", cache.display()));
    run_fork(&config, "fork-sqlite");
    assert!(cache.exists(), "no cache file at {}", cache.display());
    assert!(net.https.requests("mta-sts.d050.fork.example") >= 1);
}

const FORK_CHILDREN: usize = 8;
const FORK_DOMAINS: usize = 100;

/// Runs `fork` with `config`: full size natively, small under valgrind.
fn run_fork(config: &Path, name: &'static str) {
    let program = compile("fork", Link::Shared);
    let args = |children: usize, domains: usize| {
        [config.as_os_str().to_owned(), children.to_string().into(), domains.to_string().into()]
    };
    expect_success(name, &run(&program, &args(FORK_CHILDREN, FORK_DOMAINS), &[], Runner::Native, None));
    if valgrind() {
        expect_success(name, &run(&program, &args(2, 5), &[], Runner::Valgrind(name), None));
    }
}

#[test]
fn threads_share_resolvers_consistently() {
    let net = Net::start(0);
    let config = net.config("mta-sts.toml", "");
    let program = compile("threads", Link::Shared);
    let args = |threads: usize, rounds: usize| {
        [config.clone().into_os_string(), threads.to_string().into(), rounds.to_string().into()]
    };
    expect_success("threads", &run(&program, &args(8, 10_000), &[], Runner::Native, None));
    // One fetch per resolver: the C API's and the Exim entry points'.
    assert_eq!(net.https.requests("mta-sts.enforce.example"), 2);
    if valgrind() {
        expect_success("threads under valgrind", &run(&program, &args(8, 200), &[], Runner::Valgrind("threads"), None));
    }
}

/// The arguments of `api`: its four configuration files.
fn api_args(net: &Net) -> Vec<OsString> {
    vec![
        net.config("mta-sts.toml", "").into(),
        net.config("recheck.toml", "recheck_interval = \"0s\"").into(),
        net.write("bad.toml", "[dns]\nservers = \"not a list\"\n").into(),
        net.config_with_ca("bad-ca.toml", Path::new("/nonexistent/ca.pem"), "").into(),
    ]
}

/// How a program runs.
#[derive(Debug, Clone, Copy)]
enum Runner {
    Native,
    /// Under memcheck, with its log named after this.
    Valgrind(&'static str),
}

/// Runs `program` with `args` and extra environment `env`, feeding a line to its stdin after
/// it printed `READY` and `on_ready` ran.
fn run(program: &Path, args: &[OsString], env: &[(&str, &str)], runner: Runner, on_ready: Option<&dyn Fn()>) -> Output {
    let mut cmd = match runner {
        Runner::Native => Command::new(program),
        Runner::Valgrind(name) => {
            for old in valgrind_logs(name) {
                let _ = std::fs::remove_file(old);
            }
            let mut cmd = Command::new("valgrind");
            cmd.args([
                "--error-exitcode=1",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--show-leak-kinds=definite",
                "--track-origins=yes",
                "--gen-suppressions=all",
                "--num-callers=40",
            ])
            .arg(format!("--suppressions={}", c_dir().join("valgrind.supp").display()))
            .arg(format!("--log-file={}/{name}.valgrind.%p", out_dir().display()))
            .arg(program);
            cmd
        }
    };
    cmd.args(args).envs(env.iter().copied()).env_remove("MTA_STS_CONFIG");
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = Vec::new();
    if let Some(on_ready) = on_ready {
        let mut line = String::new();
        while stdout.read_line(&mut line).expect("read stdout") > 0 {
            let done = line.trim_end() == "READY";
            seen.extend_from_slice(line.as_bytes());
            line.clear();
            if done {
                on_ready();
                stdin.write_all(b"go\n").expect("write stdin");
                break;
            }
        }
    }
    drop(stdin);
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).expect("read stdout");
    seen.extend(rest);
    let mut out = child.wait_with_output().expect("wait");
    out.stdout = seen;
    eprintln!("{} ({runner:?}): {:.1} s", program.display(), started.elapsed().as_secs_f64());
    if let Runner::Valgrind(name) = runner {
        report_valgrind(name);
    }
    out
}

fn expect_success(what: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    eprint!("{stdout}");
}

/// Prints the summary of each valgrind log of `name` (one per process) and removes the logs.
fn report_valgrind(name: &str) {
    for log in valgrind_logs(name) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        for line in text
            .lines()
            .filter(|l| l.contains("ERROR SUMMARY") || l.contains("definitely lost") || l.contains("in use at exit"))
        {
            eprintln!("valgrind {name}: {line}");
        }
        if text.contains("ERROR SUMMARY: 0 errors") {
            let _ = std::fs::remove_file(&log);
        } else {
            eprintln!("valgrind {name}: full log kept in {}\n{text}", log.display());
        }
    }
}

/// The valgrind logs of `name`, one per process.
fn valgrind_logs(name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.valgrind.");
    let mut logs: Vec<PathBuf> = std::fs::read_dir(out_dir())
        .expect("read out dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)))
        .collect();
    logs.sort();
    logs
}

/// Compiles `tests/c/<name>.c` once per test run and returns the executable.
fn compile(name: &str, link: Link) -> PathBuf {
    static BUILT: Mutex<Vec<(String, Link, PathBuf)>> = Mutex::new(Vec::new());
    // Held while compiling, so that two tests never write one executable at once.
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, exe)) = built.iter().find(|(n, l, _)| n == name && *l == link) {
        return exe.clone();
    }
    let exe = compile_now(name, link);
    built.push((name.to_owned(), link, exe.clone()));
    exe
}

fn compile_now(name: &str, link: Link) -> PathBuf {
    let lib = lib_dir();
    let suffix = match link {
        Link::Shared => "",
        Link::Static => "-static",
        Link::Asan => "-asan",
    };
    let out = out_dir().join(format!("{name}{suffix}"));
    let mut cmd = Command::new(cc());
    cmd.args(WARNINGS).arg("-g").arg("-I").arg(include_dir()).arg("-I").arg(c_dir());
    if link == Link::Asan {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg(c_dir().join(format!("{name}.c"))).arg("-o").arg(&out);
    match link {
        Link::Shared | Link::Asan => {
            cmd.arg("-L").arg(&lib).arg("-lmtasts").arg(format!("-Wl,-rpath,{}", lib.display()));
        }
        // Exactly what the header's preamble promises is enough.
        Link::Static => {
            cmd.arg(lib.join("libmtasts.a")).args(["-lpthread", "-ldl", "-lm"]);
        }
    }
    cmd.args(["-pthread", "-ldl"]);
    let result = cmd.output().unwrap_or_else(|e| panic!("cannot run the C compiler {:?}: {e}", cc()));
    assert!(
        result.status.success(),
        "compiling {name}.c failed:\n{:?}\n{}",
        cmd,
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// The C compiler: `$CC`, else `cc`.
pub fn cc() -> OsString {
    std::env::var_os("CC").unwrap_or_else(|| "cc".into())
}

/// Where cargo put the library this test was built against: the test executable sits in
/// `target/<profile>/deps`, next to `libmtasts.so` and `libmtasts.a`.
pub fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps directory").to_owned();
    assert!(deps.join("libmtasts.so").exists(), "no libmtasts.so next to {}", exe.display());
    deps
}

pub fn include_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../include")
}

fn c_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/c")
}

/// A directory for the executables and valgrind logs.
pub fn out_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("c-tests");
        std::fs::create_dir_all(&dir).expect("create c-tests dir");
        dir
    })
    .clone()
}

/// Whether the C programs also run under valgrind.
fn valgrind() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    *PRESENT.get_or_init(|| {
        std::env::var_os("MTASTS_VALGRIND").is_none_or(|v| v != "0")
            && Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success())
    })
}

/// Whether the compiler can build and run an AddressSanitizer program.
fn asan_available() -> bool {
    let src = out_dir().join("asan-probe.c");
    let exe = out_dir().join("asan-probe");
    std::fs::write(&src, "int main(void) { return 0; }\n").expect("write probe");
    Command::new(cc()).args(["-fsanitize=address", "-o"]).arg(&exe).arg(&src).status().is_ok_and(|s| s.success())
        && Command::new(&exe).status().is_ok_and(|s| s.success())
}
