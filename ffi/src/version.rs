//! The library version, at compile time (header macros) and at run time (functions), so that a
//! program can check that it runs with the library it was compiled against:
//!
//! ```c
//! if (mtasts_version_number() / 1000 != MTASTS_VERSION_NUMBER / 1000) abort();
//! ```
//!
//! The constants are literals because cbindgen copies only literals into the header, and the
//! string macro `MTASTS_VERSION` is written in `ffi/cbindgen.toml` because it copies no strings;
//! a unit test below and `ffi/tests/ffi/header.rs` check them all against `ffi/Cargo.toml`.

use std::ffi::{c_char, CStr};

/// The major version of the header. Part of `MTASTS_VERSION_NUMBER`.
pub const MTASTS_VERSION_MAJOR: u32 = 0;

/// The minor version of the header. Part of `MTASTS_VERSION_NUMBER`.
pub const MTASTS_VERSION_MINOR: u32 = 1;

/// The patch version of the header. Part of `MTASTS_VERSION_NUMBER`.
pub const MTASTS_VERSION_PATCH: u32 = 0;

/// The version of the header as one number: MAJOR * 1000000 + MINOR * 1000 + PATCH (0.1.0 is
/// 1000, 1.2.3 is 1002003), as `mtasts_version_number()` returns it at run time.
pub const MTASTS_VERSION_NUMBER: u32 = 1000;

/// The version of the library, from Cargo.toml, NUL-terminated.
const VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("CARGO_PKG_VERSION holds a NUL"),
};

/// Returns the version of the library that is running, `"MAJOR.MINOR.PATCH"`, equal to
/// `MTASTS_VERSION` when the header and the library match.
///
/// The string is static: never freed, never changed. Thread-safe.
#[no_mangle]
pub extern "C" fn mtasts_version() -> *const c_char {
    ffi_panic_boundary! { VERSION.as_ptr() }
}

/// Returns the version of the library that is running as MAJOR * 1000000 + MINOR * 1000 +
/// PATCH, equal to `MTASTS_VERSION_NUMBER` when the header and the library match.
///
/// Thread-safe.
#[no_mangle]
pub extern "C" fn mtasts_version_number() -> u32 {
    ffi_panic_boundary! { MTASTS_VERSION_NUMBER }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_cargo_toml() {
        let part = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(MTASTS_VERSION_MAJOR, part(env!("CARGO_PKG_VERSION_MAJOR")));
        assert_eq!(MTASTS_VERSION_MINOR, part(env!("CARGO_PKG_VERSION_MINOR")));
        assert_eq!(MTASTS_VERSION_PATCH, part(env!("CARGO_PKG_VERSION_PATCH")));
        assert_eq!(
            MTASTS_VERSION_NUMBER,
            MTASTS_VERSION_MAJOR * 1_000_000 + MTASTS_VERSION_MINOR * 1_000 + MTASTS_VERSION_PATCH
        );
        assert_eq!(unsafe { CStr::from_ptr(mtasts_version()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
        assert_eq!(mtasts_version_number(), MTASTS_VERSION_NUMBER);
    }
}
