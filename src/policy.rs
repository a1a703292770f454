//! The policy file grammar ([RFC 8461 §3.2]).
//!
//! ```text
//! sts-policy-record  = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP) [sts-policy-term]
//! sts-policy-term    = LF / CRLF
//! sts-policy-field-delim = ":" *WSP
//! sts-policy-version-value = %s"STSv1"
//! sts-policy-mode-value    = %s"testing" / %s"enforce" / %s"none"
//! sts-policy-max-age-value = 1*10(DIGIT)
//! sts-policy-ext-name  = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-policy-ext-value = sts-policy-vchar *(*WSP sts-policy-vchar)   ; UTF-8, no CTLs
//! ```
//!
//! Parsing is strict where the RFC is: case-sensitive keys and values, no sign or space in
//! `max_age`, validated `mx` patterns, and any violation makes the whole policy invalid. Two
//! readings are ours: blank lines are skipped (the grammar has none, but a trailing newline from
//! an editor should not cost a domain its protection), and the first occurrence of a repeated
//! field counts, later ones are ignored.
//!
//! [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{escape, PolicyError};
use crate::mx::MxPattern;
use crate::record::is_ext_name;

/// Largest `max_age`, in seconds: "Senders MAY limit this value [...] the maximum value is
/// 31557600" (about one year).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// What a sending MTA does with a policy ([RFC 8461 §5]).
///
/// [RFC 8461 §5]: https://www.rfc-editor.org/rfc/rfc8461#section-5
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deliver only to matching MX hosts over verified TLS.
    Enforce,
    /// Report failures but deliver anyway.
    Testing,
    /// The domain withdrew its policy: apply nothing.
    None,
}

impl Mode {
    /// The policy file spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Testing => "testing",
            Self::None => "none",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `mode`.
    pub mode: Mode,
    /// `max_age`, in seconds, at most [`MAX_AGE_LIMIT`].
    pub max_age: u64,
    /// The `mx` patterns in file order, duplicates removed. Empty only for mode `none`.
    pub mx: Vec<MxPattern>,
    /// Every `key: value` line in file order, unknown keys and repeats included, as served.
    /// Postfix's TLSRPT attributes carry them.
    pub fields: Vec<(String, String)>,
}

impl Policy {
    /// Parses a policy body as served by the policy host.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] naming the first rule the body breaks.
    pub fn parse(body: &[u8]) -> Result<Self, PolicyError> {
        let text = std::str::from_utf8(body).map_err(|_| PolicyError::NotUtf8)?;
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx: Vec<MxPattern> = Vec::new();
        // A 64 KiB body holds thousands of `mx` lines: duplicates are found by hash, not by a
        // scan of the list, so parsing stays linear in the body.
        let mut seen_mx: HashSet<MxPattern> = HashSet::new();
        let mut fields = Vec::new();
        // `split('\n')` plus a stripped CR gives exactly the LF / CRLF terminators.
        for (n, line) in text.split('\n').enumerate() {
            let line_no = n + 1;
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.chars().any(|c| c.is_control() && c != '\t') {
                return Err(PolicyError::ControlCharacter { line: line_no });
            }
            let (key, value) = split_field(line)
                .ok_or_else(|| PolicyError::BadLine { line: line_no, found: escape(line, 60) })?;
            fields.push((key.to_owned(), value.to_owned()));
            match key {
                "version" => first(&mut version, value),
                "mode" => first(&mut mode, value),
                "max_age" => first(&mut max_age, value),
                "mx" => {
                    let pattern = MxPattern::parse(value)
                        .ok_or_else(|| PolicyError::BadMx { line: line_no, found: escape(value, 60) })?;
                    if seen_mx.insert(pattern.clone()) {
                        mx.push(pattern);
                    }
                }
                // "Additional, undefined fields [...] MUST be ignored" (§3.2).
                _ => {}
            }
        }
        match version {
            None => return Err(PolicyError::MissingVersion),
            Some("STSv1") => {}
            Some(v) => return Err(PolicyError::BadVersion { found: escape(v, 20) }),
        }
        let mode = match mode {
            None => return Err(PolicyError::MissingMode),
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            Some(m) => return Err(PolicyError::BadMode { found: escape(m, 20) }),
        };
        let max_age = parse_max_age(max_age.ok_or(PolicyError::MissingMaxAge)?)?;
        if mx.is_empty() && mode != Mode::None {
            return Err(PolicyError::MissingMx);
        }
        Ok(Self { mode, max_age, mx, fields })
    }

    /// Renders the policy in file form, one field per line with LF endings, in the order it was
    /// served. Parsing the result gives an equal policy.
    pub fn to_text(&self) -> String {
        self.fields.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
    }
}

/// Splits `key ":" *WSP value *WSP`. The key follows the extension-name grammar, which every
/// defined key also satisfies; the value is non-empty.
fn split_field(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once(':')?;
    let value = value.trim_matches([' ', '\t']);
    (is_ext_name(key) && !value.is_empty()).then_some((key, value))
}

/// Keeps the first value of a repeated field.
fn first<'a>(slot: &mut Option<&'a str>, value: &'a str) {
    slot.get_or_insert(value);
}

