//! Rendering answers for each consumer: pure functions from an [`Answer`] to one line of text,
//! one file per dialect. Raw request text never reaches them: only validated names and escaped
//! error text do.

pub mod exim;
pub mod json;
pub mod postfix;
pub mod sendmail;
pub mod text;

use crate::domain::Domain;
use crate::error::Error;
use crate::mx::MxPattern;
use crate::resolve::{Decision, Outcome};

/// What a face has to say about one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The request was looked up.
    Decided {
        /// The decision.
        decision: Decision,
        /// The MX host the request asked about, if any.
        mx: Option<Domain>,
    },
    /// The request could not be looked up (an invalid domain or MX host).
    Invalid(Error),
}

/// The four statuses every dialect distinguishes, with their JSON spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A policy applies (its mode may be `none`).
    Policy,
    /// No policy applies.
    NoPolicy,
    /// Temporary failure.
    Tempfail,
    /// Bad input.
    Error,
}

impl Status {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::NoPolicy => "no-policy",
            Self::Tempfail => "tempfail",
            Self::Error => "error",
        }
    }
}

impl Answer {
    /// The status of this answer.
    pub fn status(&self) -> Status {
        match self {
            Self::Decided { decision, .. } => match decision.outcome {
                Outcome::Policy { .. } => Status::Policy,
                Outcome::NoPolicy { .. } => Status::NoPolicy,
                Outcome::Tempfail { .. } => Status::Tempfail,
            },
            Self::Invalid(_) => Status::Error,
        }
    }

    /// Whether the asked-about MX host is allowed; `None` when no MX host was asked about or no
    /// active policy applies.
    pub fn mx_allowed(&self) -> Option<bool> {
        match self {
            Self::Decided { decision, mx: Some(mx) } => decision.mx_allowed(mx),
            _ => None,
        }
    }

    /// The error or reason to show, if any.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Decided { decision, .. } => match &decision.outcome {
                Outcome::Policy { warning, .. } => warning.as_ref(),
                Outcome::NoPolicy { reason, .. } => reason.as_ref(),
                Outcome::Tempfail { error, .. } => Some(error),
            },
            Self::Invalid(e) => Some(e),
        }
    }
}

/// The name of an `mx` pattern (after any `*.`) if it holds only lower-case letters, digits,
/// hyphens and dots, as [`MxPattern::parse`] guarantees. The dialects check it again before
/// writing a name into a regex, an Exim host list or a colon-separated match list, where any
/// other character could be syntax.
fn ldh_name(pattern: &MxPattern) -> Option<&str> {
    let name = pattern.name();
    let ldh = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.';
    (!name.is_empty() && name.bytes().all(ldh)).then_some(name)
}

/// Answers for the golden tests of every dialect.
#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::error::{DnsError, FetchError, RecordError};
    use crate::policy::Policy;
    use crate::resolve::Source;
    use crate::store::CachedPolicy;

    /// The example policy of RFC 8461 §3.2.
    pub(crate) const RFC_EXAMPLE: &str =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    fn domain() -> Domain {
        Domain::parse("example.com").unwrap()
    }

    /// A decision applying `body` (which must parse) for example.com, record id 20160831085700Z.
    pub(crate) fn policy(body: &str) -> Decision {
        let policy = Policy::parse(body.as_bytes()).unwrap();
        let cached = CachedPolicy {
            expires_at: 1_000 + policy.max_age,
            policy,
            record_id: "20160831085700Z".into(),
            fetched_at: 1_000,
        };
        Decision { domain: domain(), outcome: Outcome::Policy { policy: Arc::new(cached), source: Source::Cache, warning: None } }
    }

    /// No policy; with a reason (an HTTP 404) or without (no record).
    pub(crate) fn no_policy(with_reason: bool) -> Decision {
        let reason = with_reason.then_some(Error::Fetch(FetchError::Status { status: 404 }));
        Decision { domain: domain(), outcome: Outcome::NoPolicy { reason, source: Source::Fetched } }
    }

    /// A DNS timeout with nothing cached.
    pub(crate) fn tempfail() -> Decision {
        let error = Error::Record(RecordError::Dns(DnsError::Timeout { name: "_mta-sts.example.com.".into() }));
        Decision { domain: domain(), outcome: Outcome::Tempfail { error, source: Source::Fetched } }
    }

    /// The answer to a request for `decision`, asking about MX host `mx`.
    pub(crate) fn answer(decision: Decision, mx: Option<&str>) -> Answer {
        Answer::Decided { decision, mx: mx.map(|m| Domain::parse(m).unwrap()) }
    }

    /// The answer to a request that is not a domain.
    pub(crate) fn invalid(request: &str) -> Answer {
        Answer::Invalid(Error::Domain(Domain::parse(request).unwrap_err()))
    }

    #[test]
    fn ldh_name_accepts_only_what_mx_patterns_can_hold() {
        assert_eq!(ldh_name(&MxPattern::parse("*.Mx-1.example").unwrap()), Some("mx-1.example"));
        for bad in ["", "a:b", "a b", "a$", "a\\b", "A", "a\u{e9}"] {
            assert_eq!(ldh_name(&MxPattern::Exact(bad.into())), None, "{bad:?}");
        }
    }
}
