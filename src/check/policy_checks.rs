//! The policy side of `mta-sts check`: fetching the policy over each published address family
//! with the resolver's own [`HttpsFetcher`] ([RFC 8461 §3.3]), the answer's status, type and
//! size, the policy itself with [`Policy::parse`] ([RFC 8461 §3.2]) plus advice on its values,
//! and each MX host against its patterns with [`crate::mx::MxPattern::matches`] ([RFC 8461 §4.1]).
//!
//! [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2
//! [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
//! [RFC 8461 §4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1

use std::net::IpAddr;
use std::sync::Arc;

use super::report::{Check, Kind};
use crate::config::FetchConfig;
use crate::dns::Dns;
use crate::domain::Domain;
use crate::error::{escape, DnsError, FetchError, PolicyError};
use crate::fetch::{Fetcher, HttpsFetcher, BODY_LIMIT, WELL_KNOWN_PATH};
use crate::policy::{Mode, Policy};

/// A max_age under this, with mode `enforce`, is a warning: a sender's protection lapses within
/// a day of its last fetch, and RFC 8461 §3.2 expects "the range of weeks or greater".
pub const SHORT_MAX_AGE: u64 = 86_400;

/// The fields RFC 8461 §3.2 defines; any other is ignored by senders.
const KNOWN_FIELDS: [&str; 4] = ["version", "mode", "mx", "max_age"];

/// Fetches the policy over each address family the policy host publishes, with the resolver's
/// fetcher restricted to that family, and checks that each works. Returns the checks and the
/// first answer that got as far as HTTP, for [`policy_file`].
pub fn https(
    dns: &Arc<dyn Dns>,
    config: &FetchConfig,
    domain: &Domain,
    addrs: &[IpAddr],
) -> (Vec<Check>, Option<Result<Vec<u8>, FetchError>>) {
    let url = format!("https://{}{WELL_KNOWN_PATH}", domain.policy_host());
    let mut checks = Vec::new();
    let mut answer: Option<(&str, Result<Vec<u8>, FetchError>)> = None;
    for (v6, family) in [(false, "ipv4"), (true, "ipv6")] {
        if !addrs.iter().any(|ip| ip.is_ipv6() == v6) {
            continue;
        }
        let only: Arc<dyn Dns> = Arc::new(OneFamily { inner: dns.clone(), v6 });
        let fetched = HttpsFetcher::new(only, config).fetch(domain);
        let check = match &fetched {
            Ok(body) => match &answer {
                Some((first, Ok(other))) if other != body => Check::warning(
                    Kind::PolicyHostHttps,
                    format!("{url} answers over {family}, but with a different policy than over {first}"),
                    "serve the same policy file on every address of the policy host",
                ),
                _ => Check::pass(Kind::PolicyHostHttps, format!("{url} answers over {family}")),
            },
            Err(e) if is_http_answer(e) => {
                Check::pass(Kind::PolicyHostHttps, format!("{url} answers over {family} (the answer is judged below)"))
            }
            Err(e) => {
                Check::failure(Kind::PolicyHostHttps, format!("{url} fails over {family}: {e}"), fetch_fix(e, domain))
            }
        };
        checks.push(check.about(family));
        if answer.is_none() && fetched.as_ref().map_or_else(is_http_answer, |_| true) {
            answer = Some((family, fetched));
        }
    }
    (checks, answer.map(|(_, fetched)| fetched))
}

