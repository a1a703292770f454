//! What `mta-sts check` found: one [`Check`] per line, each a pass, a warning or a failure with
//! what to fix, and the overall [`Verdict`] of the [`Report`].
//!
//! The wire names of the checks come from one enum, [`Kind`], so that the text and JSON forms
//! and the documentation cannot drift apart.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::domain::Domain;

/// How one check came out. Ordered from best to worst, so the worst of several is their `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// As it should be.
    Pass,
    /// Works, but is fragile, unprotected or against advice.
    Warning,
    /// Broken: senders ignore, refuse or cannot reach something.
    Failure,
}

impl Verdict {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warning => "warning",
            Self::Failure => "failure",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which check a line reports, in the order the checks run. Serialized as [`Kind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// `_mta-sts` TXT: present, exactly one `v=STSv1;` record (RFC 8461 §3.1).
    StsRecord,
    /// `_mta-sts` TXT: the record follows the grammar.
    StsRecordSyntax,
    /// `_mta-sts` TXT: the id is 1 to 32 letters or digits.
    StsRecordId,
    /// `_smtp._tls` TXT: present, exactly one `v=TLSRPTv1;` record (RFC 8460 §3).
    TlsrptRecord,
    /// `_smtp._tls` TXT: the record follows the grammar.
    TlsrptSyntax,
    /// `_smtp._tls` TXT: the `rua` URIs are well-formed `mailto:` or `https:` URIs.
    TlsrptRua,
    /// `mta-sts.<domain>` A records.
    PolicyHostA,
    /// `mta-sts.<domain>` AAAA records.
    PolicyHostAaaa,
    /// The policy fetched over HTTPS over one address family (the subject).
    PolicyHostHttps,
    /// The policy host certificate names the policy host.
    PolicyHostCertificateName,
    /// The policy host certificate chains to a trusted CA with what the server sends.
    PolicyHostCertificateChain,
    /// Days until the policy host certificate expires.
    PolicyHostCertificateExpiry,
    /// The HTTP status of the policy.
    PolicyStatus,
    /// The Content-Type of the policy.
    PolicyContentType,
    /// The size of the policy.
    PolicySize,
    /// The policy follows the grammar of RFC 8461 §3.2.
    PolicySyntax,
    /// The policy mode.
    PolicyMode,
    /// The policy max_age.
    PolicyMaxAge,
    /// Unknown or repeated fields in the policy.
    PolicyFields,
    /// The domain's MX records.
    MxRecords,
    /// One MX host (the subject) against the policy's mx patterns (RFC 8461 §4.1).
    MxMatch,
    /// One MX host: TCP connection to port 25 and the SMTP greeting.
    SmtpConnect,
    /// One MX host: STARTTLS offered and accepted.
    SmtpStarttls,
    /// One MX host: TLS handshake completed, and its version.
    SmtpTls,
    /// One MX host: the certificate names the MX host (RFC 8461 §4.2).
    SmtpCertificateName,
    /// One MX host: the certificate chains to a trusted CA.
    SmtpCertificateChain,
    /// One MX host: days until the certificate expires.
    SmtpCertificateExpiry,
}

impl Kind {
    /// The wire spelling, as in the text and JSON forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::StsRecord => "sts-record",
            Self::StsRecordSyntax => "sts-record-syntax",
            Self::StsRecordId => "sts-record-id",
            Self::TlsrptRecord => "tlsrpt-record",
            Self::TlsrptSyntax => "tlsrpt-syntax",
            Self::TlsrptRua => "tlsrpt-rua",
            Self::PolicyHostA => "policy-host-a",
            Self::PolicyHostAaaa => "policy-host-aaaa",
            Self::PolicyHostHttps => "policy-host-https",
            Self::PolicyHostCertificateName => "policy-host-certificate-name",
            Self::PolicyHostCertificateChain => "policy-host-certificate-chain",
            Self::PolicyHostCertificateExpiry => "policy-host-certificate-expiry",
            Self::PolicyStatus => "policy-status",
            Self::PolicyContentType => "policy-content-type",
            Self::PolicySize => "policy-size",
            Self::PolicySyntax => "policy-syntax",
            Self::PolicyMode => "policy-mode",
            Self::PolicyMaxAge => "policy-max-age",
            Self::PolicyFields => "policy-fields",
            Self::MxRecords => "mx-records",
            Self::MxMatch => "mx-match",
            Self::SmtpConnect => "smtp-connect",
            Self::SmtpStarttls => "smtp-starttls",
            Self::SmtpTls => "smtp-tls",
            Self::SmtpCertificateName => "smtp-certificate-name",
            Self::SmtpCertificateChain => "smtp-certificate-chain",
            Self::SmtpCertificateExpiry => "smtp-certificate-expiry",
        }
    }

    /// What a failure of this check costs, for the overall verdict.
    pub fn area(self) -> Area {
        match self {
            Self::TlsrptRecord | Self::TlsrptSyntax | Self::TlsrptRua => Area::Reporting,
            Self::MxRecords
            | Self::MxMatch
            | Self::SmtpConnect
            | Self::SmtpStarttls
            | Self::SmtpTls
            | Self::SmtpCertificateName
            | Self::SmtpCertificateChain
            | Self::SmtpCertificateExpiry => Area::Delivery,
            Self::StsRecord
            | Self::StsRecordSyntax
            | Self::StsRecordId
            | Self::PolicyHostA
            | Self::PolicyHostAaaa
            | Self::PolicyHostHttps
            | Self::PolicyHostCertificateName
            | Self::PolicyHostCertificateChain
            | Self::PolicyHostCertificateExpiry
            | Self::PolicyStatus
            | Self::PolicyContentType
            | Self::PolicySize
            | Self::PolicySyntax
            | Self::PolicyMode
            | Self::PolicyMaxAge
            | Self::PolicyFields => Area::Policy,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// What a failed check costs the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// Senders cannot discover, fetch or parse the policy: the domain is unprotected.
    Policy,
    /// Senders that enforce the policy cannot deliver to (some of) the MX hosts.
    Delivery,
    /// Senders cannot report TLS failures (RFC 8460); delivery is unaffected.
    Reporting,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Which check.
    #[serde(rename = "check")]
    pub kind: Kind,
    /// What it was about when the check runs more than once: an MX host, an address family.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// How it came out.
    pub verdict: Verdict,
    /// What was found, one line; peer-supplied text is escaped.
    pub summary: String,
    /// For a warning or a failure, what to change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    /// A passed check.
    pub fn pass(kind: Kind, summary: impl Into<String>) -> Self {
        Self { kind, subject: None, verdict: Verdict::Pass, summary: summary.into(), fix: None }
    }

    /// A warning with what to fix.
    pub fn warning(kind: Kind, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { kind, subject: None, verdict: Verdict::Warning, summary: summary.into(), fix: Some(fix.into()) }
    }

    /// A failure with what to fix.
    pub fn failure(kind: Kind, summary: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { kind, subject: None, verdict: Verdict::Failure, summary: summary.into(), fix: Some(fix.into()) }
    }

    /// The same check about `subject`.
    #[must_use]
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// The line of the text form, without a newline.
    pub fn to_line(&self) -> String {
        let mut line = format!("{:<8}{}", self.verdict.as_str(), self.kind);
        if let Some(subject) = &self.subject {
            line.push(' ');
            line.push_str(subject);
        }
        line.push_str(": ");
        line.push_str(&self.summary);
        if let Some(fix) = &self.fix {
            line.push_str("; fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// Everything `mta-sts check` found about one domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The policy domain.
    #[serde(serialize_with = "domain_str")]
    pub domain: Domain,
    /// The worst verdict of all checks.
    pub verdict: Verdict,
    /// The overall conclusion: whether senders that enforce MTA-STS can deliver, or why not.
    pub summary: String,
    /// Every check, in the order they ran.
    pub checks: Vec<Check>,
}

/// The conclusion when nothing failed.
pub const CAN_DELIVER: &str = "senders that enforce MTA-STS can deliver to this domain";

impl Report {
    /// Concludes a list of checks.
    pub fn new(domain: Domain, checks: Vec<Check>) -> Self {
        let verdict = checks.iter().map(|c| c.verdict).max().unwrap_or(Verdict::Pass);
        let summary = conclude(&checks);
        Self { domain, verdict, summary, checks }
    }

    /// The text form: one line per check, then the verdict line, each ending in a newline.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for check in &self.checks {
            out.push_str(&check.to_line());
            out.push('\n');
        }
        out.push_str(&format!("{:<8}verdict {}: {}\n", self.verdict.as_str(), self.domain, self.summary));
        out
    }

    /// The JSON form: one object on one line, without a newline.
    pub fn to_json(&self) -> String {
        // Serializing plain strings, enums and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// How many checks came out as `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == verdict).count()
    }
}

