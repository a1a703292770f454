//! DNS lookups: the [`Dns`] trait and its hickory-resolver implementation.
//!
//! "No such record" (NXDOMAIN, or NOERROR with no answer) is an empty result; SERVFAIL, REFUSED, a
//! timeout or an unreachable server is a [`DnsError`]. [RFC 8461 §3.1] treats the two differently
//! (no policy versus a temporary failure), and so does every face of this crate.
//!
//! Each lookup runs on its own single-threaded Tokio runtime that lives only for that call. That
//! costs some microseconds on a path that waits for the network anyway, and it means the library
//! starts no threads and holds no sockets between calls, so a process may fork (as Exim does)
//! between any two lookups.
//!
//! [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;

use crate::config::DnsConfig;
use crate::error::DnsError;

/// The DNS queries a lookup needs. Implementations must be usable from many threads at once.
pub trait Dns: Send + Sync {
    /// The TXT records of `name`, each the concatenation of its character-strings; empty when
    /// the name has none (NXDOMAIN or NODATA). CNAMEs are followed.
    ///
    /// # Errors
    ///
    /// [`DnsError`] when the lookup failed rather than found nothing.
    fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError>;

    /// The IPv4 and IPv6 addresses of `host`; empty when it has none.
    ///
    /// # Errors
    ///
    /// [`DnsError`] when the lookup failed rather than found nothing.
    fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError>;

    /// The MX records of `name`, sorted by preference; empty when it has none. The resolver never
    /// needs them (the MTA resolved its MX hosts already); `mta-sts check` does.
    ///
    /// # Errors
    ///
    /// [`DnsError`] when the lookup failed rather than found nothing.
    fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError>;
}

/// One MX record: preference and exchange host, lower-case, without the trailing dot. The null
/// MX of RFC 7505 has the exchange `""` (the root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MxRecord {
    /// Lower values are tried first.
    pub preference: u16,
    /// The MX host name, as served (not validated).
    pub exchange: String,
}

/// [`Dns`] through hickory-resolver, with the servers of the configuration or `/etc/resolv.conf`.
#[derive(Debug, Clone)]
pub struct HickoryDns {
    config: ResolverConfig,
    options: ResolverOpts,
    deadline: Duration,
}

impl HickoryDns {
    /// Prepares lookups as configured: `servers` if any are listed, else the system's.
    ///
    /// # Errors
    ///
    /// [`DnsError::Failed`] when no servers are configured and `/etc/resolv.conf` cannot be read.
    pub fn new(config: &DnsConfig) -> Result<Self, DnsError> {
        let (resolver_config, mut options) = if config.servers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| DnsError::Failed { name: "/etc/resolv.conf".into(), reason: e.to_string() })?
        } else {
            (ResolverConfig::from_name_servers(config.servers.iter().map(name_server).collect()), ResolverOpts::default())
        };
        // Two tries per server within the one deadline; the outer timeout below is the bound.
        options.timeout = config.timeout / 2;
        options.attempts = 2;
        options.cache_size = 0;
        options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        // Answers are read as given: the names we ask for are fully qualified.
        options.ndots = 0;
        Ok(Self { config: resolver_config, options, deadline: config.timeout })
    }

    /// Runs one query on a runtime made for it.
    fn run<T>(
        &self,
        name: &str,
        query: impl AsyncFnOnce(Resolver<TokioRuntimeProvider>) -> Result<T, NetError>,
    ) -> Result<Option<T>, DnsError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DnsError::Failed { name: name.into(), reason: e.to_string() })?;
        runtime.block_on(async {
            let mut builder =
                Resolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default());
            *builder.options_mut() = self.options.clone();
            let resolver = builder.build().map_err(|e| classify(name, e))?;
            match tokio::time::timeout(self.deadline, query(resolver)).await {
                Err(_) => Err(DnsError::Timeout { name: name.into() }),
                Ok(Ok(found)) => Ok(Some(found)),
                Ok(Err(e)) if is_no_record(&e) => Ok(None),
                Ok(Err(e)) => Err(classify(name, e)),
            }
        })
    }
}

impl Dns for HickoryDns {
    fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, DnsError> {
        let lookup = self.run(name, async |r| r.lookup(name, RecordType::TXT).await)?;
        Ok(lookup
            .iter()
            .flat_map(|l| l.answers())
            .filter_map(|record| match &record.data {
                RData::TXT(txt) => Some(txt.txt_data.concat()),
                _ => None,
            })
            .collect())
    }

    fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsError> {
        let fqdn = format!("{host}.");
        let lookup = self.run(host, async |r| r.lookup_ip(fqdn.as_str()).await)?;
        Ok(lookup.iter().flat_map(|l| l.iter()).collect())
    }

    fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = self.run(name, async |r| r.lookup(fqdn.as_str(), RecordType::MX).await)?;
        let mut records: Vec<MxRecord> = lookup
            .iter()
            .flat_map(|l| l.answers())
            .filter_map(|record| match &record.data {
                RData::MX(mx) => Some(MxRecord {
                    preference: mx.preference,
                    exchange: mx.exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase(),
                }),
                _ => None,
            })
            .collect();
        records.sort();
        records.dedup();
        Ok(records)
    }
}

fn name_server(addr: &SocketAddr) -> NameServerConfig {
    let connection = |mut c: ConnectionConfig| {
        c.port = addr.port();
        c
    };
    NameServerConfig::new(addr.ip(), true, vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())])
}

/// NXDOMAIN and NODATA: the name has no record of that type.
fn is_no_record(e: &NetError) -> bool {
    match e {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => {
            matches!(no.response_code, ResponseCode::NXDomain | ResponseCode::NoError)
        }
        _ => false,
    }
}

fn classify(name: &str, e: NetError) -> DnsError {
    let name = name.to_owned();
    match e {
        NetError::Timeout => DnsError::Timeout { name },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::ServerFailure { name, rcode: code.to_string() },
        NetError::Dns(HickoryDnsError::NoRecordsFound(no)) => {
            DnsError::ServerFailure { name, rcode: no.response_code.to_string() }
        }
        other => DnsError::Failed { name, reason: other.to_string() },
    }
}
