//! TLS facts for `mta-sts check`: a handshake that keeps the server's certificate chain, and
//! the three certificate checks drawn from it (name, chain, expiry), shared by the policy host
//! ([RFC 8461 §3.3]) and the MX hosts ([RFC 8461 §4.2]).
//!
//! A sender validates both with PKIX and stops at the first defect. The check wants every defect
//! on its own line, so the handshake accepts any certificate and the chain is then judged with
//! the same webpki code rustls runs, one rule at a time: the name with
//! [`rustls::client::verify_server_name`], the chain with
//! [`rustls::client::verify_server_cert_signed_by_trust_anchor`] at a time inside the
//! certificate's validity, and the validity dates read from the certificate itself.
//!
//! [RFC 8461 §3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
//! [RFC 8461 §4.2]: https://www.rfc-editor.org/rfc/rfc8461#section-4.2

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, ProtocolVersion,
    RootCertStore, SignatureScheme,
};

use super::generate::utc_date;
use super::report::{Check, Kind};
use crate::error::escape;

/// A certificate that expires in fewer days than this is a warning: automatic renewal (ACME
/// clients renew 30 days ahead) has evidently failed, and there is still time to act.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

const DAY: i64 = 86_400;

/// What a completed handshake showed.
#[derive(Debug)]
pub struct Handshake {
    /// `TLS 1.3` or `TLS 1.2`.
    pub version: &'static str,
    /// The certificates the server sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The connection, for a protocol that goes on (SMTP `QUIT`).
    pub connection: ClientConnection,
}

/// Why a probe of a server ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    /// The deadline passed.
    Timeout {
        /// What was going on.
        during: &'static str,
    },
    /// TCP connection refused, reset or unreachable.
    Connect {
        /// The operating system's reason.
        reason: String,
    },
    /// The connection broke or closed.
    Io {
        /// What happened.
        reason: String,
    },
    /// The TLS handshake failed (certificates are never the reason: they are judged apart).
    Tls {
        /// What rustls or the server's alert said.
        reason: String,
    },
}

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout { during } => write!(f, "no answer in time while {during}"),
            Self::Connect { reason } => write!(f, "cannot connect: {}", escape(reason, 100)),
            Self::Io { reason } => write!(f, "connection failed: {}", escape(reason, 100)),
            Self::Tls { reason } => write!(f, "TLS handshake failed: {}", escape(reason, 100)),
        }
    }
}

impl std::error::Error for ProbeError {}

impl ProbeError {
    /// Maps a socket error, `during` naming the step.
    pub fn io(e: &io::Error, during: &'static str) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Self::Timeout { during },
            _ => Self::Io { reason: e.to_string() },
        }
    }
}

/// A TLS client configuration for probing: TLS 1.2 and 1.3 with the ring provider, handshake
/// signatures checked, any certificate accepted (see the module documentation).
pub fn probe_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inspect = Arc::new(Inspect { algorithms: provider.signature_verification_algorithms });
    let config = ClientConfig::builder_with_provider(provider)
        // The ring provider supports TLS 1.2 and 1.3, the safe defaults: this cannot fail.
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(inspect)
        .with_no_client_auth();
    Arc::new(config)
}

/// Runs a TLS handshake with SNI `host` over `sock` until `deadline`.
///
/// # Errors
///
/// [`ProbeError`] when the handshake does not complete; never because of the certificate.
pub fn handshake(
    config: &Arc<ClientConfig>,
    sock: &mut TcpStream,
    host: &str,
    deadline: Instant,
) -> Result<Handshake, ProbeError> {
    let during = "negotiating TLS";
    let name = ServerName::try_from(host.to_owned()).map_err(|e| ProbeError::Tls { reason: e.to_string() })?;
    let mut conn =
        ClientConnection::new(config.clone(), name).map_err(|e| ProbeError::Tls { reason: e.to_string() })?;
    while conn.is_handshaking() || conn.wants_write() {
        set_deadline(sock, deadline, during)?;
        if conn.wants_write() {
            conn.write_tls(sock).map_err(|e| ProbeError::io(&e, during))?;
            continue;
        }
        match conn.read_tls(sock) {
            Ok(0) => {
                return Err(ProbeError::Io {
                    reason: "the server closed the connection during the TLS handshake".into(),
                })
            }
            Ok(_) => {}
            Err(e) => return Err(ProbeError::io(&e, during)),
        }
        if let Err(e) = conn.process_new_packets() {
            // Send our alert, if any, so the server logs why.
            let _ = conn.write_tls(sock);
            return Err(ProbeError::Tls { reason: describe(&e) });
        }
    }
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLS 1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLS 1.2",
        // rustls negotiates nothing else.
        _ => "TLS",
    };
    let chain =
        conn.peer_certificates().map(|c| c.iter().map(|c| c.clone().into_owned()).collect()).unwrap_or_default();
    Ok(Handshake { version, chain, connection: conn })
}

