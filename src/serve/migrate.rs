//! Reading postfix-mta-sts-resolver's YAML configuration (`/etc/mta-sts-daemon.yml`) and writing
//! the equivalent TOML, for `mta-sts migrate-config`.
//!
//! Upstream reads its file with PyYAML's `safe_load`, which implements YAML 1.1: `mode: 0666` is
//! the octal number 438, and `yes`, `no`, `on`, `off` are booleans. A YAML 1.2 reading would
//! give decimal 666 and strings, and so silently wrong socket permissions. This module
//! therefore takes plain scalars from the parser's events as text and resolves them with the
//! YAML 1.1 rules ([`resolve_plain`]); quoted scalars stay strings, as in PyYAML.
//!
//! Every key with an equivalent is translated; the others are listed as comments in the output
//! (by name only: a Redis URL may hold a password) and in [`Migration::notes`].

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use saphyr_parser::{Event, Parser, ScalarStyle};

use crate::config::DEFAULT_SOCKETMAP_PORT;

/// The result of a migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// The TOML configuration, with comments where behaviour differs.
    pub toml: String,
    /// What could not be carried over, or changes meaning, one line each.
    pub notes: Vec<String>,
}

/// Why a YAML file cannot be migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrateError {
    /// Not valid YAML.
    Yaml {
        /// Line number, from 1.
        line: usize,
        /// What the parser said.
        reason: String,
    },
    /// Valid YAML, but not a mapping of settings at the top, or a value of the wrong type.
    Shape {
        /// The key (`default_zone.timeout`), or `(top)`.
        key: String,
        /// What was expected.
        expected: &'static str,
    },
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Yaml { line, reason } => write!(f, "migrate: line {line}: {reason}"),
            Self::Shape { key, expected } => write!(f, "migrate: {key}: expected {expected}"),
        }
    }
}

impl std::error::Error for MigrateError {}

/// A YAML value after YAML 1.1 resolution.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing.
    Null,
    /// `true`, `yes`, `on`, ... and their opposites.
    Bool(bool),
    /// An integer: decimal, `0`-prefixed octal, `0x` hex, `0b` binary, sexagesimal.
    Int(i64),
    /// A float.
    Float(f64),
    /// Anything else, and every quoted scalar.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in file order; keys as their text.
    Map(Vec<(String, Value)>),
}

/// Parses YAML text into a [`Value`], resolving plain scalars with the YAML 1.1 rules.
///
/// # Errors
///
/// [`MigrateError::Yaml`] for text that is not YAML.
pub fn parse(text: &str) -> Result<Value, MigrateError> {
    let mut events = Vec::new();
    for event in Parser::new_from_str(text) {
        match event {
            Ok((event, _)) => events.push(event),
            Err(e) => return Err(MigrateError::Yaml { line: e.marker().line(), reason: e.info().to_owned() }),
        }
    }
    let mut builder = Builder { events: events.into_iter(), anchors: HashMap::new() };
    let mut document = Value::Null;
    while let Some(event) = builder.events.next() {
        match event {
            Event::DocumentStart(_) => {
                if let Some(first) = builder.events.next() {
                    if !matches!(first, Event::DocumentEnd) {
                        document = builder.node(first)?;
                    }
                }
                break;
            }
            Event::StreamEnd => break,
            _ => {}
        }
    }
    Ok(document)
}

struct Builder<'a> {
    events: std::vec::IntoIter<Event<'a>>,
    anchors: HashMap<usize, Value>,
}

