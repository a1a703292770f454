//! The `_smtp._tls` TXT record of SMTP TLS Reporting ([RFC 8460 §3]).
//!
//! ```text
//! tlsrpt-record     = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//! field-delim       = *WSP ";" *WSP
//! tlsrpt-field      = tlsrpt-rua / tlsrpt-extension     ; tlsrpt-rua is required
//! tlsrpt-version    = %s"v=TLSRPTv1"
//! tlsrpt-rua        = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//! tlsrpt-uri        = URI        ; RFC 3986; "," "!" and ";" MUST be percent-encoded
//! tlsrpt-extension  = tlsrpt-ext-name "=" tlsrpt-ext-value
//! tlsrpt-ext-name   = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//! tlsrpt-ext-value  = 1*(%x21-3A / %x3C / %x3E-7E)
//! ```
//!
//! The resolver itself never reads this record: a sending MTA that writes reports does. It is
//! parsed here so that `mta-sts check` judges a domain's reporting address with the same strict
//! grammar a reporter would apply, and `mta-sts generate` can prove its own output. Strict
//! readings: only the `mailto` and `https` schemes are accepted ("Two URI schemes are supported",
//! §3), a `mailto` URI names exactly one address with a valid host name, and a repeated `rua`
//! field is ignored after the first, as repeated fields are in [`crate::record`].
//!
//! [RFC 8460 §3]: https://www.rfc-editor.org/rfc/rfc8460#section-3

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::dns::Dns;
use crate::domain::{check_host_name, Domain};
use crate::error::{escape, escape_bytes, DnsError};
use crate::record::{is_ext_name, is_ext_value, trim_wsp};

/// The prefix that selects TLSRPT records among the TXT records of `_smtp._tls.<domain>`.
const PREFIX: &[u8] = b"v=TLSRPTv1;";

/// A parsed `_smtp._tls` TXT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsrptRecord {
    /// The `rua` URIs in record order: where reporters send aggregate reports.
    pub rua: Vec<ReportUri>,
}

/// One `rua` URI, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scheme", content = "uri", rename_all = "lowercase")]
pub enum ReportUri {
    /// `mailto:` one address: reports are mailed there.
    Mailto(String),
    /// `https:` a URL: reports are POSTed there.
    Https(String),
}

impl ReportUri {
    /// Validates one `rua` URI: `mailto:local@host` (with optional `?` header fields) or
    /// `https://host[:port][/path][?query][#fragment]`, RFC 3986 characters only, with `,`, `!`
    /// and `;` percent-encoded as RFC 8460 §3 requires.
    ///
    /// # Errors
    ///
    /// [`TlsrptError::BadUri`] naming the rule the URI breaks.
    pub fn parse(uri: &str) -> Result<Self, TlsrptError> {
        let bad = |reason: &str| TlsrptError::BadUri { uri: escape(uri, 80), reason: reason.to_owned() };
        let (scheme, rest) = uri.split_once(':').ok_or_else(|| bad("no scheme; use mailto: or https:"))?;
        // RFC 3986 §3.1: "schemes are case-insensitive".
        match scheme.to_ascii_lowercase().as_str() {
            "mailto" => check_mailto(rest).map(|()| Self::Mailto(uri.to_owned())).map_err(bad),
            "https" => check_https(rest).map(|()| Self::Https(uri.to_owned())).map_err(bad),
            _ => Err(bad("scheme is neither mailto: nor https:")),
        }
    }

    /// The URI as published.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Mailto(uri) | Self::Https(uri) => uri,
        }
    }
}