/// Checks the answer of the policy host: status, Content-Type, size, then the policy's syntax,
/// mode, max_age and fields. Stops at the first failure that leaves nothing to judge; returns
/// the valid policy, if any.
pub fn policy_file(fetched: &Result<Vec<u8>, FetchError>, domain: &Domain) -> (Vec<Check>, Option<Policy>) {
    let url = format!("https://{}{WELL_KNOWN_PATH}", domain.policy_host());
    let serve = format!("serve the policy at {url} with status 200 and Content-Type: text/plain, without redirects");
    let mut checks = Vec::new();
    let body = match fetched {
        Ok(body) => body,
        // "HTTP 3xx redirects MUST NOT be followed" (§3.3).
        Err(FetchError::Redirect { status }) => {
            checks.push(Check::failure(
                Kind::PolicyStatus,
                format!("HTTP {status}: senders do not follow redirects (RFC 8461 §3.3)"),
                serve,
            ));
            return (checks, None);
        }
        Err(FetchError::Status { status }) => {
            checks.push(Check::failure(Kind::PolicyStatus, format!("HTTP {status}, expected 200"), serve));
            return (checks, None);
        }
        Err(e @ FetchError::ContentType { .. }) => {
            checks.push(Check::pass(Kind::PolicyStatus, "HTTP 200"));
            checks.push(Check::failure(
                Kind::PolicyContentType,
                e.to_string().trim_start_matches("fetch: ").to_owned(),
                serve,
            ));
            return (checks, None);
        }
        Err(FetchError::TooLarge) => {
            checks.push(Check::pass(Kind::PolicyStatus, "HTTP 200"));
            checks.push(Check::pass(Kind::PolicyContentType, "text/plain"));
            checks.push(Check::failure(
                Kind::PolicySize,
                format!("the body exceeds {BODY_LIMIT} bytes, and senders stop reading there (RFC 8461 §3.3)"),
                "serve only the policy: version, mode, mx and max_age lines",
            ));
            return (checks, None);
        }
        // Failures before HTTP are reported by [`https`].
        Err(_) => return (checks, None),
    };
    checks.push(Check::pass(Kind::PolicyStatus, "HTTP 200"));
    checks.push(Check::pass(Kind::PolicyContentType, "text/plain"));
    checks.push(Check::pass(Kind::PolicySize, format!("{} bytes (limit {BODY_LIMIT})", body.len())));
    let policy = match Policy::parse(body) {
        Ok(policy) => policy,
        Err(e) => {
            let mut summary = e.to_string().trim_start_matches("policy: ").to_owned();
            if let Some(line) = error_line(body, &e) {
                summary = format!("line {line}: {summary}");
            }
            checks.push(Check::failure(Kind::PolicySyntax, summary, syntax_fix(&e)));
            return (checks, None);
        }
    };
    let patterns: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
    checks.push(Check::pass(
        Kind::PolicySyntax,
        format!(
            "a valid STSv1 policy: mode {}, max_age {}, mx {}",
            policy.mode,
            policy.max_age,
            if patterns.is_empty() { "none".to_owned() } else { patterns.join(", ") }
        ),
    ));
    checks.push(mode_check(policy.mode));
    checks.push(max_age_check(&policy));
    checks.push(fields_check(body, &policy));
    (checks, Some(policy))
}

/// One check per MX host: allowed by a pattern of the policy or not. A policy in mode `none`
/// allows and forbids nothing, so it gets no such checks.
pub fn mx_match(policy: &Policy, hosts: &[Domain]) -> Vec<Check> {
    if policy.mode == Mode::None {
        return Vec::new();
    }
    let patterns: Vec<String> = policy.mx.iter().map(ToString::to_string).collect();
    hosts
        .iter()
        .map(|host| {
            match policy.mx.iter().find(|p| p.matches(host)) {
                Some(pattern) => Check::pass(Kind::MxMatch, format!("matched by mx: {pattern}")),
                None => Check::failure(
                    Kind::MxMatch,
                    format!("not matched by any mx pattern of the policy ({})", patterns.join(", ")),
                    format!("add \"mx: {host}\" to the policy file, then change the record id"),
                ),
            }
            .about(host.as_str())
        })
        .collect()
}

fn mode_check(mode: Mode) -> Check {
    match mode {
        Mode::Enforce => Check::pass(Kind::PolicyMode, "enforce: senders deliver only to listed MX hosts with valid TLS"),
        Mode::Testing => Check::warning(
            Kind::PolicyMode,
            "testing: senders deliver even when TLS or the MX check fails, and only report it",
            "once TLS reports show no failures, switch to mode: enforce and change the record id; testing protects nothing",
        ),
        Mode::None => Check::warning(
            Kind::PolicyMode,
            "none: the policy is withdrawn, and senders apply nothing",
            "publish mode: testing or enforce, or remove the MTA-STS records once every cached policy has expired",
        ),
    }
}

