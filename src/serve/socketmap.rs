//! The socketmap protocol of Postfix (`socketmap_table(5)`) and Sendmail (map class `socket`):
//! one netstring ([`super::netstring`]) request `NAME KEY`, one netstring reply.
//!
//! Keys are normalised as postfix-mta-sts-resolver does (`utils.filter_domain` and
//! `process_request`), because Postfix and Sendmail send more than domains:
//! 1. `[host]:port` and `[host]` become `host` (explicit next hops and relay hosts, whose
//!    policy domain is the host, [RFC 8461 §3.4]); otherwise a `:port` suffix is dropped;
//! 2. surrounding white space and one trailing dot are removed, and the name is lower-cased;
//! 3. a key starting with `.` is one of Postfix's parent-domain probes (`.example.com` after
//!    `sub.example.com`) and is answered `NOTFOUND ` at once: "senders MUST NOT apply a
//!    parent's policy" to a subdomain ([RFC 8461 §3.4]); so are address literals and empty keys.
//!
//! Everything after the first space belongs to the key, so `NAME dom extra` finds no policy.
//!
//! The replies, byte for byte those of postfix-mta-sts-resolver where it has them:
//!
//! | dialect | answer | reply |
//! |---|---|---|
//! | postfix, postfix-tlsrpt, sendmail | enforce (or testing with `strict_testing`) | `OK secure match=... servername=hostname` (+ TLSRPT attributes in postfix-tlsrpt) |
//! | postfix, postfix-tlsrpt, sendmail | anything else, or a key that is not a domain | `NOTFOUND ` (with the space) |
//! | postfix, postfix-tlsrpt, sendmail | temporary failure, nothing cached | `TEMP <reason>`, or `NOTFOUND ` with `on_tempfail = "notfound"` |
//! | exim, json | every looked-up answer, temporary failures included (`mode=defer`, `"status":"tempfail"`) | `OK <line>` |
//! | exim, json | a key that is not a domain | `NOTFOUND ` |
//! | any | a framing fault | `PERM <reason>`, then the connection is closed |
//!
//! Upstream never answers `TEMP`; we do by default because a temporary DNS failure with nothing
//! cached must not strip a policy the domain may publish (the MTA defers and asks again).
//!
//! [RFC 8461 §3.4]: https://www.rfc-editor.org/rfc/rfc8461#section-3.4

use std::net::IpAddr;

use super::netstring;
use super::zones::{Zone, Zones};
use crate::config::{Dialect, OnTempfail};
use crate::domain::Domain;
use crate::error::Error;
use crate::render::{Answer, Status};
use crate::resolve::Resolver;

/// Longest reason text in a `TEMP` or `PERM` reply.
const MAX_REASON: usize = 512;

/// One request, split at the first space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The map name: the last field of Postfix's `socketmap:...:NAME`, `sts` for Sendmail.
    pub name: &'a [u8],
    /// Everything after the first space; empty when there is none.
    pub key: &'a [u8],
}

impl<'a> Request<'a> {
    /// Splits a request at its first space. A request without one has an empty key, which
    /// finds no policy, as upstream.
    pub fn parse(data: &'a [u8]) -> Self {
        match data.iter().position(|&b| b == b' ') {
            Some(i) => Self { name: &data[..i], key: &data[i + 1..] },
            None => Self { name: data, key: b"" },
        }
    }
}

/// What a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// A name to look up, not yet validated.
    Domain(&'a str),
    /// A parent-domain probe (`.example.com`).
    Parent,
    /// An IP address, bare or in brackets.
    Address,
    /// Nothing (no key, or only white space, brackets or a port).
    Empty,
    /// Bytes that are not UTF-8.
    NotText,
}

