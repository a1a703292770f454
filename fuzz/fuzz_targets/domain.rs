//! Request-domain normalisation: `Domain::parse` (every face's request string), `MxPattern::parse`
//! (the policy's `mx` values, RFC 8461 §4.1), the socketmap key normalisation and the request
//! line parser.
//!
//! A parsed domain is a lower-case LDH name that fits `_mta-sts.` in 253 bytes and parses to
//! itself whatever its case or trailing dot; a parsed pattern displays as text that parses to
//! the same pattern, and matches exactly what §4.1 says it matches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_sts::domain::MAX_LEN;
use mta_sts::line;
use mta_sts::mx::MxPattern;
use mta_sts::serve::socketmap::{normalise_key, Key, Request};
use mta_sts::Domain;
use mta_sts_fuzz::{assert_printable_line, is_ldh_name};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        domain(text);
        pattern(text);
    }
    match line::request(data) {
        Ok((d, mx)) => {
            assert!(is_ldh_name(d.as_str()));
            assert!(mx.is_none_or(|mx| is_ldh_name(mx.as_str())));
        }
        Err(e) => assert_printable_line(&e.to_string(), "request error"),
    }
    let request = Request::parse(data);
    if let Key::Domain(name) = normalise_key(request.key) {
        if let Ok(d) = Domain::parse(name) {
            assert!(is_ldh_name(d.as_str()));
        }
    }
});

fn domain(text: &str) {
    let d = match Domain::parse(text) {
        Ok(d) => d,
        Err(e) => return assert_printable_line(&e.to_string(), "domain error"),
    };
    let name = d.as_str();
    assert!(!name.is_empty() && name.len() <= MAX_LEN, "{name:?}");
    assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'), "{name:?}");
    assert!(name.split('.').all(|l| !l.is_empty() && l.len() <= 63), "{name:?}");
    assert!(d.record_name().len() <= 254);
    assert_eq!(Domain::parse(name).as_ref(), Ok(&d), "not idempotent");
    assert_eq!(Domain::parse(&format!("{}.", name.to_ascii_uppercase())).as_ref(), Ok(&d), "case or dot matters");
}

fn pattern(text: &str) {
    let Some(p) = MxPattern::parse(text) else { return };
    assert!(is_ldh_name(p.name()), "{p:?}");
    assert_eq!(MxPattern::parse(&p.to_string()).as_ref(), Some(&p), "display round trip");
    let host = |s: &str| Domain::parse(s).ok();
    match &p {
        MxPattern::Exact(name) => {
            let exact = host(name).expect("an exact pattern is a host name");
            assert!(p.matches(&exact));
            if let Some(below) = host(&format!("x.{name}")) {
                assert!(!p.matches(&below), "exact pattern matched a subdomain");
            }
        }
        MxPattern::Wildcard(parent) => {
            if let Some(parent) = host(parent) {
                assert!(!p.matches(&parent), "wildcard matched its parent");
            }
            if let Some(one) = host(&format!("x.{parent}")) {
                assert!(p.matches(&one), "wildcard missed one label");
            }
            if let Some(two) = host(&format!("x.y.{parent}")) {
                assert!(!p.matches(&two), "wildcard matched two labels");
            }
        }
    }
}
