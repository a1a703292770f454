//! Result codes, their static descriptions, and the per-thread message of the last failure.
//!
//! The first four codes mirror the statuses of the core one to one
//! ([`mta_sts::render::Status`]: a policy applies, no policy, temporary failure, bad input);
//! the others report a call that could not run. Values are part of the ABI: they are never
//! renumbered, and a retired value stays reserved in a comment here.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::fmt::Display;

use mta_sts::render::Status;

use crate::boundary::{Fallback, StrError};

/// The result of a library call. In C this is a `uint32_t`; the constants below are its values.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mtasts_result {
    /// Success. For a lookup: a policy applies (its mode may be `none`).
    MTASTS_OK = 0,
    /// No policy applies: deliver as if the domain had no MTA-STS. For an MX check: the policy
    /// has mode `none`, which neither allows nor forbids any host.
    MTASTS_NO_POLICY = 1,
    /// The lookup failed temporarily and no usable policy is cached: defer the message.
    MTASTS_TEMPFAIL = 2,
    /// A string argument is not a valid domain or host name, is longer than 1024 bytes, or is
    /// not UTF-8.
    MTASTS_INVALID_INPUT = 3,
    /// A required pointer argument is NULL.
    MTASTS_NULL_PARAMETER = 4,
    /// The configuration file cannot be read or parsed, or the resolver cannot be built from it
    /// (no usable DNS configuration).
    MTASTS_CONFIG = 5,
    /// The library caught an internal error (a Rust panic). The call had no effect; the
    /// library remains usable.
    MTASTS_PANIC = 6,
}

impl mtasts_result {
    /// Every code, in numeric order.
    const ALL: [Self; 7] = [
        Self::MTASTS_OK,
        Self::MTASTS_NO_POLICY,
        Self::MTASTS_TEMPFAIL,
        Self::MTASTS_INVALID_INPUT,
        Self::MTASTS_NULL_PARAMETER,
        Self::MTASTS_CONFIG,
        Self::MTASTS_PANIC,
    ];

    /// The code of a core status.
    pub(crate) fn of(status: Status) -> Self {
        match status {
            Status::Policy => Self::MTASTS_OK,
            Status::NoPolicy => Self::MTASTS_NO_POLICY,
            Status::Tempfail => Self::MTASTS_TEMPFAIL,
            Status::Error => Self::MTASTS_INVALID_INPUT,
        }
    }

    /// The code with this value, if any.
    fn from_u32(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| *c as u32 == code)
    }

    /// The static description returned by `mtasts_strerror`.
    fn description(self) -> &'static std::ffi::CStr {
        match self {
            Self::MTASTS_OK => c"success",
            Self::MTASTS_NO_POLICY => c"no MTA-STS policy applies",
            Self::MTASTS_TEMPFAIL => c"temporary failure, try again later",
            Self::MTASTS_INVALID_INPUT => c"invalid input",
            Self::MTASTS_NULL_PARAMETER => c"a required pointer argument is NULL",
            Self::MTASTS_CONFIG => c"the configuration cannot be loaded",
            Self::MTASTS_PANIC => c"internal error in the library",
        }
    }

    /// Returns `MTASTS_OK` and clears this thread's last error.
    pub(crate) fn succeeded() -> Self {
        set_last_error(None);
        Self::MTASTS_OK
    }

    /// Returns `self`, a failure, and makes `message` this thread's last error.
    pub(crate) fn failed(self, message: impl Display) -> Self {
        set_last_error(Some(message.to_string()));
        self
    }
}

impl Fallback for mtasts_result {
    fn panicked(message: String) -> Self {
        Self::MTASTS_PANIC.failed(message)
    }

    fn null_parameter(name: &str) -> Self {
        Self::MTASTS_NULL_PARAMETER.failed(StrError::Null.describe(name))
    }

    fn bad_string(name: &str, error: StrError) -> Self {
        Self::MTASTS_INVALID_INPUT.failed(error.describe(name))
    }
}

/// Returns a static, NUL-terminated English description of a result code.
///
/// Returns "unknown result code" for a value that is not an `mtasts_result`. The string is
/// never freed and never changes. Thread-safe.
#[no_mangle]
pub extern "C" fn mtasts_strerror(code: u32) -> *const c_char {
    ffi_panic_boundary! {
        match mtasts_result::from_u32(code) {
            Some(result) => result.description().as_ptr(),
            None => c"unknown result code".as_ptr(),
        }
    }
}

/// Returns why the most recent call on this thread that returned an `mtasts_result` other than
/// `MTASTS_OK` failed: one line of printable ASCII, such as
/// `example.com: temporary failure (dns: _mta-sts.example.com.: timed out)`.
///
/// Returns NULL if that call returned `MTASTS_OK`, or if no such call was made on this thread.
/// Only functions returning `mtasts_result` set or clear the message. The string belongs to the
/// library and stays valid until the next call on the same thread of a function returning
/// `mtasts_result`; copy it to keep it. Each thread has its own message, so this is
/// thread-safe.
#[no_mangle]
pub extern "C" fn mtasts_last_error() -> *const c_char {
    ffi_panic_boundary! {
        LAST_ERROR.with(|e| e.borrow().as_ref().map_or(std::ptr::null(), |m| m.as_ptr()))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<Option<CString>> = const { RefCell::new(None) };
}

fn set_last_error(message: Option<String>) {
    // A message never holds a NUL (core errors are escaped); were one there, an empty message
    // is better than none.
    let message = message.map(|m| CString::new(m).unwrap_or_default());
    // During thread teardown the slot may be gone; there is nobody left to read it.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = message);
}

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use super::*;

    #[test]
    fn every_code_has_a_description_and_round_trips() {
        for (n, code) in mtasts_result::ALL.into_iter().enumerate() {
            assert_eq!(code as u32, n as u32);
            assert_eq!(mtasts_result::from_u32(n as u32), Some(code));
            let text = unsafe { CStr::from_ptr(mtasts_strerror(n as u32)) };
            assert!(!text.is_empty());
        }
        let unknown = unsafe { CStr::from_ptr(mtasts_strerror(7)) };
        assert_eq!(unknown, c"unknown result code");
    }

    #[test]
    fn last_error_is_per_call_and_per_thread() {
        assert_eq!(mtasts_result::MTASTS_TEMPFAIL.failed("x: temporary failure"), mtasts_result::MTASTS_TEMPFAIL);
        assert_eq!(unsafe { CStr::from_ptr(mtasts_last_error()) }, c"x: temporary failure");
        std::thread::spawn(|| assert!(mtasts_last_error().is_null())).join().unwrap();
        assert_eq!(mtasts_result::succeeded(), mtasts_result::MTASTS_OK);
        assert!(mtasts_last_error().is_null());
    }

    #[test]
    fn a_caught_panic_is_the_panic_code_with_its_message() {
        fn body() -> mtasts_result {
            ffi_panic_boundary! { panic!("boom") }
        }
        assert_eq!(body(), mtasts_result::MTASTS_PANIC);
        let message = unsafe { CStr::from_ptr(mtasts_last_error()) }.to_str().unwrap();
        assert!(message.starts_with("panic at ffi/src/error.rs:") && message.ends_with(": boom"), "{message}");
    }
}
