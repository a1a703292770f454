//! Configuration: plain data read from one TOML file, shared by every face.
//!
//! No file is needed: every field has a default, documented on the field with the reason for it.
//! [`Config::load`] finds the file in this order: an explicit path, the `MTA_STS_CONFIG`
//! environment variable, [`DEFAULT_PATH`] if it exists, else the built-in defaults. Durations are
//! written as strings such as `"500ms"`, `"60s"`, `"30m"`, `"12h"` or `"1d"`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
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
    /// The policy daemon, `mta-sts serve`.
    pub serve: ServeConfig,
    /// The domain owner's checker, `mta-sts check`.
    pub check: CheckConfig,
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
    /// empty). Defaults to 100,000 (the daemon measured 152 MiB resident when full, see
    /// docs/benchmarks.md): far more domains than a busy MTA sends to in a day, and a bound that
    /// a flood of lookups for random domains cannot pass. "No policy" answers are evicted first.
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

/// The policy daemon `mta-sts serve` (the `[serve]` section).
///
/// ```toml
/// [serve]
/// user = "mta-sts"
///
/// [[serve.socketmap]]            # Postfix, Sendmail: netstring socketmap
/// address = "127.0.0.1:8461"
///
/// [[serve.socketmap]]
/// path = "/run/mta-sts/socketmap.sock"
/// group = "postfix"
/// mode = 0o660
///
/// [[serve.line]]                 # Exim ${readsocket}: one line in, one line out
/// path = "/run/mta-sts/exim.sock"
/// group = "Debian-exim"
///
/// [serve.zones.postfix310]       # Postfix >= 3.10 with TLSRPT attributes
/// tlsrpt = true
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServeConfig {
    /// Socketmap listeners (netstrings; Postfix `socketmap:`, Sendmail `FEATURE(sts)`). Defaults
    /// to one TCP listener on `127.0.0.1:8461`, the address of postfix-mta-sts-resolver, so that
    /// MTAs configured for it need no change. Loopback only: the answers are nobody else's
    /// business, and the protocol has no authentication. Listing any `[[serve.socketmap]]`
    /// replaces the default (as upstream's `path` replaces its TCP listener).
    pub socketmap: Vec<ListenerConfig>,
    /// Line-mode listeners (one request line in, one answer line out; Exim `${readsocket}`).
    /// Defaults to none.
    pub line: Vec<ListenerConfig>,
    /// Whether TCP listeners set `SO_REUSEPORT`, so that a second instance can bind the same
    /// port for a restart without downtime. Defaults to false (postfix-mta-sts-resolver defaults
    /// to true): an instance started by mistake, or the old daemon still running, then fails
    /// loudly instead of silently taking half of the lookups.
    pub reuse_port: bool,
    /// Longest request in bytes: a socketmap netstring's announced length, or a line without
    /// its LF. Defaults to 10000, Postfix's own `socketmap_max_query_size`, so that no query
    /// Postfix can send costs the connection (postfix-mta-sts-resolver closes the connection
    /// above 1024 bytes). A longer netstring is refused as soon as its length digits arrive.
    pub max_request: usize,
    /// How long a connection may sit with no complete request, or with a reply the client does
    /// not read, before it is closed. Defaults to 5 min: longer than Postfix's own 10 s idle
    /// close and than any pause of a Sendmail queue run, short enough that dead clients do not
    /// hold connection slots for long.
    #[serde(deserialize_with = "duration")]
    pub idle_timeout: Duration,
    /// Most connections served at once, over all listeners. Defaults to 1024, ten times
    /// Postfix's default process limit. Past it, new connections wait in the listen backlog
    /// until a slot frees up rather than being refused.
    pub max_connections: usize,
    /// On SIGTERM or SIGINT, how long open connections get to finish the requests they have
    /// sent before the daemon exits anyway. Defaults to 20 s, postfix-mta-sts-resolver's
    /// `shutdown_timeout`. A second signal exits at once.
    #[serde(deserialize_with = "duration")]
    pub shutdown_timeout: Duration,
    /// How often the daemon renews cached policies that are due ([`crate::Resolver::refresh_due`]),
    /// with up to a quarter of it added at random each time ([RFC 8461 §10.2]). Defaults to
    /// 1 h: policies are renewed between half and three quarters of their max_age, which is
    /// rarely under a day. `"0s"` turns the task off.
    ///
    /// [RFC 8461 §10.2]: https://www.rfc-editor.org/rfc/rfc8461#section-10.2
    #[serde(deserialize_with = "duration")]
    pub refresh_interval: Duration,
    /// User to switch to after binding the listeners, when started as root. Defaults to none
    /// (a warning is logged when running as root). The cache file is opened after the switch,
    /// so it belongs to this user.
    pub user: Option<String>,
    /// Group to switch to; defaults to the primary group of `user`.
    pub group: Option<String>,
    /// Settings for socketmap names with no `[serve.zones.NAME]` of their own, like
    /// postfix-mta-sts-resolver's `default_zone`.
    pub default_zone: ZoneConfig,
    /// Settings per socketmap name (the last field of Postfix's `socketmap:inet:HOST:PORT:NAME`,
    /// `sts` for Sendmail), like postfix-mta-sts-resolver's `zones`.
    pub zones: BTreeMap<String, ZoneConfig>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            socketmap: default_socketmap(),
            line: Vec::new(),
            reuse_port: false,
            max_request: DEFAULT_MAX_REQUEST,
            idle_timeout: Duration::from_secs(300),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(20),
            refresh_interval: Duration::from_secs(3600),
            user: None,
            group: None,
            default_zone: ZoneConfig::default(),
            zones: BTreeMap::new(),
        }
    }
}

