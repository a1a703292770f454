//! Exim `${dlfunc}` entry points: `mta_sts_lookup`, `mta_sts_policy` and `mta_sts_mx_allowed`.
//!
//! Two lookups, one answer each way:
//! - `mta_sts_lookup` is the reference's contract (`../shared/reference/mta-integration.md`
//!   §1.4, §1.7): the line only for an active policy, a forced failure for "no policy" and a
//!   failure for a temporary one, so that the lookup alone can sit in the `mta_sts` router's
//!   `address_data`. Exim drops the message of a forced failure, so a router cannot log why a
//!   domain has no policy.
//! - `mta_sts_policy` always answers `OK` with the exim-dialect line
//!   ([`mta_sts::render::exim`]), `mode=none error="..."` and `mode=defer error="..."`
//!   included, as the `${run}` helper and the daemon's line mode do. `exim/mta-sts-dlfunc.conf`
//!   uses it, so that all three shipped configurations share the routers after the lookup.
//!
//! Both go through the same argument checks, panic boundary, resolver and remembered lines;
//! they differ only in how an answer becomes a reply ([`lookup`], [`policy`]).
//!
//! Exim calls `int fn(uschar **yield, int argc, uschar *argv[])` (`local_scan.h`; see
//! `../shared/reference/mta-integration.md` §1.1-1.4). On `OK` it copies `*yield` into the
//! expansion; on any other code it keeps the pointer as the error message after the call
//! returns. So the text lives in a per-thread buffer owned by the library, replaced by the next
//! call on the same thread.
//!
//! The entry points share one resolver per process, built on first use from the default
//! configuration search (`MTA_STS_CONFIG`, then `/etc/mta-sts/mta-sts.toml`, then defaults).
//! Exim loads the library once and then forks for each connection and delivery: a call that
//! finds a different process id builds a new resolver and keeps the inherited one, unused and
//! never dropped, so that nothing the parent owns (a SQLite connection above all) is touched
//! from the child. `getpid()` is a system call that would cost a tenth of the cached lookup, so
//! the process id is read only after a `pthread_atfork` child handler has counted a fork.
//!
//! The Exim line is a pure function of the core's answer, so each thread remembers the line of
//! the last answer per domain and renders again only when the answer differs; the yield then
//! points at the remembered line. Rendering costs more than the cached lookup itself.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_uchar, CString};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};

use mta_sts::render::{self, Answer, Status};
use mta_sts::{Config, Domain, Error, Resolver};

use crate::boundary::{self, StrError, MAX_STRING};

/// Exim's `OK`: `*yield` is inserted into the expansion.
pub const MTASTS_EXIM_OK: c_int = 0;

/// Exim's `DEFER`: handled like `MTASTS_EXIM_ERROR` by `${dlfunc}`. Never returned.
pub const MTASTS_EXIM_DEFER: c_int = 1;

/// Exim's `FAIL`: the expansion fails (not forced) with `*yield` as the message; a router's
/// `address_data` then defers the address. No panic-log line.
pub const MTASTS_EXIM_FAIL: c_int = 2;

/// Exim's `ERROR`: like `MTASTS_EXIM_FAIL`, plus a line in Exim's panic log. Returned only for
/// faults an administrator must fix: wrong arguments in the Exim configuration, a broken
/// mta-sts configuration file, an internal error of the library.
pub const MTASTS_EXIM_ERROR: c_int = 3;

/// Exim's `FAIL_FORCED`: a forced expansion failure with `*yield` as the message; a router's
/// `address_data` then declines and the next router runs.
pub const MTASTS_EXIM_FAIL_FORCED: c_int = 4;

