//! A test world: the DNS and HTTPS fixtures with a test CA, a temp dir, and a configuration file
//! pointing the resolver at them, for tests that drive the binaries or the C library.

use std::path::PathBuf;

use super::dns::{Answer, DnsServer};
use super::https::{HttpsServer, Site};
use super::pki::{TempDir, TestCa};

/// DNS and HTTPS servers on loopback, a CA the resolver trusts, and a directory for files.
pub struct World {
    pub dns: DnsServer,
    pub https: HttpsServer,
    pub ca: TestCa,
    pub dir: TempDir,
}

impl World {
    /// Starts both servers with nothing published.
    pub fn start(name: &str) -> World {
        let ca = TestCa::new();
        World { dns: DnsServer::start(), https: HttpsServer::start(&ca), ca, dir: TempDir::new(name) }
    }

    /// Publishes a domain: its `_mta-sts` TXT record with `id`, its policy host at 127.0.0.1,
    /// and what the policy host serves.
    pub fn publish(&self, domain: &str, id: &str, site: Site) {
        self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={id};")]));
        self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        self.https.set(&format!("mta-sts.{domain}"), site);
    }

    /// TOML for the `[dns]` and `[fetch]` sections that reach these servers, then `extra`.
    pub fn config_toml(&self, extra: &str) -> String {
        format!(
            "[dns]\nservers = [\"{}\"]\ntimeout = \"2s\"\n\
             [fetch]\ntimeout = \"5s\"\nca_file = \"{}\"\nallow_private_addresses = true\ntest_policy_port = {}\n{extra}",
            self.dns.addr(),
            self.ca.ca_file().display(),
            self.https.port(),
        )
    }

    /// Writes [`World::config_toml`] to a file in the world's directory.
    pub fn config_file(&self, name: &str, extra: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, self.config_toml(extra)).unwrap();
        path
    }
}
