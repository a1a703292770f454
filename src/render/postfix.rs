//! The Postfix dialect: the data of an `smtp_tls_policy_maps` lookup result.
//!
//! ```text
//! secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname
//! ```
//!
//! That is the reply of postfix-mta-sts-resolver, which Postfix users and Sendmail's
//! `FEATURE(sts)` rely on: the TLS level `secure`, the policy's `mx` patterns in policy order with
//! `*.` written `.` and duplicates dropped, then ` servername=hostname` unless
//! [`OutputConfig::require_sni`] is off. A policy is answered this way in mode `enforce`, and in
//! mode `testing` only with [`OutputConfig::strict_testing`]. Everything else (no policy, mode
//! `none`, mode `testing` by default, a temporary failure, bad input) renders as the empty
//! string, and the face says what it means: a socketmap `NOTFOUND ` or `TEMP`, an exit code.
//!
//! Postfix reads `.example.net` as one *or more* labels before `example.net`, which is broader
//! than the single label of [RFC 8461 §4.1]; Postfix has no narrower form, and Postfix 3.10's
//! `mx_host_pattern` attributes ([`tlsrpt_suffix`]) restore the exact RFC matching.
//!
//! [RFC 8461 §4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1

use std::collections::HashSet;

use super::{ldh_name, Answer};
use crate::config::OutputConfig;
use crate::domain::Domain;
use crate::mx::MxPattern;
use crate::policy::{Mode, Policy};

/// Renders one answer for Postfix 3.4 to 3.9 (and older with `require_sni` off); empty when
/// the answer is not `secure`.
pub fn render(answer: &Answer, config: &OutputConfig) -> String {
    secure_line(answer, config.strict_testing, config.require_sni)
}

/// Renders one answer for Postfix 3.10 and later: [`render`] followed by [`tlsrpt_suffix`].
/// Never send this to Postfix 3.9 or older, which refuses the attributes and defers the mail,
/// nor to Sendmail.
pub fn render_tlsrpt(answer: &Answer, config: &OutputConfig) -> String {
    let mut line = render(answer, config);
    if let Some((domain, policy)) = secured(answer, config.strict_testing).filter(|_| !line.is_empty()) {
        line.push(' ');
        line.push_str(&tlsrpt_suffix(domain, policy));
    }
    line
}

