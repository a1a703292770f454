//! MX host matching ([RFC 8461 §4.1]).
//!
//! A pattern is a host name or `*.` and a host name. Both sides are compared in lower-case A-label
//! form without a trailing dot; a wildcard stands for exactly one left-most label and never matches
//! the parent itself: "`*.example.com` [...] would match `mail.example.com` but not
//! `example.com` or `foo.bar.example.com`".
//!
//! [RFC 8461 §4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1

use std::fmt;

use crate::domain::{check_host_name, Domain};

/// One `mx` value of a policy, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MxPattern {
    /// A host name, matched exactly.
    Exact(String),
    /// `*.` followed by this parent name: matches any one label followed by the parent.
    Wildcard(String),
}

impl MxPattern {
    /// Validates an `mx` value: a host name, or `*.` and a host name. U-labels are accepted and
    /// converted to A-labels; upper case is folded. Returns `None` for anything else, IP
    /// addresses and trailing dots included.
    pub fn parse(value: &str) -> Option<Self> {
        let (wildcard, name) = match value.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        if name.is_empty() || name.ends_with('.') {
            return None;
        }
        let name = if name.is_ascii() {
            name.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(name).ok()?
        };
        check_host_name(&name).ok()?;
        Some(if wildcard { Self::Wildcard(name) } else { Self::Exact(name) })
    }

    /// Whether `host` (an MX host name) is allowed by this pattern.
    pub fn matches(&self, host: &Domain) -> bool {
        let host = host.as_str();
        match self {
            Self::Exact(name) => host == name,
            Self::Wildcard(parent) => host
                .strip_suffix(parent.as_str())
                .and_then(|rest| rest.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }

    /// The name after any `*.`.
    pub fn name(&self) -> &str {
        match self {
            Self::Exact(name) | Self::Wildcard(name) => name,
        }
    }

    /// Whether this is a `*.` pattern.
    pub fn is_wildcard(&self) -> bool {
        matches!(self, Self::Wildcard(_))
    }
}

impl fmt::Display for MxPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name),
            Self::Wildcard(parent) => write!(f, "*.{parent}"),
        }
    }
}

/// Whether any pattern allows `host`.
pub fn allowed(patterns: &[MxPattern], host: &Domain) -> bool {
    patterns.iter().any(|p| p.matches(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> Domain {
        Domain::parse(s).unwrap()
    }

    #[test]
    fn patterns_are_validated_and_normalised() {
        for (input, want) in [
            ("mail.example.com", Some(MxPattern::Exact("mail.example.com".into()))),
            ("MAIL.Example.COM", Some(MxPattern::Exact("mail.example.com".into()))),
            ("*.example.net", Some(MxPattern::Wildcard("example.net".into()))),
            ("*.Bücher.example", Some(MxPattern::Wildcard("xn--bcher-kva.example".into()))),
            ("localhost", Some(MxPattern::Exact("localhost".into()))),
            ("", None),
            ("*", None),
            ("*.", None),
            ("*.*.example.com", None),
            ("mail.*.example.com", None),
            ("m*.example.com", None),
            ("mail.example.com.", None),
            ("192.0.2.1", None),
            ("[192.0.2.1]", None),
            ("2001:db8::1", None),
            ("mail example.com", None),
            ("mail..example.com", None),
            (".example.com", None),
            ("-mail.example.com", None),
            ("mail_1.example.com", None),
        ] {
            assert_eq!(MxPattern::parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn exact_pattern_matches_only_that_host() {
        let p = MxPattern::parse("mail.example.com").unwrap();
        assert!(p.matches(&host("mail.example.com")));
        assert!(p.matches(&host("MAIL.EXAMPLE.COM.")));
        assert!(!p.matches(&host("example.com")));
        assert!(!p.matches(&host("x.mail.example.com")));
        assert!(!p.matches(&host("mail.example.co")));
        assert!(!p.matches(&host("amail.example.com")));
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let p = MxPattern::parse("*.example.com").unwrap();
        assert!(p.matches(&host("mail.example.com")));
        assert!(p.matches(&host("Mx1.Example.Com.")));
        assert!(!p.matches(&host("example.com")), "never the parent");
        assert!(!p.matches(&host("foo.bar.example.com")), "never two labels");
        assert!(!p.matches(&host("mailexample.com")));
        assert!(!p.matches(&host("mail.example.com.evil")));
        assert!(!p.matches(&host("mail.notexample.com")));
    }

    #[test]
    fn idn_hosts_compare_in_a_label_form() {
        let p = MxPattern::parse("*.bücher.example").unwrap();
        assert!(p.matches(&host("mx.xn--bcher-kva.example")));
        assert!(p.matches(&host("mx.BÜCHER.example")));
        let p = MxPattern::parse("xn--bcher-kva.example").unwrap();
        assert!(p.matches(&host("bücher.example")));
    }

    #[test]
    fn display_restores_the_policy_form() {
        assert_eq!(MxPattern::parse("*.Example.net").unwrap().to_string(), "*.example.net");
        assert_eq!(MxPattern::parse("mx.example.net").unwrap().to_string(), "mx.example.net");
    }

    #[test]
    fn allowed_checks_every_pattern() {
        let ps = [MxPattern::parse("a.example").unwrap(), MxPattern::parse("*.b.example").unwrap()];
        assert!(allowed(&ps, &host("a.example")));
        assert!(allowed(&ps, &host("x.b.example")));
        assert!(!allowed(&ps, &host("b.example")));
        assert!(!allowed(&[], &host("a.example")));
    }
}