impl<'a> Builder<'a> {
    fn node(&mut self, event: Event<'a>) -> Result<Value, MigrateError> {
        let truncated = || MigrateError::Yaml { line: 0, reason: "unexpected end of document".into() };
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = match (style, tag) {
                    (ScalarStyle::Plain, None) => resolve_plain(&text),
                    _ => Value::Str(text.into_owned()),
                };
                (value, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    match self.events.next().ok_or_else(truncated)? {
                        Event::SequenceEnd => break,
                        e => items.push(self.node(e)?),
                    }
                }
                (Value::Seq(items), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let key = match self.events.next().ok_or_else(truncated)? {
                        Event::MappingEnd => break,
                        e => self.node(e)?,
                    };
                    let event = self.events.next().ok_or_else(truncated)?;
                    let value = self.node(event)?;
                    entries.push((key_text(&key), value));
                }
                (Value::Map(entries), anchor)
            }
            Event::Alias(id) => return Ok(self.anchors.get(&id).cloned().unwrap_or(Value::Null)),
            _ => return Err(MigrateError::Yaml { line: 0, reason: "unexpected event".into() }),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        Ok(value)
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::Str(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(x) => x.to_string(),
        Value::Seq(_) | Value::Map(_) => "?".into(),
    }
}

/// Resolves a plain (unquoted, untagged) scalar as PyYAML's YAML 1.1 resolver does.
pub fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Value::Bool(true),
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(n) = yaml11_int(text) {
        return Value::Int(n);
    }
    if let Some(x) = yaml11_float(text) {
        return Value::Float(x);
    }
    Value::Str(text.to_owned())
}