/// Sets both socket timeouts to what is left before `deadline`.
///
/// # Errors
///
/// [`ProbeError::Timeout`] when nothing is left.
pub fn set_deadline(sock: &TcpStream, deadline: Instant, during: &'static str) -> Result<(), ProbeError> {
    let left = deadline.checked_duration_since(Instant::now()).filter(|d| *d >= Duration::from_millis(1));
    let left = left.ok_or(ProbeError::Timeout { during })?;
    sock.set_read_timeout(Some(left))
        .and_then(|()| sock.set_write_timeout(Some(left)))
        .map_err(|e| ProbeError::io(&e, during))
}

/// The checks a certificate chain gets: which [`Kind`]s report them.
#[derive(Debug, Clone, Copy)]
pub struct CertificateKinds {
    /// The certificate names the host.
    pub name: Kind,
    /// The chain leads to a trusted CA.
    pub chain: Kind,
    /// Days to expiry.
    pub expiry: Kind,
}

/// Judges the chain a server of `host` sent, at Unix time `now`: one check each for the name,
/// the chain (against `roots`, `None` when no trust store could be loaded) and the expiry, in
/// that order.
pub fn judge(
    kinds: CertificateKinds,
    host: &str,
    chain: &[CertificateDer<'_>],
    roots: Option<&RootCertStore>,
    now: u64,
) -> Vec<Check> {
    let Some(leaf) = chain.first() else {
        return vec![Check::failure(
            kinds.chain,
            "the server sent no certificate",
            "configure a certificate for this host",
        )];
    };
    let Some(info) = Info::read(leaf) else {
        return vec![Check::failure(
            kinds.chain,
            "the server's certificate cannot be parsed",
            "install a valid X.509 certificate",
        )];
    };
    let parsed = match ParsedCertificate::try_from(leaf) {
        Ok(p) => p,
        Err(e) => {
            return vec![Check::failure(
                kinds.chain,
                format!("the certificate is unusable: {}", escape(&e.to_string(), 80)),
                "install a valid X.509 certificate",
            )]
        }
    };
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let chain = match roots {
        Some(roots) => chain_check(kinds.chain, &parsed, chain, roots, &info, now),
        None => Check::failure(
            kinds.chain,
            "no trust store could be loaded, so the chain cannot be judged",
            "set SSL_CERT_FILE, or fetch.ca_file in the configuration",
        ),
    };
    vec![name_check(kinds.name, host, &parsed, &info), chain, expiry_check(kinds.expiry, &info, now)]
}

fn name_check(kind: Kind, host: &str, parsed: &ParsedCertificate<'_>, info: &Info) -> Check {
    let valid = ServerName::try_from(host).is_ok_and(|name| verify_server_name(parsed, &name).is_ok());
    if valid {
        return Check::pass(kind, format!("the certificate is valid for {host}"));
    }
    let names = if info.names.is_empty() { "no DNS names".to_owned() } else { info.names.join(", ") };
    Check::failure(
        kind,
        format!("the certificate is for {names}, not {host}"),
        format!("install a certificate whose subject alternative names include {host}"),
    )
}

fn chain_check(
    kind: Kind,
    parsed: &ParsedCertificate<'_>,
    chain: &[CertificateDer<'_>],
    roots: &RootCertStore,
    info: &Info,
    now: i64,
) -> Check {
    // Judge the chain inside the leaf's validity, so that an expired leaf is reported once, by
    // the expiry check, and a good chain behind it still shows as good.
    let at = if (info.not_before..=info.not_after).contains(&now) {
        now
    } else {
        info.not_before + (info.not_after - info.not_before) / 2
    };
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(at).unwrap_or(0)));
    let algorithms = rustls::crypto::ring::default_provider().signature_verification_algorithms;
    let sent = match chain.len() {
        1 => "1 certificate".to_owned(),
        n => format!("{n} certificates"),
    };
    match verify_server_cert_signed_by_trust_anchor(parsed, roots, &chain[1..], at, algorithms.all) {
        Ok(()) => {
            Check::pass(kind, format!("the chain ({sent}, issued by {}) leads to a trusted CA", quoted(&info.issuer)))
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            let last = chain.last().and_then(Info::read);
            match last {
                Some(last) if last.self_signed => Check::failure(
                    kind,
                    format!("the server sent {sent} ending in the self-signed {}, which is not a trusted CA", quoted(&last.subject)),
                    "use a certificate from a CA that senders trust (for example Let's Encrypt)",
                ),
                Some(last) => Check::failure(
                    kind,
                    format!(
                        "the server sent {sent}; the last one is issued by {}, which is neither sent nor a trusted CA",
                        quoted(&last.issuer)
                    ),
                    "serve the full chain: the certificate followed by its intermediate CA certificates (fullchain.pem \
                     with certbot), from a CA that senders trust",
                ),
                None => Check::failure(kind, format!("the server sent {sent} that do not lead to a trusted CA"), "serve the full chain from a CA that senders trust"),
            }
        }
        Err(rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. })) => {
            Check::failure(
                kind,
                format!("a CA certificate in the chain ({sent}) has expired"),
                "serve the current intermediate certificates of your CA",
            )
        }
        Err(e) => Check::failure(
            kind,
            format!("the chain ({sent}) is rejected: {}", escape(&e.to_string(), 100)),
            "serve a certificate chain from a CA that senders trust",
        ),
    }
}

