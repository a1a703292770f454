//! The round trip from a served policy to what the MTAs read: parse a policy (and a record id,
//! a domain and an MX host) from the input, build every kind of answer from them, render each
//! dialect (text, json, exim, postfix with and without TLSRPT attributes, sendmail) and each
//! socketmap reply, and check that nothing can be smuggled into them:
//!
//! - every rendering is one line, with no control character;
//! - Exim: `key=value` pairs with known keys, each once, `mode` first and matching the answer;
//!   no `"`, `\` or control character inside a quoted value; `ignore`/`match` built only of
//!   anchored LDH regexes;
//! - Postfix/Sendmail: `secure match=` and a non-empty `:` list of LDH names or `.parent`s, then
//!   `servername=hostname` as configured, and for Sendmail nothing after it;
//! - TLSRPT suffix: `policy_type`, `policy_domain`, `mx_host_pattern` tokens, then
//!   `{ policy_string = ... }` groups holding no brace and no line break;
//! - JSON: one object; socketmap: one netstring with a known status word.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use mta_sts::config::{Dialect, OnTempfail, OutputConfig};
use mta_sts::error::Error;
use mta_sts::mx::MxPattern;
use mta_sts::policy::{Mode, Policy};
use mta_sts::record;
use mta_sts::render::{self, Answer, Status};
use mta_sts::serve::netstring;
use mta_sts::serve::socketmap::{self, Reply};
use mta_sts::serve::zones::Zone;
use mta_sts::store::CachedPolicy;
use mta_sts::{Decision, Domain, Outcome, Source};
use mta_sts_fuzz::{assert_one_line, assert_printable_line, fields, is_ldh_name};

const EXIM_KEYS: [&str; 8] = ["mode", "ignore", "match", "max_age", "id", "mx", "error", "mx_allowed"];

fuzz_target!(|data: &[u8]| {
    let mut parts = fields(data);
    let mut next = || parts.next().unwrap_or_default();
    let (body, domain_text, mx_text, record_text) = (next(), next(), next(), next());
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();

    let mut errors: Vec<Error> = Vec::new();
    let domain = Domain::parse(&text(domain_text)).unwrap_or_else(|e| {
        errors.push(Error::Domain(e));
        Domain::parse("example.com").expect("valid")
    });
    let mx = Domain::parse(&text(mx_text)).ok();
    let record_id = record::parse(record_text).map(|r| r.id).unwrap_or_else(|e| {
        errors.push(Error::Record(e));
        "1".to_owned()
    });
    let policy = Policy::parse(body).map_err(|e| errors.push(Error::Policy(e))).ok();

    let decided = |outcome: Outcome| Answer::Decided { decision: Decision { domain: domain.clone(), outcome }, mx: mx.clone() };
    let mut answers = vec![decided(Outcome::NoPolicy { reason: None, source: Source::Cache })];
    for e in &errors {
        answers.push(decided(Outcome::NoPolicy { reason: Some(e.clone()), source: Source::Fetched }));
        answers.push(decided(Outcome::Tempfail { error: e.clone(), source: Source::Fetched }));
        answers.push(Answer::Invalid(e.clone()));
    }
    if let Some(policy) = policy {
        let modes: &[Mode] = if policy.mx.is_empty() { &[Mode::None] } else { &[Mode::Enforce, Mode::Testing, Mode::None] };
        for &mode in modes {
            let policy = Policy { mode, ..policy.clone() };
            let cached = Arc::new(CachedPolicy { expires_at: policy.max_age, policy, record_id: record_id.clone(), fetched_at: 0 });
            for warning in [None, errors.first().cloned()] {
                answers.push(decided(Outcome::Policy { policy: cached.clone(), source: Source::Fetched, warning }));
            }
        }
    }
    for answer in &answers {
        check_answer(answer, &domain);
    }
});

