//! `_mta-sts` TXT record discovery ([RFC 8461 §3.1]).
//!
//! ```text
//! sts-text-record = sts-version 1*(sts-sep sts-field) [sts-sep]
//! sts-version     = %s"v=STSv1"
//! sts-sep         = *WSP %x3B *WSP
//! sts-field       = sts-id / sts-extension
//! sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//! sts-extension   = sts-ext-name "=" sts-ext-value
//! sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1

use crate::dns::Dns;
use crate::domain::Domain;
use crate::error::{escape, escape_bytes, RecordError};

/// Longest record id.
pub const ID_MAX_LEN: usize = 32;

/// The prefix that selects MTA-STS records among the TXT records of `_mta-sts.<domain>`.
const PREFIX: &[u8] = b"v=STSv1;";

/// A parsed `_mta-sts` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The `id` field: a policy version; a change tells senders to fetch the policy again.
    pub id: String,
}

/// Looks up `_mta-sts.<domain>` and returns its one valid record.
///
/// # Errors
///
/// [`RecordError::NotFound`] for NXDOMAIN, NODATA or no `v=STSv1;` record,
/// [`RecordError::Dns`] for a temporary DNS failure, and the other variants for a record that
/// breaks the rules.
pub fn discover(dns: &dyn Dns, domain: &Domain) -> Result<Record, RecordError> {
    let records = dns.txt(&domain.record_name()).map_err(RecordError::Dns)?;
    select(&records)
}

/// Picks the one MTA-STS record among the TXT records of one name, each given as the
/// concatenation of its character-strings, and parses it.
///
/// # Errors
///
/// As [`discover`], without the DNS case.
pub fn select(records: &[Vec<u8>]) -> Result<Record, RecordError> {
    // "records that do not begin with "v=STSv1;" are discarded. If the number of resulting
    // records is not one, [...] senders MUST assume the recipient domain does not have an
    // available MTA-STS policy" (§3.1).
    let mut candidates = records.iter().filter(|r| r.starts_with(PREFIX));
    let Some(record) = candidates.next() else {
        return Err(RecordError::NotFound);
    };
    let extra = candidates.count();
    if extra > 0 {
        return Err(RecordError::Multiple { count: extra + 1 });
    }
    parse(record)
}

/// Parses one record that begins with `v=STSv1;`.
///
/// # Errors
///
/// [`RecordError::Syntax`], [`RecordError::MissingId`] or [`RecordError::BadId`].
pub fn parse(record: &[u8]) -> Result<Record, RecordError> {
    let text = std::str::from_utf8(record)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| syntax(format!("non-ASCII bytes in {}", escape_bytes(record, 60))))?;
    let rest = text.strip_prefix("v=STSv1").ok_or_else(|| syntax("does not start with v=STSv1".into()))?;
    let mut id = None;
    let mut fields = rest.split(';').map(trim_wsp);
    // After "v=STSv1" comes a separator, so the first split part is what lay between the version
    // and the first ";": it must be empty.
    if fields.next() != Some("") {
        return Err(syntax("v=STSv1 must be followed by ;".into()));
    }
    let mut seen_field = false;
    let mut ended = false;
    for field in fields {
        if field.is_empty() {
            // Only one trailing separator is allowed: ";;" or "; ;" is an empty field.
            if ended {
                return Err(syntax("empty field".into()));
            }
            ended = true;
            continue;
        }
        if ended {
            return Err(syntax("empty field".into()));
        }
        seen_field = true;
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| syntax(format!("field {} is not name=value", escape(field, 40))))?;
        if name == "id" {
            if !is_valid_id(value) {
                return Err(RecordError::BadId { found: escape(value, 40) });
            }
            // The grammar has no rule for a repeated id; the first one counts, as for repeated
            // policy fields (§3.2).
            id.get_or_insert_with(|| value.to_owned());
        } else if !is_ext_name(name) || !is_ext_value(value) {
            return Err(syntax(format!("invalid field {}", escape(field, 40))));
        }
    }
    if !seen_field {
        return Err(RecordError::MissingId);
    }
    id.map(|id| Record { id }).ok_or(RecordError::MissingId)
}

/// `1*32(ALPHA / DIGIT)`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=ID_MAX_LEN).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `(ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")`, shared with the policy grammar.
pub(crate) fn is_ext_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

