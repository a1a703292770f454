//! The DNS side of `mta-sts check`: the `_mta-sts` record ([RFC 8461 §3.1]), the `_smtp._tls`
//! record ([RFC 8460 §3]), the policy host's addresses ([RFC 8461 §3.3]) and the domain's MX
//! records. The records are judged by [`crate::record::select`] and [`crate::tlsrpt::select`],
//! the code senders run; this module only explains their verdicts.
//!
//! [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1
//! [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
//! [RFC 8460 §3]: https://www.rfc-editor.org/rfc/rfc8460#section-3

use std::net::IpAddr;

use super::report::{Check, Kind};
use crate::dns::Dns;
use crate::domain::Domain;
use crate::error::{escape, escape_bytes, RecordError};
use crate::record::{self, Record};
use crate::tlsrpt::{self, TlsrptError, TlsrptRecord};

/// Most MX hosts checked; a domain with more is unusual, and each costs an SMTP session.
pub const MAX_MX_HOSTS: usize = 10;

/// Checks the `_mta-sts` TXT record: present and exactly one, its syntax, its id.
pub fn sts_record(dns: &dyn Dns, domain: &Domain) -> (Vec<Check>, Option<Record>) {
    let name = domain.record_name();
    let shown = name.trim_end_matches('.');
    let publish = format!(
        "publish the TXT record \"v=STSv1; id=<letters and digits>;\" at {shown} (mta-sts generate writes one)"
    );
    let records = match dns.txt(&name) {
        Ok(records) => records,
        Err(e) => {
            let fix = format!("make sure the authoritative name servers of {domain} answer TXT queries for {shown}");
            return (vec![Check::failure(Kind::StsRecord, format!("the lookup failed: {e}"), fix)], None);
        }
    };
    match record::select(&records) {
        Ok(record) => {
            // `select` found exactly one record beginning with the prefix; show that one.
            let text =
                records.iter().find(|r| r.starts_with(b"v=STSv1;")).map(|r| escape_bytes(r, 100)).unwrap_or_default();
            let checks = vec![
                Check::pass(Kind::StsRecord, format!("{shown} has one v=STSv1 record")),
                Check::pass(Kind::StsRecordSyntax, text),
                Check::pass(Kind::StsRecordId, format!("id {} is 1 to 32 letters or digits", record.id)),
            ];
            (checks, Some(record))
        }
        Err(RecordError::NotFound) => {
            let summary = match near_miss(&records, b"v=stsv1") {
                Some(r) => format!(
                    "no TXT record at {shown} begins with exactly \"v=STSv1;\", so senders ignore {}",
                    escape_bytes(r, 60)
                ),
                None if records.is_empty() => format!("no TXT record at {shown}"),
                None => format!("none of the {} TXT records at {shown} begins with \"v=STSv1;\"", records.len()),
            };
            (vec![Check::failure(Kind::StsRecord, summary, publish)], None)
        }
        Err(RecordError::Multiple { count }) => {
            let summary = format!(
                "{count} TXT records at {shown} begin with \"v=STSv1;\", and senders ignore them all (RFC 8461 §3.1)"
            );
            (vec![Check::failure(Kind::StsRecord, summary, "keep exactly one v=STSv1 record")], None)
        }
        Err(e @ (RecordError::Syntax { .. } | RecordError::MissingId | RecordError::BadId { .. })) => {
            let present = Check::pass(Kind::StsRecord, format!("{shown} has one v=STSv1 record"));
            let detail = e.to_string().trim_start_matches("record: ").to_owned();
            let checks = match e {
                RecordError::Syntax { .. } => vec![
                    present,
                    Check::failure(
                        Kind::StsRecordSyntax,
                        detail,
                        "write the record as \"v=STSv1; id=<id>;\": fields name=value separated by \";\"",
                    ),
                ],
                _ => vec![
                    present,
                    Check::pass(Kind::StsRecordSyntax, "the record follows the grammar except for its id"),
                    Check::failure(
                        Kind::StsRecordId,
                        detail,
                        "use an id of 1 to 32 letters and digits, such as the UTC time 20240101T120000Z",
                    ),
                ],
            };
            (checks, None)
        }
        Err(e) => (vec![Check::failure(Kind::StsRecord, e.to_string(), publish)], None),
    }
}

