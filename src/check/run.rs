//! The check of one domain, top to bottom: [`Checker::check`].
//!
//! It always asks afresh: DNS through its own resolver with no cache, the policy through the
//! resolver's [`crate::fetch::HttpsFetcher`] built on the spot, never the policy cache. Every
//! step runs even when an earlier one failed, so that one run shows everything to fix.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use rustls::{ClientConfig, RootCertStore};

use super::report::{Check, Kind, Report};
use super::smtp::{Probe, SMTP_PORT};
use super::tls::{self, CertificateKinds};
use super::{dns_checks, policy_checks};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::dns::{Dns, HickoryDns};
use crate::domain::Domain;
use crate::error::DnsError;
use crate::fetch::{is_public, HttpsFetcher};

/// The HTTPS port of the policy host (RFC 8461 §3.3).
const HTTPS_PORT: u16 = 443;

/// The certificate checks of the policy host.
const POLICY_HOST: CertificateKinds = CertificateKinds {
    name: Kind::PolicyHostCertificateName,
    chain: Kind::PolicyHostCertificateChain,
    expiry: Kind::PolicyHostCertificateExpiry,
};

/// Checks domains as a sender would see them.
pub struct Checker {
    config: Config,
    dns: Arc<dyn Dns>,
    clock: Arc<dyn Clock>,
    tls: Arc<ClientConfig>,
}

impl Checker {
    /// A checker with hickory-resolver for DNS and the system clock.
    ///
    /// # Errors
    ///
    /// [`DnsError`] when no DNS servers are configured and `/etc/resolv.conf` cannot be read.
    pub fn new(config: Config) -> Result<Self, DnsError> {
        let dns = Arc::new(HickoryDns::new(&config.dns)?);
        Ok(Self::with_parts(config, dns, Arc::new(SystemClock)))
    }

    /// A checker with these parts, for tests and other DNS backends. The clock only dates the
    /// certificate checks; TLS handshakes and fetches use the system time.
    pub fn with_parts(config: Config, dns: Arc<dyn Dns>, clock: Arc<dyn Clock>) -> Self {
        Self { config, dns, clock, tls: tls::probe_config() }
    }

    /// Checks `domain`: its records, policy host, policy and MX hosts. Never fails: failures
    /// are checks.
    pub fn check(&self, domain: &Domain) -> Report {
        let dns = self.dns.as_ref();
        let fetch = &self.config.fetch;
        let now = self.clock.now();
        let mut checks = Vec::new();
        // The trust store senders would use: the system's plus fetch.ca_file.
        let roots = HttpsFetcher::new(self.dns.clone(), fetch)
            .roots()
            .ok()
            .map(|certs| tls::root_store(certs.iter().map(|c| c.der())));

        // 1. The `_mta-sts` record (RFC 8461 §3.1) and the `_smtp._tls` record (RFC 8460 §3).
        checks.extend(dns_checks::sts_record(dns, domain).0);
        checks.extend(dns_checks::tlsrpt_record(dns, domain).0);

        // 2. The policy host (§3.3): addresses, HTTPS over each family, its certificate.
        let (found, addrs) = dns_checks::policy_host_addresses(dns, domain);
        checks.extend(found);
        let (found, answer) = policy_checks::https(&self.dns, fetch, domain, &addrs);
        checks.extend(found);
        checks.extend(self.policy_host_certificate(domain, &addrs, roots.as_ref(), now));

        // 3. The policy file (§3.2).
        let (found, policy) = match &answer {
            Some(fetched) => policy_checks::policy_file(fetched, domain),
            None => (Vec::new(), None),
        };
        checks.extend(found);

        // 4. The MX hosts against the policy (§4.1), then each over SMTP and TLS (§4.2).
        let (found, hosts) = dns_checks::mx_records(self.dns.as_ref(), domain);
        checks.extend(found);
        if let Some(policy) = &policy {
            checks.extend(policy_checks::mx_match(policy, &hosts));
        }
        let probe = Probe {
            dns,
            port: self.config.check.test_smtp_port.unwrap_or(SMTP_PORT),
            timeout: self.config.check.smtp_timeout,
            allow_private_addresses: fetch.allow_private_addresses,
            tls: &self.tls,
            roots: roots.as_ref(),
            now,
        };
        checks.extend(probe.check_hosts(&hosts));

        Report::new(domain.clone(), checks)
    }

    /// The certificate of the policy host, from a handshake with its first usable address. No
    /// checks when no handshake completes: the HTTPS checks already say why.
    fn policy_host_certificate(
        &self,
        domain: &Domain,
        addrs: &[IpAddr],
        roots: Option<&RootCertStore>,
        now: u64,
    ) -> Vec<Check> {
        let fetch = &self.config.fetch;
        let Some(ip) = addrs.iter().find(|ip| fetch.allow_private_addresses || is_public(ip)) else {
            return Vec::new();
        };
        let host = domain.policy_host();
        let addr = SocketAddr::new(*ip, fetch.test_policy_port.unwrap_or(HTTPS_PORT));
        let deadline = Instant::now() + fetch.timeout;
        let Ok(mut sock) = TcpStream::connect_timeout(&addr, fetch.timeout) else {
            return Vec::new();
        };
        match tls::handshake(&self.tls, &mut sock, &host, deadline) {
            Ok(mut handshake) => {
                handshake.connection.send_close_notify();
                let _ = handshake.connection.write_tls(&mut sock);
                tls::judge(POLICY_HOST, &host, &handshake.chain, roots, now)
            }
            Err(_) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn check_section_has_test_only_port_and_a_deadline() {
        let c = Config::default();
        assert_eq!((c.check.smtp_timeout, c.check.test_smtp_port), (Duration::from_secs(30), None));
        let c = Config::from_toml("[check]\nsmtp_timeout = \"5s\"\ntest_smtp_port = 2525\n").unwrap();
        assert_eq!((c.check.smtp_timeout, c.check.test_smtp_port), (Duration::from_secs(5), Some(2525)));
        assert!(Config::from_toml("[check]\nsmtp_port = 2525\n").is_err());
        assert!(Config::from_toml("[check]\nsmtp_timeout = \"soon\"\n").is_err());
    }
}
