//! Error types, one enum per layer, wrapped by [`Error`].
//!
//! Each variant names the RFC 8461 rule or the limit that failed and carries what a mail
//! administrator needs to act on it. `Display` is one short lower-case line prefixed by its layer
//! (`fetch: body exceeds 65536 bytes`). Text that came from a peer (DNS answers, HTTP headers,
//! policy lines) is passed through [`escape`] first, because these strings end up in MTA logs,
//! socketmap replies and Exim's yield buffer.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a request string is not a domain that can have an MTA-STS policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DomainError {
    /// Nothing left after trimming.
    Empty,
    /// The name is longer than DNS allows once `_mta-sts.` is prepended.
    TooLong {
        /// Length of the normalised name in bytes.
        len: usize,
    },
    /// A label is empty (two dots in a row, or a leading dot as in Postfix's `.parent` probes).
    EmptyLabel,
    /// A label is longer than 63 bytes.
    LabelTooLong,
    /// A character that cannot appear in a host name (after IDN conversion).
    BadCharacter {
        /// The offending character, escaped.
        found: String,
    },
    /// A label starts or ends with a hyphen.
    BadHyphen,
    /// An IPv4 or IPv6 address, or an address literal such as `[192.0.2.1]`.
    AddressLiteral,
    /// A U-label that IDNA (UTS #46) refuses.
    Idna,
}

impl fmt::Display for DomainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("domain: ")?;
        match self {
            Self::Empty => f.write_str("empty"),
            Self::TooLong { len } => write!(f, "{len} bytes is too long (limit {})", crate::domain::MAX_LEN),
            Self::EmptyLabel => f.write_str("empty label"),
            Self::LabelTooLong => f.write_str("label longer than 63 bytes"),
            Self::BadCharacter { found } => write!(f, "invalid character {found}"),
            Self::BadHyphen => f.write_str("label starts or ends with a hyphen"),
            Self::AddressLiteral => f.write_str("address literals have no MTA-STS policy"),
            Self::Idna => f.write_str("invalid internationalised name"),
        }
    }
}

impl std::error::Error for DomainError {}

/// A DNS lookup that did not produce an answer. "The name has no such record" is not an error:
/// the lookup functions return it as an empty or absent result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DnsError {
    /// SERVFAIL, REFUSED or another error response code.
    ServerFailure {
        /// The name queried.
        name: String,
        /// The response code, as the server sent it.
        rcode: String,
    },
    /// No answer arrived before the DNS deadline.
    Timeout {
        /// The name queried.
        name: String,
    },
    /// Anything else that kept the query from completing (no reachable server, bad reply).
    Failed {
        /// The name queried.
        name: String,
        /// What the resolver reported.
        reason: String,
    },
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ServerFailure { name, rcode } => write!(f, "dns: {name}: server answered {rcode}"),
            Self::Timeout { name } => write!(f, "dns: {name}: timed out"),
            Self::Failed { name, reason } => write!(f, "dns: {name}: {}", escape(reason, 120)),
        }
    }
}

impl std::error::Error for DnsError {}