/// The default longest request; see [`ServeConfig::max_request`].
pub const DEFAULT_MAX_REQUEST: usize = 10_000;

/// The default socketmap port, that of postfix-mta-sts-resolver.
pub const DEFAULT_SOCKETMAP_PORT: u16 = 8461;

fn default_socketmap() -> Vec<ListenerConfig> {
    vec![ListenerConfig {
        address: Some(SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_SOCKETMAP_PORT))),
        ..ListenerConfig::default()
    }]
}

/// One listening socket (`[[serve.socketmap]]` or `[[serve.line]]`): a TCP `address` or a Unix
/// socket `path`, exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ListenerConfig {
    /// TCP address and port, IPv4 or IPv6 (`"[::1]:8461"`).
    pub address: Option<SocketAddr>,
    /// Unix socket path. A stale socket file left there is replaced; any other file is an error.
    pub path: Option<PathBuf>,
    /// Owner of the Unix socket file. Defaults to the user the daemon runs as.
    pub owner: Option<String>,
    /// Group of the Unix socket file. Defaults to the group the daemon runs as. Set it to the
    /// MTA's group so that the MTA can connect.
    pub group: Option<String>,
    /// Permission bits of the Unix socket file, written `0o660` in TOML. Defaults to `0o660`
    /// (see [`DEFAULT_SOCKET_MODE`]).
    pub mode: Option<u32>,
    /// Line listeners only: the zone whose settings and dialect answer each line, as if every
    /// line were a socketmap request `ZONE LINE`. Defaults to `exim`.
    pub zone: Option<String>,
}

/// Permission bits of a Unix socket file when the configuration does not say: owner and group
/// may connect, nobody else.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// The zone a line listener answers with when the configuration does not say.
pub const DEFAULT_LINE_ZONE: &str = "exim";

/// Settings of one socketmap name (`[serve.default_zone]`, `[serve.zones.NAME]`). Every field
/// is optional: a zone falls back field by field to the default zone, and the default zone to
/// the `[output]` section and the built-in defaults named on each field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ZoneConfig {
    /// How answers are written. Defaults to the dialect the socketmap name stands for
    /// (`postfix`, `postfix-tlsrpt`, `sts`, `exim`, `json`), and for any other name to the
    /// default zone's dialect, `postfix` unless set.
    pub dialect: Option<Dialect>,
    /// Answer `mode: testing` policies with `secure`; see [`OutputConfig::strict_testing`].
    /// Defaults to the `[output]` value, false unless set.
    pub strict_testing: Option<bool>,
    /// Append ` servername=hostname` in the `postfix` dialects; see
    /// [`OutputConfig::require_sni`]. Defaults to the `[output]` value, true unless set.
    pub require_sni: Option<bool>,
    /// Append Postfix 3.10's TLSRPT attributes in the `postfix` dialect (making it
    /// `postfix-tlsrpt`), like postfix-mta-sts-resolver's per-zone `tlsrpt`. Defaults to false.
    /// Never turn it on for a name that Postfix 3.9 or older, or Sendmail, queries: they defer
    /// the mail.
    pub tlsrpt: Option<bool>,
    /// What the `postfix` and `sendmail` dialects answer for a temporary failure with nothing
    /// cached. Defaults to [`OnTempfail::Temp`].
    pub on_tempfail: Option<OnTempfail>,
}

/// How a zone writes its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Dialect {
    /// `secure match=... servername=hostname` for Postfix 3.4 and later.
    Postfix,
    /// The same followed by Postfix 3.10's TLSRPT and `mx_host_pattern` attributes.
    PostfixTlsrpt,
    /// `secure match=... servername=hostname` for Sendmail's `FEATURE(sts)`, never anything
    /// after it.
    #[serde(alias = "sts")]
    Sendmail,
    /// Exim `${extract}` key=value pairs.
    Exim,
    /// One JSON object.
    Json,
}

/// The socketmap answer to a temporary failure with nothing cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum OnTempfail {
    /// `TEMP <reason>`: Postfix and Sendmail defer the message and try again later. The default,
    /// so that a lookup that failed cannot strip a policy (postfix-mta-sts-resolver answers
    /// `NOTFOUND ` to every failure).
    #[default]
    Temp,
    /// `NOTFOUND `: deliver as if the domain had no policy, as postfix-mta-sts-resolver does.
    #[serde(alias = "not-found")]
    Notfound,
}

