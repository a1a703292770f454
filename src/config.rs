//! Configuration: plain data read from one TOML file, shared by every face.
//!
//! No file is needed: every field has a default, documented on the field with the reason for it.
//! [`Config::load`] finds the file in this order: an explicit path, the `MTA_STS_CONFIG`
//! environment variable, [`DEFAULT_PATH`] if it exists, else the built-in defaults. Durations are
//! written as strings such as `"500ms"`, `"60s"`, `"30m"`, `"12h"` or `"1d"`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Where [`Config::load`] looks when given no path and no environment variable.
pub const DEFAULT_PATH: &str = "/etc/mta-sts/mta-sts.toml";

/// Where the cache lives when the configuration does not say.
pub const DEFAULT_CACHE_PATH: &str = "/var/cache/mta-sts/cache.db";

/// Default for [`CacheConfig::memory_entries`].
pub const DEFAULT_MEMORY_ENTRIES: usize = 100_000;

/// The environment variable naming a configuration file.
pub const ENV_VAR: &str = "MTA_STS_CONFIG";

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// DNS lookups.
    pub dns: DnsConfig,
    /// HTTPS policy fetches.
    pub fetch: FetchConfig,
    /// The policy cache.
    pub cache: CacheConfig,
    /// Choices the RFC leaves to the sender.
    pub decision: DecisionConfig,
    /// How answers are written for the MTAs.
    pub output: OutputConfig,
}

/// DNS lookups (the `[dns]` section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DnsConfig {
    /// Recursive servers as `ip:port`. Defaults to empty, meaning the servers of
    /// `/etc/resolv.conf`, so the resolver sees what the MTA sees.
    pub servers: Vec<SocketAddr>,
    /// Deadline for one lookup, retries included. Defaults to 4 s, the timeout of
    /// postfix-mta-sts-resolver: long enough for a slow authoritative server, short enough that
    /// a delivery is not held up much.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self { servers: Vec::new(), timeout: default_dns_timeout() }
    }
}

fn default_dns_timeout() -> Duration {
    Duration::from_secs(4)
}

/// HTTPS policy fetches (the `[fetch]` section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FetchConfig {
    /// One deadline for resolving the policy host, connecting, TLS, headers and body. Defaults to
    /// 10 s: RFC 8461 gives no figure; this bounds a policy host that trickles bytes while leaving
    /// room for a slow but honest one. It is paid once per policy and max_age, not per message.
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// A PEM file of CA certificates trusted in addition to the system store. Defaults to none.
    /// The system store honours `SSL_CERT_FILE` and `SSL_CERT_DIR` as OpenSSL does.
    pub ca_file: Option<PathBuf>,
    /// Whether policy hosts may resolve to loopback, private, link-local or other non-public
    /// addresses. Defaults to false: a mail server should not be made to fetch from its own
    /// network by a stranger's DNS. Tests and private deployments turn it on.
    pub allow_private_addresses: bool,
    /// TEST ONLY: fetch policies from this port instead of 443, so tests can run an HTTPS server
    /// on a random loopback port. Never set it in production: RFC 8461 §3.3 fixes port 443.
    pub test_policy_port: Option<u16>,
}

impl Default for FetchConfig {
    fn default() -> Self {
        Self { timeout: default_fetch_timeout(), ca_file: None, allow_private_addresses: false, test_policy_port: None }
    }
}

fn default_fetch_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The policy cache (the `[cache]` section).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// The SQLite file shared by every process on the host (the daemon, the stdio helper, the
    /// library inside Exim). Defaults to `/var/cache/mta-sts/cache.db`. Set it to an empty
    /// string to keep the cache in memory only, which protects nothing across restarts.
    pub path: PathBuf,
    /// Most entries one process keeps in memory (in front of the file, or alone when `path` is
    /// empty). Defaults to 100,000 (about 50 MB at worst): far more domains than a busy MTA
    /// sends to in a day, and a bound that a flood of lookups for random domains cannot pass.
    /// Remembered "no policy" answers are evicted first.
    pub memory_entries: usize,
    /// Permission bits of a newly created cache file. Defaults to `0o660`: readable and writable
    /// by the owner and the group that all the MTA's users share, nobody else.
    pub file_mode: u32,
    /// How long after the last TXT check a cached policy is used with no DNS query at all.
    /// Defaults to 60 s, postfix-mta-sts-resolver's `cache_grace`: a busy MTA then asks DNS at
    /// most once a minute per domain, and a new policy id is seen within a minute.
    #[serde(deserialize_with = "duration")]
    pub recheck_interval: Duration,
    /// How long "this domain has no policy" is remembered. Defaults to 30 min: most domains have
    /// no policy, and one TXT query per message to each of them is waste; a domain that starts
    /// publishing is seen within half an hour.
    #[serde(deserialize_with = "duration")]
    pub negative_ttl: Duration,
    /// How long a temporary failure is remembered before DNS is asked again. Defaults to 60 s:
    /// enough to damp a retry storm from a queue run, short enough not to delay mail much.
    #[serde(deserialize_with = "duration")]
    pub tempfail_ttl: Duration,
    /// After a failed policy fetch, how long until the same record id is fetched again.
    /// Defaults to 5 min, RFC 8461 §3.3: implementations "MAY limit further attempts to a
    /// period of five minutes or longer per version ID".
    #[serde(deserialize_with = "duration")]
    pub fetch_retry_interval: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from(DEFAULT_CACHE_PATH),
            memory_entries: DEFAULT_MEMORY_ENTRIES,
            file_mode: 0o660,
            recheck_interval: Duration::from_secs(60),
            negative_ttl: Duration::from_secs(30 * 60),
            tempfail_ttl: Duration::from_secs(60),
            fetch_retry_interval: Duration::from_secs(5 * 60),
        }
    }
}

