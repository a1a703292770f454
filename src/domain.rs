//! Request strings to validated domain names.
//!
//! Everything a lookup touches (DNS names, the policy host URL, log lines, answers) is derived from
//! a [`Domain`], so the request string is checked once, here: trimmed, lower-cased, one trailing
//! dot removed, U-labels converted to A-labels ([RFC 8461 §4.1] compares names in A-label form),
//! and refused unless it is a syntactically valid host name. Address literals and Postfix's
//! `.parent` probes are refused too: [RFC 8461 §3.4] gives them no policy.
//!
//! [RFC 8461 §4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1
//! [RFC 8461 §3.4]: https://www.rfc-editor.org/rfc/rfc8461#section-3.4

use std::fmt;
use std::net::IpAddr;

use crate::error::{escape, DomainError};

/// Longest accepted domain: `_mta-sts.` (9 bytes) plus the domain must fit in 253 bytes.
pub const MAX_LEN: usize = 253 - 9;

/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// A validated, normalised domain name in A-label form, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Normalises and validates a request string.
    ///
    /// # Errors
    ///
    /// A [`DomainError`] naming the first rule the string breaks.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if trimmed.is_empty() {
            return Err(DomainError::Empty);
        }
        if trimmed.starts_with('[') || trimmed.parse::<IpAddr>().is_ok() {
            return Err(DomainError::AddressLiteral);
        }
        let ascii = if trimmed.is_ascii() {
            trimmed.to_ascii_lowercase()
        } else {
            // Check the characters first: UTS #46 would silently map some of them (full-width
            // dots, for instance) to something acceptable.
            if let Some(c) = trimmed.chars().find(|c| c.is_control() || c.is_whitespace()) {
                return Err(bad_char(c));
            }
            idna::domain_to_ascii_strict(trimmed).map_err(|_| DomainError::Idna)?
        };
        check_host_name(&ascii)?;
        Ok(Self(ascii))
    }

    /// The name as text, in A-label form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `_mta-sts.<domain>.`, the TXT record name of [RFC 8461 §3.1], fully qualified so that no
    /// resolver search list applies.
    ///
    /// [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1
    pub fn record_name(&self) -> String {
        format!("_mta-sts.{}.", self.0)
    }

    /// `mta-sts.<domain>`, the policy host of [RFC 8461 §3.3].
    ///
    /// [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
    pub fn policy_host(&self) -> String {
        format!("mta-sts.{}", self.0)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks LDH syntax of an ASCII, lower-case name without a trailing dot.
///
/// Shared with the `mx` patterns of the policy, which follow the same host-name rules.
pub(crate) fn check_host_name(name: &str) -> Result<(), DomainError> {
    if name.len() > MAX_LEN {
        return Err(DomainError::TooLong { len: name.len() });
    }
    let mut all_numeric_tld = false;
    for label in name.split('.') {
        if label.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(DomainError::LabelTooLong);
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
            return Err(bad_char(c));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(DomainError::BadHyphen);
        }
        all_numeric_tld = label.bytes().all(|b| b.is_ascii_digit());
    }
    // A numeric last label is an IPv4 address in disguise ("10.1", "192.0.2.1"); no TLD is all
    // digits.
    if all_numeric_tld {
        return Err(DomainError::AddressLiteral);
    }
    Ok(())
}

fn bad_char(c: char) -> DomainError {
    DomainError::BadCharacter { found: escape(c.encode_utf8(&mut [0; 4]), 4) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_whitespace_trailing_dot_and_idn() {
        for (input, want) in [
            ("example.com", "example.com"),
            ("  Example.COM.  ", "example.com"),
            ("\tmail.example.com.\n", "mail.example.com"),
            ("bücher.example", "xn--bcher-kva.example"),
            ("BÜCHER.example", "xn--bcher-kva.example"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
            ("localhost", "localhost"),
            ("a-b.c0m", "a-b.c0m"),
        ] {
            assert_eq!(Domain::parse(input).unwrap().as_str(), want, "{input:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_host_name() {
        use DomainError::*;
        let long_label = "a".repeat(64) + ".com";
        let long_name = ["a".repeat(60).as_str(); 5].join(".");
        for (input, want) in [
            ("", Empty),
            ("   ", Empty),
            (".", Empty),
            (".example.com", EmptyLabel),
            ("example..com", EmptyLabel),
            ("example.com..", EmptyLabel),
            ("exa mple.com", BadCharacter { found: "\" \"".into() }),
            ("exa\0mple.com", BadCharacter { found: "\"\\x00\"".into() }),
            ("exa\nmple.com", BadCharacter { found: "\"\\x0a\"".into() }),
            ("exam_ple.com", BadCharacter { found: "\"_\"".into() }),
            ("*.example.com", BadCharacter { found: "\"*\"".into() }),
            ("example.com:25", BadCharacter { found: "\":\"".into() }),
            ("-example.com", BadHyphen),
            ("example-.com", BadHyphen),
            ("192.0.2.1", AddressLiteral),
            ("10.1", AddressLiteral),
            ("::1", AddressLiteral),
            ("[192.0.2.1]", AddressLiteral),
            ("[mail.example.com]", AddressLiteral),
            (long_label.as_str(), LabelTooLong),
            (long_name.as_str(), TooLong { len: 304 }),
        ] {
            assert_eq!(Domain::parse(input), Err(want), "{input:?}");
        }
        assert!(Domain::parse("bad\u{7f}ü.com").is_err());
        assert!(Domain::parse("ü ü.com").is_err());
    }

    #[test]
    fn derives_record_name_and_policy_host() {
        let d = Domain::parse("Example.com.").unwrap();
        assert_eq!(d.record_name(), "_mta-sts.example.com.");
        assert_eq!(d.policy_host(), "mta-sts.example.com");
    }

    #[test]
    fn longest_accepted_name_fits_the_record_name() {
        let name = format!("{}.{}.{}.{}", "a".repeat(61), "b".repeat(61), "c".repeat(61), "d".repeat(58));
        assert_eq!(name.len(), MAX_LEN);
        let d = Domain::parse(&name).unwrap();
        assert_eq!(d.record_name().len(), 254); // 253 + the root dot
        assert!(Domain::parse(&format!("e{name}")).is_err());
    }
}
