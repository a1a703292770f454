//! HTTPS policy fetch ([RFC 8461 §3.3]).
//!
//! `GET https://mta-sts.<domain>/.well-known/mta-sts.txt` with SNI and PKIX validation against the
//! system trust store (plus an optional extra CA file), no redirects, status 200 only, a
//! `text/plain` Content-Type, a body of at most [`BODY_LIMIT`] bytes, no HTTP caching, and one
//! deadline for the whole exchange. The policy host is resolved through the same [`Dns`] as the
//! TXT record, and its addresses can be restricted to public ones.
//!
//! [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use once_cell::sync::OnceCell;
use rustls::CertificateError;
use rustls_pki_types::pem::PemObject;
use ureq::config::Config as UreqConfig;
use ureq::http::Uri;
use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver as UreqResolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};
use ureq::Agent;

use crate::config::FetchConfig;
use crate::dns::Dns;
use crate::domain::Domain;
use crate::error::{escape, FetchError, Phase};

/// Largest policy body accepted, in bytes. RFC 8461 §3.3: "senders SHOULD impose a limit on the
/// maximum size of the response body [...] 64 kilobytes is RECOMMENDED".
pub const BODY_LIMIT: usize = 64 * 1024;

/// The path of the policy on the policy host.
pub const WELL_KNOWN_PATH: &str = "/.well-known/mta-sts.txt";

/// Most addresses of the policy host tried within one fetch.
const MAX_ADDRESSES: usize = 16;

/// Fetches a policy body for a domain. Implementations must be usable from many threads at once.
pub trait Fetcher: Send + Sync {
    /// Returns the body of a 200 `text/plain` answer from the policy host of `domain`.
    ///
    /// # Errors
    ///
    /// A [`FetchError`] naming what failed.
    fn fetch(&self, domain: &Domain) -> Result<Vec<u8>, FetchError>;
}

/// [`Fetcher`] over HTTPS with ureq and rustls.
pub struct HttpsFetcher {
    dns: Arc<dyn Dns>,
    config: FetchConfig,
    /// Loaded at the first fetch: reading the system store takes milliseconds, which a process
    /// that answers from the cache should not pay.
    roots: OnceCell<Result<Arc<Vec<Certificate<'static>>>, FetchError>>,
}

impl HttpsFetcher {
    /// Prepares fetches as configured. The trust store is loaded at the first fetch.
    pub fn new(dns: Arc<dyn Dns>, config: &FetchConfig) -> Self {
        Self { dns, config: config.clone(), roots: OnceCell::new() }
    }

    /// The trust store: the system's (honouring `SSL_CERT_FILE` and `SSL_CERT_DIR`) plus
    /// `fetch.ca_file`, loaded once.
    ///
    /// # Errors
    ///
    /// [`FetchError::Tls`] when the extra CA file cannot be read or holds no certificate, or when
    /// no trusted certificate at all could be loaded.
    pub fn roots(&self) -> Result<Arc<Vec<Certificate<'static>>>, FetchError> {
        self.roots.get_or_init(|| load_roots(&self.config)).clone()
    }

    fn agent(&self, addrs: Vec<SocketAddr>, remaining: std::time::Duration) -> Result<Agent, FetchError> {
        let tls = TlsConfig::builder().root_certs(RootCerts::Specific(self.roots()?)).build();
        let config = UreqConfig::builder()
            .timeout_global(Some(remaining))
            // "HTTP 3xx redirects MUST NOT be followed" (§3.3): with 0 the 3xx comes back as is.
            .max_redirects(0)
            .http_status_as_error(false)
            .https_only(true)
            .proxy(None)
            .tls_config(tls)
            .user_agent(concat!("mta-sts/", env!("CARGO_PKG_VERSION")))
            .accept("text/plain")
            .max_idle_connections(0)
            .build();
        Ok(Agent::with_parts(config, DefaultConnector::default(), Pinned(addrs)))
    }

    /// Resolves the policy host and keeps the addresses the configuration allows.
    fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, FetchError> {
        let ips = self.dns.addresses(host).map_err(FetchError::Resolve)?;
        if ips.is_empty() {
            return Err(FetchError::NoAddress);
        }
        let allowed: Vec<SocketAddr> = ips
            .iter()
            .filter(|ip| self.config.allow_private_addresses || is_public(ip))
            .take(MAX_ADDRESSES)
            .map(|ip| SocketAddr::new(*ip, port))
            .collect();
        if allowed.is_empty() {
            return Err(FetchError::RefusedAddress { addr: ips[0].to_string() });
        }
        Ok(allowed)
    }
}

