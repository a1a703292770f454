//! The panic boundary and the argument guards every `extern "C"` function goes through.
//!
//! - [`ffi_panic_boundary!`] wraps each body in `catch_unwind` and, after a panic, returns a
//!   fallback chosen by the return type ([`Fallback`]): `MTASTS_PANIC` for result codes, NULL,
//!   0, false or `MTASTS_MODE_NONE` otherwise. Modelled on `ffi_panic_boundary!` and
//!   `PanicOrDefault` in rustls-ffi's `librustls/src/panic.rs`.
//! - The guard macros (`try_ref!`, `try_out!`, `try_str!`, `try_path!`) return early with the
//!   `null_parameter` or `bad_string` fallback instead of dereferencing NULL or reading an
//!   unbounded, non-UTF-8 string. Modelled on `try_ref_from_ptr!` in `librustls/src/ffi.rs`.
//! - [`Castable`] states for each handle type whether C holds a `Box` (owned by the caller) or
//!   an `Arc` (shared), and the conversions rebuild exactly that (rustls-ffi's `Castable`).
//!
//! The first call into the library installs a panic hook: a panic inside a library call prints
//! nothing (Exim's stderr is `/dev/null` in the daemon and part of the output under `-be`) and
//! becomes one line of text, `panic at <file>:<line>: <message>`, that the caller receives as
//! the error message. Panics outside library calls still go to the hook installed before.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Once};

/// Longest string argument accepted (domain, host), in bytes. Domains are at most 253 bytes;
/// the margin lets the core name what is wrong with a long one instead of a bare length error.
pub(crate) const MAX_STRING: usize = 1024;

/// Longest path argument accepted, in bytes: Linux's `PATH_MAX` including the NUL.
pub(crate) const MAX_PATH: usize = 4096;

/// Longest panic description kept, in characters.
const MAX_PANIC_TEXT: usize = 200;

/// Runs `$body` inside `catch_unwind`; returns its value, or the [`Fallback::panicked`] value
/// of the function's return type after a panic. `return` inside the body returns from the
/// function.
macro_rules! ffi_panic_boundary {
    ( $($body:tt)* ) => {
        match $crate::boundary::catch(move || { $($body)* }) {
            Ok(ret) => ret,
            Err(message) => $crate::boundary::Fallback::panicked(message),
        }
    };
}

/// `&RustType` of a handle argument, or returns the `null_parameter` fallback if it is NULL.
macro_rules! try_ref {
    ( $ptr:ident ) => {
        // SAFETY: the header requires handle arguments to be NULL or a live handle of this
        // type returned by this library and not yet freed.
        match unsafe { $crate::boundary::try_from($ptr) } {
            Some(r) => r,
            None => return $crate::boundary::Fallback::null_parameter(stringify!($ptr)),
        }
    };
}

/// `&mut T` of an out-parameter, or returns the `null_parameter` fallback if it is NULL.
macro_rules! try_out {
    ( $ptr:ident ) => {
        // SAFETY: the header requires out-parameters to be NULL or valid for one write.
        match unsafe { $ptr.as_mut() } {
            Some(r) => r,
            None => return $crate::boundary::Fallback::null_parameter(stringify!($ptr)),
        }
    };
}

/// `&str` of a C string argument at most [`MAX_STRING`] bytes long, or returns the
/// `null_parameter` or `bad_string` fallback.
macro_rules! try_str {
    ( $ptr:ident ) => {
        // SAFETY: the header requires string arguments to be NULL or NUL-terminated; at most
        // MAX_STRING + 1 bytes are read.
        match unsafe { $crate::boundary::c_str($ptr, $crate::boundary::MAX_STRING) } {
            Ok(s) => s,
            Err($crate::boundary::StrError::Null) => {
                return $crate::boundary::Fallback::null_parameter(stringify!($ptr))
            }
            Err(e) => return $crate::boundary::Fallback::bad_string(stringify!($ptr), e),
        }
    };
}

/// `Option<&Path>` of an optional path argument (NULL is `None`) at most [`MAX_PATH`] bytes
/// long, or returns the `bad_string` fallback. Paths need not be UTF-8.
macro_rules! try_path {
    ( $ptr:ident ) => {
        // SAFETY: as for try_str!; at most MAX_PATH + 1 bytes are read.
        match unsafe { $crate::boundary::c_path($ptr) } {
            Ok(p) => p,
            Err(e) => return $crate::boundary::Fallback::bad_string(stringify!($ptr), e),
        }
    };
}

/// What a function returns when it cannot run its body. Every return type of an exported
/// function implements it.
pub(crate) trait Fallback {
    /// After a panic, described by `message`, was caught.
    fn panicked(message: String) -> Self;
    /// When the required pointer argument `name` is NULL.
    fn null_parameter(name: &str) -> Self;
    /// When the string argument `name` is too long or not UTF-8.
    fn bad_string(name: &str, error: StrError) -> Self;
}