/// Normalises a key as described in the [module docs](self), up to the validation that
/// [`Domain::parse`] does.
pub fn normalise_key(key: &[u8]) -> Key<'_> {
    let Ok(text) = std::str::from_utf8(key) else { return Key::NotText };
    let text = text.trim();
    if text.parse::<IpAddr>().is_ok() {
        return Key::Address;
    }
    let host = match text.strip_prefix('[').and_then(|rest| rest.split_once(']')) {
        Some((host, tail)) if tail.is_empty() || is_port(tail) => host,
        // Not `[host]` nor `[host]:port`: left whole for `Domain::parse` to refuse.
        Some(_) => text,
        None => text.rsplit_once(':').map_or(text, |(host, _)| host),
    };
    let host = host.trim();
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        Key::Empty
    } else if host.starts_with('.') {
        Key::Parent
    } else if host.parse::<IpAddr>().is_ok() {
        Key::Address
    } else {
        Key::Domain(host)
    }
}

fn is_port(tail: &str) -> bool {
    tail.strip_prefix(':').is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
}

/// A socketmap reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `OK <data>`.
    Ok(String),
    /// `NOTFOUND ` (with the trailing space, as upstream sends it and both MTAs accept).
    NotFound,
    /// `TEMP <reason>`: the MTA defers.
    Temp(String),
    /// `PERM <reason>`.
    Perm(String),
}

impl Reply {
    /// A `TEMP` reply; the reason is made one line of printable ASCII.
    pub fn temp(reason: &str) -> Self {
        Self::Temp(reason_text(reason))
    }

    /// A `PERM` reply; the reason is made one line of printable ASCII.
    pub fn perm(reason: &str) -> Self {
        Self::Perm(reason_text(reason))
    }

    /// The status word.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Ok(_) => "OK",
            Self::NotFound => "NOTFOUND",
            Self::Temp(_) => "TEMP",
            Self::Perm(_) => "PERM",
        }
    }

    /// Appends the reply as one netstring to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let text = match self {
            Self::Ok(text) | Self::Temp(text) | Self::Perm(text) => text.as_str(),
            Self::NotFound => "",
        };
        let status = self.status();
        let len = status.len() + 1 + text.len();
        out.extend_from_slice(len.to_string().as_bytes());
        out.push(b':');
        out.extend_from_slice(status.as_bytes());
        out.push(b' ');
        out.extend_from_slice(text.as_bytes());
        out.push(b',');
        debug_assert!(netstring::decode(out, usize::MAX).is_ok());
    }
}

/// Answers one request: normalises the key, looks it up, renders the answer in the zone's
/// dialect. Never fails: whatever the request holds, it gets a reply.
pub fn respond(resolver: &Resolver, zones: &Zones, data: &[u8]) -> Reply {
    let request = Request::parse(data);
    let zone = zones.get(request.name);
    let name = match normalise_key(request.key) {
        Key::Domain(name) => name,
        other => {
            tracing::debug!(map = %shown(request.name), key = %shown(request.key), kind = ?other, "not a policy domain");
            return Reply::NotFound;
        }
    };
    let answer = match Domain::parse(name) {
        Ok(domain) => Answer::Decided { decision: resolver.lookup(&domain), mx: None },
        Err(e) => Answer::Invalid(Error::Domain(e)),
    };
    super::server::log_answer(&shown(request.name), &answer);
    reply(zone, &answer)
}

/// The reply to one answer in a zone (the table of the [module docs](self)).
pub fn reply(zone: &Zone, answer: &Answer) -> Reply {
    match zone.dialect {
        Dialect::Exim | Dialect::Json => match answer {
            Answer::Decided { .. } => Reply::Ok(zone.render(answer)),
            Answer::Invalid(_) => Reply::NotFound,
        },
        Dialect::Postfix | Dialect::PostfixTlsrpt | Dialect::Sendmail => {
            let line = zone.render(answer);
            if !line.is_empty() {
                return Reply::Ok(line);
            }
            match (answer.status(), zone.on_tempfail) {
                (Status::Tempfail, OnTempfail::Temp) => {
                    Reply::temp(&answer.error().map(ToString::to_string).unwrap_or_default())
                }
                (Status::Tempfail, OnTempfail::Notfound) => Reply::NotFound,
                // Mode none, testing without strict_testing, no policy, a bad name.
                (Status::Policy | Status::NoPolicy | Status::Error, _) => Reply::NotFound,
            }
        }
    }
}