impl Fetcher for HttpsFetcher {
    fn fetch(&self, domain: &Domain) -> Result<Vec<u8>, FetchError> {
        let started = Instant::now();
        let host = domain.policy_host();
        let port = self.config.test_policy_port.unwrap_or(443);
        let addrs = self.addresses(&host, port)?;
        let remaining = self
            .config
            .timeout
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
            .ok_or(FetchError::Timeout { phase: Phase::Resolve })?;
        // The URL names the policy host, so that SNI and certificate checks use it; the address
        // comes from `Pinned`.
        let url = match self.config.test_policy_port {
            Some(p) => format!("https://{host}:{p}{WELL_KNOWN_PATH}"),
            None => format!("https://{host}{WELL_KNOWN_PATH}"),
        };
        let mut response = self.agent(addrs, remaining)?.get(&url).call().map_err(|e| classify(e, Phase::Headers))?;
        let status = response.status().as_u16();
        if (300..400).contains(&status) {
            return Err(FetchError::Redirect { status });
        }
        if status != 200 {
            return Err(FetchError::Status { status });
        }
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if !is_text_plain(&content_type) {
            return Err(FetchError::ContentType { found: if content_type.is_empty() { String::new() } else { escape(&content_type, 60) } });
        }
        // Refuse an announced oversize body at once rather than read up to the limit.
        if response.body().content_length().is_some_and(|n| n > BODY_LIMIT as u64) {
            return Err(FetchError::TooLarge);
        }
        response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT as u64)
            .read_to_vec()
            .map_err(|e| classify(e, Phase::Body))
    }
}

fn load_roots(config: &FetchConfig) -> Result<Arc<Vec<Certificate<'static>>>, FetchError> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = &config.ca_file {
        let tls_err = |reason: String| FetchError::Tls { reason: format!("ca_file {}: {reason}", path.display()) };
        let pem = std::fs::read(path).map_err(|e| tls_err(e.to_string()))?;
        let before = roots.len();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| tls_err(e.to_string()))?;
            roots.push(Certificate::from_der(cert.as_ref()).to_owned());
        }
        if roots.len() == before {
            return Err(tls_err("no certificate in file".into()));
        }
    }
    if roots.is_empty() {
        return Err(FetchError::Tls {
            reason: "no trusted CA certificates found (system store empty; set SSL_CERT_FILE or fetch.ca_file)".into(),
        });
    }
    Ok(Arc::new(roots))
}

/// Whether a Content-Type is `text/plain`, parameters allowed ("The policy file MUST be served
/// with Content-Type text/plain", §3.2); media types are case-insensitive.
fn is_text_plain(value: &str) -> bool {
    value.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("text/plain"))
}

/// Whether an address is one a stranger's policy host may have: not loopback, private,
/// link-local, shared (CGNAT), documentation, multicast or unspecified.
pub fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

/// Maps a ureq failure to what an administrator can act on. `phase` is where we were when it
/// failed, used when ureq does not say.
fn classify(e: ureq::Error, phase: Phase) -> FetchError {
    use ureq::Timeout as T;
    match e {
        ureq::Error::Timeout(t) => FetchError::Timeout {
            phase: match t {
                T::Resolve => Phase::Resolve,
                T::Connect => Phase::Connect,
                T::RecvBody => Phase::Body,
                _ => phase,
            },
        },
        ureq::Error::BodyExceedsLimit(_) => FetchError::TooLarge,
        ureq::Error::Rustls(e) => tls(&e),
        ureq::Error::ConnectionFailed => FetchError::Connect { reason: "connection failed".into() },
        ureq::Error::Io(e) => io_error(&e, phase),
        other => FetchError::Protocol { reason: other.to_string() },
    }
}

fn io_error(e: &io::Error, phase: Phase) -> FetchError {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return tls(inner);
    }
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FetchError::Timeout { phase },
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
            if phase != Phase::Body =>
        {
            FetchError::Connect { reason: e.to_string() }
        }
        _ => FetchError::Protocol { reason: e.to_string() },
    }
}

fn tls(e: &rustls::Error) -> FetchError {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => FetchError::CertificateExpired,
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                FetchError::CertificateWrongName
            }
            CertificateError::UnknownIssuer => FetchError::CertificateUntrusted,
            other => FetchError::Tls { reason: format!("invalid certificate: {other:?}") },
        },
        other => FetchError::Tls { reason: other.to_string() },
    }
}

/// A ureq resolver that answers with addresses resolved beforehand, so that the policy host is
/// looked up through [`Dns`] like every other name.
#[derive(Debug)]
struct Pinned(Vec<SocketAddr>);

impl UreqResolver for Pinned {
    fn resolve(&self, _uri: &Uri, _config: &UreqConfig, _timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut out = self.empty();
        for addr in self.0.iter().take(MAX_ADDRESSES) {
            out.push(*addr);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_must_be_text_plain() {
        for ok in ["text/plain", "TEXT/Plain", "text/plain; charset=utf-8", " text/plain ;charset=us-ascii"] {
            assert!(is_text_plain(ok), "{ok}");
        }
        for bad in ["", "text/html", "text/plainx", "text/plain-x; a=b", "application/octet-stream", "text"] {
            assert!(!is_text_plain(bad), "{bad}");
        }
    }

    #[test]
    fn private_addresses_are_not_public() {
        for private in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.1.1", "100.64.0.1", "0.0.0.0",
            "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1", "::ffff:10.0.0.1", "2001:db8::1", "192.0.2.1"]
        {
            assert!(!is_public(&private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2a00:1450:4001::1", "::ffff:8.8.8.8", "100.128.0.1"] {
            assert!(is_public(&public.parse().unwrap()), "{public}");
        }
    }
}