fn domain_str<S: Serializer>(domain: &Domain, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(domain.as_str())
}

/// "senders that enforce MTA-STS can deliver to this domain", or why not: the first failure of
/// the area that matters most.
fn conclude(checks: &[Check]) -> String {
    let first = |area: Area| checks.iter().find(|c| c.verdict == Verdict::Failure && c.kind.area() == area);
    let warnings = checks.iter().filter(|c| c.verdict == Verdict::Warning).count();
    let what = |c: &Check| match &c.subject {
        Some(s) => format!("{} {s}: {}", c.kind, c.summary),
        None => format!("{}: {}", c.kind, c.summary),
    };
    let failures = checks.iter().filter(|c| c.verdict == Verdict::Failure).count();
    let more = match failures {
        0 | 1 => String::new(),
        2 => ", and 1 more failure".to_owned(),
        n => format!(", and {} more failures", n - 1),
    };
    if let Some(c) = first(Area::Policy) {
        return format!(
            "senders cannot apply this domain's MTA-STS policy, so mail to it is not protected ({}){more}",
            what(c)
        );
    }
    if let Some(c) = first(Area::Delivery) {
        return format!(
            "senders that enforce MTA-STS cannot deliver to every MX host of this domain ({}){more}",
            what(c)
        );
    }
    let mut summary = CAN_DELIVER.to_owned();
    if let Some(c) = first(Area::Reporting) {
        summary.push_str(&format!(", but they cannot report TLS failures ({}){more}", what(c)));
    }
    match warnings {
        0 => {}
        1 => summary.push_str(", with 1 warning"),
        n => summary.push_str(&format!(", with {n} warnings")),
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::parse("example.com").unwrap()
    }

    #[test]
    fn verdict_is_the_worst_check() {
        let pass = Check::pass(Kind::StsRecord, "one record");
        let warn = Check::warning(Kind::PolicyMaxAge, "short", "raise it");
        let fail = Check::failure(Kind::MxMatch, "not matched", "add it").about("mx.example.com");
        assert_eq!(Report::new(domain(), vec![pass.clone()]).verdict, Verdict::Pass);
        assert_eq!(Report::new(domain(), vec![pass.clone(), warn.clone()]).verdict, Verdict::Warning);
        assert_eq!(Report::new(domain(), vec![fail.clone(), warn, pass]).verdict, Verdict::Failure);
        assert_eq!(Report::new(domain(), vec![]).verdict, Verdict::Pass);
    }

    #[test]
    fn conclusion_names_the_failure_that_matters_most() {
        let tlsrpt = Check::failure(Kind::TlsrptRua, "bad uri", "fix it");
        let mx = Check::failure(Kind::SmtpStarttls, "no STARTTLS", "enable it").about("mx.example.com");
        let policy = Check::failure(Kind::PolicySyntax, "line 2: bad", "fix it");
        let warn = Check::warning(Kind::PolicyMode, "testing", "enforce");
        let r = Report::new(domain(), vec![warn.clone()]);
        assert_eq!(r.summary, format!("{CAN_DELIVER}, with 1 warning"));
        let r = Report::new(domain(), vec![tlsrpt.clone(), warn.clone(), warn.clone()]);
        assert_eq!(
            r.summary,
            format!("{CAN_DELIVER}, but they cannot report TLS failures (tlsrpt-rua: bad uri), with 2 warnings")
        );
        let r = Report::new(domain(), vec![tlsrpt.clone(), mx.clone()]);
        assert!(r.summary.starts_with("senders that enforce MTA-STS cannot deliver"), "{}", r.summary);
        assert!(r.summary.contains("smtp-starttls mx.example.com: no STARTTLS"), "{}", r.summary);
        let r = Report::new(domain(), vec![mx, policy]);
        assert!(r.summary.starts_with("senders cannot apply"), "{}", r.summary);
        assert!(r.summary.ends_with("(policy-syntax: line 2: bad), and 1 more failure"), "{}", r.summary);
    }

    #[test]
    fn text_has_one_line_per_check_and_a_verdict_line() {
        let r = Report::new(
            domain(),
            vec![
                Check::pass(Kind::StsRecord, "one record"),
                Check::warning(Kind::PolicyHostAaaa, "no AAAA", "publish one"),
                Check::failure(Kind::MxMatch, "not matched", "add mx: mx.example.com").about("mx.example.com"),
            ],
        );
        assert_eq!(
            r.to_text(),
            "pass    sts-record: one record\n\
             warning policy-host-aaaa: no AAAA; fix: publish one\n\
             failure mx-match mx.example.com: not matched; fix: add mx: mx.example.com\n\
             failure verdict example.com: senders that enforce MTA-STS cannot deliver to every MX host of this \
             domain (mx-match mx.example.com: not matched)\n"
        );
    }

    #[test]
    fn json_names_checks_by_their_wire_names() {
        let r = Report::new(
            domain(),
            vec![Check::failure(Kind::SmtpTls, "handshake failed", "fix").about("mx.example.com")],
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["domain"], "example.com");
        assert_eq!(v["verdict"], "failure");
        assert_eq!(v["checks"][0]["check"], "smtp-tls");
        assert_eq!(v["checks"][0]["subject"], "mx.example.com");
        assert_eq!(v["checks"][0]["fix"], "fix");
        let pass = Report::new(domain(), vec![Check::pass(Kind::StsRecord, "ok")]);
        let v: serde_json::Value = serde_json::from_str(&pass.to_json()).unwrap();
        assert!(v["checks"][0].get("fix").is_none() && v["checks"][0].get("subject").is_none());
    }
}