fn expiry_check(kind: Kind, info: &Info, now: i64) -> Check {
    let date = utc_date(info.not_after);
    if now < info.not_before {
        return Check::failure(
            kind,
            format!("the certificate is not valid before {}", utc_date(info.not_before)),
            "install a certificate that is valid now, and check the server's clock",
        );
    }
    if now > info.not_after {
        return Check::failure(
            kind,
            format!("the certificate expired on {date} ({} ago)", days((now - info.not_after) / DAY)),
            "renew the certificate, make sure automatic renewal runs, and reload the server",
        );
    }
    let left = (info.not_after - now) / DAY;
    if left < EXPIRY_WARNING_DAYS {
        return Check::warning(
            kind,
            format!("the certificate expires in {}, on {date}", days(left)),
            "renew it now, and check that automatic renewal runs and the server reloads the new certificate",
        );
    }
    Check::pass(kind, format!("the certificate expires in {}, on {date}", days(left)))
}

/// "1 day", "2 days".
fn days(n: i64) -> String {
    if n == 1 {
        "1 day".to_owned()
    } else {
        format!("{n} days")
    }
}

/// What the checks read from a certificate.
struct Info {
    subject: String,
    issuer: String,
    self_signed: bool,
    /// DNS subject alternative names, escaped.
    names: Vec<String>,
    not_before: i64,
    not_after: i64,
}

impl Info {
    fn read(der: &CertificateDer<'_>) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(name) => {
                        Some(escape(name, 80).trim_matches('"').to_owned())
                    }
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
            names,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        })
    }
}

/// A distinguished name, escaped and quoted for a report line.
fn quoted(name: &str) -> String {
    escape(name, 100)
}

/// Describes a failed handshake in the terms an administrator can act on.
fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion) => {
            "the server offers neither TLS 1.2 nor TLS 1.3 (protocol_version alert)".into()
        }
        rustls::Error::AlertReceived(AlertDescription::HandshakeFailure) => {
            "the server shares no TLS 1.2 or 1.3 cipher suite with modern senders (handshake_failure alert)".into()
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            format!("the server does not speak TLS here ({e})")
        }
        other => other.to_string(),
    }
}

/// Accepts any certificate while checking the handshake signatures: the chain is judged after
/// the handshake by [`judge`], one rule at a time. Nothing is sent over a connection made with it
/// but an SMTP `QUIT`.
#[derive(Debug)]
struct Inspect {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Inspect {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A trust store from DER certificates, skipping any the store cannot use.
pub fn root_store<'a>(certs: impl IntoIterator<Item = &'a [u8]>) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(certs.into_iter().map(|der| CertificateDer::from(der.to_vec())));
    roots
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    use super::*;
    use crate::check::report::Verdict;

    const KINDS: CertificateKinds = CertificateKinds {
        name: Kind::SmtpCertificateName,
        chain: Kind::SmtpCertificateChain,
        expiry: Kind::SmtpCertificateExpiry,
    };
    const JUNE_2024: u64 = 1_717_200_000;

    struct Pki {
        roots: RootCertStore,
        leaf: CertificateDer<'static>,
        intermediate: CertificateDer<'static>,
        self_signed: CertificateDer<'static>,
    }