fn max_age_check(policy: &Policy) -> Check {
    let age = policy.max_age;
    let days = age / 86_400;
    let shown = match days {
        0 => format!("max_age {age} s (under a day)"),
        1 => format!("max_age {age} s (1 day)"),
        n => format!("max_age {age} s ({n} days)"),
    };
    match policy.mode {
        Mode::Testing if age < SHORT_MAX_AGE => Check::pass(
            Kind::PolicyMaxAge,
            format!("{shown}: short is fine while testing; raise it to weeks (1209600) when you enforce"),
        ),
        Mode::Enforce if age < SHORT_MAX_AGE => Check::warning(
            Kind::PolicyMaxAge,
            format!("{shown}: a sender's cached policy lapses within a day, leaving a window to strip TLS"),
            "raise max_age to weeks, for example 1209600 (RFC 8461 §3.2 expects weeks or more)",
        ),
        _ => Check::pass(Kind::PolicyMaxAge, shown),
    }
}

/// Unknown fields are ignored by senders ("MUST be ignored", §3.2), and so are repeats of
/// `version`, `mode` and `max_age` after the first: both are usually typos that hide a setting.
fn fields_check(body: &[u8], policy: &Policy) -> Check {
    let lines = field_lines(body);
    let mut seen: Vec<&str> = Vec::new();
    let mut problems = Vec::new();
    for (n, (key, _)) in policy.fields.iter().enumerate() {
        let line = lines.get(n).copied().unwrap_or(0);
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            problems.push(format!("line {line}: unknown field {} is ignored", escape(key, 40)));
        } else if key != "mx" && seen.contains(&key.as_str()) {
            problems.push(format!("line {line}: repeated {key} is ignored, the first one counts"));
        }
        seen.push(key);
    }
    if problems.is_empty() {
        return Check::pass(Kind::PolicyFields, "no unknown or repeated fields");
    }
    Check::warning(
        Kind::PolicyFields,
        problems.join("; "),
        "remove or correct these lines (field names are lower case: version, mode, mx, max_age)",
    )
}

/// The line number of each field of a valid policy: [`Policy::parse`] makes one field of every
/// non-empty line, in order.
fn field_lines(body: &[u8]) -> Vec<usize> {
    String::from_utf8_lossy(body)
        .split('\n')
        .enumerate()
        .filter(|(_, line)| !line.strip_suffix('\r').unwrap_or(line).is_empty())
        .map(|(n, _)| n + 1)
        .collect()
}

/// For the errors that [`PolicyError`] reports without a line: the line of the first invalid
/// byte, or of the first field with the key whose value is wrong (the one that counts).
fn error_line(body: &[u8], e: &PolicyError) -> Option<usize> {
    let key = match e {
        PolicyError::NotUtf8 => {
            let valid = std::str::from_utf8(body).err()?.valid_up_to();
            return Some(body[..valid].iter().filter(|&&b| b == b'\n').count() + 1);
        }
        PolicyError::BadVersion { .. } => "version",
        PolicyError::BadMode { .. } => "mode",
        PolicyError::BadMaxAge { .. } => "max_age",
        _ => return None,
    };
    let text = String::from_utf8_lossy(body);
    text.split('\n').position(|line| line.split_once(':').is_some_and(|(k, _)| k == key)).map(|n| n + 1)
}

