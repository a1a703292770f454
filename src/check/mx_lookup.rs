//! MX record lookups for `mta-sts check`, which the resolver itself never needs: the MTA that
//! asks for a policy has already resolved the MX hosts.
//!
//! [`HickoryMx`] runs each query the way [`crate::dns::HickoryDns`] does (a runtime per call,
//! the configured servers or `/etc/resolv.conf`, one deadline), with the same reading of "no
//! record" (NXDOMAIN, NODATA: an empty answer) against a failure ([`DnsError`]).
//!
//! TODO(#10): fold this into [`crate::dns::Dns`] as `fn mx(&self, name)` so that there is one
//! hickory-resolver setup; kept here while that trait is owned elsewhere.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;

use crate::config::DnsConfig;
use crate::error::DnsError;

/// One MX record: preference and exchange host, lower-case, without the trailing dot. The null
/// MX of RFC 7505 has the exchange `""` (the root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MxRecord {
    /// Lower values are tried first.
    pub preference: u16,
    /// The MX host name, as served (not validated).
    pub exchange: String,
}

/// MX lookups. Implementations must be usable from many threads at once.
pub trait MxLookup: Send + Sync {
    /// The MX records of `name`, sorted by preference; empty when it has none.
    ///
    /// # Errors
    ///
    /// [`DnsError`] when the lookup failed rather than found nothing.
    fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError>;
}

/// [`MxLookup`] through hickory-resolver.
#[derive(Debug, Clone)]
pub struct HickoryMx {
    config: ResolverConfig,
    options: ResolverOpts,
    deadline: Duration,
}

impl HickoryMx {
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
            (
                ResolverConfig::from_name_servers(config.servers.iter().map(name_server).collect()),
                ResolverOpts::default(),
            )
        };
        options.timeout = config.timeout / 2;
        options.attempts = 2;
        // A check always asks afresh.
        options.cache_size = 0;
        options.ndots = 0;
        Ok(Self { config: resolver_config, options, deadline: config.timeout })
    }
}

impl MxLookup for HickoryMx {
    fn mx(&self, name: &str) -> Result<Vec<MxRecord>, DnsError> {
        let failed = |reason: String| DnsError::Failed { name: name.into(), reason };
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| failed(e.to_string()))?;
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = runtime.block_on(async {
            let mut builder = Resolver::builder_with_config(self.config.clone(), TokioRuntimeProvider::default());
            *builder.options_mut() = self.options.clone();
            let resolver = builder.build().map_err(|e| classify(name, e))?;
            match tokio::time::timeout(self.deadline, resolver.lookup(fqdn.as_str(), RecordType::MX)).await {
                Err(_) => Err(DnsError::Timeout { name: name.into() }),
                Ok(Ok(found)) => Ok(Some(found)),
                Ok(Err(e)) if is_no_record(&e) => Ok(None),
                Ok(Err(e)) => Err(classify(name, e)),
            }
        })?;
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
    NameServerConfig::new(
        addr.ip(),
        true,
        vec![connection(ConnectionConfig::udp()), connection(ConnectionConfig::tcp())],
    )
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