fn check_answer(answer: &Answer, domain: &Domain) {
    let text = render::text::render(answer);
    assert_one_line(&text, "text");
    let json = render::json::render(answer);
    assert_one_line(&json, "json");
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok_and(|v| v.is_object()), "json: {json}");
    check_exim(&render::exim::render(answer), answer);
    for strict_testing in [false, true] {
        for require_sni in [false, true] {
            let mut output = OutputConfig::default();
            output.strict_testing = strict_testing;
            output.require_sni = require_sni;
            let postfix = render::postfix::render(answer, &output);
            let rest = check_secure(&postfix, require_sni, answer);
            assert!(rest.is_empty(), "postfix: {postfix:?}");
            let tlsrpt = render::postfix::render_tlsrpt(answer, &output);
            let rest = check_secure(&tlsrpt, require_sni, answer);
            check_tlsrpt(rest, domain, &tlsrpt);
            let sendmail = render::sendmail::render(answer, &output);
            let rest = check_secure(&sendmail, true, answer);
            assert!(rest.is_empty(), "sendmail: {sendmail:?}");
        }
    }
    // The renderings are checked above; here only the framing, once per dialect.
    let mut output = OutputConfig::default();
    output.strict_testing = true;
    for dialect in [Dialect::Postfix, Dialect::PostfixTlsrpt, Dialect::Sendmail, Dialect::Exim, Dialect::Json] {
        for on_tempfail in [OnTempfail::Temp, OnTempfail::Notfound] {
            let zone = Zone { dialect, output: output.clone(), on_tempfail };
            check_reply(&socketmap::reply(&zone, answer));
        }
    }
}

/// Checks an Exim line pair by pair.
fn check_exim(line: &str, answer: &Answer) {
    assert_printable_line(line, "exim");
    let mut seen: Vec<&str> = Vec::new();
    let mut rest = line;
    loop {
        let (key, after) = rest.split_once('=').unwrap_or_else(|| panic!("exim: no key=value in {line:?}"));
        assert!(EXIM_KEYS.contains(&key), "exim: unknown key {key:?} in {line:?}");
        assert!(!seen.contains(&key), "exim: key {key} twice in {line:?}");
        seen.push(key);
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or_else(|| panic!("exim: unterminated quote in {line:?}"));
                (&quoted[..end], &quoted[end + 1..])
            }
            None => after.split_at(after.find(' ').unwrap_or(after.len())),
        };
        assert!(!value.contains(['"', '\\']), "exim: quote or backslash inside {key} of {line:?}");
        check_exim_value(key, value, line);
        if after.is_empty() {
            break;
        }
        rest = after.strip_prefix(' ').unwrap_or_else(|| panic!("exim: pairs not separated by one space in {line:?}"));
    }
    let mode = line.strip_prefix("mode=").map(|m| m.split(' ').next().unwrap_or_default());
    let want: &[&str] = match answer.status() {
        Status::Policy => &["enforce", "testing", "none", "defer"],
        Status::NoPolicy => &["none"],
        Status::Tempfail => &["defer"],
        Status::Error => &["error"],
    };
    assert!(mode.is_some_and(|m| want.contains(&m)), "exim: mode of {line:?} for {:?}", answer.status());
}

fn check_exim_value(key: &str, value: &str, line: &str) {
    let ok = match key {
        "mode" => ["enforce", "testing", "none", "defer", "error"].contains(&value),
        "ignore" => value.strip_suffix(" : *").is_some_and(|list| {
            list.split(" : ").all(|r| r.strip_prefix("!^").and_then(|r| r.strip_suffix('$')).is_some_and(is_ldh_regex))
        }),
        "match" => value
            .strip_prefix("^(")
            .and_then(|v| v.strip_suffix(")$"))
            .is_some_and(|alts| alts.split('|').all(is_ldh_regex)),
        "max_age" => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
        "id" => record::is_valid_id(value),
        "mx" => value.split(' ').all(|p| MxPattern::parse(p).is_some_and(|m| m.to_string() == p)),
        "mx_allowed" => value == "yes" || value == "no",
        _ => true, // error: free text, already checked for quotes and backslashes
    };
    assert!(ok, "exim: bad {key} value {value:?} in {line:?}");
}