/// `1*10(DIGIT)`, at most [`MAX_AGE_LIMIT`].
fn parse_max_age(value: &str) -> Result<u64, PolicyError> {
    let bad = || PolicyError::BadMaxAge { found: escape(value, 20) };
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    value.parse::<u64>().ok().filter(|&n| n <= MAX_AGE_LIMIT).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_EXAMPLE: &str =
        "version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n";

    fn parse(s: &str) -> Result<Policy, PolicyError> {
        Policy::parse(s.as_bytes())
    }

    #[test]
    fn parses_the_rfc_example() {
        let p = parse(RFC_EXAMPLE).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        let mx: Vec<String> = p.mx.iter().map(ToString::to_string).collect();
        assert_eq!(mx, ["mail.example.com", "*.example.net", "backupmx.example.com"]);
        assert_eq!(p.fields.len(), 6);
    }

    #[test]
    fn line_endings_and_whitespace_rfc8461_3_2() {
        for body in [
            "version: STSv1\r\nmode: testing\r\nmx: a.example\r\nmax_age: 86400\r\n",
            "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400",
            "version:STSv1\nmode:\ttesting\t\nmx:   a.example  \nmax_age: 86400\n",
            "max_age: 86400\nmx: a.example\nmode: testing\nversion: STSv1\n", // any order
            "version: STSv1\n\nmode: testing\nmx: a.example\nmax_age: 86400\n\n\n", // blank lines
            "version: STSv1\nmode: testing\nmx: a.example\nmax_age: 86400\nfuture_field: v\u{e9}lue 1\n",
        ] {
            let p = parse(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
            assert_eq!((p.mode, p.max_age), (Mode::Testing, 86400), "{body:?}");
        }
    }

    #[test]
    fn first_occurrence_of_a_repeated_field_wins() {
        let p = parse("version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 10\nmax_age: 20\n").unwrap();
        assert_eq!((p.mode, p.max_age), (Mode::Testing, 10));
        let p = parse("version: STSv1\nmode: enforce\nmx: a.example\nmx: A.example\nmx: b.example\nmax_age: 1\n").unwrap();
        assert_eq!(p.mx.len(), 2, "duplicate mx dropped after normalisation");
        assert_eq!(
            parse("version: STSv1\nversion: STSv2\nmode: none\nmax_age: 1\n").map(|p| p.mode),
            Ok(Mode::None)
        );
    }

    #[test]
    fn mode_none_needs_no_mx() {
        let p = parse("version: STSv1\nmode: none\nmax_age: 86400\n").unwrap();
        assert_eq!(p.mode, Mode::None);
        assert!(p.mx.is_empty());
    }

    #[test]
    fn violations_make_the_policy_invalid() {
        use PolicyError::*;
        let base = |mode: &str, max_age: &str, mx: &str| {
            format!("version: STSv1\nmode: {mode}\nmax_age: {max_age}\nmx: {mx}\n")
        };
        let cases: Vec<(String, fn(&PolicyError) -> bool)> = vec![
            ("mode: enforce\nmx: a.example\nmax_age: 1\n".into(), |e| *e == MissingVersion),
            ("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n".into(), |e| matches!(e, BadVersion { .. })),
            ("version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 1\n".into(), |e| matches!(e, BadVersion { .. })),
            ("version: STSv1\nmx: a.example\nmax_age: 1\n".into(), |e| *e == MissingMode),
            (base("Enforce", "1", "a.example"), |e| matches!(e, BadMode { .. })),
            (base("strict", "1", "a.example"), |e| matches!(e, BadMode { .. })),
            ("version: STSv1\nmode: enforce\nmx: a.example\n".into(), |e| *e == MissingMaxAge),
            (base("enforce", "+86400", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            (base("enforce", "-1", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            (base("enforce", "86400s", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            (base("enforce", "31557601", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            (base("enforce", "00000000001", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            (base("enforce", "1 2", "a.example"), |e| matches!(e, BadMaxAge { .. })),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n".into(), |e| *e == MissingMx),
            ("version: STSv1\nmode: testing\nmax_age: 1\n".into(), |e| *e == MissingMx),
            (base("enforce", "1", "192.0.2.1"), |e| matches!(e, BadMx { line: 4, .. })),
            (base("enforce", "1", "[192.0.2.1]"), |e| matches!(e, BadMx { .. })),
            (base("enforce", "1", "a.example."), |e| matches!(e, BadMx { .. })),
            (base("enforce", "1", "*"), |e| matches!(e, BadMx { .. })),
            (base("enforce", "1", "a b.example"), |e| matches!(e, BadMx { .. })),
            ("version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n".into(), |e| matches!(e, BadLine { line: 3, .. })),
            ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\njunk\n".into(), |e| matches!(e, BadLine { line: 5, .. })),
            ("version : STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n".into(), |e| matches!(e, BadLine { line: 1, .. })),
            (" version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n".into(), |e| matches!(e, BadLine { line: 1, .. })),
            ("version: STSv1\rmode: enforce\rmx: a.example\rmax_age: 1\r".into(), |e| matches!(e, ControlCharacter { line: 1 })),
            ("version: STSv1\nmode: enforce\0\nmx: a.example\nmax_age: 1\n".into(), |e| matches!(e, ControlCharacter { line: 2 })),
        ];
        for (body, check) in cases {
            let err = parse(&body).expect_err(&body);
            assert!(check(&err), "{body:?} gave {err:?}");
        }
        assert_eq!(Policy::parse(b"version: STSv1\nmode: \xff\n"), Err(NotUtf8));
    }

    #[test]
    fn max_age_range_is_0_to_31557600() {
        let p = |n: &str| parse(&format!("version: STSv1\nmode: none\nmax_age: {n}\n")).map(|p| p.max_age);
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p("31557600"), Ok(31_557_600));
        assert_eq!(p("0000086400"), Ok(86400));
        assert!(p("31557601").is_err());
        assert!(p("9999999999").is_err());
    }

    #[test]
    fn to_text_round_trips() {
        let p = parse(RFC_EXAMPLE).unwrap();
        assert_eq!(Policy::parse(p.to_text().as_bytes()).unwrap(), p);
    }
}