/// Checks the `_smtp._tls` TXT record: present and exactly one, its syntax, its `rua` URIs. A
/// missing record is a warning: TLSRPT is optional, but without it nobody hears of failures.
pub fn tlsrpt_record(dns: &dyn Dns, domain: &Domain) -> (Vec<Check>, Option<TlsrptRecord>) {
    let name = tlsrpt::record_name(domain);
    let shown = name.trim_end_matches('.');
    let publish = format!("publish the TXT record \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\" at {shown}");
    let records = match dns.txt(&name) {
        Ok(records) => records,
        Err(e) => {
            let fix = format!("make sure the authoritative name servers of {domain} answer TXT queries for {shown}");
            return (vec![Check::failure(Kind::TlsrptRecord, format!("the lookup failed: {e}"), fix)], None);
        }
    };
    let present = || Check::pass(Kind::TlsrptRecord, format!("{shown} has one v=TLSRPTv1 record"));
    match tlsrpt::select(&records) {
        Ok(record) => {
            let uris: Vec<String> = record.rua.iter().map(|u| escape(u.as_str(), 80)).collect();
            let checks = vec![
                present(),
                Check::pass(Kind::TlsrptSyntax, "the record follows the grammar of RFC 8460 §3"),
                Check::pass(Kind::TlsrptRua, format!("reports go to {}", uris.join(", "))),
            ];
            (checks, Some(record))
        }
        Err(TlsrptError::NotFound) => {
            let check = match near_miss(&records, b"v=tlsrptv1") {
                Some(r) => Check::failure(
                    Kind::TlsrptRecord,
                    format!(
                        "no TXT record at {shown} begins with exactly \"v=TLSRPTv1;\", so reporters ignore {}",
                        escape_bytes(r, 60)
                    ),
                    publish,
                ),
                None => Check::warning(
                    Kind::TlsrptRecord,
                    format!("no TLSRPT record at {shown}: senders cannot report TLS failures to you"),
                    publish,
                ),
            };
            (vec![check], None)
        }
        Err(TlsrptError::Multiple { count }) => {
            let summary = format!("{count} TXT records at {shown} begin with \"v=TLSRPTv1;\", and reporters ignore them all (RFC 8460 §3)");
            (vec![Check::failure(Kind::TlsrptRecord, summary, "keep exactly one v=TLSRPTv1 record")], None)
        }
        Err(e @ TlsrptError::BadUri { .. }) => {
            let checks = vec![
                present(),
                Check::pass(Kind::TlsrptSyntax, "the record follows the grammar of RFC 8460 §3"),
                Check::failure(
                    Kind::TlsrptRua,
                    e.to_string().trim_start_matches("tlsrpt: ").to_owned(),
                    "give each rua as mailto:address or https://host/path, separated by \",\", with \",\" \"!\" and \";\" inside a URI percent-encoded",
                ),
            ];
            (checks, None)
        }
        Err(e @ (TlsrptError::Syntax { .. } | TlsrptError::MissingRua)) => {
            let checks = vec![
                present(),
                Check::failure(
                    Kind::TlsrptSyntax,
                    e.to_string().trim_start_matches("tlsrpt: ").to_owned(),
                    format!("write the record as \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\""),
                ),
            ];
            (checks, None)
        }
        Err(e) => (vec![Check::failure(Kind::TlsrptRecord, e.to_string(), publish)], None),
    }
}