/// `[^.]+[.]` for a wildcard, then an LDH name with every dot written `[.]`.
fn is_ldh_regex(regex: &str) -> bool {
    let name = regex.strip_prefix("[^.]+[.]").unwrap_or(regex);
    // A bare `.` would match any character: every dot must be the class `[.]`.
    !name.replace("[.]", "").contains('.') && is_ldh_name(&name.replace("[.]", "."))
}

/// Checks a `secure match=...` line (or the empty line); returns what follows it.
fn check_secure<'a>(line: &'a str, servername: bool, answer: &Answer) -> &'a str {
    // Only the TLSRPT `policy_string`s may hold non-ASCII (the raw text of an extension field).
    assert_one_line(line, "postfix/sendmail");
    if line.is_empty() {
        return "";
    }
    assert!(matches!(answer.status(), Status::Policy), "secure for {:?}: {line:?}", answer.status());
    let rest = line.strip_prefix("secure match=").unwrap_or_else(|| panic!("not a secure line: {line:?}"));
    let (list, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    assert!(!list.is_empty(), "empty match list: {line:?}");
    for item in list.split(':') {
        assert!(is_ldh_name(item.strip_prefix('.').unwrap_or(item)), "match entry {item:?} in {line:?}");
    }
    match rest.strip_prefix("servername=hostname") {
        Some(after) if servername => after,
        None if !servername => rest.strip_prefix(' ').map_or(rest, |r| r),
        _ => panic!("servername=hostname wrong in {line:?}"),
    }
}

/// Checks the Postfix 3.10 attributes after the secure line.
fn check_tlsrpt(rest: &str, domain: &Domain, line: &str) {
    if rest.is_empty() {
        return;
    }
    let mut rest = rest.strip_prefix(' ').unwrap_or(rest);
    rest = rest.strip_prefix("policy_type=sts ").unwrap_or_else(|| panic!("tlsrpt: no policy_type in {line:?}"));
    rest = rest
        .strip_prefix(&format!("policy_domain={domain}"))
        .unwrap_or_else(|| panic!("tlsrpt: no policy_domain in {line:?}"));
    let mut groups = false;
    while let Some(after) = rest.strip_prefix(' ') {
        if let Some(group) = after.strip_prefix("{ policy_string = ") {
            let end = group.find('}').unwrap_or_else(|| panic!("tlsrpt: unclosed group in {line:?}"));
            let content = &group[..end];
            assert!(content.ends_with(' ') && content.trim_end().contains(": "), "tlsrpt: group {content:?} in {line:?}");
            assert!(!content.contains(['{', '}']), "tlsrpt: nested brace in {line:?}");
            assert_one_line(content, "tlsrpt policy_string");
            groups = true;
            rest = &group[end + 1..];
        } else {
            assert!(!groups, "tlsrpt: attribute after the policy_string groups in {line:?}");
            let end = after.find(' ').unwrap_or(after.len());
            let pattern = after[..end]
                .strip_prefix("mx_host_pattern=")
                .unwrap_or_else(|| panic!("tlsrpt: unexpected token in {line:?}"));
            assert!(MxPattern::parse(pattern).is_some_and(|p| p.to_string() == pattern), "tlsrpt: pattern {pattern:?}");
            rest = &after[end..];
        }
    }
    assert!(rest.is_empty(), "tlsrpt: trailing {rest:?} in {line:?}");
}

/// A socketmap reply is one netstring holding a status word and one printable line.
fn check_reply(reply: &Reply) {
    let mut out = Vec::new();
    reply.encode(&mut out);
    let frame = netstring::decode(&out, usize::MAX).expect("valid").expect("complete");
    assert_eq!(frame.len, out.len());
    let data = std::str::from_utf8(&out[frame.data]).expect("utf-8");
    assert!(["OK ", "NOTFOUND ", "TEMP ", "PERM "].iter().any(|s| data.starts_with(s)), "reply {data:?}");
    assert_one_line(data, "socketmap reply");
}
