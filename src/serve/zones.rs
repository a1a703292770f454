//! What a socketmap name means: the dialect of the answers and the per-zone switches, as
//! postfix-mta-sts-resolver's zones (`default_zone`, `zones.<name>`) have them.
//!
//! A name is resolved field by field:
//! - the dialect is the zone's own `dialect`, else the dialect the name stands for (`postfix`,
//!   `postfix-tlsrpt`, `sts`, `exim`, `json`, see [`builtin`]), else the default zone's, else
//!   `postfix`. So Sendmail's `sts` gets the Sendmail reply with no configuration, and any
//!   other name the default zone, as upstream answers unknown names;
//! - `strict_testing` and `require_sni` come from the zone, else the default zone, else the
//!   `[output]` section that the other faces use;
//! - `tlsrpt` from the zone, else the default zone; it turns `postfix` into `postfix-tlsrpt`
//!   and means nothing to the other dialects (an inherited value is ignored there, one set on
//!   the zone itself is a configuration error);
//! - `on_tempfail` from the zone, else the default zone, else `TEMP`.

use std::collections::HashMap;
use std::fmt;

use crate::config::{Dialect, OnTempfail, OutputConfig, ServeConfig, ZoneConfig};
use crate::render::{self, Answer};

/// The settings one socketmap name resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// How answers are written.
    pub dialect: Dialect,
    /// The `strict_testing` and `require_sni` switches, in the form the renderers take.
    pub output: OutputConfig,
    /// What a temporary failure is answered with in the `postfix` and `sendmail` dialects.
    pub on_tempfail: OnTempfail,
}

/// Every configured and built-in name, and the default zone for the rest.
#[derive(Debug, Clone)]
pub struct Zones {
    named: HashMap<Box<[u8]>, Zone>,
    default: Zone,
}

/// A zone whose settings contradict each other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ZoneError {
    /// `tlsrpt = true` on a zone whose dialect is not `postfix`.
    TlsrptWithoutPostfix {
        /// The zone (`default_zone` for the default).
        zone: String,
        /// Its dialect.
        dialect: Dialect,
    },
}

impl fmt::Display for ZoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TlsrptWithoutPostfix { zone, dialect } => write!(
                f,
                "serve: zone {zone}: tlsrpt applies to the postfix dialect only, not {}",
                dialect_name(*dialect)
            ),
        }
    }
}

impl std::error::Error for ZoneError {}

/// The dialect a socketmap name stands for when no zone of that name is configured.
pub fn builtin(name: &str) -> Option<Dialect> {
    match name {
        "postfix" => Some(Dialect::Postfix),
        "postfix-tlsrpt" => Some(Dialect::PostfixTlsrpt),
        "sts" => Some(Dialect::Sendmail),
        "exim" => Some(Dialect::Exim),
        "json" => Some(Dialect::Json),
        _ => None,
    }
}

/// The configuration spelling of a dialect.
pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postfix => "postfix",
        Dialect::PostfixTlsrpt => "postfix-tlsrpt",
        Dialect::Sendmail => "sendmail",
        Dialect::Exim => "exim",
        Dialect::Json => "json",
    }
}

const BUILTIN_NAMES: [&str; 5] = ["postfix", "postfix-tlsrpt", "sts", "exim", "json"];

impl Zones {
    /// Resolves every zone of `serve` against its default zone and `output`.
    ///
    /// # Errors
    ///
    /// [`ZoneError`] for a zone whose settings contradict each other.
    pub fn new(serve: &ServeConfig, output: &OutputConfig) -> Result<Self, ZoneError> {
        let none = ZoneConfig::default();
        let default = resolve("default_zone", None, &serve.default_zone, &none, output)?;
        let mut named = HashMap::new();
        for name in BUILTIN_NAMES {
            if !serve.zones.contains_key(name) {
                let zone = resolve(name, builtin(name), &none, &serve.default_zone, output)?;
                named.insert(name.as_bytes().into(), zone);
            }
        }
        for (name, config) in &serve.zones {
            let zone = resolve(name, builtin(name), config, &serve.default_zone, output)?;
            named.insert(name.as_bytes().into(), zone);
        }
        Ok(Self { named, default })
    }

    /// The zone for a socketmap name; the default zone for a name not configured.
    pub fn get(&self, name: &[u8]) -> &Zone {
        self.named.get(name).unwrap_or(&self.default)
    }
}

fn resolve(
    name: &str,
    builtin: Option<Dialect>,
    zone: &ZoneConfig,
    default: &ZoneConfig,
    output: &OutputConfig,
) -> Result<Zone, ZoneError> {
    let mut dialect = zone.dialect.or(builtin).or(default.dialect).unwrap_or(Dialect::Postfix);
    match (dialect, zone.tlsrpt.or(default.tlsrpt)) {
        (Dialect::Postfix, Some(true)) => dialect = Dialect::PostfixTlsrpt,
        (Dialect::PostfixTlsrpt, Some(false)) => dialect = Dialect::Postfix,
        (Dialect::Sendmail | Dialect::Exim | Dialect::Json, _) if zone.tlsrpt == Some(true) => {
            return Err(ZoneError::TlsrptWithoutPostfix { zone: name.to_owned(), dialect });
        }
        _ => {}
    }
    Ok(Zone {
        dialect,
        output: OutputConfig {
            strict_testing: zone.strict_testing.or(default.strict_testing).unwrap_or(output.strict_testing),
            require_sni: zone.require_sni.or(default.require_sni).unwrap_or(output.require_sni),
        },
        on_tempfail: zone.on_tempfail.or(default.on_tempfail).unwrap_or_default(),
    })
}

