//! `mta-sts generate`: what a domain publishes to adopt MTA-STS, written by the same code that
//! reads it: the `_mta-sts` TXT record ([RFC 8461 §3.1]) with an id taken from the current UTC
//! time, the `_smtp._tls` record ([RFC 8460 §3]), and the policy file ([RFC 8461 §3.2]).
//!
//! Everything is validated before it is written: mx patterns by [`MxPattern::parse`], report
//! URIs by [`ReportUri::parse`], max_age against [`MAX_AGE_LIMIT`]; the policy text is
//! [`Policy::to_text`]. So the output always parses back with [`crate::record::parse`],
//! [`crate::tlsrpt::parse`] and [`Policy::parse`].
//!
//! [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1
//! [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2
//! [RFC 8460 §3]: https://www.rfc-editor.org/rfc/rfc8460#section-3

use std::fmt;

use crate::domain::Domain;
use crate::error::escape;
use crate::fetch::WELL_KNOWN_PATH;
use crate::mx::MxPattern;
use crate::policy::{Mode, Policy, MAX_AGE_LIMIT};
use crate::tlsrpt::{ReportUri, TlsrptError};

/// The max_age written when none is asked for: one week. RFC 8461 §3.2 expects "the range of
/// weeks or greater" to blunt attacks at refresh time, and a week still lets a mistake age out
/// soon. A change of mode or mx needs no wait: the new record id makes senders fetch at once.
pub const DEFAULT_MAX_AGE: u64 = 604_800;

/// Longest character-string in a TXT record (RFC 1035 §3.3).
const TXT_STRING_MAX: usize = 255;

/// What to publish, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The policy domain, when known: record names are then fully qualified.
    pub domain: Option<Domain>,
    /// `mode`.
    pub mode: Mode,
    /// `max_age`, in seconds.
    pub max_age: u64,
    /// The `mx` patterns, in order.
    pub mx: Vec<MxPattern>,
    /// The TLSRPT `rua` URIs; none means no `_smtp._tls` record.
    pub rua: Vec<ReportUri>,
}

/// Why a [`Spec`] cannot be built from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenerateError {
    /// No `--mx` for mode `enforce` or `testing`.
    NoMx,
    /// An `--mx` that is neither a host name nor `*.` and a host name.
    BadMx {
        /// The value given, escaped.
        found: String,
    },
    /// A max_age over [`MAX_AGE_LIMIT`].
    BadMaxAge {
        /// The value given.
        found: u64,
    },
    /// A `--rua` that is not a well-formed `mailto:` or `https:` URI.
    BadRua(TlsrptError),
}