/// Checks the A and AAAA records of the policy host and returns its addresses, IPv4 first.
///
/// Judgement on families: an IPv4 address is what every sender can use, so A without AAAA
/// passes; AAAA without A is a warning, because IPv4-only senders, still most of them, cannot
/// fetch the policy; neither is a failure.
pub fn policy_host_addresses(dns: &dyn Dns, domain: &Domain) -> (Vec<Check>, Vec<IpAddr>) {
    let host = domain.policy_host();
    let mut addrs = match dns.addresses(&host) {
        Ok(addrs) => addrs,
        Err(e) => {
            let fix =
                format!("make sure the authoritative name servers of {domain} answer A and AAAA queries for {host}");
            return (vec![Check::failure(Kind::PolicyHostA, format!("the lookup failed: {e}"), fix)], Vec::new());
        }
    };
    addrs.sort_by_key(|ip| ip.is_ipv6());
    addrs.dedup();
    let list = |v6: bool| addrs.iter().filter(|ip| ip.is_ipv6() == v6).map(ToString::to_string).collect::<Vec<_>>();
    let (v4, v6) = (list(false), list(true));
    let checks = match (v4.is_empty(), v6.is_empty()) {
        (true, true) => vec![Check::failure(
            Kind::PolicyHostA,
            format!("{host} has no A or AAAA record, so senders cannot fetch the policy"),
            format!("publish an A record (and an AAAA record) for {host} pointing at your HTTPS server"),
        )],
        (false, true) => vec![
            Check::pass(Kind::PolicyHostA, format!("{host} has A {}", v4.join(", "))),
            Check::pass(
                Kind::PolicyHostAaaa,
                format!(
                    "{host} has no AAAA record; IPv4 reaches every sender (publish one to serve IPv6-only senders too)"
                ),
            ),
        ],
        (true, false) => vec![
            Check::warning(
                Kind::PolicyHostA,
                format!("{host} has no A record, so senders without IPv6 cannot fetch the policy"),
                format!("publish an A record for {host}"),
            ),
            Check::pass(Kind::PolicyHostAaaa, format!("{host} has AAAA {}", v6.join(", "))),
        ],
        (false, false) => vec![
            Check::pass(Kind::PolicyHostA, format!("{host} has A {}", v4.join(", "))),
            Check::pass(Kind::PolicyHostAaaa, format!("{host} has AAAA {}", v6.join(", "))),
        ],
    };
    (checks, addrs)
}

/// Checks the domain's MX records and returns the hosts to check further, in preference order,
/// at most [`MAX_MX_HOSTS`]. No MX record means the domain itself is the mail host
/// (RFC 5321 §5.1); a null MX (RFC 7505) means no mail host at all.
pub fn mx_records(mx: &dyn Dns, domain: &Domain) -> (Vec<Check>, Vec<Domain>) {
    let records = match mx.mx(domain.as_str()) {
        Ok(records) => records,
        Err(e) => {
            let fix = format!("make sure the authoritative name servers of {domain} answer MX queries");
            return (vec![Check::failure(Kind::MxRecords, format!("the lookup failed: {e}"), fix)], Vec::new());
        }
    };
    if records.is_empty() {
        let check = Check::warning(
            Kind::MxRecords,
            format!("{domain} has no MX record, so senders deliver to its own address (RFC 5321 §5.1)"),
            "publish MX records naming your mail servers",
        );
        return (vec![check], vec![domain.clone()]);
    }
    if records.iter().any(|r| r.exchange.is_empty()) {
        let check = Check::warning(
            Kind::MxRecords,
            format!("{domain} has a null MX record (RFC 7505): it accepts no mail, and MTA-STS has nothing to protect"),
            "publish MX records for your mail servers, or remove the MTA-STS records",
        );
        return (vec![check], Vec::new());
    }
    let mut checks = Vec::new();
    let mut hosts: Vec<Domain> = Vec::new();
    for record in &records {
        match Domain::parse(&record.exchange) {
            Ok(host) if !hosts.contains(&host) => hosts.push(host),
            Ok(_) => {}
            Err(e) => checks.push(Check::failure(
                Kind::MxRecords,
                format!("MX {} {} is not a valid host name ({e})", record.preference, escape(&record.exchange, 80)),
                "point every MX record at a host name with A or AAAA records",
            )),
        }
    }
    let listed: Vec<String> =
        records.iter().map(|r| format!("{} {}", r.preference, escape(&r.exchange, 80).trim_matches('"'))).collect();
    let summary = match records.len() {
        1 => format!("1 MX record: {}", listed.join(", ")),
        n => format!("{n} MX records: {}", listed.join(", ")),
    };
    if hosts.len() > MAX_MX_HOSTS {
        checks.push(Check::warning(
            Kind::MxRecords,
            format!("{summary}; only the first {MAX_MX_HOSTS} hosts are checked"),
            "check the other hosts by hand",
        ));
        hosts.truncate(MAX_MX_HOSTS);
    } else {
        checks.insert(0, Check::pass(Kind::MxRecords, summary));
    }
    (checks, hosts)
}

