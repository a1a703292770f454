//! `libmtasts`: the C ABI of the mta-sts resolver, for C programs and for Exim's `${dlfunc}`.
//!
//! This crate holds no MTA-STS logic. Every exported function checks its arguments, calls the
//! core crate [`mta_sts`] and converts the result; the header `include/mtasts.h` is generated
//! from these sources by cbindgen (see `ffi/cbindgen.toml`). The modules follow the sections of
//! the header:
//!
//! | module | header section |
//! |---|---|
//! | [`version`] | `MTASTS_VERSION_*`, `mtasts_version()` |
//! | [`error`] | `mtasts_result`, `mtasts_strerror()`, `mtasts_last_error()` |
//! | [`resolver`] | `mtasts_resolver` (shared, `Arc`) |
//! | [`policy`] | `mtasts_policy` (owned by the caller, `Box`) |
//! | [`exim`] | `mta_sts_lookup()`, `mta_sts_policy()`, `mta_sts_mx_allowed()` for `${dlfunc}` |
//! | `boundary` | nothing: the panic boundary and the argument guards |
//!
//! Process model (see `../shared/reference/mta-integration.md` §1.3): the library starts no
//! threads, holds no lock between calls, and is usable after `fork()`; every function is
//! thread-safe. Panics never cross the boundary: the release profile keeps `panic = "unwind"`
//! so that they can be caught.

#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
// The Rust names of exported types are their C names, as in the header.
#![allow(non_camel_case_types)]
// The safety contract of every exported function is its C documentation, which the header
// carries: pointer arguments are NULL or valid as stated, strings are NUL-terminated, handles
// come from this library and are not yet freed.
#![allow(clippy::missing_safety_doc)]

// In the order of the header (cbindgen keeps the order it parses; ffi/rustfmt.toml keeps this
// order).
#[macro_use]
mod boundary;
pub mod version;
pub mod error;
pub mod resolver;
pub mod policy;
pub mod exim;