/// Why a `_mta-sts` TXT lookup gave no usable record ([RFC 8461 §3.1]).
///
/// [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RecordError {
    /// NXDOMAIN or NODATA, or no record starting with `v=STSv1;`.
    NotFound,
    /// More than one record starts with `v=STSv1;`.
    Multiple {
        /// How many did.
        count: usize,
    },
    /// The one `v=STSv1;` record does not follow the grammar.
    Syntax {
        /// What is wrong, with the offending part escaped.
        reason: String,
    },
    /// The `id` field is missing.
    MissingId,
    /// The `id` field is not 1 to 32 letters or digits.
    BadId {
        /// The value seen, escaped and truncated.
        found: String,
    },
    /// The lookup itself failed temporarily; a cached policy still applies.
    Dns(DnsError),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("record: no _mta-sts TXT record"),
            Self::Multiple { count } => write!(f, "record: {count} _mta-sts records, exactly one allowed"),
            Self::Syntax { reason } => write!(f, "record: {reason}"),
            Self::MissingId => f.write_str("record: no id field"),
            Self::BadId { found } => write!(f, "record: id {found} is not 1-32 letters or digits"),
            Self::Dns(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RecordError {}

/// One variant per rule of the policy grammar ([RFC 8461 §3.2]). Line numbers start at 1.
///
/// [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum PolicyError {
    /// The body is not UTF-8.
    NotUtf8,
    /// A line is not `key: value`.
    BadLine {
        /// Line number.
        line: usize,
        /// The line, escaped and truncated.
        found: String,
    },
    /// A control character (such as a lone CR) inside a line.
    ControlCharacter {
        /// Line number.
        line: usize,
    },
    /// No `version` field.
    MissingVersion,
    /// `version` is not `STSv1`.
    BadVersion {
        /// The value seen.
        found: String,
    },
    /// No `mode` field.
    MissingMode,
    /// `mode` is not `enforce`, `testing` or `none` (case-sensitive).
    BadMode {
        /// The value seen.
        found: String,
    },
    /// No `max_age` field.
    MissingMaxAge,
    /// `max_age` is not 1 to 10 plain digits no larger than 31557600.
    BadMaxAge {
        /// The value seen.
        found: String,
    },
    /// Mode `enforce` or `testing` with no `mx` field.
    MissingMx,
    /// An `mx` value that is neither a host name nor `*.` and a host name.
    BadMx {
        /// Line number.
        line: usize,
        /// The value seen.
        found: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("policy: ")?;
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8"),
            Self::BadLine { line, found } => write!(f, "line {line}: expected key: value, found {found}"),
            Self::ControlCharacter { line } => write!(f, "line {line}: control character"),
            Self::MissingVersion => f.write_str("no version field"),
            Self::BadVersion { found } => write!(f, "version {found} is not STSv1"),
            Self::MissingMode => f.write_str("no mode field"),
            Self::BadMode { found } => write!(f, "mode {found} is not enforce, testing or none"),
            Self::MissingMaxAge => f.write_str("no max_age field"),
            Self::BadMaxAge { found } => {
                write!(f, "max_age {found} is not a number from 0 to {}", crate::policy::MAX_AGE_LIMIT)
            }
            Self::MissingMx => f.write_str("no mx field"),
            Self::BadMx { line, found } => write!(f, "line {line}: mx {found} is not a host name or *.host name"),
        }
    }
}

impl std::error::Error for PolicyError {}

/// The phase of an HTTPS fetch that a deadline cut short, as far as it can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Resolving the policy host.
    Resolve,
    /// TCP connect.
    Connect,
    /// TLS handshake, request or response headers.
    Headers,
    /// Reading the body.
    Body,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Resolve => "resolving the policy host",
            Self::Connect => "connecting",
            Self::Headers => "waiting for the response",
            Self::Body => "reading the body",
        })
    }
}