/// The attributes Postfix 3.10 takes after a `secure` reply for TLSRPT (RFC 8460) and for
/// matching MX host names exactly: `policy_type=sts policy_domain=<domain>`, one
/// `mx_host_pattern=<pattern>` per `mx` line, then one `{ policy_string = <key>: <value> }` per
/// field of the policy as served, all `mx` lines first, then the other keys in file order.
///
/// Where this differs from postfix-mta-sts-resolver 1.5 (which otherwise has the same shape):
/// - A repeated key other than `mx` appears once, at its first position, with its *first*
///   value, where upstream (a Python dict) shows the last one. RFC 8461 §3.2 makes the first
///   occurrence count and [`Policy::parse`] applies it, so the report describes the policy that
///   was applied. Only policies with repeated keys, rare and arguably broken, get other bytes.
/// - `mx_host_pattern` carries the pattern normalised as it is matched (lower-case A-labels,
///   `*.` kept) rather than the raw value: Postfix compares it with MX names from DNS, which
///   are A-labels, so a U-label would match nothing. For the usual lower-case ASCII policy the
///   bytes are the same. `policy_string` keeps the raw text, as a report should.
/// - A field whose key or value holds `{`, `}` or a control character (an extension field can)
///   is left out of the `policy_string`s: inside Postfix's `{ name = value }` syntax it would end
///   or nest the attribute, and Postfix would reject the whole reply and defer the mail. RFC 8461
///   §3.2 says unknown fields "MUST be ignored", and only those can hold such characters.
pub fn tlsrpt_suffix(domain: &Domain, policy: &Policy) -> String {
    let mut out = format!("policy_type=sts policy_domain={domain}");
    let mx_values = policy.fields.iter().filter(|(key, _)| key == "mx").map(|(_, value)| value);
    for pattern in mx_values.clone().filter_map(|v| MxPattern::parse(v)) {
        if ldh_name(&pattern).is_some() {
            out.push_str(&format!(" mx_host_pattern={pattern}"));
        }
    }
    // Repeated keys are found by hash: a 64 KiB policy holds thousands of fields, and this runs
    // for every answer.
    let mut seen: HashSet<&str> = HashSet::new();
    let others: Vec<&(String, String)> =
        policy.fields.iter().filter(|(key, _)| key != "mx" && seen.insert(key.as_str())).collect();
    let strings =
        mx_values.map(|value| ("mx", value.as_str())).chain(others.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    for (key, value) in strings.filter(|(key, value)| brace_safe(key) && brace_safe(value)) {
        out.push_str(&format!(" {{ policy_string = {key}: {value} }}"));
    }
    out
}

/// The classic reply shared with the Sendmail dialect, with or without ` servername=hostname`.
pub(super) fn secure_line(answer: &Answer, strict_testing: bool, servername: bool) -> String {
    let Some((_, policy)) = secured(answer, strict_testing) else {
        return String::new();
    };
    let mut patterns: Vec<String> = Vec::with_capacity(policy.mx.len());
    // Duplicates are dropped by hash: a policy may hold thousands of patterns, and this runs for
    // every answer.
    let mut seen: HashSet<String> = HashSet::with_capacity(policy.mx.len());
    // A name that is not LDH could hold `:` or a space and change the list; `MxPattern` never
    // holds one, and leaving one out could only make the list stricter.
    for pattern in &policy.mx {
        let Some(name) = ldh_name(pattern) else { continue };
        let item = if pattern.is_wildcard() { format!(".{name}") } else { name.to_owned() };
        if seen.insert(item.clone()) {
            patterns.push(item);
        }
    }
    let mut line = format!("secure match={}", patterns.join(":"));
    if servername {
        line.push_str(" servername=hostname");
    }
    line
}

/// The policy domain and policy to answer `secure` for: an enforced policy, or a testing one
/// when `strict_testing` is on. Under a testing policy senders "merely send a report" of
/// failures (RFC 8461 §5); Postfix and Sendmail have no report-only level and `secure` would
/// defer the mail, so by default testing is answered as no policy.
fn secured(answer: &Answer, strict_testing: bool) -> Option<(&Domain, &Policy)> {
    let Answer::Decided { decision, .. } = answer else { return None };
    let policy = decision.active_policy()?;
    match policy.mode {
        Mode::Enforce => Some((&decision.domain, policy)),
        Mode::Testing if strict_testing => Some((&decision.domain, policy)),
        Mode::Testing | Mode::None => None,
    }
}

/// Whether text can sit inside `{ policy_string = ... }`.
fn brace_safe(text: &str) -> bool {
    !text.chars().any(|c| c == '{' || c == '}' || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{answer, invalid, no_policy, policy, tempfail, RFC_EXAMPLE};

    const TESTING: &str = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n";
    const NONE: &str = "version: STSv1\nmode: none\nmax_age: 86400\n";

    fn config(strict_testing: bool, require_sni: bool) -> OutputConfig {
        OutputConfig { strict_testing, require_sni }
    }

    #[test]
    fn golden_lines() {
        let default = OutputConfig::default();
        let rfc = "secure match=mail.example.com:.example.net:backupmx.example.com";
        for (answer, config, want) in [
            (answer(policy(RFC_EXAMPLE), None), &default, format!("{rfc} servername=hostname")),
            (answer(policy(RFC_EXAMPLE), Some("x.example.net")), &default, format!("{rfc} servername=hostname")),
            (answer(policy(RFC_EXAMPLE), None), &config(false, false), rfc.to_owned()),
            (answer(policy(TESTING), None), &default, String::new()),
            (
                answer(policy(TESTING), None),
                &config(true, true),
                "secure match=mx.example.org servername=hostname".into(),
            ),
            (answer(policy(NONE), None), &config(true, true), String::new()),
            (answer(no_policy(true), None), &default, String::new()),
            (answer(tempfail(), None), &default, String::new()),
            (invalid("-a.example"), &default, String::new()),
        ] {
            assert_eq!(render(&answer, config), want);
        }
    }

    #[test]
    fn patterns_keep_policy_order_and_drop_duplicates() {
        let body = "version: STSv1\nmode: enforce\nmx: z.example\nmx: *.a.example\nmx: A.example\nmx: Z.example\nmx: *.A.example\nmax_age: 1\n";
        assert_eq!(
            render(&answer(policy(body), None), &OutputConfig::default()),
            "secure match=z.example:.a.example:a.example servername=hostname"
        );
    }

    #[test]
    fn tlsrpt_suffix_of_the_rfc_example_matches_upstream() {
        // compat-postfix-mta-sts-resolver.md §1, the format illustration, after "OK ".
        let want = "secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname policy_type=sts policy_domain=example.com mx_host_pattern=mail.example.com mx_host_pattern=*.example.net mx_host_pattern=backupmx.example.com { policy_string = mx: mail.example.com } { policy_string = mx: *.example.net } { policy_string = mx: backupmx.example.com } { policy_string = version: STSv1 } { policy_string = mode: enforce } { policy_string = max_age: 604800 }";
        assert_eq!(render_tlsrpt(&answer(policy(RFC_EXAMPLE), None), &OutputConfig::default()), want);
        assert_eq!(render_tlsrpt(&answer(policy(TESTING), None), &OutputConfig::default()), "");
        assert_eq!(render_tlsrpt(&answer(tempfail(), None), &OutputConfig::default()), "");
    }

    #[test]
    fn tlsrpt_repeats_and_unknown_keys() {
        let body = "max_age: 10\nmx: B.example\nversion: STSv1\nfuture: one two\nmode: enforce\nmx: b.example\nmax_age: 20\nmx: *.c.example\n";
        let p = Policy::parse(body.as_bytes()).unwrap();
        let d = Domain::parse("example.com").unwrap();
        assert_eq!(
            tlsrpt_suffix(&d, &p),
            "policy_type=sts policy_domain=example.com mx_host_pattern=b.example mx_host_pattern=b.example mx_host_pattern=*.c.example { policy_string = mx: B.example } { policy_string = mx: b.example } { policy_string = mx: *.c.example } { policy_string = max_age: 10 } { policy_string = version: STSv1 } { policy_string = future: one two } { policy_string = mode: enforce }"
        );
    }

    #[test]
    fn tlsrpt_leaves_out_fields_that_would_break_the_braces() {
        let body = "version: STSv1\nmode: enforce\nmx: mx.example\nmax_age: 1\nx: a } policy_failure=sts-policy-invalid {\ny: {\nz: a\tb\nok: fine\n";
        let p = Policy::parse(body.as_bytes()).unwrap();
        let suffix = tlsrpt_suffix(&Domain::parse("example.com").unwrap(), &p);
        assert!(suffix.ends_with("{ policy_string = max_age: 1 } { policy_string = ok: fine }"), "{suffix}");
        assert!(!suffix.contains("policy_failure"), "{suffix}");
        assert_eq!(suffix.matches('{').count(), suffix.matches('}').count());
        assert!(!suffix.chars().any(char::is_control));
    }
}