/// A record that looks like an attempt at `prefix` (compared case-insensitively, lower-case
/// `prefix`) but that the exact prefix rule discards.
fn near_miss<'a>(records: &'a [Vec<u8>], prefix: &[u8]) -> Option<&'a Vec<u8>> {
    records.iter().find(|r| r.len() >= prefix.len() && r[..prefix.len()].eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::dns::MxRecord;
    use crate::check::report::Verdict;
    use crate::error::DnsError;

    /// Answers set by the test.
    #[derive(Default)]
    struct FakeDns {
        txt: HashMap<String, Result<Vec<Vec<u8>>, DnsError>>,
        addresses: HashMap<String, Vec<IpAddr>>,
        mx: Option<Result<Vec<MxRecord>, DnsError>>,
    }

    impl Dns for FakeDns {
        fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
            self.txt.get(name).cloned().unwrap_or(Ok(Vec::new()))
        }

        fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
            Ok(self.addresses.get(host).cloned().unwrap_or_default())
        }

        fn mx(&self, _name: &str) -> Result<Vec<MxRecord>, DnsError> {
            self.mx.clone().unwrap_or(Ok(Vec::new()))
        }
    }

    fn domain() -> Domain {
        Domain::parse("example.com").unwrap()
    }

    fn txt(name: &str, records: &[&str]) -> FakeDns {
        let mut dns = FakeDns::default();
        dns.txt.insert(name.into(), Ok(records.iter().map(|r| r.as_bytes().to_vec()).collect()));
        dns
    }

    /// (kind, verdict) of each check, for table comparisons.
    fn outline(checks: &[Check]) -> Vec<(&'static str, Verdict)> {
        checks.iter().map(|c| (c.kind.as_str(), c.verdict)).collect()
    }

    #[test]
    fn sts_record_verdicts() {
        use Verdict::*;
        let name = "_mta-sts.example.com.";
        for (records, want) in [
            (
                vec!["v=STSv1; id=20240101T120000Z;"],
                vec![("sts-record", Pass), ("sts-record-syntax", Pass), ("sts-record-id", Pass)],
            ),
            (vec![], vec![("sts-record", Failure)]),
            (vec!["v=spf1 -all"], vec![("sts-record", Failure)]),
            (vec!["v=STSv1 ; id=1"], vec![("sts-record", Failure)]),
            (vec!["v=STSv1; id=1", "v=STSv1; id=2"], vec![("sts-record", Failure)]),
            (vec!["v=STSv1; id=1;;"], vec![("sts-record", Pass), ("sts-record-syntax", Failure)]),
            (
                vec!["v=STSv1; id=2024-01-01"],
                vec![("sts-record", Pass), ("sts-record-syntax", Pass), ("sts-record-id", Failure)],
            ),
            (
                vec!["v=STSv1; ext=1"],
                vec![("sts-record", Pass), ("sts-record-syntax", Pass), ("sts-record-id", Failure)],
            ),
        ] {
            let (checks, record) = sts_record(&txt(name, &records), &domain());
            assert_eq!(outline(&checks), want, "{records:?}");
            assert_eq!(record.is_some(), want.iter().all(|(_, v)| *v == Pass), "{records:?}");
        }
        let (checks, _) = sts_record(&txt(name, &["v=STSv1 ; id=1"]), &domain());
        assert!(checks[0].summary.contains("begins with exactly \"v=STSv1;\""), "{}", checks[0].summary);
        let (checks, _) = sts_record(&txt(name, &["v=STSv1; id=2024-01-01"]), &domain());
        assert_eq!(checks[2].summary, "id \"2024-01-01\" is not 1-32 letters or digits");
        let mut failing = FakeDns::default();
        failing.txt.insert(name.into(), Err(DnsError::Timeout { name: name.into() }));
        assert_eq!(outline(&sts_record(&failing, &domain()).0), vec![("sts-record", Failure)]);
    }

    #[test]
    fn tlsrpt_record_verdicts() {
        use Verdict::*;
        let name = "_smtp._tls.example.com.";
        for (records, want) in [
            (
                vec!["v=TLSRPTv1; rua=mailto:tlsrpt@example.com"],
                vec![("tlsrpt-record", Pass), ("tlsrpt-syntax", Pass), ("tlsrpt-rua", Pass)],
            ),
            (vec![], vec![("tlsrpt-record", Warning)]),
            (vec!["v=TLSRPTv1 ;rua=mailto:a@example.com"], vec![("tlsrpt-record", Failure)]),
            (
                vec!["v=TLSRPTv1;rua=mailto:a@example.com", "v=TLSRPTv1;rua=mailto:b@example.com"],
                vec![("tlsrpt-record", Failure)],
            ),
            (vec!["v=TLSRPTv1; ext=1"], vec![("tlsrpt-record", Pass), ("tlsrpt-syntax", Failure)]),
            (
                vec!["v=TLSRPTv1; rua=postmaster@example.com"],
                vec![("tlsrpt-record", Pass), ("tlsrpt-syntax", Pass), ("tlsrpt-rua", Failure)],
            ),
        ] {
            assert_eq!(outline(&tlsrpt_record(&txt(name, &records), &domain()).0), want, "{records:?}");
        }
    }

    #[test]
    fn policy_host_family_judgement() {
        use Verdict::*;
        let host = "mta-sts.example.com";
        for (addrs, want) in [
            (vec!["192.0.2.1"], vec![("policy-host-a", Pass), ("policy-host-aaaa", Pass)]),
            (vec!["2001:db8::1", "192.0.2.1"], vec![("policy-host-a", Pass), ("policy-host-aaaa", Pass)]),
            (vec!["2001:db8::1"], vec![("policy-host-a", Warning), ("policy-host-aaaa", Pass)]),
            (vec![], vec![("policy-host-a", Failure)]),
        ] {
            let mut dns = FakeDns::default();
            dns.addresses.insert(host.into(), addrs.iter().map(|a| a.parse().unwrap()).collect());
            let (checks, found) = policy_host_addresses(&dns, &domain());
            assert_eq!(outline(&checks), want, "{addrs:?}");
            assert_eq!(found.len(), addrs.len());
            assert!(found.first().is_none_or(|ip| ip.is_ipv4() || addrs.len() == 1), "IPv4 first");
        }
    }

    #[test]
    fn mx_record_verdicts() {
        use Verdict::*;
        let mx = |records: &[(u16, &str)]| FakeDns {
            mx: Some(Ok(records.iter().map(|(p, h)| MxRecord { preference: *p, exchange: h.to_string() }).collect())),
            ..FakeDns::default()
        };
        let (checks, hosts) = mx_records(&mx(&[(10, "mx1.example.com"), (20, "mx2.example.com")]), &domain());
        assert_eq!(outline(&checks), vec![("mx-records", Pass)]);
        assert_eq!(checks[0].summary, "2 MX records: 10 mx1.example.com, 20 mx2.example.com");
        assert_eq!(hosts.len(), 2);
        let (checks, hosts) = mx_records(&mx(&[]), &domain());
        assert_eq!((outline(&checks), hosts), (vec![("mx-records", Warning)], vec![domain()]));
        let (checks, hosts) = mx_records(&mx(&[(0, "")]), &domain());
        assert_eq!((outline(&checks), hosts.len()), (vec![("mx-records", Warning)], 0));
        let (checks, hosts) = mx_records(&mx(&[(10, "mx_1.example.com"), (20, "mx2.example.com")]), &domain());
        assert_eq!(outline(&checks), vec![("mx-records", Pass), ("mx-records", Failure)]);
        assert_eq!(hosts.len(), 1);
        let failing = FakeDns { mx: Some(Err(DnsError::Timeout { name: "example.com".into() })), ..FakeDns::default() };
        assert_eq!(outline(&mx_records(&failing, &domain()).0), vec![("mx-records", Failure)]);
    }
}