/// The Exim lookup: `${dlfunc{/path/libmtasts.so}{mta_sts_lookup}{$domain}}`, in the
/// `address_data` of the MTA-STS router itself (the reference pattern). The shipped
/// configuration uses `mta_sts_policy()` instead, which also explains answers without a policy.
///
/// Takes one argument, the recipient domain. Returns:
/// - `MTASTS_EXIM_OK` when an `enforce` or `testing` policy applies, with the Exim line as the
///   yield: `mode=enforce ignore="!^mail[.]example[.]com$ : *" match="^(mail[.]example[.]com)$"
///   max_age=604800 id="20160831085700Z" mx="mail.example.com"`, for `${extract}`;
/// - `MTASTS_EXIM_FAIL_FORCED` when no policy applies, the policy has mode `none`, or the
///   argument is not a domain that can have a policy (an address literal, an invalid name);
/// - `MTASTS_EXIM_FAIL` for a temporary failure with no usable cached policy (the address is
///   deferred), and for an argument longer than 1024 bytes or not UTF-8;
/// - `MTASTS_EXIM_ERROR` when `argc` is not 1 or `argv` or an argument is NULL, when the
///   configuration cannot be loaded, and after an internal error.
///
/// The yield is set on every return except when `yield` itself is NULL (then
/// `MTASTS_EXIM_ERROR`). It is one line of printable ASCII that belongs to the library and
/// stays valid until the next call of `mta_sts_lookup()`, `mta_sts_policy()` or
/// `mta_sts_mx_allowed()` on the same thread. The arguments are borrowed for the call only.
/// Thread-safe; see the process notes at the top of this header.
#[no_mangle]
pub unsafe extern "C" fn mta_sts_lookup(r#yield: *mut *mut c_uchar, argc: c_int, argv: *mut *mut c_uchar) -> c_int {
    // SAFETY: forwarded from Exim's ABI, which this function's contract restates.
    unsafe { entry("mta_sts_lookup", &["domain"], r#yield, argc, argv, lookup, fail_input) }
}

/// The Exim policy line: `${dlfunc{/path/libmtasts.so}{mta_sts_policy}{$domain}}`, in the
/// `address_data` of a lookup router that declines, for the routers after it to read with
/// `${extract}`.
///
/// Takes one argument, the recipient domain. Returns `MTASTS_EXIM_OK` with the line of
/// `mta-sts query --format exim` (one line for `${extract}`, the key `mode` first) for every
/// answer about the domain:
/// - an `enforce` or `testing` policy: `mode=enforce ignore="!^mail[.]example[.]com$ : *"
///   match="^(mail[.]example[.]com)$" max_age=604800 id="20160831085700Z"
///   mx="mail.example.com"`, as `mta_sts_lookup()` yields it;
/// - a policy with mode `none`: `mode=none max_age=86400 id="..."`;
/// - no policy: `mode=none`, plus `error="..."` with the reason when there is more to say than
///   "no record" (a policy host that cannot be reached and nothing cached, a broken policy);
/// - a temporary failure with no usable cached policy: `mode=defer error="..."`; the address
///   must be deferred;
/// - an argument that is not a domain that can have a policy (an address literal, an invalid
///   name, bytes that are not UTF-8, more than 1024 bytes): `mode=error error="..."`. For
///   routing this is "no policy": such a name cannot publish one, and deferring it would hold
///   the mail until it bounces. The shipped routers log it and deliver as usual.
///   (`mta_sts_lookup()` fails for bad bytes instead; here they are message data like any other
///   invalid name, as in the daemon's line mode.)
///
/// Returns `MTASTS_EXIM_ERROR` only for faults an administrator must fix: `argc` not 1, `argv`
/// or the argument NULL, a configuration that cannot be loaded, an internal error. Never
/// `MTASTS_EXIM_FAIL` or `MTASTS_EXIM_FAIL_FORCED`.
///
/// Yield, ownership and thread-safety as for `mta_sts_lookup()`.
#[no_mangle]
pub unsafe extern "C" fn mta_sts_policy(r#yield: *mut *mut c_uchar, argc: c_int, argv: *mut *mut c_uchar) -> c_int {
    // SAFETY: forwarded from Exim's ABI, which this function's contract restates.
    unsafe { entry("mta_sts_policy", &["domain"], r#yield, argc, argv, policy, error_line) }
}

/// The Exim MX check: `${dlfunc{/path/libmtasts.so}{mta_sts_mx_allowed}{$domain}{$host}}`.
///
/// Takes two arguments, the recipient domain and an MX host name. Looks up the domain's policy
/// as `mta_sts_lookup()` does (from the cache when it can) and returns:
/// - `MTASTS_EXIM_OK` with the yield `yes` or `no` when an `enforce` or `testing` policy
///   applies: whether it allows the host;
/// - `MTASTS_EXIM_FAIL_FORCED` when no policy applies or the policy has mode `none`;
/// - `MTASTS_EXIM_FAIL` and `MTASTS_EXIM_ERROR` as for `mta_sts_lookup()`, the host name
///   being checked like the domain.
///
/// Yield, ownership and thread-safety as for `mta_sts_lookup()`.
#[no_mangle]
pub unsafe extern "C" fn mta_sts_mx_allowed(r#yield: *mut *mut c_uchar, argc: c_int, argv: *mut *mut c_uchar) -> c_int {
    // SAFETY: forwarded from Exim's ABI, which this function's contract restates.
    unsafe { entry("mta_sts_mx_allowed", &["domain", "mx host"], r#yield, argc, argv, mx_allowed, fail_input) }
}

/// What an entry point answers.
enum Reply {
    /// `OK` with this yield.
    Ok(String),
    /// `OK` with the line remembered for this thread (see [`remembered_line`]).
    OkRemembered(*const c_char),
    /// `FAIL` with this message.
    Fail(String),
    /// `FAIL_FORCED` with this message.
    FailForced(String),
    /// `ERROR` with this message.
    Error(String),
}

impl Reply {
    fn code(&self) -> c_int {
        match self {
            Self::Ok(_) | Self::OkRemembered(_) => MTASTS_EXIM_OK,
            Self::Fail(_) => MTASTS_EXIM_FAIL,
            Self::FailForced(_) => MTASTS_EXIM_FAIL_FORCED,
            Self::Error(_) => MTASTS_EXIM_ERROR,
        }
    }

    /// Makes this the yield: a pointer that stays valid until the next call on this thread.
    fn into_yield(self) -> *mut c_uchar {
        match self {
            Self::OkRemembered(line) => line.cast::<c_uchar>().cast_mut(),
            Self::Ok(t) | Self::Fail(t) | Self::FailForced(t) | Self::Error(t) => set_yield(t),
        }
    }
}

/// The resolver of this process, or the `ERROR` reply of entry point `name` when the
/// configuration cannot be loaded.
fn resolver(name: &str) -> Result<Arc<Resolver>, Reply> {
    process_resolver().map_err(|e| Reply::Error(format!("{name}: {e}")))
}

/// The answer about `domain`, asked about the MX host `mx` if any: invalid when `domain` is not
/// a name that can have a policy.
fn answer(resolver: &Resolver, domain: &str, mx: Option<Domain>) -> Answer {
    match Domain::parse(domain) {
        Ok(domain) => Answer::Decided { decision: resolver.lookup(&domain), mx },
        Err(e) => Answer::Invalid(Error::Domain(e)),
    }
}

/// `mta_sts_lookup` after the arguments were checked.
fn lookup(args: &[&str]) -> Reply {
    let answer = match resolver("mta_sts_lookup") {
        Ok(resolver) => answer(&resolver, args[0], None),
        Err(reply) => return reply,
    };
    let active = matches!(&answer, Answer::Decided { decision, .. } if decision.active_policy().is_some());
    match answer.status() {
        Status::Policy if active => remembered_line(answer),
        // A policy with mode none is, for routing, no policy: the router declines and the
        // ordinary router delivers.
        // So is a domain that cannot have a policy (an address literal, a name our validation
        // refuses): deferring it would hold the mail forever, and RFC 8461 §3.4 gives such
        // destinations no policy.
        Status::Policy | Status::NoPolicy | Status::Error => Reply::FailForced(message(&answer)),
        // FAIL, not DEFER or ERROR: those add a panic-log line on every call (§1.4), and a
        // temporary failure is expected, not a fault.
        Status::Tempfail => Reply::Fail(message(&answer)),
    }
}

/// `mta_sts_policy` after the arguments were checked: the line of every answer. Lines of
/// answers about a domain are remembered like those of `mta_sts_lookup`, and shared with it (the
/// same answer renders to the same line); the line of an invalid name is rendered each time.
fn policy(args: &[&str]) -> Reply {
    match resolver("mta_sts_policy") {
        Ok(resolver) => remembered_line(answer(&resolver, args[0], None)),
        Err(reply) => reply,
    }
}

/// `mta_sts_mx_allowed` after the arguments were checked.
fn mx_allowed(args: &[&str]) -> Reply {
    let resolver = match resolver("mta_sts_mx_allowed") {
        Ok(resolver) => resolver,
        Err(reply) => return reply,
    };
    let host = match Domain::parse(args[1]) {
        Ok(host) => host,
        Err(e) => return Reply::Fail(format!("mta-sts: error: mx host: {e}")),
    };
    let answer = answer(&resolver, args[0], Some(host));
    match answer.status() {
        Status::Policy | Status::NoPolicy => match answer.mx_allowed() {
            Some(true) => Reply::Ok("yes".to_owned()),
            Some(false) => Reply::Ok("no".to_owned()),
            None => Reply::FailForced(message(&answer)),
        },
        Status::Tempfail | Status::Error => Reply::Fail(message(&answer)),
    }
}

/// The message of an answer that is not `OK`: the core's text line, such as
/// `mta-sts: example.com: temporary failure (dns: _mta-sts.example.com.: timed out)`.
fn message(answer: &Answer) -> String {
    format!("mta-sts: {}", render::text::render(answer))
}

/// The reply of `mta_sts_lookup` and `mta_sts_mx_allowed` to an argument that is not
/// acceptable text (`reason`): `FAIL`, so the address is deferred.
fn fail_input(name: &str, reason: String) -> Reply {
    Reply::Fail(format!("{name}: {reason}"))
}

/// The reply of `mta_sts_policy` to an argument that is not acceptable text (`reason`): the line
/// of an invalid name, `mode=error error="..."`.
fn error_line(_name: &str, reason: String) -> Reply {
    Reply::Ok(format!("mode=error error={}", render::exim::quote(&reason)))
}

/// Checks the arguments, runs `f` inside the panic boundary and sets the yield. An argument
/// that is not acceptable text (over-long, not UTF-8) is bad bytes from the message (a tainted
/// `$domain`), not a configuration fault: `bad_input` answers it, given the entry point's name
/// and the reason.
///
/// # Safety
///
/// Exim's ABI: `r#yield` is NULL or writable; `argv` is NULL or holds `argc` pointers, each NULL
/// or a NUL-terminated string, all valid for the call.
unsafe fn entry(
    name: &str,
    params: &[&str],
    r#yield: *mut *mut c_uchar,
    argc: c_int,
    argv: *mut *mut c_uchar,
    f: fn(&[&str]) -> Reply,
    bad_input: fn(&str, String) -> Reply,
) -> c_int {
    if r#yield.is_null() {
        // Nowhere to put a message; Exim always passes a pointer.
        return MTASTS_EXIM_ERROR;
    }
    let reply = boundary::catch(|| {
        // SAFETY: forwarded contract.
        match unsafe { arguments(name, params, argc, argv) } {
            Ok(args) => f(&args),
            Err(Refused::Call(message)) => Reply::Error(message),
            Err(Refused::Input(reason)) => bad_input(name, reason),
        }
    })
    .unwrap_or_else(|panic| Reply::Error(format!("{name}: internal error: {panic}")));
    let code = reply.code();
    // SAFETY: checked non-NULL above; writable per the contract.
    unsafe { *r#yield = reply.into_yield() };
    code
}

/// Why the arguments of a call were refused.
enum Refused {
    /// The call itself is wrong (argument count, NULL pointers): the Exim configuration, or
    /// whatever calls the entry point, must be fixed. The message names the entry point.
    Call(String),
    /// An argument is not acceptable text: more than [`MAX_STRING`] bytes, or not UTF-8. The
    /// reason names the argument, not the entry point.
    Input(String),
}

/// The `argc` arguments as text, or why they are refused.
///
/// # Safety
///
/// As for [`entry`].
unsafe fn arguments<'a>(
    name: &str,
    params: &[&str],
    argc: c_int,
    argv: *mut *mut c_uchar,
) -> Result<Vec<&'a str>, Refused> {
    let usage = || format!("{name}: expected {} argument(s) ({}), got {argc}", params.len(), params.join(", "));
    if usize::try_from(argc).ok() != Some(params.len()) {
        return Err(Refused::Call(usage()));
    }
    if argv.is_null() {
        return Err(Refused::Call(format!("{name}: argv is NULL")));
    }
    let mut args = Vec::with_capacity(params.len());
    for (i, param) in params.iter().enumerate() {
        // SAFETY: argv holds argc == params.len() pointers.
        let arg = unsafe { *argv.add(i) }.cast::<c_char>().cast_const();
        // SAFETY: each argument is NULL or NUL-terminated and lives for the call.
        match unsafe { boundary::c_str(arg, MAX_STRING) } {
            Ok(text) => args.push(text),
            Err(StrError::Null) => return Err(Refused::Call(format!("{name}: {param} argument is NULL"))),
            Err(e) => return Err(Refused::Input(e.describe(&format!("{param} argument")))),
        }
    }
    Ok(args)
}

thread_local! {
    /// The text `*yield` points at after a failure, until the next call on this thread.
    static YIELD: RefCell<Option<CString>> = const { RefCell::new(None) };
    /// Per domain, the last answer and its Exim line; `*yield` may point at a line until the
    /// next call on this thread.
    static LINES: RefCell<HashMap<Domain, (Answer, CString)>> = RefCell::new(HashMap::new());
}

/// How many domains a thread remembers lines for before it starts afresh. An Exim delivery
/// process sees a handful; the bound only stops a long-lived multi-threaded caller from
/// growing without end.
const MAX_LINES: usize = 1024;

/// The Exim line of `answer`: the remembered one if this thread rendered the same answer for the
/// domain before, else newly rendered and remembered (an invalid name's line is only rendered).
fn remembered_line(answer: Answer) -> Reply {
    let Answer::Decided { decision, .. } = &answer else {
        return Reply::Ok(render::exim::render(&answer));
    };
    let domain = decision.domain.clone();
    let remembered = LINES.try_with(|lines| {
        let mut lines = lines.borrow_mut();
        if let Some((seen, line)) = lines.get(&domain) {
            if *seen == answer {
                return line.as_ptr();
            }
        }
        if lines.len() >= MAX_LINES {
            lines.clear();
        }
        // Lines are rendered from validated names and quoted text: never a NUL.
        let line = CString::new(render::exim::render(&answer)).unwrap_or_default();
        let ptr = line.as_ptr();
        lines.insert(domain, (answer.clone(), line));
        ptr
    });
    match remembered {
        Ok(line) => Reply::OkRemembered(line),
        // Only during thread teardown.
        Err(_) => Reply::Ok(render::exim::render(&answer)),
    }
}

/// Stores `text` as this thread's yield and returns a pointer to it.
fn set_yield(text: String) -> *mut c_uchar {
    // Yields are rendered from validated names and escaped errors: never a NUL.
    let text = CString::new(text).unwrap_or_default();
    YIELD
        .try_with(|y| {
            let mut y = y.borrow_mut();
            y.insert(text).as_ptr().cast::<c_uchar>().cast_mut()
        })
        // Only during thread teardown: a static message instead.
        .unwrap_or_else(|_| c"mta-sts: thread is exiting".as_ptr().cast::<c_uchar>().cast_mut())
}

/// The resolver of this process, and those inherited from ancestors over `fork()`.
struct Process {
    /// [`FORKS`] when the process id was last read.
    forks: u64,
    pid: u32,
    resolver: Option<Arc<Resolver>>,
    inherited: Vec<Arc<Resolver>>,
}

static PROCESS: Mutex<Process> = Mutex::new(Process { forks: 0, pid: 0, resolver: None, inherited: Vec::new() });

/// How many times this process or its ancestors forked since the library was first used,
/// counted in the child by the `pthread_atfork` handler.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Whether the handler is registered; if not, the process id is read on every call.
static COUNTING_FORKS: AtomicBool = AtomicBool::new(false);

/// The `pthread_atfork` child handler. Async-signal-safe: one atomic increment.
extern "C" fn count_fork() {
    FORKS.fetch_add(1, Ordering::SeqCst);
}

/// This process's resolver, built on first use in each process. A configuration that cannot be
/// loaded is tried again on the next call, so fixing the file needs no restart.
fn process_resolver() -> Result<Arc<Resolver>, String> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: count_fork is a valid handler for the life of the process: Exim never
        // unloads the library, and glibc drops the handlers of an unloaded object.
        let registered = unsafe { libc::pthread_atfork(None, None, Some(count_fork)) } == 0;
        COUNTING_FORKS.store(registered, Ordering::SeqCst);
    });
    // A panic never happens while the lock is held in a way that breaks `Process`.
    let mut process = PROCESS.lock().unwrap_or_else(PoisonError::into_inner);
    let forks = FORKS.load(Ordering::SeqCst);
    if process.resolver.is_none() || process.forks != forks || !COUNTING_FORKS.load(Ordering::Relaxed) {
        let pid = std::process::id();
        if process.pid != pid {
            // A forked child: the parent's resolver stays reachable but is never used or
            // dropped.
            if let Some(inherited) = process.resolver.take() {
                process.inherited.push(inherited);
            }
            process.pid = pid;
        }
        process.forks = forks;
    }
    if let Some(resolver) = &process.resolver {
        return Ok(resolver.clone());
    }
    let config = Config::load(None).map_err(|e| e.to_string())?;
    let resolver = Arc::new(Resolver::builder(config).build().map_err(|e| e.to_string())?);
    process.resolver = Some(resolver.clone());
    Ok(resolver)
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use mta_sts::store::CachedPolicy;
    use mta_sts::{Decision, Outcome, Policy, Source};

    use super::*;

    fn policy_answer(id: &str) -> Answer {
        let policy = Policy::parse(b"version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 86400\n").unwrap();
        let cached = CachedPolicy { policy, record_id: id.to_owned(), fetched_at: 0, expires_at: 86400 };
        let outcome = Outcome::Policy { policy: Arc::new(cached), source: Source::Cache, warning: None };
        Answer::Decided { decision: Decision { domain: Domain::parse("example.com").unwrap(), outcome }, mx: None }
    }

    fn line(reply: Reply) -> String {
        match reply {
            Reply::OkRemembered(ptr) => unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_owned(),
            _ => panic!("not a remembered line"),
        }
    }

    #[test]
    fn a_remembered_line_is_rendered_again_when_the_answer_changes() {
        let first = line(remembered_line(policy_answer("1")));
        assert_eq!(first, render::exim::render(&policy_answer("1")));
        assert!(first.contains(" id=\"1\""), "{first}");
        let second = line(remembered_line(policy_answer("2")));
        assert!(second.contains(" id=\"2\""), "{second}");
        assert_eq!(line(remembered_line(policy_answer("1"))), first);
    }

    #[test]
    fn a_panic_is_an_error_with_a_one_line_yield() {
        let mut arg = *b"example.com\0";
        let mut argv = [arg.as_mut_ptr()];
        let mut y: *mut c_uchar = std::ptr::null_mut();
        let code = unsafe {
            entry("mta_sts_test", &["domain"], &mut y, 1, argv.as_mut_ptr(), |_| panic!("boom\nagain"), fail_input)
        };
        assert_eq!(code, MTASTS_EXIM_ERROR);
        let text = unsafe { CStr::from_ptr(y.cast()) }.to_str().unwrap();
        assert!(text.starts_with("mta_sts_test: internal error: panic at ffi/src/exim.rs:"), "{text}");
        assert!(text.ends_with(": boom?again"), "{text}");
        // The library is still usable: the same entry answers normally afterwards.
        let code = unsafe { entry("mta_sts_test", &["domain"], &mut y, 1, argv.as_mut_ptr(), echo, fail_input) };
        assert_eq!(code, MTASTS_EXIM_OK);
        assert_eq!(unsafe { CStr::from_ptr(y.cast()) }, c"example.com");
    }

    fn echo(args: &[&str]) -> Reply {
        Reply::Ok(args[0].to_owned())
    }

    #[test]
    fn bad_bytes_are_input_and_a_wrong_call_is_an_error_whatever_the_entry_point() {
        let mut arg = *b"\xff.example\0";
        let mut argv = [arg.as_mut_ptr()];
        let mut y: *mut c_uchar = std::ptr::null_mut();
        let text = |y: *mut c_uchar| unsafe { CStr::from_ptr(y.cast()) }.to_str().unwrap().to_owned();
        let code = unsafe { entry("mta_sts_test", &["domain"], &mut y, 1, argv.as_mut_ptr(), echo, fail_input) };
        assert_eq!((code, text(y).as_str()), (MTASTS_EXIM_FAIL, "mta_sts_test: domain argument is not UTF-8"));
        let code = unsafe { entry("mta_sts_test", &["domain"], &mut y, 1, argv.as_mut_ptr(), echo, error_line) };
        assert_eq!((code, text(y).as_str()), (MTASTS_EXIM_OK, r#"mode=error error="domain argument is not UTF-8""#));
        for bad_input in [fail_input, error_line] {
            let code = unsafe { entry("mta_sts_test", &["domain"], &mut y, 2, argv.as_mut_ptr(), echo, bad_input) };
            assert_eq!(
                (code, text(y).as_str()),
                (MTASTS_EXIM_ERROR, "mta_sts_test: expected 1 argument(s) (domain), got 2")
            );
        }
    }
}
