//! The DNS and HTTPS fixtures the C programs look up, and their configuration files.
//!
//! Published domains (the C programs know them by name):
//!
//! | domain | answer |
//! |---|---|
//! | `enforce.example` | enforce, id 20240101, mx `mail.enforce.example`, `*.mx.enforce.example` |
//! | `testing.example` | testing, id t1, mx `mail.testing.example`, max_age 604800 |
//! | `none.example` | none, id n1 |
//! | `warn.example` | enforce, id w1 (the api test then makes its DNS fail) |
//! | `nopolicy.example` | NXDOMAIN: no policy |
//! | `broken.example` | a record, but the policy host answers 404: no policy, with a reason |
//! | `tempfail.example` | SERVFAIL: temporary failure |
//! | `d000.fork.example`... | enforce, id f000... |

use std::path::{Path, PathBuf};

use crate::common::dns::{Answer, DnsServer};
use crate::common::https::{HttpsServer, Reply, Site};
use crate::common::pki::{TempDir, TestCa};

pub struct Net {
    pub dns: DnsServer,
    pub https: HttpsServer,
    pub ca: TestCa,
    pub dir: TempDir,
}

impl Net {
    /// Starts the servers and publishes the table above, with `fork_domains` fork domains.
    pub fn start(fork_domains: usize) -> Net {
        let ca = TestCa::new();
        let net = Net { dns: DnsServer::start(), https: HttpsServer::start(&ca), ca, dir: TempDir::new("mtasts-ffi") };
        net.publish(
            "enforce.example",
            "20240101",
            Site::policy(
                "version: STSv1\nmode: enforce\nmx: mail.enforce.example\nmx: *.mx.enforce.example\nmax_age: 86400\n",
            ),
        );
        net.publish(
            "testing.example",
            "t1",
            Site::policy("version: STSv1\nmode: testing\nmx: mail.testing.example\nmax_age: 604800\n"),
        );
        net.publish("none.example", "n1", Site::policy("version: STSv1\nmode: none\nmax_age: 86400\n"));
        net.publish(
            "warn.example",
            "w1",
            Site::policy("version: STSv1\nmode: enforce\nmx: mail.warn.example\nmax_age: 86400\n"),
        );
        net.publish(
            "broken.example",
            "b1",
            Site::new(crate::common::https::CertKind::Valid, Reply::status(404, "not here")),
        );
        net.dns.set("_mta-sts.nopolicy.example", Answer::NxDomain);
        net.dns.set("_mta-sts.tempfail.example", Answer::ServFail);
        for n in 0..fork_domains {
            let domain = format!("d{n:03}.fork.example");
            let policy = format!("version: STSv1\nmode: enforce\nmx: mail.{domain}\nmax_age: 86400\n");
            net.publish(&domain, &format!("f{n:03}"), Site::policy(&policy));
        }
        net
    }

    /// A domain with a TXT record, a policy host address and a site.
    pub fn publish(&self, domain: &str, id: &str, site: Site) {
        self.dns.set(&format!("_mta-sts.{domain}"), Answer::txt(&[format!("v=STSv1; id={id};")]));
        self.dns.set(&format!("mta-sts.{domain}"), Answer::A(vec!["127.0.0.1".parse().unwrap()]));
        self.https.set(&format!("mta-sts.{domain}"), site);
    }

    /// Writes the fixtures' configuration plus `cache_extra` TOML lines in the `[cache]` section
    /// (memory only unless they set `path`) to `<dir>/<name>`.
    pub fn config(&self, name: &str, cache_extra: &str) -> PathBuf {
        self.config_with_ca(name, self.ca.ca_file(), cache_extra)
    }

    /// [`Net::config`] with another `fetch.ca_file`.
    pub fn config_with_ca(&self, name: &str, ca_file: &Path, cache_extra: &str) -> PathBuf {
        let text = format!(
            "[dns]\nservers = [\"{dns}\"]\ntimeout = \"10s\"\n\n\
             [fetch]\ntimeout = \"10s\"\nca_file = \"{ca}\"\nallow_private_addresses = true\ntest_policy_port = {port}\n\n\
             [cache]\n{cache}\n",
            dns = self.dns.addr(),
            ca = ca_file.display(),
            port = self.https.port(),
            // Memory only unless the caller names a file.
            cache = if cache_extra.contains("path =") { cache_extra.to_owned() } else { format!("path = \"\"\n{cache_extra}") },
        );
        self.write(name, &text)
    }

    /// Writes `text` to `<dir>/<name>`.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).expect("write config");
        path
    }
}