/// `1*(%x21-3A / %x3C / %x3E-7E)`: printable, no space, `;` or `=`. Shared with the TLSRPT
/// record, whose extension grammar is the same (RFC 8460 §3).
pub(crate) fn is_ext_value(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|c| matches!(c, 0x21..=0x3a | 0x3c | 0x3e..=0x7e))
}

/// Trims `*WSP` (space and tab only) on both sides.
pub(crate) fn trim_wsp(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn syntax(reason: String) -> RecordError {
    RecordError::Syntax { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Result<Record, RecordError> {
        Ok(Record { id: s.into() })
    }

    #[test]
    fn valid_records_rfc8461_3_1() {
        for (input, want) in [
            ("v=STSv1; id=20160831085700Z;", id("20160831085700Z")),
            ("v=STSv1;id=abc", id("abc")),
            ("v=STSv1;\tid=abc\t;", id("abc")),
            ("v=STSv1;id=abc; ext=v.a-l:u<e>", id("abc")),
            ("v=STSv1; foo.bar_1=x ; id=A1", id("A1")),
            ("v=STSv1;id=12345678901234567890123456789012", id("12345678901234567890123456789012")),
            ("v=STSv1;id=first;id=second", id("first")),
        ] {
            assert_eq!(parse(input.as_bytes()), want, "{input:?}");
        }
    }

    #[test]
    fn invalid_records_rfc8461_3_1() {
        for input in [
            "v=STSv1; ;",                // empty field
            "v=STSv1;id=abc;;",          // two trailing separators
            "v=STSv1;;id=abc",           // empty field in the middle
            "v=STSv1;id",                // not name=value
            "v=STSv1;id=abc;ext",        // extension without value
            "v=STSv1;id=abc;ext=",       // empty extension value
            "v=STSv1;id=abc;e xt=1",     // space in name
            "v=STSv1;id=abc;_ext=1",     // name must start with a letter or digit
            "v=STSv1;id=abc;ext=a=b",    // "=" in value
            "v=STSv1;id=abc;ext=a b",    // space in value
            "v=STSv1;id=ab\u{e9}",       // non-ASCII
            "v=STSv1;id=abc\x01",        // control
        ] {
            assert!(matches!(parse(input.as_bytes()), Err(RecordError::Syntax { .. } | RecordError::BadId { .. })), "{input:?}");
        }
    }

    #[test]
    fn id_is_1_to_32_letters_or_digits() {
        for bad in ["", "abc-def", "abc.def", "abc_def", "123456789012345678901234567890123", "a+b"] {
            let rec = format!("v=STSv1;id={bad}");
            assert!(matches!(parse(rec.as_bytes()), Err(RecordError::BadId { .. })), "{bad:?}");
        }
        assert_eq!(parse(b"v=STSv1;ext=1"), Err(RecordError::MissingId));
        assert_eq!(parse(b"v=STSv1;"), Err(RecordError::MissingId));
    }

    #[test]
    fn exactly_one_record_must_begin_with_v_stsv1() {
        let good = b"v=STSv1; id=1".to_vec();
        assert_eq!(select(&[b"spf".to_vec(), good.clone()]), id("1"));
        assert_eq!(select(&[]), Err(RecordError::NotFound));
        assert_eq!(select(&[b"v=spf1 -all".to_vec()]), Err(RecordError::NotFound));
        // "v=STSv1" without ";" and "v=STSv12;" do not begin with "v=STSv1;": discarded.
        assert_eq!(select(&[b"v=STSv1".to_vec(), good.clone()]), id("1"));
        assert_eq!(select(&[b"v=STSv12;id=2".to_vec(), good.clone()]), id("1"));
        assert_eq!(select(&[b"v=STSv1 ;id=2".to_vec(), good.clone()]), id("1"));
        assert_eq!(select(&[b"V=STSV1;id=2".to_vec()]), Err(RecordError::NotFound));
        assert_eq!(select(&[good.clone(), b"v=STSv1;id=2".to_vec()]), Err(RecordError::Multiple { count: 2 }));
        // An invalid second record still counts as a record.
        assert_eq!(select(&[good, b"v=STSv1;junk".to_vec()]), Err(RecordError::Multiple { count: 2 }));
    }
}