impl fmt::Display for ReportUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a `_smtp._tls` lookup gave no usable record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TlsrptError {
    /// NXDOMAIN or NODATA, or no record starting with `v=TLSRPTv1;`.
    NotFound,
    /// More than one record starts with `v=TLSRPTv1;`: "If the number of resulting records is
    /// not one, senders MUST assume the recipient domain does not implement TLSRPT" (§3).
    Multiple {
        /// How many did.
        count: usize,
    },
    /// The record does not follow the grammar.
    Syntax {
        /// What is wrong, with the offending part escaped.
        reason: String,
    },
    /// No `rua` field; it is required.
    MissingRua,
    /// A `rua` URI that is not a well-formed `mailto:` or `https:` URI.
    BadUri {
        /// The URI, escaped and truncated.
        uri: String,
        /// The rule it breaks.
        reason: String,
    },
    /// The lookup itself failed temporarily.
    Dns(DnsError),
}

impl fmt::Display for TlsrptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("tlsrpt: no _smtp._tls TXT record"),
            Self::Multiple { count } => write!(f, "tlsrpt: {count} _smtp._tls records, exactly one allowed"),
            Self::Syntax { reason } => write!(f, "tlsrpt: {reason}"),
            Self::MissingRua => f.write_str("tlsrpt: no rua field"),
            Self::BadUri { uri, reason } => write!(f, "tlsrpt: rua {uri}: {reason}"),
            Self::Dns(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for TlsrptError {}

/// `_smtp._tls.<domain>.`, the TXT record name of RFC 8460 §3, fully qualified.
pub fn record_name(domain: &Domain) -> String {
    format!("_smtp._tls.{domain}.")
}

/// Looks up `_smtp._tls.<domain>` and returns its one valid record.
///
/// # Errors
///
/// [`TlsrptError::NotFound`] for NXDOMAIN, NODATA or no `v=TLSRPTv1;` record,
/// [`TlsrptError::Dns`] for a temporary DNS failure, and the other variants for a record that
/// breaks the rules.
pub fn discover(dns: &dyn Dns, domain: &Domain) -> Result<TlsrptRecord, TlsrptError> {
    let records = dns.txt(&record_name(domain)).map_err(TlsrptError::Dns)?;
    select(&records)
}

/// Picks the one TLSRPT record among the TXT records of one name, each given as the
/// concatenation of its character-strings, and parses it.
///
/// # Errors
///
/// As [`discover`], without the DNS case.
pub fn select(records: &[Vec<u8>]) -> Result<TlsrptRecord, TlsrptError> {
    // "records that do not begin with "v=TLSRPTv1;" are discarded. If the number of resulting
    // records is not one, senders MUST assume the recipient domain does not implement TLSRPT"
    // (§3).
    let mut candidates = records.iter().filter(|r| r.starts_with(PREFIX));
    let Some(record) = candidates.next() else {
        return Err(TlsrptError::NotFound);
    };
    let extra = candidates.count();
    if extra > 0 {
        return Err(TlsrptError::Multiple { count: extra + 1 });
    }
    parse(record)
}

/// Parses one record. The fields are checked first and the `rua` URIs after, so a
/// [`TlsrptError::BadUri`] means the record's structure is sound.
///
/// # Errors
///
/// [`TlsrptError::Syntax`], [`TlsrptError::MissingRua`] or [`TlsrptError::BadUri`].
pub fn parse(record: &[u8]) -> Result<TlsrptRecord, TlsrptError> {
    let text = std::str::from_utf8(record)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| syntax(format!("non-ASCII bytes in {}", escape_bytes(record, 60))))?;
    let rest = text.strip_prefix("v=TLSRPTv1").ok_or_else(|| syntax("does not start with v=TLSRPTv1".into()))?;
    let mut fields = rest.split(';').map(trim_wsp);
    if fields.next() != Some("") {
        return Err(syntax("v=TLSRPTv1 must be followed by ;".into()));
    }
    let mut rua = None;
    let mut seen_field = false;
    let mut ended = false;
    for field in fields {
        // Only one trailing separator is allowed: ";;" or "; ;" is an empty field.
        if field.is_empty() && !ended {
            ended = true;
            continue;
        }
        if ended || field.is_empty() {
            return Err(syntax("empty field".into()));
        }
        seen_field = true;
        let (name, value) =
            field.split_once('=').ok_or_else(|| syntax(format!("field {} is not name=value", escape(field, 40))))?;
        if name == "rua" {
            if value.is_empty() {
                return Err(syntax("empty rua".into()));
            }
            rua.get_or_insert(value);
        } else if !is_ext_name(name) || !is_ext_value(value) {
            // "unknown fields SHALL be ignored" (§3), but only fields that follow the grammar.
            return Err(syntax(format!("invalid field {}", escape(field, 40))));
        }
    }
    if !seen_field {
        return Err(TlsrptError::MissingRua);
    }
    let rua = rua.ok_or(TlsrptError::MissingRua)?;
    let uris = rua
        .split(',')
        .map(trim_wsp)
        .map(|uri| if uri.is_empty() { Err(syntax("empty URI in rua".into())) } else { ReportUri::parse(uri) })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TlsrptRecord { rua: uris })
}