impl<T> Fallback for *const T {
    fn panicked(_: String) -> Self {
        std::ptr::null()
    }
    fn null_parameter(_: &str) -> Self {
        std::ptr::null()
    }
    fn bad_string(_: &str, _: StrError) -> Self {
        std::ptr::null()
    }
}

impl Fallback for () {
    fn panicked(_: String) -> Self {}
    fn null_parameter(_: &str) -> Self {}
    fn bad_string(_: &str, _: StrError) -> Self {}
}

macro_rules! zero_fallback {
    ( $($t:ty),* ) => {
        $(impl Fallback for $t {
            fn panicked(_: String) -> Self {
                0
            }
            fn null_parameter(_: &str) -> Self {
                0
            }
            fn bad_string(_: &str, _: StrError) -> Self {
                0
            }
        })*
    };
}

zero_fallback!(u32, u64, usize);

/// Why a C string argument was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrError {
    /// The pointer is NULL.
    Null,
    /// No NUL within the limit.
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The bytes are not UTF-8.
    NotUtf8,
}

impl StrError {
    /// One line naming the argument, for error messages.
    pub(crate) fn describe(self, name: &str) -> String {
        match self {
            Self::Null => format!("{name} is NULL"),
            Self::TooLong { limit } => format!("{name} is longer than {limit} bytes"),
            Self::NotUtf8 => format!("{name} is not UTF-8"),
        }
    }
}

/// Whether a handle type is owned by the caller (`Box`) or shared (`Arc`).
pub(crate) trait Castable {
    /// [`OwnershipBox`] or [`OwnershipArc`].
    type Ownership;
    /// The Rust value behind the opaque C type.
    type RustType;
}

/// The C side owns the value alone; `_free` drops it.
pub(crate) struct OwnershipBox;

/// The C side holds one strong reference; `_free` releases it.
pub(crate) struct OwnershipArc;

/// Moves `value` to the heap and hands ownership to C.
pub(crate) fn to_boxed_mut_ptr<C>(value: C::RustType) -> *mut C
where
    C: Castable<Ownership = OwnershipBox>,
{
    Box::into_raw(Box::new(value)).cast()
}

/// Wraps `value` in an `Arc` whose one strong reference C holds.
pub(crate) fn to_arc_const_ptr<C>(value: C::RustType) -> *const C
where
    C: Castable<Ownership = OwnershipArc>,
{
    Arc::into_raw(Arc::new(value)).cast()
}

/// Drops a value made by [`to_boxed_mut_ptr`]; NULL is a no-op.
///
/// # Safety
///
/// `ptr` is NULL or came from [`to_boxed_mut_ptr`] for `C` and was not freed before.
pub(crate) unsafe fn free_box<C>(ptr: *mut C)
where
    C: Castable<Ownership = OwnershipBox>,
{
    if !ptr.is_null() {
        // SAFETY: per this function's contract, a Box<C::RustType> made by to_boxed_mut_ptr.
        drop(unsafe { Box::from_raw(ptr.cast::<C::RustType>()) });
    }
}

/// Releases the reference made by [`to_arc_const_ptr`]; NULL is a no-op.
///
/// # Safety
///
/// `ptr` is NULL or came from [`to_arc_const_ptr`] for `C` and was not freed before.
pub(crate) unsafe fn free_arc<C>(ptr: *const C)
where
    C: Castable<Ownership = OwnershipArc>,
{
    if !ptr.is_null() {
        // SAFETY: per this function's contract, the strong reference of Arc::into_raw.
        drop(unsafe { Arc::from_raw(ptr.cast::<C::RustType>()) });
    }
}

/// Borrows the value behind a handle of either ownership; `None` for NULL.
///
/// # Safety
///
/// `ptr` is NULL or a live handle of type `C` made by this module, not freed during `'a`.
pub(crate) unsafe fn try_from<'a, C: Castable>(ptr: *const C) -> Option<&'a C::RustType> {
    // SAFETY: both constructors point at a C::RustType (Arc::into_raw points at the value).
    unsafe { ptr.cast::<C::RustType>().as_ref() }
}

/// Reads a NUL-terminated UTF-8 string of at most `limit` bytes.
///
/// # Safety
///
/// `ptr` is NULL or points at a NUL-terminated string valid for `'a`, or at least at
/// `limit + 1` readable bytes.
pub(crate) unsafe fn c_str<'a>(ptr: *const c_char, limit: usize) -> Result<&'a str, StrError> {
    // SAFETY: forwarded contract.
    let bytes = unsafe { c_bytes(ptr, limit) }?;
    std::str::from_utf8(bytes).map_err(|_| StrError::NotUtf8)
}

