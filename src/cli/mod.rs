//! The subcommands of the `mta-sts` binary, one module each. Each translates arguments into
//! lookups and answers into output and an exit code; none holds MTA-STS logic.

pub mod cache;
pub mod check;
pub mod generate;
pub mod migrate;
pub mod query;
pub mod refresh;
pub mod serve;
pub mod stdio;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mta_sts::config::OutputConfig;
use mta_sts::render::{self, Answer, Status};
use mta_sts::{Config, Resolver};

/// Output dialects, shared by `query` and `stdio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A short line for people.
    Text,
    /// One JSON object per line.
    Json,
    /// `key=value` pairs for Exim's `${extract}`.
    Exim,
    /// `secure match=... servername=hostname` for Postfix `smtp_tls_policy_maps`; nothing when
    /// no policy is to be enforced.
    Postfix,
    /// `secure match=... servername=hostname` for Sendmail `FEATURE(sts)`; nothing when no
    /// policy is to be enforced.
    Sendmail,
}

impl Format {
    /// Renders one answer in this dialect, without a newline. Empty means "nothing to enforce"
    /// in the Postfix and Sendmail dialects.
    pub fn render(self, answer: &Answer, output: &OutputConfig) -> String {
        match self {
            Self::Text => render::text::render(answer),
            Self::Json => render::json::render(answer),
            Self::Exim => render::exim::render(answer),
            Self::Postfix => render::postfix::render(answer, output),
            Self::Sendmail => render::sendmail::render(answer, output),
        }
    }
}

/// Exit codes, with their sysexits(3) names where they have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// An enforce or testing policy applies.
    Policy = 0,
    /// No policy applies (mode `none` included).
    NoPolicy = 1,
    /// EX_TEMPFAIL: a temporary failure; try again later.
    Tempfail = 75,
    /// EX_USAGE: bad input or usage.
    Usage = 64,
    /// EX_DATAERR: bad data in a file or stream the command reads (`cache import`).
    DataErr = 65,
    /// EX_CONFIG: the configuration cannot be loaded.
    Config = 78,
}

impl Exit {
    /// The exit code for one answer.
    pub fn of(answer: &Answer) -> Self {
        match answer.status() {
            Status::Policy if matches!(answer, Answer::Decided { decision, .. } if decision.active_policy().is_some()) => {
                Self::Policy
            }
            Status::Policy | Status::NoPolicy => Self::NoPolicy,
            Status::Tempfail => Self::Tempfail,
            Status::Error => Self::Usage,
        }
    }

    /// The code of several answers: the most serious one, in the order policy < no policy <
    /// temporary failure < bad input.
    pub fn worst(self, other: Self) -> Self {
        let rank = |e: Self| match e {
            Self::Policy => 0,
            Self::NoPolicy => 1,
            Self::Tempfail => 2,
            Self::Usage | Self::DataErr => 3,
            Self::Config => 4,
        };
        if rank(other) > rank(self) { other } else { self }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

/// The options every subcommand that looks things up shares.
#[derive(Debug, Args)]
pub struct Setup {
    /// Configuration file (default: $MTA_STS_CONFIG, then /etc/mta-sts/mta-sts.toml if present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Cache file, overriding the configuration's `cache.path` ("" for memory only).
    #[arg(long, value_name = "PATH")]
    pub cache: Option<PathBuf>,
}

impl Setup {
    /// Loads the configuration with the command-line overrides applied, or reports why not on
    /// stderr.
    pub fn config(&self) -> Result<Config, Exit> {
        let mut config = Config::load(self.config.as_deref()).map_err(|e| {
            eprintln!("mta-sts: {e}");
            Exit::Config
        })?;
        if let Some(path) = &self.cache {
            config.cache.path.clone_from(path);
        }
        Ok(config)
    }

    /// Builds the resolver from [`Setup::config`], or reports why not on stderr.
    pub fn resolver(&self) -> Result<Resolver, Exit> {
        Resolver::builder(self.config()?).build().map_err(|e| {
            eprintln!("mta-sts: {e}");
            Exit::Config
        })
    }
}
