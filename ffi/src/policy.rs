//! `mtasts_policy`: the policy a lookup found to apply, owned by the caller.
//!
//! C owns a `Box` ([`OwnershipBox`]) holding the core's [`Decision`] plus the C strings the
//! getters hand out, made once so that each getter is a plain read and each returned pointer
//! lives exactly as long as the handle.

use std::ffi::{c_char, CString};
use std::sync::Arc;

use mta_sts::store::CachedPolicy;
use mta_sts::{Decision, Domain, Mode, Outcome};

use crate::boundary::{self, Castable, Fallback, OwnershipBox, StrError};
use crate::error::mtasts_result;

/// A policy that applies to a domain, as found by `mtasts_resolver_lookup()`. Opaque; owned by
/// the caller, read-only, independent of the resolver.
pub struct mtasts_policy {
    _private: [u8; 0],
}

impl Castable for mtasts_policy {
    type Ownership = OwnershipBox;
    type RustType = Policy;
}

/// The `mode` of a policy (RFC 8461 §5). In C this is a `uint32_t`.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum mtasts_mode {
    /// `none`: the domain withdrew its policy; apply nothing. Also what the mode getter returns
    /// for a NULL handle.
    MTASTS_MODE_NONE = 0,
    /// `testing`: deliver as usual, and report MX hosts that the policy does not allow or that
    /// fail TLS validation.
    MTASTS_MODE_TESTING = 1,
    /// `enforce`: deliver only to MX hosts the policy allows, over TLS with a valid
    /// certificate for the host name.
    MTASTS_MODE_ENFORCE = 2,
}

impl Fallback for mtasts_mode {
    fn panicked(_: String) -> Self {
        Self::MTASTS_MODE_NONE
    }
    fn null_parameter(_: &str) -> Self {
        Self::MTASTS_MODE_NONE
    }
    fn bad_string(_: &str, _: StrError) -> Self {
        Self::MTASTS_MODE_NONE
    }
}

impl From<Mode> for mtasts_mode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Enforce => Self::MTASTS_MODE_ENFORCE,
            Mode::Testing => Self::MTASTS_MODE_TESTING,
            Mode::None => Self::MTASTS_MODE_NONE,
        }
    }
}

/// What an `mtasts_policy` points at.
pub struct Policy {
    decision: Decision,
    cached: Arc<CachedPolicy>,
    id: CString,
    mx: Vec<CString>,
    warning: Option<CString>,
}

impl Policy {
    /// The handle contents of a decision that applies a policy; the decision back otherwise.
    pub(crate) fn new(decision: Decision) -> Result<Self, Decision> {
        let (cached, warning) = match &decision.outcome {
            Outcome::Policy { policy, warning, .. } => {
                (policy.clone(), warning.as_ref().map(|w| c_string(w.to_string())))
            }
            Outcome::NoPolicy { .. } | Outcome::Tempfail { .. } => return Err(decision),
        };
        let id = c_string(cached.record_id.clone());
        let mx = cached.policy.mx.iter().map(|p| c_string(p.to_string())).collect();
        Ok(Self { decision, cached, id, mx, warning })
    }
}