fn syntax_fix(e: &PolicyError) -> &'static str {
    match e {
        PolicyError::NotUtf8 => "save the file as UTF-8 (plain ASCII is best)",
        PolicyError::BadLine { .. } => "write every line as key: value, with the keys version, mode, mx and max_age",
        PolicyError::ControlCharacter { .. } => "end lines with LF or CRLF and remove other control characters",
        PolicyError::MissingVersion => "add the line version: STSv1",
        PolicyError::BadVersion { .. } => "write version: STSv1 (case matters)",
        PolicyError::MissingMode => "add mode: testing or mode: enforce",
        PolicyError::BadMode { .. } => "write mode: testing, mode: enforce or mode: none, in lower case",
        PolicyError::MissingMaxAge => "add max_age: 1209600 (two weeks, in seconds)",
        PolicyError::BadMaxAge { .. } => "write max_age as plain seconds from 0 to 31557600, for example 1209600",
        PolicyError::MissingMx => "add one mx: line per MX host, or a *.parent pattern",
        PolicyError::BadMx { .. } => {
            "write each mx as a host name such as mail.example.com or a pattern such as *.example.com, without a trailing dot"
        }
    }
}

/// Whether the fetch got an HTTP answer, so that the policy host is reachable and the answer is
/// the policy file's problem.
fn is_http_answer(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::Redirect { .. } | FetchError::Status { .. } | FetchError::ContentType { .. } | FetchError::TooLarge
    )
}

fn fetch_fix(e: &FetchError, domain: &Domain) -> String {
    let host = domain.policy_host();
    match e {
        FetchError::CertificateExpired | FetchError::CertificateWrongName | FetchError::CertificateUntrusted => {
            format!("see the policy-host-certificate checks: senders need a valid certificate for {host}")
        }
        FetchError::RefusedAddress { .. } => {
            format!("publish public addresses for {host}: senders on the internet cannot reach this one")
        }
        FetchError::Resolve(_) | FetchError::NoAddress => format!("publish A or AAAA records for {host}"),
        FetchError::Timeout { .. } | FetchError::Connect { .. } => {
            format!("make sure an HTTPS server answers on port 443 of {host} over this address family, through any firewall")
        }
        _ => format!("make sure {host} serves HTTPS (TLS 1.2 or 1.3) on port 443"),
    }
}

/// The shared DNS with the addresses of one family only, so that the resolver's fetcher can be
/// made to use IPv4 or IPv6.
struct OneFamily {
    inner: Arc<dyn Dns>,
    v6: bool,
}