/// `mailto:` followed by one `local@host` and optional `?` header fields (RFC 6068), where a
/// `,` would list a second address and must therefore be encoded (RFC 8460 §3).
fn check_mailto(rest: &str) -> Result<(), &'static str> {
    let (address, hfields) = match rest.split_once('?') {
        Some((a, h)) => (a, Some(h)),
        None => (rest, None),
    };
    let (local, host) = address.rsplit_once('@').ok_or("mailto: address has no @")?;
    if local.is_empty() {
        return Err("mailto: address has an empty local part");
    }
    if !local.split('%').skip(1).all(is_pct_tail) {
        return Err("bad percent-encoding");
    }
    if let Some(c) = local
        .chars()
        .find(|&c| !(is_unreserved(c) || matches!(c, '%' | '$' | '\'' | '(' | ')' | '*' | '+' | '=' | '&')))
    {
        return Err(forbidden(c));
    }
    check_host_name(&host.to_ascii_lowercase()).map_err(|_| "mailto: the part after @ is not a host name")?;
    if let Some(h) = hfields {
        check_uri_chars(h)?;
    }
    Ok(())
}

/// `//host[:port]` followed by a path, query and fragment of RFC 3986 characters.
fn check_https(rest: &str) -> Result<(), &'static str> {
    let rest = rest.strip_prefix("//").ok_or("https: must be followed by //")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err("https: credentials in the URI are not accepted");
    }
    let (host, port) = split_port(authority)?;
    if let Some(port) = port {
        if port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p > 65535)
        {
            return Err("https: bad port");
        }
    }
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host_ok = match literal {
        Some(v6) => v6.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<IpAddr>().is_ok() || check_host_name(&host.to_ascii_lowercase()).is_ok(),
    };
    if !host_ok {
        return Err("https: no valid host name");
    }
    let (path_query, fragment) = match tail.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (tail, None),
    };
    check_uri_chars(path_query)?;
    if let Some(f) = fragment {
        if f.contains('#') {
            return Err(forbidden('#'));
        }
        check_uri_chars(f)?;
    }
    Ok(())
}

/// Splits `host:port`, minding `[v6]:port`.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), &'static str> {
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or("https: unclosed [")?;
        let (host, after) = authority.split_at(close + 1);
        return match after {
            "" => Ok((host, None)),
            _ => after.strip_prefix(':').map(|p| (host, Some(p))).ok_or("https: bad port"),
        };
    }
    Ok(match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

/// RFC 3986 `pchar / "/" / "?"`, less the `,` `!` and `;` that RFC 8460 §3 requires encoded.
fn check_uri_chars(s: &str) -> Result<(), &'static str> {
    if !s.split('%').skip(1).all(is_pct_tail) {
        return Err("bad percent-encoding");
    }
    let allowed = |c: char| {
        is_unreserved(c) || matches!(c, '%' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | '=' | ':' | '@' | '/' | '?')
    };
    match s.chars().find(|&c| !allowed(c)) {
        Some(c) => Err(forbidden(c)),
        None => Ok(()),
    }
}