/// Choices the RFC leaves to the sender (the `[decision]` section).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DecisionConfig {
    /// What a temporary DNS failure on the TXT lookup means when nothing is cached.
    /// Defaults to [`OnDnsFailure::Tempfail`].
    pub on_dns_failure: OnDnsFailure,
}

/// How answers are written for the MTAs (the `[output]` section). These knobs change the
/// rendering of a decision, never the decision itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct OutputConfig {
    /// Whether the Postfix and Sendmail dialects answer a `mode: testing` policy with `secure`
    /// like an enforced one. Defaults to false: a testing policy is answered as no policy, as
    /// postfix-mta-sts-resolver does by default (its `strict_testing`): under a testing policy
    /// senders "merely send a report" of failures (RFC 8461 §5), Postfix and Sendmail have no
    /// report-only level, and `secure` would defer the mail instead. The Exim, JSON and text
    /// dialects always say `testing`.
    pub strict_testing: bool,
    /// Whether the Postfix dialect appends ` servername=hostname`, so that Postfix sends the MX
    /// host name as SNI. Defaults to true, as in postfix-mta-sts-resolver (`require_sni`): MX
    /// hosts that serve several names choose their certificate by SNI. Turn it off only for
    /// Postfix older than 3.4, which refuses the attribute and defers the mail. Sendmail always
    /// gets it: `FEATURE(sts)` was written for this reply.
    pub require_sni: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { strict_testing: false, require_sni: default_require_sni() }
    }
}

fn default_require_sni() -> bool {
    true
}

/// The answer when the `_mta-sts` lookup fails temporarily and no policy is cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnDnsFailure {
    /// Answer "temporary failure", so the MTA defers the message and asks again later. The
    /// default: a forged SERVFAIL must not be enough to strip a first-contact policy.
    #[default]
    Tempfail,
    /// Answer "no policy", so the message goes out as it would without MTA-STS.
    NoPolicy,
}

/// Why the configuration could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration.
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser reported (names the key and line).
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => write!(f, "config: cannot read {}: {source}", path.display()),
            Self::Parse { path, reason } => write!(f, "config: {}: {}", path.display(), reason.trim()),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads the configuration from `explicit`, else from `$MTA_STS_CONFIG`, else from
    /// [`DEFAULT_PATH`] if that file exists, else returns the defaults.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when a named file cannot be read or parsed.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => match std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
                None => return Ok(Self::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        Self::from_toml(&text).map_err(|reason| ConfigError::Parse { path, reason })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    ///
    /// The parser's message, which names the offending key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Reads `"500ms"`, `"60s"`, `"30m"`, `"12h"`, `"1d"` or a bare number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(n) => Ok(Duration::from_secs(n)),
        Raw::Text(s) => parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {s:?}, expected e.g. \"500ms\", \"60s\", \"30m\", \"12h\", \"1d\""))
        }),
    }
}

/// Parses a duration string; see [`Config`] for the forms.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = |mul: u64| n.checked_mul(mul).map(Duration::from_secs);
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "d" => secs(86400),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        let c = Config::default();
        assert_eq!(c.cache.recheck_interval, Duration::from_secs(60));
        assert_eq!(c.cache.negative_ttl, Duration::from_secs(1800));
        assert_eq!(c.decision.on_dns_failure, OnDnsFailure::Tempfail);
        assert!(!c.output.strict_testing);
        assert!(c.output.require_sni);
    }

    #[test]
    fn output_section_sets_each_knob_alone() {
        let c = Config::from_toml("[output]\nstrict_testing = true\n").unwrap();
        assert_eq!(c.output, OutputConfig { strict_testing: true, require_sni: true });
        let c = Config::from_toml("[output]\nrequire_sni = false\n").unwrap();
        assert_eq!(c.output, OutputConfig { strict_testing: false, require_sni: false });
        assert!(Config::from_toml("[output]\nstrict = true\n").is_err());
        assert!(Config::from_toml("[output]\nrequire_sni = \"yes\"\n").is_err());
    }

    #[test]
    fn reads_every_section() {
        let c = Config::from_toml(
            r#"
            [dns]
            servers = ["127.0.0.1:5353", "[::1]:53"]
            timeout = "2s"
            [fetch]
            timeout = "1500ms"
            ca_file = "/etc/ssl/extra.pem"
            allow_private_addresses = true
            test_policy_port = 8443
            [cache]
            recheck_interval = 30
            negative_ttl = "1h"
            [decision]
            on_dns_failure = "no-policy"
            "#,
        )
        .unwrap();
        assert_eq!(c.dns.servers.len(), 2);
        assert_eq!(c.dns.timeout, Duration::from_secs(2));
        assert_eq!(c.fetch.timeout, Duration::from_millis(1500));
        assert_eq!(c.fetch.test_policy_port, Some(8443));
        assert_eq!(c.cache.recheck_interval, Duration::from_secs(30));
        assert_eq!(c.cache.negative_ttl, Duration::from_secs(3600));
        assert_eq!(c.cache.tempfail_ttl, Duration::from_secs(60));
        assert_eq!(c.decision.on_dns_failure, OnDnsFailure::NoPolicy);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        for bad in [
            "[dns]\nserver = []",
            "[fetch]\ntimeout = \"10 parsecs\"",
            "[fetch]\ntimeout = \"-1s\"",
            "[decision]\non_dns_failure = \"maybe\"",
            "[nosuch]",
            "[cache]\nnegative_ttl = \"99999999999999999999d\"",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration(" 5 m "), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
