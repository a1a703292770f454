//! The Exim dialect: one line of `key=value` pairs for Exim's `${extract{key}{...}}`.
//!
//! For the [RFC 8461 §3.2] example policy, asked about an MX host:
//!
//! ```text
//! mode=enforce ignore="!^mail[.]example[.]com$ : !^[^.]+[.]example[.]net$ : !^backupmx[.]example[.]com$ : *" match="^(mail[.]example[.]com|[^.]+[.]example[.]net|backupmx[.]example[.]com)$" max_age=604800 id="20160831085700Z" mx="mail.example.com *.example.net backupmx.example.com" mx_allowed=yes
//! ```
//!
//! The first three pairs are the line the Exim configuration of `mta-integration.md` §1.7 reads:
//! - `ignore` is a host list for `ignore_target_hosts`. Every MX host that no pattern allows is
//!   ignored: one negated, anchored regex per pattern, then `*`. Plain names would make Exim
//!   look up addresses, and Exim's `*.suffix` matches any depth where [RFC 8461 §4.1] allows
//!   exactly one label, so neither is ever emitted: `*.` becomes `[^.]+[.]`.
//! - `match` is one anchored regex for the allowed MX hosts, for the testing-mode report.
//!
//! Dots are written `[.]` because `${extract}` removes backslashes from quoted values.
//!
//! The other answers, which the routers tell apart by `mode` alone:
//!
//! | answer | line |
//! |---|---|
//! | policy with `mode: none` | `mode=none max_age=86400 id="..."` |
//! | no policy | `mode=none`, with `error="..."` when there is more to say than "no record" |
//! | temporary failure | `mode=defer error="..."`: the `mta_sts_defer` router defers the address |
//! | bad input | `mode=error error="..."` |
//!
//! `mode=error` is neither `enforce`, `testing` nor `defer`, so the §1.7 routers deliver as for
//! `mode=none`: a string that is not a valid domain name cannot publish a policy. `mta-sts query`
//! exits 64 for it, which the `${run}` variant turns into `mode=defer`.
//!
//! Nothing here can break out of a quoted value: the patterns are validated lower-case LDH
//! names (checked again here), and free text goes through [`quote`], which never lets a `"`, a
//! backslash or a control character through.
//!
//! [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2
//! [RFC 8461 §4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1

use super::{ldh_name, Answer};
use crate::mx::MxPattern;
use crate::policy::{Mode, Policy};
use crate::resolve::Outcome;

/// Renders one answer as one line of `key=value` pairs, without the newline.
pub fn render(answer: &Answer) -> String {
    let (mut line, with_error) = match answer {
        Answer::Invalid(_) => ("mode=error".to_owned(), true),
        Answer::Decided { decision, .. } => match &decision.outcome {
            Outcome::Policy { policy, .. } => {
                let (p, id) = (&policy.policy, quote(&policy.record_id));
                let line = match p.mode {
                    Mode::None => Some(format!("mode=none max_age={} id={id}", p.max_age)),
                    Mode::Enforce | Mode::Testing => active(p, &id),
                };
                // `None` is unreachable while `MxPattern` only holds LDH names. Deferring is the
                // one answer that neither weakens nor misstates the policy.
                let line = line.unwrap_or_else(|| {
                    format!("mode=defer error={}", quote("exim: mx pattern cannot be written as a regex"))
                });
                (line, false)
            }
            Outcome::NoPolicy { .. } => ("mode=none".to_owned(), true),
            Outcome::Tempfail { .. } => ("mode=defer".to_owned(), true),
        },
    };
    // Only answers without a policy explain themselves; a failure that a cached policy outlived
    // is for the log, not for the router.
    if let Some(e) = answer.error().filter(|_| with_error) {
        line.push_str(" error=");
        line.push_str(&quote(&e.to_string()));
    }
    match answer.mx_allowed() {
        Some(true) => line.push_str(" mx_allowed=yes"),
        Some(false) => line.push_str(" mx_allowed=no"),
        None => {}
    }
    debug_assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'\\'), "{line}");
    line
}

/// The line of an enforce or testing policy; `None` if a pattern is not an LDH name.
fn active(policy: &Policy, id: &str) -> Option<String> {
    let regexes = policy.mx.iter().map(regex).collect::<Option<Vec<_>>>()?;
    let ignore: Vec<String> = regexes.iter().map(|r| format!("!^{r}$")).collect();
    let mx: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
    Some(format!(
        "mode={} ignore=\"{} : *\" match=\"^({})$\" max_age={} id={id} mx=\"{}\"",
        policy.mode,
        ignore.join(" : "),
        regexes.join("|"),
        policy.max_age,
        mx.join(" "),
    ))
}

/// The unanchored regex for one pattern: `[.]` for each dot, `[^.]+` for the one wildcard label
/// ("`*.example.com` [...] would match `mail.example.com` but not [...] `foo.bar.example.com`",
/// §4.1). `None` if the name holds anything but lower-case letters, digits, hyphens and dots,
/// which could be regex or host-list syntax.
fn regex(pattern: &MxPattern) -> Option<String> {
    let name = ldh_name(pattern)?.replace('.', "[.]");
    Some(if pattern.is_wildcard() { format!("[^.]+[.]{name}") } else { name })
}