/// Why the policy could not be fetched from the policy host ([RFC 8461 §3.3]).
///
/// [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FetchError {
    /// The policy host has no address, or the lookup failed.
    Resolve(DnsError),
    /// The policy host has no A or AAAA record.
    NoAddress,
    /// The policy host resolves only to addresses the configuration refuses (loopback, private).
    RefusedAddress {
        /// The first refused address.
        addr: String,
    },
    /// TCP connection refused or reset.
    Connect {
        /// The operating system's reason.
        reason: String,
    },
    /// The policy host certificate has expired (or is not yet valid).
    CertificateExpired,
    /// The policy host certificate does not name the policy host.
    CertificateWrongName,
    /// The policy host certificate does not chain to a trusted CA.
    CertificateUntrusted,
    /// Another certificate or TLS failure.
    Tls {
        /// What rustls reported.
        reason: String,
    },
    /// A 3xx answer: "HTTP 3xx redirects MUST NOT be followed".
    Redirect {
        /// The status code.
        status: u16,
    },
    /// Any status but 200.
    Status {
        /// The status code.
        status: u16,
    },
    /// Content-Type is missing or is not `text/plain`.
    ContentType {
        /// The header value seen, escaped (empty when missing).
        found: String,
    },
    /// The body is larger than [`crate::fetch::BODY_LIMIT`].
    TooLarge,
    /// The whole fetch took longer than the configured deadline.
    Timeout {
        /// Where it was when the deadline passed.
        phase: Phase,
    },
    /// The HTTP exchange broke (bad framing, closed early).
    Protocol {
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fetch: ")?;
        match self {
            Self::Resolve(e) => write!(f, "policy host lookup failed ({e})"),
            Self::NoAddress => f.write_str("policy host has no address"),
            Self::RefusedAddress { addr } => write!(f, "policy host address {addr} is refused by configuration"),
            Self::Connect { reason } => write!(f, "cannot connect to policy host: {}", escape(reason, 100)),
            Self::CertificateExpired => f.write_str("policy host certificate expired or not yet valid"),
            Self::CertificateWrongName => f.write_str("policy host certificate is not valid for the policy host"),
            Self::CertificateUntrusted => f.write_str("policy host certificate is not signed by a trusted CA"),
            Self::Tls { reason } => write!(f, "tls: {}", escape(reason, 100)),
            Self::Redirect { status } => write!(f, "HTTP {status} redirect, redirects are not followed"),
            Self::Status { status } => write!(f, "HTTP status {status}, expected 200"),
            Self::ContentType { found } if found.is_empty() => f.write_str("no Content-Type, expected text/plain"),
            Self::ContentType { found } => write!(f, "Content-Type {found}, expected text/plain"),
            Self::TooLarge => write!(f, "body exceeds {} bytes", crate::fetch::BODY_LIMIT),
            Self::Timeout { phase } => write!(f, "deadline passed while {phase}"),
            Self::Protocol { reason } => write!(f, "http: {}", escape(reason, 100)),
        }
    }
}

impl std::error::Error for FetchError {}

/// Any reason a lookup did not end in an applied policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Error {
    /// The request was not a valid domain.
    Domain(DomainError),
    /// TXT discovery failed.
    Record(RecordError),
    /// The policy could not be fetched.
    Fetch(FetchError),
    /// The fetched policy is invalid.
    Policy(PolicyError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(e) => e.fmt(f),
            Self::Record(e) => e.fmt(f),
            Self::Fetch(e) => e.fmt(f),
            Self::Policy(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {}

impl From<DomainError> for Error {
    fn from(e: DomainError) -> Self {
        Self::Domain(e)
    }
}

impl From<RecordError> for Error {
    fn from(e: RecordError) -> Self {
        Self::Record(e)
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Self {
        Self::Fetch(e)
    }
}

impl From<PolicyError> for Error {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}

/// Makes peer-supplied text safe for one log or reply line: printable ASCII is kept, everything
/// else (controls, quotes, backslashes, non-ASCII) becomes `\xNN` or `\u{..}`, and the result is
/// cut to about `max` characters with a trailing `...`. Always wrapped in double quotes so that
/// an empty value stays visible.
pub fn escape(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max) + 2);
    out.push('"');
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push_str("...");
            break;
        }
        match c {
            ' '..='~' if c != '"' && c != '\\' => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// [`escape`] for raw bytes that may not be UTF-8.
pub fn escape_bytes(b: &[u8], max: usize) -> String {
    escape(&String::from_utf8_lossy(b), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_printable_and_hides_controls() {
        assert_eq!(escape("abc", 10), "\"abc\"");
        assert_eq!(escape("a\nb\"c\\", 10), "\"a\\x0ab\\x22c\\x5c\"");
        assert_eq!(escape("é", 10), "\"\\xe9\"");
        assert_eq!(escape("abcdef", 3), "\"abc...\"");
        assert_eq!(escape("", 3), "\"\"");
    }
}