/// Reads an optional path: NULL is `None`, any bytes but NUL are accepted.
///
/// # Safety
///
/// As for [`c_str`] with `limit` [`MAX_PATH`].
pub(crate) unsafe fn c_path<'a>(ptr: *const c_char) -> Result<Option<&'a Path>, StrError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded contract.
    let bytes = unsafe { c_bytes(ptr, MAX_PATH) }?;
    Ok(Some(Path::new(OsStr::from_bytes(bytes))))
}

/// The bytes before the NUL, reading at most `limit + 1` bytes.
///
/// # Safety
///
/// As for [`c_str`].
unsafe fn c_bytes<'a>(ptr: *const c_char, limit: usize) -> Result<&'a [u8], StrError> {
    if ptr.is_null() {
        return Err(StrError::Null);
    }
    let start = ptr.cast::<u8>();
    for len in 0..=limit {
        // SAFETY: every byte before index `len` was non-NUL, so the string goes on at least
        // to `len`, which is readable per the contract.
        if unsafe { *start.add(len) } == 0 {
            // SAFETY: `len` readable bytes precede the NUL; the caller keeps them for 'a.
            return Ok(unsafe { std::slice::from_raw_parts(start, len) });
        }
    }
    Err(StrError::TooLong { limit })
}

thread_local! {
    /// How many library calls this thread is inside (0 or 1 in practice).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The description of the last panic caught on this thread, set by the hook.
    static PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, catching any panic; `Err` holds a one-line description of it. Used by
/// [`ffi_panic_boundary!`] and by the Exim entry points, which need the message for the yield.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install_panic_hook();
    let _inside = Inside::enter();
    // AssertUnwindSafe: after a panic nothing the closure touched is used again; the core's
    // shared state recovers from poisoned locks.
    panic::catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        PANIC.try_with(|p| p.borrow_mut().take()).ok().flatten().unwrap_or_else(|| describe(None, payload.as_ref()))
    })
}

/// Marks this thread as inside a library call until dropped, unwinding included.
struct Inside;

impl Inside {
    fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get() + 1));
        Self
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Installs the hook once per process: panics inside library calls are recorded silently,
/// others go to the previous hook.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if DEPTH.try_with(Cell::get).unwrap_or(0) > 0 {
                let line = describe(info.location().map(|l| (l.file(), l.line())), info.payload());
                // During thread teardown the slot may be gone; the boundary then describes the
                // payload itself.
                let _ = PANIC.try_with(|p| *p.borrow_mut() = Some(line));
            } else {
                previous(info);
            }
        }));
    });
}

/// `panic at <file>:<line>: <message>` in printable ASCII, truncated: the text can end up in an
/// MTA's log or Exim's yield.
fn describe(location: Option<(&str, u32)>, payload: &(dyn Any + Send)) -> String {
    let message = match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s.as_str(),
        _ => "(no message)",
    };
    let text = match location {
        Some((file, line)) => format!("panic at {file}:{line}: {message}"),
        None => format!("panic: {message}"),
    };
    text.chars().take(MAX_PANIC_TEXT).map(|c| if (' '..='~').contains(&c) { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_bounded_and_checked() {
        let ok = c"example.com";
        assert_eq!(unsafe { c_str(ok.as_ptr(), 11) }, Ok("example.com"));
        assert_eq!(unsafe { c_str(ok.as_ptr(), 10) }, Err(StrError::TooLong { limit: 10 }));
        assert_eq!(unsafe { c_str(std::ptr::null(), 10) }, Err(StrError::Null));
        let bad = c"\xffexample";
        assert_eq!(unsafe { c_str(bad.as_ptr(), 100) }, Err(StrError::NotUtf8));
        assert_eq!(unsafe { c_path(std::ptr::null()) }, Ok(None));
        assert_eq!(unsafe { c_path(bad.as_ptr()) }.unwrap().unwrap().as_os_str().as_bytes(), b"\xffexample");
    }

    #[test]
    fn a_panic_becomes_one_printable_line_and_the_fallback() {
        let r: Result<(), String> = catch(|| panic!("bad\nthing \u{e9}"));
        let message = r.unwrap_err();
        assert!(message.starts_with("panic at ffi/src/boundary.rs:"), "{message}");
        assert!(message.ends_with(": bad?thing ?"), "{message}");
        fn boxed() -> *const u8 {
            ffi_panic_boundary! { panic!("x") }
        }
        assert!(boxed().is_null());
        fn count() -> usize {
            ffi_panic_boundary! { panic!("{}", String::from("formatted")) }
        }
        assert_eq!(count(), 0);
        // The depth counter is back to zero after unwinding.
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}