impl fmt::Display for GenerateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("generate: ")?;
        match self {
            Self::NoMx => f.write_str("at least one --mx is needed"),
            Self::BadMx { found } => write!(f, "mx {found} is not a host name or *.host name"),
            Self::BadMaxAge { found } => write!(f, "max_age {found} is over {MAX_AGE_LIMIT}"),
            Self::BadRua(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for GenerateError {}

impl Spec {
    /// Validates what the command line asked for.
    ///
    /// # Errors
    ///
    /// [`GenerateError`] naming the first value that cannot be published.
    pub fn new(
        domain: Option<Domain>,
        mode: Mode,
        max_age: u64,
        mx: &[String],
        rua: &[String],
    ) -> Result<Self, GenerateError> {
        if max_age > MAX_AGE_LIMIT {
            return Err(GenerateError::BadMaxAge { found: max_age });
        }
        let mut patterns: Vec<MxPattern> = Vec::new();
        for value in mx {
            let pattern =
                MxPattern::parse(value.trim()).ok_or_else(|| GenerateError::BadMx { found: escape(value, 60) })?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        if patterns.is_empty() && mode != Mode::None {
            return Err(GenerateError::NoMx);
        }
        let rua = rua
            .iter()
            .map(|u| ReportUri::parse(u.trim()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(GenerateError::BadRua)?;
        Ok(Self { domain, mode, max_age, mx: patterns, rua })
    }
}

/// The texts to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The policy domain, if given.
    pub domain: Option<Domain>,
    /// The record id: the UTC time of generation, `YYYYMMDDTHHMMSSZ`.
    pub record_id: String,
    /// The `_mta-sts` TXT record text.
    pub sts_record: String,
    /// The `_smtp._tls` TXT record text, when report URIs were given.
    pub tlsrpt_record: Option<String>,
    /// The policy file.
    pub policy: String,
}

/// Writes what `spec` describes, with the record id of Unix time `now`.
pub fn generate(spec: &Spec, now: u64) -> Published {
    let record_id = record_id(now);
    let mut fields =
        vec![("version".to_owned(), "STSv1".to_owned()), ("mode".to_owned(), spec.mode.as_str().to_owned())];
    fields.extend(spec.mx.iter().map(|p| ("mx".to_owned(), p.to_string())));
    fields.push(("max_age".to_owned(), spec.max_age.to_string()));
    let policy = Policy { mode: spec.mode, max_age: spec.max_age, mx: spec.mx.clone(), fields };
    let tlsrpt_record = (!spec.rua.is_empty()).then(|| {
        let uris: Vec<&str> = spec.rua.iter().map(ReportUri::as_str).collect();
        format!("v=TLSRPTv1; rua={}", uris.join(","))
    });
    Published {
        domain: spec.domain.clone(),
        sts_record: format!("v=STSv1; id={record_id};"),
        record_id,
        tlsrpt_record,
        policy: policy.to_text(),
    }
}

impl Published {
    /// The text form: zone-file lines for the records, comments saying what goes where, then the
    /// policy file. Every line that is not part of the policy file starts with `;`, except the
    /// record lines, which contain ` IN TXT `.
    pub fn to_text(&self) -> String {
        let (sts_name, tlsrpt_name, host) = match &self.domain {
            Some(d) => (d.record_name(), crate::tlsrpt::record_name(d), d.policy_host()),
            None => ("_mta-sts".to_owned(), "_smtp._tls".to_owned(), "mta-sts.<your domain>".to_owned()),
        };
        let width = if self.tlsrpt_record.is_some() { sts_name.len().max(tlsrpt_name.len()) } else { sts_name.len() };
        let mut out = String::new();
        out.push_str("; 1. Publish the policy file (3.) first, then these DNS records (zone file syntax).\n");
        out.push_str(&format!("{sts_name:<width$} IN TXT {}\n", zone_txt(&self.sts_record)));
        match &self.tlsrpt_record {
            Some(record) => out.push_str(&format!("{tlsrpt_name:<width$} IN TXT {}\n", zone_txt(record))),
            None => out.push_str("; No --rua given: no TLSRPT record. Add one to receive reports of TLS failures.\n"),
        }
        out.push_str(&format!(
            "; 2. {host} needs A (and AAAA) records for an HTTPS server with a certificate valid for {host}.\n"
        ));
        out.push_str("; Change the id of the TXT record whenever the policy file changes.\n");
        out.push_str(&format!("; 3. https://{host}{WELL_KNOWN_PATH}, served with Content-Type: text/plain:\n"));
        out.push_str(&self.policy);
        out
    }
}

/// The record id for Unix time `now`: `YYYYMMDDTHHMMSSZ` in UTC, the basic ISO 8601 form, which
/// is all letters and digits as `sts-id` requires.
pub fn record_id(now: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(i64::try_from(now).unwrap_or(i64::MAX));
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The UTC date of Unix time `secs`, `YYYY-MM-DD`.
pub(crate) fn utc_date(secs: i64) -> String {
    let (y, m, d, ..) = civil(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Unix seconds to UTC (year, month, day, hour, minute, second), by Howard Hinnant's
/// `civil_from_days`.
fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Each part is in range by construction (day 1..=31, month 1..=12, rem < 86400).
    let part = |n: i64| u32::try_from(n).unwrap_or(0);
    (year, part(month), part(day), part(rem / 3600), part(rem % 3600 / 60), part(rem % 60))
}

/// A TXT record text in zone-file form: quoted character-strings of at most 255 bytes. The
/// texts written here are printable ASCII without quotes or backslashes.
fn zone_txt(text: &str) -> String {
    let strings: Vec<String> =
        text.as_bytes().chunks(TXT_STRING_MAX).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
    strings.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn record_id_is_utc_time_in_letters_and_digits() {
        for (now, want) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_704_110_400, "20240101T120000Z"),
            (1_709_164_799, "20240228T235959Z"),
            (4_102_444_800, "21000101T000000Z"),
        ] {
            assert_eq!(record_id(now), want, "{now}");
            assert!(crate::record::is_valid_id(want));
        }
        assert_eq!(utc_date(1_704_110_400), "2024-01-01");
        assert_eq!(utc_date(-86_400), "1969-12-31");
    }

    #[test]
    fn output_parses_back_with_our_parsers() {
        let spec = Spec::new(
            Some(Domain::parse("Example.com").unwrap()),
            Mode::Enforce,
            1_209_600,
            &strings(&["mail.example.com", "*.Example.net", "mail.example.com"]),
            &strings(&["mailto:tlsrpt@example.com", "https://r.example.com/v1"]),
        )
        .unwrap();
        let p = generate(&spec, 1_704_110_400);
        assert_eq!(p.sts_record, "v=STSv1; id=20240101T120000Z;");
        assert_eq!(crate::record::parse(p.sts_record.as_bytes()).unwrap().id, "20240101T120000Z");
        let tlsrpt = crate::tlsrpt::parse(p.tlsrpt_record.as_deref().unwrap().as_bytes()).unwrap();
        assert_eq!(tlsrpt.rua, spec.rua);
        let policy = Policy::parse(p.policy.as_bytes()).unwrap();
        assert_eq!((policy.mode, policy.max_age, &policy.mx), (Mode::Enforce, 1_209_600, &spec.mx));
        assert_eq!(
            p.policy,
            "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmax_age: 1209600\n"
        );
        let text = p.to_text();
        assert!(text.contains("_mta-sts.example.com.   IN TXT \"v=STSv1; id=20240101T120000Z;\"\n"), "{text}");
        assert!(text.contains("_smtp._tls.example.com. IN TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://r.example.com/v1\"\n"), "{text}");
        assert!(text.contains("https://mta-sts.example.com/.well-known/mta-sts.txt"), "{text}");
        assert!(text.ends_with(&p.policy), "{text}");
    }

    #[test]
    fn without_a_domain_names_are_relative_and_no_rua_means_no_tlsrpt_record() {
        let spec = Spec::new(None, Mode::Testing, DEFAULT_MAX_AGE, &strings(&["mx.example.org"]), &[]).unwrap();
        let text = generate(&spec, 0).to_text();
        assert!(text.contains("\n_mta-sts IN TXT \"v=STSv1; id=19700101T000000Z;\"\n"), "{text}");
        assert!(!text.contains("_smtp._tls"), "{text}");
        assert!(text.contains("mode: testing\nmx: mx.example.org\nmax_age: 604800\n"), "{text}");
    }

    #[test]
    fn bad_input_is_refused() {
        let mx = strings(&["mx.example.org"]);
        assert_eq!(Spec::new(None, Mode::Enforce, 1, &[], &[]), Err(GenerateError::NoMx));
        assert!(Spec::new(None, Mode::None, 1, &[], &[]).is_ok());
        assert!(matches!(
            Spec::new(None, Mode::Enforce, 1, &strings(&["192.0.2.1"]), &[]),
            Err(GenerateError::BadMx { .. })
        ));
        assert!(matches!(
            Spec::new(None, Mode::Enforce, 1, &strings(&["mx.example.org."]), &[]),
            Err(GenerateError::BadMx { .. })
        ));
        assert_eq!(
            Spec::new(None, Mode::Enforce, MAX_AGE_LIMIT + 1, &mx, &[]),
            Err(GenerateError::BadMaxAge { found: MAX_AGE_LIMIT + 1 })
        );
        assert!(matches!(
            Spec::new(None, Mode::Enforce, 1, &mx, &strings(&["postmaster@example.org"])),
            Err(GenerateError::BadRua(_))
        ));
    }

    #[test]
    fn long_txt_texts_are_split_into_255_byte_strings() {
        let text = "a".repeat(300);
        assert_eq!(zone_txt(&text), format!("\"{}\" \"{}\"", "a".repeat(255), "a".repeat(45)));
    }
}