/// YAML 1.1 `tag:yaml.org,2002:int`: `[-+]?0b[01_]+`, `[-+]?0[0-7_]+` (octal),
/// `[-+]?(0|[1-9][0-9_]*)`, `[-+]?0x[0-9a-fA-F_]+`, `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`.
fn yaml11_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str, radix: u32| -> Option<i64> {
        let clean: String = s.chars().filter(|&c| c != '_').collect();
        if clean.is_empty() || !s.chars().all(|c| c == '_' || c.is_digit(radix)) {
            return None;
        }
        i64::from_str_radix(&clean, radix).ok()
    };
    let value = if let Some(bin) = body.strip_prefix("0b") {
        digits(bin, 2)?
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits(hex, 16)?
    } else if body == "0" {
        0
    } else if let Some(oct) = body.strip_prefix('0') {
        digits(oct, 8)?
    } else if body.contains(':') {
        let mut total: i64 = 0;
        for (n, part) in body.split(':').enumerate() {
            let v = digits(part, 10)?;
            if n > 0 && (v > 59 || part.len() > 2) {
                return None;
            }
            total = total.checked_mul(60)?.checked_add(v)?;
        }
        total
    } else if body.starts_with(|c: char| c.is_ascii_digit()) {
        digits(body, 10)?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// YAML 1.1 `tag:yaml.org,2002:float`, the forms a timeout can take: `[-+]?[0-9_]*\.[0-9_]*`
/// with an optional exponent.
fn yaml11_float(text: &str) -> Option<f64> {
    let body = text.trim_start_matches(['-', '+']);
    if !body.contains('.') || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    clean.parse().ok()
}

/// Translates upstream's YAML configuration to ours. `source` names the file in the header.
///
/// # Errors
///
/// [`MigrateError`] when the text is not YAML, or a known key has a value of the wrong type.
pub fn migrate(yaml: &str, source: &str) -> Result<Migration, MigrateError> {
    let top = match parse(yaml)? {
        Value::Map(entries) => entries,
        Value::Null => Vec::new(),
        _ => return Err(shape("(top)", "a mapping of settings")),
    };
    let mut out = Output::default();
    let get = |key: &str| top.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    for (key, _) in &top {
        if !KNOWN.contains(&key.as_str()) {
            out.note(format!("{key}: no equivalent, not migrated"));
        }
    }
    let default_zone = match get("default_zone") {
        Some(Value::Map(entries)) => entries.clone(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => return Err(shape("default_zone", "a mapping")),
    };
    let zone_timeout = match default_zone.iter().find(|(k, _)| k == "timeout") {
        Some((_, v)) => Some(seconds("default_zone.timeout", v)?),
        None => None,
    };

    // [dns], [fetch]: upstream's zone timeout bounds the DNS query and, separately, the HTTPS
    // exchange; ours are global.
    if let Some(t) = zone_timeout {
        out.section("dns");
        out.line(format!("timeout = {}", duration(t)));
        out.section("fetch");
        out.line(format!("timeout = {}", duration(t)));
    }

    // [cache]
    out.section("cache");
    if let Some(grace) = get("cache_grace") {
        out.line(format!("recheck_interval = {}", duration(seconds("cache_grace", grace)?)));
    }
    let cache_type = match get("cache") {
        Some(Value::Map(cache)) => match cache.iter().find(|(k, _)| k == "type").map(|(_, v)| v) {
            Some(Value::Str(t)) => t.clone(),
            None => "internal".into(),
            Some(_) => return Err(shape("cache.type", "a string")),
        },
        None | Some(Value::Null) => "internal".into(),
        Some(_) => return Err(shape("cache", "a mapping")),
    };
    let cache_note = match cache_type.as_str() {
        "internal" => "cache.type internal (per process, lost at restart) becomes the persistent cache file that \
                       every mta-sts process shares (cache.path, default /var/cache/mta-sts/cache.db)"
            .to_owned(),
        "sqlite" => "cache.type sqlite: upstream's cache file has another format and is not reused; mta-sts keeps \
                     its own file (cache.path, default /var/cache/mta-sts/cache.db)"
            .to_owned(),
        other => format!(
            "cache.type {other}: not supported; mta-sts keeps a persistent cache file shared by its processes \
             (cache.path, default /var/cache/mta-sts/cache.db)"
        ),
    };
    out.notes.push(cache_note);

    // [serve]
    out.section("serve");
    if let Some(v) = get("reuse_port") {
        out.line(format!("reuse_port = {}", boolean("reuse_port", v)?));
    } else {
        // Upstream's default is true; ours false.
        out.line("reuse_port = true".into());
    }
    if let Some(v) = get("shutdown_timeout") {
        out.line(format!("shutdown_timeout = {}", duration(seconds("shutdown_timeout", v)?)));
    }
    match get("proactive_policy_fetching") {
        Some(Value::Map(p)) => {
            let find = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v);
            let enabled = match find("enabled") {
                Some(v) => boolean("proactive_policy_fetching.enabled", v)?,
                None => false,
            };
            if enabled {
                let interval = match find("interval") {
                    Some(v) => seconds("proactive_policy_fetching.interval", v)?,
                    None => 86400.0,
                };
                out.line(format!("refresh_interval = {}", duration(interval)));
            }
            for key in ["concurrency_limit", "grace_ratio"] {
                if find(key).is_some() {
                    out.note(format!(
                        "proactive_policy_fetching.{key}: no equivalent (mta-sts renews each policy \
                                      between half and three quarters of its max_age), not migrated"
                    ));
                }
            }
            if !enabled {
                out.comment(
                    "upstream's proactive fetching was off; mta-sts renews due policies every hour \
                             (refresh_interval = \"0s\" turns that off)",
                );
            }
        }
        None | Some(Value::Null) => out.comment(
            "upstream's proactive fetching was off; mta-sts renews due policies every hour \
             (refresh_interval = \"0s\" turns that off)",
        ),
        Some(_) => return Err(shape("proactive_policy_fetching", "a mapping")),
    }

    // [[serve.socketmap]]
    out.blank();
    out.line("[[serve.socketmap]]".into());
    match get("path") {
        Some(Value::Str(path)) => {
            out.line(format!("path = {}", quoted(path)));
            match get("mode") {
                Some(Value::Int(mode)) if (0..=0o7777).contains(mode) => out.line(format!("mode = 0o{mode:o}")),
                Some(Value::Null) | None => {
                    out.comment("upstream left the socket mode to the umask; mta-sts defaults to 0o660");
                }
                Some(_) => return Err(shape("mode", "an octal file mode such as 0666")),
            }
            if get("host").is_some() || get("port").is_some() {
                out.note("host and port are ignored when path is set, as upstream does".into());
            }
        }
        None | Some(Value::Null) => {
            let port = match get("port") {
                Some(Value::Int(p)) => u16::try_from(*p).map_err(|_| shape("port", "a port number"))?,
                None | Some(Value::Null) => DEFAULT_SOCKETMAP_PORT,
                Some(_) => return Err(shape("port", "a port number")),
            };
            let ip = match get("host") {
                Some(Value::Str(h)) if h == "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(Value::Str(h)) => h.parse::<IpAddr>().map_err(|_| shape("host", "an IP address"))?,
                None | Some(Value::Null) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(_) => return Err(shape("host", "an IP address")),
            };
            out.line(format!("address = {}", quoted(&SocketAddr::new(ip, port).to_string())));
        }
        Some(_) => return Err(shape("path", "a path")),
    }

    // [serve.default_zone] and [serve.zones.NAME]
    out.blank();
    out.line("[serve.default_zone]".into());
    zone(&mut out, "default_zone", &default_zone, None)?;
    out.comment("postfix-mta-sts-resolver answers NOTFOUND when a lookup fails temporarily with nothing cached;");
    out.comment("mta-sts answers TEMP so that the MTA defers and retries. To keep the old behaviour:");
    out.comment("on_tempfail = \"notfound\"");
    match get("zones") {
        Some(Value::Map(zones)) => {
            for (name, config) in zones {
                let entries = match config {
                    Value::Map(e) => e.clone(),
                    Value::Null => Vec::new(),
                    _ => return Err(shape(&format!("zones.{name}"), "a mapping")),
                };
                out.blank();
                out.line(format!("[serve.zones.{}]", table_key(name)));
                zone(&mut out, &format!("zones.{name}"), &entries, zone_timeout)?;
            }
        }
        None | Some(Value::Null) => {}
        Some(_) => return Err(shape("zones", "a mapping")),
    }

    let mut toml = format!("# Migrated from {source} (postfix-mta-sts-resolver) by mta-sts migrate-config.\n");
    for note in &out.notes {
        let _ = writeln!(toml, "# note: {note}");
    }
    toml.push('\n');
    toml.push_str(&out.text);
    Ok(Migration { toml, notes: out.notes })
}

/// The top-level keys upstream knows.
const KNOWN: [&str; 11] = [
    "host",
    "port",
    "path",
    "mode",
    "reuse_port",
    "shutdown_timeout",
    "cache_grace",
    "cache",
    "proactive_policy_fetching",
    "default_zone",
    "zones",
];

fn zone(
    out: &mut Output,
    key: &str,
    entries: &[(String, Value)],
    default_timeout: Option<f64>,
) -> Result<(), MigrateError> {
    for (name, value) in entries {
        let full = format!("{key}.{name}");
        match name.as_str() {
            "strict_testing" | "require_sni" | "tlsrpt" => {
                out.line(format!("{name} = {}", boolean(&full, value)?));
            }
            "timeout" if default_timeout.is_none() => {}
            "timeout" => {
                let t = seconds(&full, value)?;
                if Some(t) != default_timeout {
                    out.note(format!(
                        "{full}: timeouts are global in mta-sts ([dns] and [fetch] timeout, from \
                                      default_zone.timeout); not migrated"
                    ));
                }
            }
            _ => out.note(format!("{full}: no equivalent, not migrated")),
        }
    }
    Ok(())
}

fn shape(key: &str, expected: &'static str) -> MigrateError {
    MigrateError::Shape { key: key.to_owned(), expected }
}

fn boolean(key: &str, value: &Value) -> Result<bool, MigrateError> {
    match value {
        Value::Bool(b) => Ok(*b),
        // PyYAML would hand upstream a string here, which Python then treats as true if
        // non-empty; refuse rather than guess.
        _ => Err(shape(key, "a boolean (true/false, yes/no, on/off)")),
    }
}

fn seconds(key: &str, value: &Value) -> Result<f64, MigrateError> {
    match value {
        Value::Int(n) if *n >= 0 => Ok(*n as f64),
        Value::Float(x) if x.is_finite() && *x >= 0.0 => Ok(*x),
        _ => Err(shape(key, "a number of seconds")),
    }
}

/// A duration in our syntax: whole seconds as `"Ns"`, anything finer in milliseconds.
fn duration(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("\"{}s\"", secs as u64)
    } else {
        format!("\"{}ms\"", (secs * 1000.0).round() as u64)
    }
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A table key: bare when it can be, quoted otherwise.
fn table_key(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        name.to_owned()
    } else {
        quoted(name)
    }
}