/// The domain owner's checker `mta-sts check` (the `[check]` section). The policy host is
/// reached as the `[fetch]` section says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CheckConfig {
    /// Deadline for one MX host, from connecting to the end of the TLS handshake. Defaults to
    /// 30 s: long enough for a greeting delay (Postfix postscreen waits 6 s by default) and a
    /// slow handshake, short enough that a filtered port 25 does not stall the check; the MX
    /// hosts are checked in parallel.
    #[serde(deserialize_with = "duration")]
    pub smtp_timeout: Duration,
    /// TEST ONLY: connect to MX hosts on this port instead of 25, so tests can run SMTP servers
    /// on random loopback ports. Never set it otherwise: senders always use port 25.
    pub test_smtp_port: Option<u16>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self { smtp_timeout: default_smtp_timeout(), test_smtp_port: None }
    }
}

fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
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

/// Longest duration any setting accepts: 100 years, beyond any sensible value, and short enough
/// that a deadline computed from it (a clock reading plus two such durations) cannot overflow,
/// which would panic at the first lookup instead of failing the load.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// Reads `"500ms"`, `"60s"`, `"30m"`, `"12h"`, `"1d"` or a bare number of seconds, at most
/// [`MAX_DURATION`].
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    let duration = match Raw::deserialize(d)? {
        Raw::Seconds(n) => Duration::from_secs(n),
        Raw::Text(s) => parse_duration(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("invalid duration {s:?}, expected e.g. \"500ms\", \"60s\", \"30m\", \"12h\", \"1d\""))
        })?,
    };
    if duration > MAX_DURATION {
        return Err(serde::de::Error::custom(format!("duration of {} s is longer than 100 years", duration.as_secs())));
    }
    Ok(duration)
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
    fn serve_section_defaults_and_every_key() {
        let s = ServeConfig::default();
        assert_eq!(s.socketmap.len(), 1);
        assert_eq!(s.socketmap[0].address, Some("127.0.0.1:8461".parse().unwrap()));
        assert!(s.line.is_empty());
        assert_eq!((s.max_request, s.max_connections, s.reuse_port), (10_000, 1024, false));
        assert_eq!(s.idle_timeout, Duration::from_secs(300));
        assert_eq!(s.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(s.refresh_interval, Duration::from_secs(3600));
        let c = Config::from_toml(
            r#"
            [serve]
            reuse_port = true
            max_request = 2048
            idle_timeout = "30s"
            max_connections = 64
            shutdown_timeout = "5s"
            refresh_interval = "0s"
            user = "mta-sts"
            group = "mail"
            [[serve.socketmap]]
            address = "[::1]:8461"
            [[serve.socketmap]]
            path = "/run/mta-sts/socketmap.sock"
            owner = "mta-sts"
            group = "postfix"
            mode = 0o660
            [[serve.line]]
            path = "/run/mta-sts/exim.sock"
            zone = "json"
            [serve.default_zone]
            dialect = "sts"
            on_tempfail = "notfound"
            [serve.zones.postfix310]
            tlsrpt = true
            strict_testing = true
            require_sni = false
            "#,
        )
        .unwrap();
        let s = c.serve;
        assert_eq!(s.socketmap.len(), 2);
        assert_eq!(s.socketmap[1].mode, Some(0o660));
        assert_eq!(s.line[0].zone.as_deref(), Some("json"));
        assert_eq!(s.default_zone.dialect, Some(Dialect::Sendmail));
        assert_eq!(s.default_zone.on_tempfail, Some(OnTempfail::Notfound));
        assert_eq!(s.zones["postfix310"].tlsrpt, Some(true));
        assert_eq!(s.refresh_interval, Duration::ZERO);
        for bad in [
            "[serve]
listen = []",
            "[[serve.socketmap]]
port = 1",
            "[serve.default_zone]
dialect = \"qmail\"",
            "[serve.default_zone]
on_tempfail = \"defer\"",
            "[serve.zones.x]
strict = true",
        ] {
            assert!(Config::from_toml(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_longer_than_a_century_are_refused_at_load() {
        // Such a timeout used to load, then overflow `Instant + Duration` at the first lookup.
        for bad in [
            "[fetch]\ntimeout = \"10000000000000000000s\"",
            "[dns]\ntimeout = 18446744073709551615",
            "[cache]\nnegative_ttl = \"36501d\"",
        ] {
            let e = Config::from_toml(bad).unwrap_err();
            assert!(e.contains("longer than 100 years"), "{bad}: {e}");
        }
        let c = Config::from_toml("[cache]\nnegative_ttl = \"36500d\"").unwrap();
        assert_eq!(c.cache.negative_ttl, MAX_DURATION);
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