impl Dns for OneFamily {
    fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        self.inner.txt(name)
    }

    fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        Ok(self.inner.addresses(host)?.into_iter().filter(|ip| ip.is_ipv6() == self.v6).collect())
    }

    fn mx(&self, name: &str) -> Result<Vec<crate::dns::MxRecord>, DnsError> {
        self.inner.mx(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::report::Verdict;

    fn domain() -> Domain {
        Domain::parse("example.com").unwrap()
    }

    fn outline(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
        checks.iter().map(|c| (c.kind.as_str(), c.verdict)).collect()
    }

    fn file(body: &str) -> (Vec<Check>, Option<Policy>) {
        policy_file(&Ok(body.as_bytes().to_vec()), &domain())
    }

    #[test]
    fn http_answers_are_judged_in_order() {
        use Verdict::*;
        for (fetched, want) in [
            (Err(FetchError::Redirect { status: 301 }), vec![("policy-status", Failure)]),
            (Err(FetchError::Status { status: 404 }), vec![("policy-status", Failure)]),
            (
                Err(FetchError::ContentType { found: "\"text/html\"".into() }),
                vec![("policy-status", Pass), ("policy-content-type", Failure)],
            ),
            (
                Err(FetchError::TooLarge),
                vec![("policy-status", Pass), ("policy-content-type", Pass), ("policy-size", Failure)],
            ),
            (Err(FetchError::CertificateExpired), vec![]),
        ] {
            assert_eq!(outline(&policy_file(&fetched, &domain()).0), want, "{fetched:?}");
        }
        let (checks, _) = policy_file(&Err(FetchError::ContentType { found: "\"text/html\"".into() }), &domain());
        assert_eq!(checks[1].summary, "Content-Type \"text/html\", expected text/plain");
    }

    #[test]
    fn syntax_errors_carry_line_numbers() {
        for (body, want) in [
            (
                "version: STSv1\nmode: enforce\nmx: mail.example.com\nmax_age: 604800\njunk\n",
                "line 5: expected key: value, found \"junk\"",
            ),
            (
                "version: STSv1\n\nmode: strict\nmx: mail.example.com\nmax_age: 604800\n",
                "line 3: mode \"strict\" is not enforce, testing or none",
            ),
            ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n", "line 1: version \"STSv2\" is not STSv1"),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1w\n",
                "line 4: max_age \"1w\" is not a number from 0 to 31557600",
            ),
            (
                "version: STSv1\nmode: enforce\nmx: a.example.\nmax_age: 1\n",
                "line 3: mx \"a.example.\" is not a host name or *.host name",
            ),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx field"),
        ] {
            let (checks, policy) = file(body);
            let last = checks.last().unwrap();
            assert_eq!(
                (last.kind, last.verdict, last.summary.as_str()),
                (Kind::PolicySyntax, Verdict::Failure, want),
                "{body:?}"
            );
            assert!(policy.is_none());
        }
        let (checks, _) =
            policy_file(&Ok(b"version: STSv1\nmx: b\xc3\xbccher.example\nmx: b\xfccher.example\n".to_vec()), &domain());
        assert_eq!(checks.last().unwrap().summary, "line 3: not valid UTF-8");
    }

    #[test]
    fn values_get_advice() {
        use Verdict::*;
        let body = |mode: &str, max_age: u64, extra: &str| {
            format!("version: STSv1\nmode: {mode}\nmx: mail.example.com\nmax_age: {max_age}\n{extra}")
        };
        for (mode, max_age, extra, want) in [
            ("enforce", 1_209_600, "", [Pass, Pass, Pass]),
            ("enforce", 3600, "", [Pass, Warning, Pass]),
            ("testing", 3600, "", [Warning, Pass, Pass]),
            ("testing", 1_209_600, "", [Warning, Pass, Pass]),
            ("none", 86_400, "", [Warning, Pass, Pass]),
            ("enforce", 86_400, "max-age: 10\n", [Pass, Pass, Warning]),
            ("enforce", 86_400, "mode: testing\n", [Pass, Pass, Warning]),
            ("enforce", 86_400, "mx: backup.example.com\n", [Pass, Pass, Pass]),
        ] {
            let (checks, policy) = file(&body(mode, max_age, extra));
            assert!(policy.is_some());
            let got: Vec<Verdict> = checks[4..].iter().map(|c| c.verdict).collect();
            assert_eq!(got, want, "{mode} {max_age} {extra:?}");
        }
        let (checks, _) =
            file("version: STSv1\n\nmode: enforce\nMode: testing\nmx: a.example\nmax_age: 86400\nmode: none\n");
        assert_eq!(
            checks.last().unwrap().summary,
            "line 4: unknown field \"Mode\" is ignored; line 7: repeated mode is ignored, the first one counts"
        );
    }

    #[test]
    fn each_mx_host_is_matched_against_the_patterns() {
        let (_, policy) =
            file("version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 86400\n");
        let policy = policy.unwrap();
        let hosts: Vec<Domain> = ["mail.example.com", "mx1.example.net", "a.b.example.net"]
            .iter()
            .map(|h| Domain::parse(h).unwrap())
            .collect();
        let checks = mx_match(&policy, &hosts);
        assert_eq!(
            outline(&checks),
            vec![("mx-match", Verdict::Pass), ("mx-match", Verdict::Pass), ("mx-match", Verdict::Failure)]
        );
        assert_eq!(checks[1].summary, "matched by mx: *.example.net");
        assert_eq!(checks[2].subject.as_deref(), Some("a.b.example.net"));
        assert_eq!(
            checks[2].fix.as_deref(),
            Some("add \"mx: a.b.example.net\" to the policy file, then change the record id")
        );
        let (_, none) = file("version: STSv1\nmode: none\nmax_age: 86400\n");
        assert!(mx_match(&none.unwrap(), &hosts).is_empty());
    }
}