#[derive(Default)]
struct Output {
    text: String,
    notes: Vec<String>,
}

impl Output {
    fn section(&mut self, name: &str) {
        self.blank();
        self.line(format!("[{name}]"));
    }

    fn blank(&mut self) {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
    }

    fn line(&mut self, line: String) {
        self.text.push_str(&line);
        self.text.push('\n');
    }

    fn comment(&mut self, text: &str) {
        let _ = writeln!(self.text, "# {}", text.split_whitespace().collect::<Vec<_>>().join(" "));
    }

    fn note(&mut self, note: String) {
        self.notes.push(note.split_whitespace().collect::<Vec<_>>().join(" "));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{Dialect, ListenerConfig};
    use crate::Config;

    #[test]
    fn yaml_1_1_scalars() {
        for (text, want) in [
            ("0666", Value::Int(0o666)),
            ("0o666", Value::Str("0o666".into())),
            ("666", Value::Int(666)),
            ("0", Value::Int(0)),
            ("08", Value::Str("08".into())),
            ("0x1F", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("-12", Value::Int(-12)),
            ("1_000", Value::Int(1000)),
            ("1:30", Value::Int(90)),
            ("4.5", Value::Float(4.5)),
            (".5", Value::Float(0.5)),
            ("yes", Value::Bool(true)),
            ("No", Value::Bool(false)),
            ("on", Value::Bool(true)),
            ("OFF", Value::Bool(false)),
            ("y", Value::Bool(true)),
            ("True", Value::Bool(true)),
            ("~", Value::Null),
            ("127.0.0.1", Value::Str("127.0.0.1".into())),
            ("yes please", Value::Str("yes please".into())),
        ] {
            assert_eq!(resolve_plain(text), want, "{text}");
        }
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let v = parse("a: '0666'\nb: \"yes\"\nc: !!str 0666\nd: 0666\n").unwrap();
        assert_eq!(
            v,
            Value::Map(vec![
                ("a".into(), Value::Str("0666".into())),
                ("b".into(), Value::Str("yes".into())),
                ("c".into(), Value::Str("0666".into())),
                ("d".into(), Value::Int(438)),
            ])
        );
    }

    /// The example of upstream's README, with a Unix socket and YAML 1.1 values.
    const UPSTREAM: &str = "\
path: \"/var/run/mta-sts.sock\"
mode: 0666
shutdown_timeout: 20
cache_grace: 60
reuse_port: yes
cache:
  type: sqlite
  options:
    filename: \"/var/lib/mta-sts/cache.db\"
proactive_policy_fetching:
  enabled: on
  interval: 86400
  concurrency_limit: 100
  grace_ratio: 2.0
default_zone:
  strict_testing: no
  timeout: 4
  require_sni: true
zones:
  myzone:
    strict_testing: yes
    timeout: 4
  postfix310:
    tlsrpt: on
    timeout: 10
";

    #[test]
    fn upstream_example_migrates_to_an_equivalent_config() {
        let m = migrate(UPSTREAM, "/etc/mta-sts-daemon.yml").unwrap();
        let config = Config::from_toml(&m.toml).unwrap_or_else(|e| panic!("{e}\n{}", m.toml));
        assert_eq!(config.dns.timeout, Duration::from_secs(4));
        assert_eq!(config.fetch.timeout, Duration::from_secs(4));
        assert_eq!(config.cache.recheck_interval, Duration::from_secs(60));
        assert_eq!(
            config.cache,
            crate::config::CacheConfig { recheck_interval: Duration::from_secs(60), ..Default::default() }
        );
        let s = &config.serve;
        assert!(s.reuse_port);
        assert_eq!(s.shutdown_timeout, Duration::from_secs(20));
        assert_eq!(s.refresh_interval, Duration::from_secs(86400));
        let listener = ListenerConfig { path: Some("/var/run/mta-sts.sock".into()), mode: Some(0o666), ..Default::default() };
        assert_eq!(s.socketmap, vec![listener]);
        assert_eq!(s.default_zone.strict_testing, Some(false));
        assert_eq!(s.default_zone.require_sni, Some(true));
        assert_eq!(s.zones["myzone"].strict_testing, Some(true));
        assert_eq!(s.zones["postfix310"].tlsrpt, Some(true));
        assert_eq!(s.zones["postfix310"].dialect, None::<Dialect>);
        assert!(m.toml.contains("mode = 0o666"), "{}", m.toml);
        assert!(m.notes.iter().any(|n| n.contains("zones.postfix310.timeout")), "{:?}", m.notes);
        assert!(m.notes.iter().any(|n| n.contains("concurrency_limit")), "{:?}", m.notes);
        assert!(m.notes.iter().any(|n| n.contains("sqlite")), "{:?}", m.notes);
        assert!(!m.notes.iter().any(|n| n.contains("zones.myzone.timeout")), "same as the default: {:?}", m.notes);
    }

    #[test]
    fn tcp_defaults_and_unknown_keys() {
        let m = migrate(
            "host: ::1\nport: 9000\nfuture_key: 1\ncache:\n  type: redis\n  options:\n    url: redis://u:secret@h\n",
            "x.yml",
        )
        .unwrap();
        let config = Config::from_toml(&m.toml).unwrap();
        assert_eq!(config.serve.socketmap[0].address, Some("[::1]:9000".parse().unwrap()));
        assert!(config.serve.reuse_port, "upstream's default");
        assert!(!m.toml.contains("secret"), "{}", m.toml);
        assert!(m.notes.iter().any(|n| n.starts_with("future_key")), "{:?}", m.notes);
        assert!(m.notes.iter().any(|n| n.contains("redis")), "{:?}", m.notes);

        let m = migrate("", "empty.yml").unwrap();
        let config = Config::from_toml(&m.toml).unwrap();
        assert_eq!(config.serve.socketmap[0].address, Some("127.0.0.1:8461".parse().unwrap()));
        assert_eq!(config.serve.refresh_interval, Duration::from_secs(3600));
    }

    #[test]
    fn wrong_types_and_bad_yaml_are_errors() {
        for (yaml, want) in [
            ("mode: '0666'\npath: /x\n", "migrate: mode: expected an octal file mode such as 0666"),
            (
                "default_zone:\n  strict_testing: maybe\n",
                "migrate: default_zone.strict_testing: expected a boolean (true/false, yes/no, on/off)",
            ),
            ("port: http\n", "migrate: port: expected a port number"),
            ("- a\n- b\n", "migrate: (top): expected a mapping of settings"),
            ("default_zone:\n  timeout: -1\n", "migrate: default_zone.timeout: expected a number of seconds"),
        ] {
            assert_eq!(migrate(yaml, "x").unwrap_err().to_string(), want, "{yaml}");
        }
        assert!(matches!(migrate("a: [1, 2\n", "x"), Err(MigrateError::Yaml { .. })));
    }
}