fn forbidden(c: char) -> &'static str {
    match c {
        ',' | '!' | ';' => "\",\", \"!\" and \";\" must be percent-encoded",
        ' ' | '\t' => "contains white space",
        _ => "contains a character URIs do not allow",
    }
}

/// What follows a `%`: two hex digits (then anything).
fn is_pct_tail(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0].is_ascii_hexdigit() && b[1].is_ascii_hexdigit()
}

/// RFC 3986 `unreserved`.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

fn syntax(reason: String) -> TlsrptError {
    TlsrptError::Syntax { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(record: &str) -> Result<Vec<String>, TlsrptError> {
        parse(record.as_bytes()).map(|r| r.rua.iter().map(|u| u.as_str().to_owned()).collect())
    }

    #[test]
    fn valid_records_rfc8460_3() {
        for (input, want) in [
            ("v=TLSRPTv1;rua=mailto:reports@example.com", vec!["mailto:reports@example.com"]),
            ("v=TLSRPTv1; rua=mailto:postmaster@example.com", vec!["mailto:postmaster@example.com"]),
            (
                "v=TLSRPTv1; rua=https://reporting.example.com/v1/tlsrpt",
                vec!["https://reporting.example.com/v1/tlsrpt"],
            ),
            ("v=TLSRPTv1 ;rua=mailto:a@example.com;", vec!["mailto:a@example.com"]),
            ("v=TLSRPTv1;\trua=mailto:a@example.com\t;\t", vec!["mailto:a@example.com"]),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com, https://r.example.net:8443/x?y=1",
                vec!["mailto:a@example.com", "https://r.example.net:8443/x?y=1"],
            ),
            (
                "v=TLSRPTv1;rua=mailto:a@example.com,mailto:b@example.org",
                vec!["mailto:a@example.com", "mailto:b@example.org"],
            ),
            ("v=TLSRPTv1; ext=v.a-l:u<e>; rua=mailto:a@example.com", vec!["mailto:a@example.com"]),
            (
                "v=TLSRPTv1; rua=mailto:first@example.com; rua=mailto:second@example.com",
                vec!["mailto:first@example.com"],
            ),
            ("v=TLSRPTv1; rua=MAILTO:Tls.Rpt+x%2Cy@Example.COM", vec!["MAILTO:Tls.Rpt+x%2Cy@Example.COM"]),
            (
                "v=TLSRPTv1; rua=mailto:a@example.com?subject=tls%20report",
                vec!["mailto:a@example.com?subject=tls%20report"],
            ),
            ("v=TLSRPTv1; rua=https://[2001:db8::1]/r", vec!["https://[2001:db8::1]/r"]),
            ("v=TLSRPTv1; rua=https://192.0.2.1", vec!["https://192.0.2.1"]),
            ("v=TLSRPTv1; rua=https://r.example/a%21b#frag", vec!["https://r.example/a%21b#frag"]),
        ] {
            assert_eq!(uris(input), Ok(want.iter().map(|s| s.to_string()).collect()), "{input:?}");
        }
    }

    #[test]
    fn structural_errors_rfc8460_3() {
        for input in [
            "v=TLSRPTv1; ;rua=mailto:a@example.com",      // empty field
            "v=TLSRPTv1;rua=mailto:a@example.com;;",      // two trailing separators
            "v=TLSRPTv1;rua",                             // not name=value
            "v=TLSRPTv1;rua=",                            // empty rua
            "v=TLSRPTv1;rua=mailto:a@example.com;ext=",   // empty extension value
            "v=TLSRPTv1;rua=mailto:a@example.com;e xt=1", // space in name
            "v=TLSRPTv1;rua=mailto:a@example.com;_x=1",   // name must start with a letter or digit
            "v=TLSRPTv1;rua=mailto:a@example.com;x=a=b",  // "=" in value
            "v=TLSRPTv1;rua=mailto:a@example.com;x=a b",  // space in value
            "v=TLSRPTv1x;rua=mailto:a@example.com",       // version must be followed by ;
            "v=TLSRPTv1;rua=mailto:a@exämple.com",        // non-ASCII
            "v=TLSRPTv1;rua=mailto:a@example.com,",       // empty URI after ","
            "v=TLSRPTv1;rua=mailto:a@example.com, ,mailto:b@example.com",
        ] {
            assert!(
                matches!(parse(input.as_bytes()), Err(TlsrptError::Syntax { .. })),
                "{input:?}: {:?}",
                parse(input.as_bytes())
            );
        }
        assert_eq!(parse(b"v=TLSRPTv1;"), Err(TlsrptError::MissingRua));
        assert_eq!(parse(b"v=TLSRPTv1;ext=1"), Err(TlsrptError::MissingRua));
    }

    #[test]
    fn rua_uris_must_be_mailto_or_https_and_well_formed() {
        for uri in [
            "postmaster@example.com",         // no scheme
            "http://r.example.com/",          // plain http
            "ftp://r.example.com/",           // other scheme
            "mailto:",                        // no address
            "mailto:example.com",             // no @
            "mailto:@example.com",            // empty local part
            "mailto:a@",                      // no host
            "mailto:a@exa_mple.com",          // bad host
            "mailto:a@example.com.",          // trailing dot
            "mailto:a!b@example.com",         // "!" must be encoded
            "mailto:a@example.com!10m",       // DMARC size suffix is not TLSRPT
            "mailto:a b@example.com",         // space
            "mailto:a%2@example.com",         // broken percent-encoding
            "mailto:a\"b@example.com",        // quote
            "https:r.example.com",            // no //
            "https://",                       // no host
            "https://r.example.com:/x",       // empty port
            "https://r.example.com:99999/x",  // port out of range
            "https://r.example.com:8a/x",     // bad port
            "https://user:pw@r.example.com/", // credentials
            "https://r.example.com/a b",      // space in path
            "https://r.example.com/a,b",      // "," must be encoded
            "https://r.example.com/a#b#c",    // two fragments
            "https://[2001:db8::1/x",         // unclosed literal
            "https://[not-v6]/x",             // bad literal
            "https://r.example.com/%zz",      // bad percent-encoding
            "https://r.example.com/<x>",      // not a URI character
        ] {
            let record = format!("v=TLSRPTv1; rua={uri}");
            assert!(
                matches!(parse(record.as_bytes()), Err(TlsrptError::BadUri { .. })),
                "{uri:?}: {:?}",
                parse(record.as_bytes())
            );
        }
    }

    #[test]
    fn exactly_one_record_must_begin_with_v_tlsrptv1() {
        let good = b"v=TLSRPTv1; rua=mailto:a@example.com".to_vec();
        assert!(select(&[b"v=spf1 -all".to_vec(), good.clone()]).is_ok());
        assert_eq!(select(&[]), Err(TlsrptError::NotFound));
        assert_eq!(select(&[b"v=STSv1; id=1".to_vec()]), Err(TlsrptError::NotFound));
        // "v=TLSRPTv1 ;" does not begin with "v=TLSRPTv1;" and is discarded.
        assert_eq!(select(&[b"v=TLSRPTv1 ;rua=mailto:a@example.com".to_vec()]), Err(TlsrptError::NotFound));
        assert_eq!(select(&[b"V=TLSRPTV1;rua=mailto:a@example.com".to_vec()]), Err(TlsrptError::NotFound));
        assert_eq!(select(&[good.clone(), good.clone()]), Err(TlsrptError::Multiple { count: 2 }));
        assert_eq!(select(&[good, b"v=TLSRPTv1;junk".to_vec()]), Err(TlsrptError::Multiple { count: 2 }));
    }

    #[test]
    fn errors_display_one_escaped_line() {
        let e = parse(b"v=TLSRPTv1; rua=mailto:a\x01@example.com").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("tlsrpt: rua \"mailto:a\\x01@example.com\""), "{text}");
        assert!(!text.contains('\n'));
        assert_eq!(record_name(&Domain::parse("Example.com").unwrap()), "_smtp._tls.example.com.");
    }
}