impl Zone {
    /// Renders one answer in this zone's dialect, as one line without a newline. Empty means
    /// "nothing to enforce" in the `postfix` and `sendmail` dialects.
    pub fn render(&self, answer: &Answer) -> String {
        match self.dialect {
            Dialect::Postfix => render::postfix::render(answer, &self.output),
            Dialect::PostfixTlsrpt => render::postfix::render_tlsrpt(answer, &self.output),
            Dialect::Sendmail => render::sendmail::render(answer, &self.output),
            Dialect::Exim => render::exim::render(answer),
            Dialect::Json => render::json::render(answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones(toml: &str) -> Result<Zones, ZoneError> {
        let config = crate::Config::from_toml(toml).unwrap();
        Zones::new(&config.serve, &config.output)
    }

    fn zone(dialect: Dialect, strict_testing: bool, require_sni: bool, on_tempfail: OnTempfail) -> Zone {
        Zone { dialect, output: OutputConfig { strict_testing, require_sni }, on_tempfail }
    }

    #[test]
    fn builtin_names_and_default_with_no_configuration() {
        let z = zones("").unwrap();
        for (name, dialect) in [
            (&b"postfix"[..], Dialect::Postfix),
            (b"postfix-tlsrpt", Dialect::PostfixTlsrpt),
            (b"sts", Dialect::Sendmail),
            (b"exim", Dialect::Exim),
            (b"json", Dialect::Json),
            (b"anything", Dialect::Postfix),
            (b"", Dialect::Postfix),
            (b"\xff", Dialect::Postfix),
            (b"Postfix", Dialect::Postfix),
        ] {
            assert_eq!(z.get(name), &zone(dialect, false, true, OnTempfail::Temp), "{name:?}");
        }
    }

    #[test]
    fn zones_inherit_from_the_default_zone_then_output() {
        let z = zones(
            "[output]\nstrict_testing = true\n\
             [serve.default_zone]\nrequire_sni = false\non_tempfail = \"notfound\"\n\
             [serve.zones.old]\n\
             [serve.zones.new]\ntlsrpt = true\nrequire_sni = true\n\
             [serve.zones.lax]\nstrict_testing = false\ndialect = \"exim\"\n",
        )
        .unwrap();
        assert_eq!(z.get(b"old"), &zone(Dialect::Postfix, true, false, OnTempfail::Notfound));
        assert_eq!(z.get(b"new"), &zone(Dialect::PostfixTlsrpt, true, true, OnTempfail::Notfound));
        assert_eq!(z.get(b"lax"), &zone(Dialect::Exim, false, false, OnTempfail::Notfound));
        assert_eq!(z.get(b"sts"), &zone(Dialect::Sendmail, true, false, OnTempfail::Notfound));
        assert_eq!(z.get(b"other"), &zone(Dialect::Postfix, true, false, OnTempfail::Notfound));
    }

    #[test]
    fn default_zone_tlsrpt_reaches_postfix_names_only() {
        // As upstream, where `postfix` is just another name falling back to default_zone; but
        // Sendmail's `sts` never gets the attributes that would break its rules.
        let z = zones("[serve.default_zone]\ntlsrpt = true\n").unwrap();
        assert_eq!(z.get(b"postfix").dialect, Dialect::PostfixTlsrpt);
        assert_eq!(z.get(b"whatever").dialect, Dialect::PostfixTlsrpt);
        assert_eq!(z.get(b"sts").dialect, Dialect::Sendmail);
        assert_eq!(z.get(b"exim").dialect, Dialect::Exim);
        let z = zones("[serve.zones.postfix-tlsrpt]\ntlsrpt = false\n").unwrap();
        assert_eq!(z.get(b"postfix-tlsrpt").dialect, Dialect::Postfix);
    }

    #[test]
    fn configured_builtin_names_keep_their_dialect() {
        let z =
            zones("[serve.zones.sts]\nstrict_testing = true\n[serve.zones.postfix]\nrequire_sni = false\n").unwrap();
        assert_eq!(z.get(b"sts"), &zone(Dialect::Sendmail, true, true, OnTempfail::Temp));
        assert_eq!(z.get(b"postfix"), &zone(Dialect::Postfix, false, false, OnTempfail::Temp));
    }

    #[test]
    fn tlsrpt_on_a_non_postfix_zone_is_an_error() {
        let e = zones("[serve.zones.sts]\ntlsrpt = true\n").unwrap_err();
        assert_eq!(e.to_string(), "serve: zone sts: tlsrpt applies to the postfix dialect only, not sendmail");
        assert!(zones("[serve.zones.x]\ndialect = \"json\"\ntlsrpt = true\n").is_err());
        assert!(zones("[serve.default_zone]\ndialect = \"exim\"\ntlsrpt = true\n").is_err());
        assert!(zones("[serve.zones.x]\ndialect = \"sts\"\n").is_ok(), "sts is an alias of sendmail");
    }
}
