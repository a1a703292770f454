//! `Policy::parse` (RFC 8461 §3.2) on arbitrary bodies, as a policy host may serve them.
//!
//! Never panics; a valid policy respects the grammar's invariants and survives
//! `to_text` -> `parse` unchanged; every error is one printable line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_sts::mx::MxPattern;
use mta_sts::policy::{Mode, Policy, MAX_AGE_LIMIT};
use mta_sts_fuzz::{assert_printable_line, is_ldh_name};

fuzz_target!(|data: &[u8]| {
    let policy = match Policy::parse(data) {
        Ok(policy) => policy,
        Err(e) => return assert_printable_line(&e.to_string(), "policy error"),
    };
    assert!(policy.max_age <= MAX_AGE_LIMIT);
    assert!(policy.mode == Mode::None || !policy.mx.is_empty(), "active policy without mx");
    for (n, pattern) in policy.mx.iter().enumerate() {
        assert!(is_ldh_name(pattern.name()), "mx pattern not LDH: {pattern:?}");
        assert_eq!(MxPattern::parse(&pattern.to_string()).as_ref(), Some(pattern), "mx display round trip");
        assert!(!policy.mx[..n].contains(pattern), "duplicate mx kept");
    }
    let text = policy.to_text();
    assert_eq!(Policy::parse(text.as_bytes()).as_ref(), Ok(&policy), "to_text round trip of {text:?}");
});