impl mtasts_policy {
    /// Returns the mode of the policy: `MTASTS_MODE_ENFORCE`, `MTASTS_MODE_TESTING` or
    /// `MTASTS_MODE_NONE`.
    ///
    /// Returns `MTASTS_MODE_NONE` if `policy` is NULL. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_mode(policy: *const mtasts_policy) -> mtasts_mode {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.cached.policy.mode.into()
        }
    }

    /// Returns the `max_age` of the policy in seconds (at most 31557600): how long after it was
    /// fetched the policy may be applied without a successful refresh.
    ///
    /// Returns 0 if `policy` is NULL. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_max_age(policy: *const mtasts_policy) -> u64 {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.cached.policy.max_age
        }
    }

    /// Returns the record id: the `id` of the `_mta-sts` TXT record that announced this policy
    /// (1 to 32 letters and digits).
    ///
    /// Returns NULL if `policy` is NULL. The string belongs to the policy and stays valid until
    /// `mtasts_policy_free()`. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_id(policy: *const mtasts_policy) -> *const c_char {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.id.as_ptr()
        }
    }

    /// Returns how many `mx` patterns the policy has (duplicates removed, file order kept).
    /// Zero for mode `none` without `mx` lines.
    ///
    /// Returns 0 if `policy` is NULL. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_mx_count(policy: *const mtasts_policy) -> usize {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.mx.len()
        }
    }

    /// Returns the mx pattern at `index` (0 to `mtasts_policy_mx_count()` - 1): a host name
    /// such as `mail.example.com`, or `*.` and a host name such as `*.example.net`, lower-case,
    /// in A-label form.
    ///
    /// Returns NULL if `policy` is NULL or `index` is out of range. The string belongs to the
    /// policy and stays valid until `mtasts_policy_free()`. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_mx_at(policy: *const mtasts_policy, index: usize) -> *const c_char {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.mx.get(index).map_or(std::ptr::null(), |m| m.as_ptr())
        }
    }

    /// Checks whether the policy allows the MX host `host` (RFC 8461 §4.1: exact names, and
    /// `*.` standing for exactly one label).
    ///
    /// `host` is an MX host name as text: whitespace, upper case, one trailing dot and U-labels
    /// are accepted.
    ///
    /// Returns `MTASTS_OK` and writes the answer to `*allowed_out` when the mode is `enforce`
    /// or `testing`. Otherwise `*allowed_out` is left alone and `mtasts_last_error()` says why:
    /// `MTASTS_NO_POLICY` for mode `none`, which neither allows nor forbids any host;
    /// `MTASTS_INVALID_INPUT` if `host` is not a host name, is longer than 1024 bytes or is
    /// not UTF-8; `MTASTS_NULL_PARAMETER` if an argument is NULL.
    ///
    /// All arguments are borrowed for the call only. No network access. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_mx_allowed(
        policy: *const mtasts_policy,
        host: *const c_char,
        allowed_out: *mut bool,
    ) -> mtasts_result {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            let host = try_str!(host);
            let out = try_out!(allowed_out);
            let host = match Domain::parse(host) {
                Ok(host) => host,
                Err(e) => return mtasts_result::MTASTS_INVALID_INPUT.failed(format!("mx host: {e}")),
            };
            match policy.decision.mx_allowed(&host) {
                Some(allowed) => {
                    *out = allowed;
                    mtasts_result::succeeded()
                }
                None => mtasts_result::MTASTS_NO_POLICY
                    .failed(format!("{}: mode none neither allows nor forbids any mx host", policy.decision.domain)),
            }
        }
    }

    /// Returns the failure that this cached policy outlived, for the log: the DNS lookup, TXT
    /// record or policy fetch that failed while the policy was still valid, such as
    /// `fetch: HTTP status 404, expected 200`. The policy applies all the same.
    ///
    /// Returns NULL if there was no such failure or `policy` is NULL. The string belongs to
    /// the policy and stays valid until `mtasts_policy_free()`. Thread-safe.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_warning(policy: *const mtasts_policy) -> *const c_char {
        ffi_panic_boundary! {
            let policy = try_ref!(policy);
            policy.warning.as_ref().map_or(std::ptr::null(), |w| w.as_ptr())
        }
    }

    /// Releases a policy made by `mtasts_resolver_lookup()`, and with it every string its
    /// getters returned.
    ///
    /// NULL is a harmless no-op. Freeing the same policy twice, or while another thread is
    /// using it, is forbidden.
    #[no_mangle]
    pub unsafe extern "C" fn mtasts_policy_free(policy: *mut mtasts_policy) {
        ffi_panic_boundary! {
            // SAFETY: the header requires NULL or a policy from mtasts_resolver_lookup that is
            // not freed yet.
            unsafe { boundary::free_box(policy) }
        }
    }
}

/// A C string of text that holds no NUL: record ids, mx patterns and core error messages are
/// validated or escaped, so the empty fallback is never used.
fn c_string(text: String) -> CString {
    CString::new(text).unwrap_or_default()
}