/// Request bytes for a log line: escaped and truncated.
fn shown(bytes: &[u8]) -> String {
    let text = crate::error::escape_bytes(bytes, 64);
    // `escape` quotes; a plain map name reads better bare.
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() && !inner.contains(['\\', ' ']) => inner.to_owned(),
        _ => text,
    }
}

/// One line of printable ASCII, at most [`MAX_REASON`] bytes: a reason travels into the MTA's
/// log.
fn reason_text(reason: &str) -> String {
    let mut out: String =
        reason.chars().map(|c| if (' '..='~').contains(&c) { c } else { '?' }).take(MAX_REASON).collect();
    if out.is_empty() {
        out.push_str("temporary failure");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OutputConfig;
    use crate::render::tests::{answer, invalid, no_policy, policy, tempfail, RFC_EXAMPLE};

    fn wire(reply: &Reply) -> Vec<u8> {
        let mut out = Vec::new();
        reply.encode(&mut out);
        out
    }

    #[test]
    fn requests_split_at_the_first_space() {
        for (data, name, key) in [
            (&b"postfix example.com"[..], &b"postfix"[..], &b"example.com"[..]),
            (b"sts  example.com", b"sts", b" example.com"),
            (b"postfix example.com extra", b"postfix", b"example.com extra"),
            (b"postfix", b"postfix", b""),
            (b"", b"", b""),
            (b" example.com", b"", b"example.com"),
        ] {
            assert_eq!(Request::parse(data), Request { name, key }, "{data:?}");
        }
    }

    #[test]
    fn keys_normalise_as_upstream() {
        use Key::*;
        for (key, want) in [
            // compat §1 step 1: brackets and ports
            (&b"example.com"[..], Domain("example.com")),
            (b"[mail.example.com]", Domain("mail.example.com")),
            (b"[mail.example.com]:25", Domain("mail.example.com")),
            (b"mail.example.com:587", Domain("mail.example.com")),
            (b"[mail.example.com]:", Domain("[mail.example.com]:")),
            (b"[mail.example.com]x", Domain("[mail.example.com]x")),
            // step 2: white space and one trailing dot (case is left to Domain::parse)
            (b" Example.COM. ", Domain("Example.COM")),
            (b"example.com..", Domain("example.com.")),
            (b"\texample.com:25\t", Domain("example.com")),
            // step 3: parent probes
            (b".example.com", Parent),
            (b".com", Parent),
            (b"[.example.com]", Parent),
            // step 4: address literals
            (b"192.0.2.1", Address),
            (b"[192.0.2.1]", Address),
            (b"[192.0.2.1]:25", Address),
            (b"192.0.2.1:25", Address),
            (b"2001:db8::1", Address),
            (b"[2001:db8::1]", Address),
            (b"[2001:db8::1]:25", Address),
            // empty
            (b"", Empty),
            (b"   ", Empty),
            (b".", Empty),
            (b"[]", Empty),
            (b":25", Empty),
            (b"\xff.example", NotText),
            // step 5: the rest is part of the name
            (b"example.com extra", Domain("example.com extra")),
        ] {
            assert_eq!(normalise_key(key), want, "{:?}", String::from_utf8_lossy(key));
        }
    }

    /// compat-postfix-mta-sts-resolver.md §1, "Replies": byte for byte.
    #[test]
    fn wire_bytes_of_each_reply_shape() {
        assert_eq!(wire(&Reply::NotFound), b"9:NOTFOUND ,");
        assert_eq!(
            wire(&Reply::Ok("secure match=mx.example.com servername=hostname".into())),
            b"50:OK secure match=mx.example.com servername=hostname,"
        );
        assert_eq!(wire(&Reply::temp("dns: timeout")), b"17:TEMP dns: timeout,");
        assert_eq!(wire(&Reply::perm("bad\nline\u{e9}")), b"14:PERM bad?line?,");
        assert_eq!(wire(&Reply::temp("")), b"22:TEMP temporary failure,");
        assert_eq!(wire(&Reply::temp(&"x".repeat(2000))).len(), "517:TEMP ".len() + 512 + 1);
    }

    fn zone(dialect: Dialect, strict_testing: bool, require_sni: bool, on_tempfail: OnTempfail) -> Zone {
        Zone { dialect, output: OutputConfig { strict_testing, require_sni }, on_tempfail }
    }

    #[test]
    fn replies_per_dialect() {
        let rfc = "secure match=mail.example.com:.example.net:backupmx.example.com";
        let testing = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 86400\n";
        let none = "version: STSv1\nmode: none\nmax_age: 86400\n";
        let postfix = zone(Dialect::Postfix, false, true, OnTempfail::Temp);
        let no_sni = zone(Dialect::Postfix, false, false, OnTempfail::Temp);
        let strict = zone(Dialect::Postfix, true, true, OnTempfail::Notfound);
        let sendmail = zone(Dialect::Sendmail, false, false, OnTempfail::Temp);
        let tlsrpt = zone(Dialect::PostfixTlsrpt, false, true, OnTempfail::Temp);
        let exim = zone(Dialect::Exim, false, true, OnTempfail::Notfound);
        let json = zone(Dialect::Json, false, true, OnTempfail::Notfound);
        let temp = "TEMP dns: _mta-sts.example.com.: timed out".to_owned();
        for (zone, answer, want) in [
            (&postfix, answer(policy(RFC_EXAMPLE), None), format!("OK {rfc} servername=hostname")),
            (&no_sni, answer(policy(RFC_EXAMPLE), None), format!("OK {rfc}")),
            (&sendmail, answer(policy(RFC_EXAMPLE), None), format!("OK {rfc} servername=hostname")),
            (&postfix, answer(policy(testing), None), "NOTFOUND ".into()),
            (&strict, answer(policy(testing), None), "OK secure match=mx.example.org servername=hostname".into()),
            (&strict, answer(policy(none), None), "NOTFOUND ".into()),
            (&postfix, answer(no_policy(true), None), "NOTFOUND ".into()),
            (&postfix, answer(no_policy(false), None), "NOTFOUND ".into()),
            (&postfix, answer(tempfail(), None), temp.clone()),
            (&sendmail, answer(tempfail(), None), temp.clone()),
            (&strict, answer(tempfail(), None), "NOTFOUND ".into()),
            (&postfix, invalid("a..b"), "NOTFOUND ".into()),
            (&tlsrpt, answer(policy(testing), None), "NOTFOUND ".into()),
            (&exim, answer(no_policy(false), None), "OK mode=none".into()),
            (&exim, answer(tempfail(), None), "OK mode=defer error=\"dns: _mta-sts.example.com.: timed out\"".into()),
            (&exim, invalid("a..b"), "NOTFOUND ".into()),
            (&json, invalid("a..b"), "NOTFOUND ".into()),
        ] {
            let mut got = Vec::new();
            reply(zone, &answer).encode(&mut got);
            let data = &got[netstring::decode(&got, usize::MAX).unwrap().unwrap().data];
            assert_eq!(String::from_utf8_lossy(data), want, "{zone:?} {answer:?}");
        }
        let Reply::Ok(line) = reply(&tlsrpt, &answer(policy(RFC_EXAMPLE), None)) else { panic!() };
        assert!(
            line.starts_with(&format!("{rfc} servername=hostname policy_type=sts policy_domain=example.com ")),
            "{line}"
        );
        let Reply::Ok(line) = reply(&json, &answer(tempfail(), None)) else { panic!() };
        assert!(line.contains("\"status\":\"tempfail\""), "{line}");
    }
}