/// Double-quotes free text so that `${extract}` returns it intact and nothing can end the value
/// early: `"` becomes `'`, a backslash (which Exim would take as an escape) becomes `/`, and
/// anything outside printable ASCII becomes `?`. Error text is already escaped by
/// [`crate::error::escape`], so in practice only its own quotes and backslashes are replaced.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    out.extend(text.chars().map(|c| match c {
        '"' => '\'',
        '\\' => '/',
        ' '..='~' => c,
        _ => '?',
    }));
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{answer, invalid, no_policy, policy, tempfail, RFC_EXAMPLE};

    #[test]
    fn rfc_example_gives_the_line_of_mta_integration_1_7() {
        // mta-integration.md §1.7, byte for byte, followed by the extra keys.
        let want = concat!(
            r#"mode=enforce ignore="!^mail[.]example[.]com$ : !^[^.]+[.]example[.]net$ : !^backupmx[.]example[.]com$ : *""#,
            r#" match="^(mail[.]example[.]com|[^.]+[.]example[.]net|backupmx[.]example[.]com)$""#,
        );
        let line = render(&answer(policy(RFC_EXAMPLE), None));
        assert_eq!(
            line,
            format!(
                r#"{want} max_age=604800 id="20160831085700Z" mx="mail.example.com *.example.net backupmx.example.com""#
            )
        );
    }

    #[test]
    fn golden_lines() {
        let testing = "version: STSv1\nmode: testing\nmx: MX.Example.org\nmax_age: 86400\n";
        let none = "version: STSv1\nmode: none\nmax_age: 86400\n";
        for (answer, want) in [
            (
                answer(policy(testing), Some("mx.example.org")),
                r#"mode=testing ignore="!^mx[.]example[.]org$ : *" match="^(mx[.]example[.]org)$" max_age=86400 id="20160831085700Z" mx="mx.example.org" mx_allowed=yes"#,
            ),
            (
                answer(policy(RFC_EXAMPLE), Some("a.b.example.net")),
                r#"mode=enforce ignore="!^mail[.]example[.]com$ : !^[^.]+[.]example[.]net$ : !^backupmx[.]example[.]com$ : *" match="^(mail[.]example[.]com|[^.]+[.]example[.]net|backupmx[.]example[.]com)$" max_age=604800 id="20160831085700Z" mx="mail.example.com *.example.net backupmx.example.com" mx_allowed=no"#,
            ),
            (answer(policy(none), Some("mx.example.org")), r#"mode=none max_age=86400 id="20160831085700Z""#),
            (answer(no_policy(false), None), "mode=none"),
            (answer(no_policy(false), Some("mx.example.org")), "mode=none"),
            (answer(no_policy(true), None), r#"mode=none error="fetch: HTTP status 404, expected 200""#),
            (answer(tempfail(), None), r#"mode=defer error="dns: _mta-sts.example.com.: timed out""#),
            (invalid("a..example"), r#"mode=error error="domain: empty label""#),
            (invalid("a\u{0}b.example"), r#"mode=error error="domain: invalid character '/x00'""#),
        ] {
            assert_eq!(render(&answer), want);
        }
    }

    #[test]
    fn quoted_values_cannot_be_broken_out_of() {
        for text in ["a\"b", "a\\\"b", "line\nbreak", "nul\0", "tab\t", "\u{7f}", "é", "\u{202e}", "\\"] {
            let q = quote(text);
            let inner = &q[1..q.len() - 1];
            assert!(q.starts_with('"') && q.ends_with('"'), "{q}");
            assert!(inner.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\'), "{q}");
        }
        assert_eq!(quote("domain: invalid character \"\\x0a\""), "\"domain: invalid character '/x0a'\"");
    }

    #[test]
    fn wildcard_becomes_exactly_one_label() {
        let w = MxPattern::parse("*.mx-1.example").unwrap();
        assert_eq!(regex(&w).unwrap(), "[^.]+[.]mx-1[.]example");
        let e = MxPattern::parse("mx-1.example").unwrap();
        assert_eq!(regex(&e).unwrap(), "mx-1[.]example");
    }

    #[test]
    fn a_pattern_that_is_not_ldh_is_never_written() {
        for bad in ["a:b.example", "a|b.example", "a$.example", "A.example", "a b.example", "a\"b.example"] {
            assert_eq!(regex(&MxPattern::Exact(bad.to_owned())), None, "{bad}");
        }
        let mut p = Policy::parse(RFC_EXAMPLE.as_bytes()).unwrap();
        p.mx.push(MxPattern::Wildcard("x:*".to_owned()));
        let line = render(&answer(policy_from(p), None));
        assert!(line.starts_with("mode=defer error="), "{line}");
    }

    fn policy_from(p: Policy) -> crate::resolve::Decision {
        let mut d = policy(RFC_EXAMPLE);
        if let Outcome::Policy { policy, .. } = &mut d.outcome {
            std::sync::Arc::make_mut(policy).policy = p;
        }
        d
    }
}