    fn ca_params(name: &str, from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateParams {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(from.0, from.1, from.2);
        params.not_after = rcgen::date_time_ymd(to.0, to.1, to.2);
        params
    }

    fn leaf_params(name: &str) -> CertificateParams {
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2024, 12, 31);
        params
    }

    /// A root, an intermediate signed by it, and a leaf for mx.example.com valid in 2024.
    fn pki() -> Pki {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("Test Root", (2020, 1, 1), (2040, 1, 1));
        let root = root_params.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root_params, root_key);
        let inter_key = KeyPair::generate().unwrap();
        let inter_params = ca_params("Test Intermediate", (2020, 1, 1), (2040, 1, 1));
        let intermediate = inter_params.signed_by(&inter_key, &root_issuer).unwrap();
        let inter_issuer = Issuer::new(inter_params, inter_key);
        let leaf = leaf_params("mx.example.com").signed_by(&KeyPair::generate().unwrap(), &inter_issuer).unwrap();
        let self_key = KeyPair::generate().unwrap();
        let mut self_params = leaf_params("mx.example.com");
        self_params.distinguished_name.push(rcgen::DnType::CommonName, "mx.example.com");
        let self_signed = self_params.self_signed(&self_key).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(root.der().clone()).unwrap();
        Pki {
            roots,
            leaf: leaf.der().clone(),
            intermediate: intermediate.der().clone(),
            self_signed: self_signed.der().clone(),
        }
    }

    fn verdicts(checks: &[Check]) -> Vec<Verdict> {
        checks.iter().map(|c| c.verdict).collect()
    }

    #[test]
    fn each_certificate_defect_gets_its_own_line() {
        use Verdict::*;
        let p = pki();
        let full = [p.leaf.clone(), p.intermediate.clone()];
        let judged =
            |host: &str, chain: &[CertificateDer<'static>], now: u64| judge(KINDS, host, chain, Some(&p.roots), now);

        let good = judged("mx.example.com", &full, JUNE_2024);
        assert_eq!(verdicts(&good), [Pass, Pass, Pass]);
        assert_eq!(good[2].summary, "the certificate expires in 213 days, on 2024-12-31");
        assert!(good[1].summary.contains("2 certificates, issued by \"CN=Test Intermediate\""), "{}", good[1].summary);

        let wrong = judged("other.example.com", &full, JUNE_2024);
        assert_eq!(verdicts(&wrong), [Failure, Pass, Pass]);
        assert_eq!(wrong[0].summary, "the certificate is for mx.example.com, not other.example.com");

        let incomplete = judged("mx.example.com", &full[..1], JUNE_2024);
        assert_eq!(verdicts(&incomplete), [Pass, Failure, Pass]);
        assert!(
            incomplete[1]
                .summary
                .contains("issued by \"CN=Test Intermediate\", which is neither sent nor a trusted CA"),
            "{}",
            incomplete[1].summary
        );

        let self_signed = judged("mx.example.com", std::slice::from_ref(&p.self_signed), JUNE_2024);
        assert_eq!(verdicts(&self_signed), [Pass, Failure, Pass]);
        assert!(self_signed[1].summary.contains("self-signed"), "{}", self_signed[1].summary);

        // 2024-12-25: six days left.
        let soon = judged("mx.example.com", &full, 1_735_084_800);
        assert_eq!(verdicts(&soon), [Pass, Pass, Warning]);
        assert_eq!(soon[2].summary, "the certificate expires in 6 days, on 2024-12-31");

        // 2025-02-01: expired, and the chain is still judged as it stands.
        let expired = judged("mx.example.com", &full, 1_738_368_000);
        assert_eq!(verdicts(&expired), [Pass, Pass, Failure]);
        assert_eq!(expired[2].summary, "the certificate expired on 2024-12-31 (32 days ago)");

        // 2023-12-01: not valid yet.
        let early = judged("mx.example.com", &full, 1_701_388_800);
        assert_eq!(verdicts(&early), [Pass, Pass, Failure]);
        assert_eq!(early[2].summary, "the certificate is not valid before 2024-01-01");

        let no_store = judge(KINDS, "mx.example.com", &full, None, JUNE_2024);
        assert_eq!(verdicts(&no_store), [Pass, Failure, Pass]);
        assert_eq!(verdicts(&judge(KINDS, "mx.example.com", &[], Some(&p.roots), JUNE_2024)), [Failure]);
        assert_eq!(
            verdicts(&judge(
                KINDS,
                "mx.example.com",
                &[CertificateDer::from(vec![1, 2, 3])],
                Some(&p.roots),
                JUNE_2024
            )),
            [Failure]
        );
    }
}
