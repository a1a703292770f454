//! `mtasts_resolver`: a shared handle on the core [`Resolver`] and its cache.
//!
//! C holds one strong reference of an `Arc<Resolver>` ([`OwnershipArc`]): the resolver is
//! read-only for C, shared by every thread that uses it, and fork-safe as it stands (the core
//! starts no threads, opens a fresh DNS runtime and HTTPS connection per lookup, and reopens the
//! SQLite cache in a forked child).

use std::ffi::c_char;

use mta_sts::render::Answer;
use mta_sts::{Config, Domain, Error, Resolver};

use crate::boundary::{self, Castable, OwnershipArc};
use crate::error::mtasts_result;
use crate::policy::{mtasts_policy, Policy};

/// A resolver with its configuration and its policy cache. Opaque; shared between threads.
pub struct mtasts_resolver {
    _private: [u8; 0],
}

impl Castable for mtasts_resolver {
    type Ownership = OwnershipArc;
    type RustType = Resolver;
}

impl mtasts_resolver {
    /// Creates a resolver from a configuration file.
    ///
    /// `config_path` names the TOML configuration file (the one the `mta-sts` command reads).
    /// NULL means the default search: the file named by the environment variable
    /// `MTA_STS_CONFIG` if set and not empty, else `/etc/mta-sts/mta-sts.toml` if it exists,
    /// else the built-in defaults.
    ///
    /// Returns `MTASTS_OK` and writes a new resolver to `*resolver_out`. Returns
    /// `MTASTS_CONFIG` if the file cannot be read or parsed or the resolver cannot be built
    /// from it (no usable DNS configuration), `MTASTS_INVALID_INPUT` if `config_path` is longer
    /// than 4096 bytes, and `MTASTS_NULL_PARAMETER` if `resolver_out` is NULL; `*resolver_out`
    /// is then left alone and `mtasts_last_error()` says why. Two problems are not errors here:
    /// the trust store (`fetch.ca_file` included) is read at the first fetch, whose failure is
    /// that lookup's reason; a cache file that cannot be opened is logged and the cache kept in
    /// memory only.
    ///
    /// `config_path` is borrowed for the call only and need not be UTF-8. The caller owns the
    /// resolver and releases it with `mtasts_resolver_free()`. Thread-safe. The resolver starts
    /// no threads; it may be used from any number of threads at once, and in a child after
    /// `fork()` (but not while another thread of the parent was inside a library call when it
    /// forked).
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_resolver_new(
        config_path: *const c_char,
        resolver_out: *mut *const mtasts_resolver,
    ) -> mtasts_result {
        ffi_panic_boundary! {
            let out = try_out!(resolver_out);
            let path = try_path!(config_path);
            let config = match Config::load(path) {
                Ok(config) => config,
                Err(e) => return mtasts_result::MTASTS_CONFIG.failed(e),
            };
            match Resolver::builder(config).build() {
                Ok(resolver) => {
                    *out = boundary::to_arc_const_ptr(resolver);
                    mtasts_result::succeeded()
                }
                Err(e) => mtasts_result::MTASTS_CONFIG.failed(e),
            }
        }
    }

    /// Looks up which MTA-STS policy applies to `domain` now (RFC 8461 §5.1), using and
    /// updating the resolver's cache; this may query DNS and fetch the policy over HTTPS,
    /// within the configured timeouts, on the calling thread.
    ///
    /// `domain` is the recipient domain as text: surrounding whitespace, upper case, one
    /// trailing dot and U-labels (UTF-8) are accepted.
    ///
    /// Returns `MTASTS_OK` when a policy applies, whatever its mode (`none` included), and
    /// writes a new policy handle to `*policy_out`. Otherwise `*policy_out` is left alone and
    /// `mtasts_last_error()` says why:
    /// - `MTASTS_NO_POLICY`: no policy applies; deliver as if the domain had no MTA-STS;
    /// - `MTASTS_TEMPFAIL`: temporary failure and no usable cached policy; defer the message;
    /// - `MTASTS_INVALID_INPUT`: `domain` is not a domain name that can have a policy
    ///   (including address literals), is longer than 1024 bytes, or is not UTF-8;
    /// - `MTASTS_NULL_PARAMETER`: an argument is NULL.
    ///
    /// `resolver` and `domain` are borrowed for the call only. The caller owns the policy and
    /// releases it with `mtasts_policy_free()`; it does not depend on the resolver, which may
    /// be freed first. Thread-safe: concurrent lookups of one domain make one network lookup.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_resolver_lookup(
        resolver: *const mtasts_resolver,
        domain: *const c_char,
        policy_out: *mut *mut mtasts_policy,
    ) -> mtasts_result {
        ffi_panic_boundary! {
            let resolver = try_ref!(resolver);
            let domain = try_str!(domain);
            let out = try_out!(policy_out);
            let domain = match Domain::parse(domain) {
                Ok(domain) => domain,
                Err(e) => return lookup_failed(Answer::Invalid(Error::Domain(e))),
            };
            match Policy::new(resolver.lookup(&domain)) {
                Ok(policy) => {
                    *out = boundary::to_boxed_mut_ptr(policy);
                    mtasts_result::succeeded()
                }
                Err(decision) => lookup_failed(Answer::Decided { decision, mx: None }),
            }
        }
    }

    /// Releases a resolver made by `mtasts_resolver_new()`. Its cache goes with it; policy
    /// handles from it stay valid.
    ///
    /// NULL is a harmless no-op. Freeing the same resolver twice, or while another thread is
    /// inside a call with it, is forbidden. Thread-safe otherwise.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_resolver_free(resolver: *const mtasts_resolver) {
        ffi_panic_boundary! {
            // SAFETY: the header requires NULL or a resolver from mtasts_resolver_new that is
            // not freed yet.
            unsafe { boundary::free_arc(resolver) }
        }
    }
}

/// The code of an answer that is not a policy, with its text as the last error.
fn lookup_failed(answer: Answer) -> mtasts_result {
    mtasts_result::of(answer.status()).failed(mta_sts::render::text::render(&answer))
}
