//! Test PKI: a throw-away certificate authority (rcgen, ECDSA P-256) that
//! issues server certificates for the test HTTPS server and for external
//! servers (nginx, exim) via PEM files, plus a tiny self-deleting temp dir.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const DAY: Duration = Duration::from_secs(86_400);

static UNIQUE: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{}-{:08x}", std::process::id(), n, nanos)
}

/// The ring crypto provider, the only one this project uses.
pub fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------
// TempDir
// ---------------------------------------------------------------------------

/// A directory under `std::env::temp_dir()` with a unique name, removed
/// (recursively) on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `$TMPDIR/<prefix>-<pid>-<counter>-<nanos>`.
    pub fn new(prefix: &str) -> TempDir {
        let base = std::env::temp_dir();
        for _ in 0..100 {
            let path = base.join(format!("{}-{}", prefix, unique_suffix()));
            match fs::create_dir(&path) {
                Ok(()) => return TempDir { path },
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create temp dir {}: {e}", path.display()),
            }
        }
        panic!("cannot create a unique temp dir under {}", base.display());
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self.path().join(name)`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

// ---------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------

/// Validity window of an issued certificate (relative to now).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Validity {
    /// not_before = now - 1 day, not_after = now + 365 days.
    Valid,
    /// not_before = now - 30 days, not_after = now - 1 day.
    Expired,
    /// not_before = now + 30 days, not_after = now + 395 days.
    NotYetValid,
}

/// A leaf certificate with its key, as rustls types and as PEM text.
#[derive(Debug)]
pub struct CertifiedKey {
    /// Leaf first, then the issuing CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// PKCS#8 private key of the leaf.
    pub key: PrivateKeyDer<'static>,
    /// PEM of the leaf certificate only.
    pub cert_pem: String,
    /// PEM of leaf + CA certificate (what nginx `ssl_certificate` / exim
    /// `tls_certificate` want).
    pub chain_pem: String,
    /// PEM ("PRIVATE KEY", PKCS#8) of the leaf key.
    pub key_pem: String,
}

impl Clone for CertifiedKey {
    fn clone(&self) -> Self {
        CertifiedKey {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
            cert_pem: self.cert_pem.clone(),
            chain_pem: self.chain_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

impl CertifiedKey {
    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A rustls server config (ring provider, TLS 1.2 + 1.3, no client
    /// auth) serving this chain.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let cfg = rustls::ServerConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .expect("issued certificate/key pair is usable by rustls");
        Arc::new(cfg)
    }

    /// Writes `<stem>.crt` (chain PEM) and `<stem>.key` (key PEM) into
    /// `dir`; returns (cert path, key path). The key file is mode 0600.
    pub fn write_files(&self, dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
        let crt = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        fs::write(&crt, &self.chain_pem).expect("write certificate PEM");
        fs::write(&key, &self.key_pem).expect("write key PEM");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(&key, fs::Permissions::from_mode(0o600));
        }
        (crt, key)
    }
}

struct CaInner {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    pem: String,
    name: String,
    dir: TempDir,
    ca_file: PathBuf,
}

/// A self-signed test CA. Cheap to clone (shared); the temp dir holding
/// `ca.pem` is removed when the last clone is dropped. A second, untrusted CA
/// is simply another `TestCa::new()`.
#[derive(Clone)]
pub struct TestCa {
    inner: Arc<CaInner>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("name", &self.inner.name)
            .field("ca_file", &self.inner.ca_file)
            .finish()
    }
}

impl Default for TestCa {
    fn default() -> Self {
        TestCa::new()
    }
}

/// Sets `not_before`/`not_after` relative to now (rcgen's `date_time_ymd`
/// gives the `OffsetDateTime` type without depending on `time` directly).
fn set_window(params: &mut CertificateParams, before_now: i64, after_now: i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let shift = |days: i64| {
        let base = epoch + now;
        if days >= 0 {
            base + DAY * days as u32
        } else {
            base - DAY * (-days) as u32
        }
    };
    params.not_before = shift(before_now);
    params.not_after = shift(after_now);
}

fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}

impl TestCa {
    /// Generates a new CA (ECDSA P-256, valid from yesterday for 10 years)
    /// and writes its certificate to `<tempdir>/ca.pem`.
    pub fn new() -> TestCa {
        let name = format!("mta-sts test CA {}", unique_suffix());
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, name.clone());
        params
            .distinguished_name
            .push(DnType::OrganizationName, "mta-sts tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        set_window(&mut params, -1, 3650);
        let key = KeyPair::generate().expect("generate CA key");
        let cert = params.self_signed(&key).expect("self-sign CA");
        let der = cert.der().clone();
        let pem = cert.pem();
        let issuer = Issuer::new(params, key);
        let dir = TempDir::new("mta-sts-test-ca");
        let ca_file = dir.join("ca.pem");
        fs::write(&ca_file, &pem).expect("write ca.pem");
        TestCa {
            inner: Arc::new(CaInner {
                issuer,
                der,
                pem,
                name,
                dir,
                ca_file,
            }),
        }
    }

    /// PEM of the CA certificate.
    pub fn ca_pem(&self) -> &str {
        &self.inner.pem
    }

    /// DER of the CA certificate.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.inner.der.clone()
    }

    /// Subject common name of the CA (unique per CA).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Path of `ca.pem` inside the CA's own temp dir (lives as long as the CA).
    pub fn ca_file(&self) -> &Path {
        &self.inner.ca_file
    }

    /// The CA's own temp dir (removed when the last clone of the CA drops);
    /// handy for writing server cert/key files next to `ca.pem`.
    pub fn dir(&self) -> &Path {
        self.inner.dir.path()
    }

    /// Writes the CA certificate PEM to `dir/ca.pem` and returns that path.
    pub fn write_ca_file(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        fs::write(&path, &self.inner.pem).expect("write ca.pem");
        path
    }

    /// A root store containing just this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(self.ca_der())
            .expect("CA certificate is acceptable as a trust anchor");
        roots
    }

    /// A rustls client config (ring provider) trusting only this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let cfg = rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(self.root_store())
            .with_no_client_auth();
        Arc::new(cfg)
    }

    /// Issues a server certificate (serverAuth EKU) for `names` (DNS names,
    /// wildcards such as `*.example.com`, or IP address literals). The first
    /// name is also the subject CN. Returned chain = [leaf, CA].
    pub fn issue(&self, names: &[&str], validity: Validity) -> CertifiedKey {
        let sans: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(sans).expect("valid subject alt names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().copied().unwrap_or("mta-sts test leaf"),
        );
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        match validity {
            Validity::Valid => set_window(&mut params, -1, 365),
            Validity::Expired => set_window(&mut params, -30, -1),
            Validity::NotYetValid => set_window(&mut params, 30, 395),
        }
        let key = KeyPair::generate().expect("generate leaf key");
        let cert = params
            .signed_by(&key, &self.inner.issuer)
            .expect("sign leaf certificate");
        let cert_pem = cert.pem();
        let chain_pem = format!("{}{}", cert_pem, self.inner.pem);
        CertifiedKey {
            chain: vec![cert.der().clone(), self.inner.der.clone()],
            key: key_der(&key),
            cert_pem,
            chain_pem,
            key_pem: key.serialize_pem(),
        }
    }
}
