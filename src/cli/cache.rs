//! `mta-sts cache`: inspect and purge the policy cache.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use mta_sts::store::{Entry, NegativeKind, Store, StoreError};
use mta_sts::Domain;
use serde_json::json;

use super::{Exit, Setup};

/// Inspect or purge the policy cache.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(flatten)]
    setup: Setup,
    #[command(subcommand)]
    command: CacheCommand,
}

#[derive(Debug, Subcommand)]
enum CacheCommand {
    /// One line per cached domain.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Everything cached for one domain, as JSON.
    Show {
        /// The domain.
        domain: String,
    },
    /// Forget one domain, or every domain.
    Purge {
        /// The domain; all of them when omitted.
        domain: Option<String>,
    },
}

/// Runs the subcommand. Exit status: 0 done, 1 domain not cached, 64 bad input, 75 store failure.
pub fn run(args: CacheArgs) -> ExitCode {
    let config = match args.setup.config() {
        Ok(c) => c,
        Err(exit) => return exit.into(),
    };
    let store = mta_sts::store::open(&config.cache, true);
    match run_on(store.as_ref(), args.command) {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("mta-sts: {e}");
            Exit::Tempfail.into()
        }
    }
}

fn run_on(store: &dyn Store, command: CacheCommand) -> Result<Exit, StoreError> {
    let parse = |input: &str| {
        Domain::parse(input).map_err(|e| {
            eprintln!("mta-sts: {e}");
            Exit::Usage
        })
    };
    match command {
        CacheCommand::List { json } => {
            for (domain, entry) in store.list()? {
                let line = if json { describe(&domain, &entry).to_string() } else { summary(&domain, &entry) };
                println!("{line}");
            }
            Ok(Exit::Policy)
        }
        CacheCommand::Show { domain } => {
            let domain = match parse(&domain) {
                Ok(d) => d,
                Err(exit) => return Ok(exit),
            };
            Ok(match store.get(&domain)? {
                Some(entry) => {
                    println!("{}", describe(&domain, &entry));
                    Exit::Policy
                }
                None => Exit::NoPolicy,
            })
        }
        CacheCommand::Purge { domain: Some(domain) } => {
            let domain = match parse(&domain) {
                Ok(d) => d,
                Err(exit) => return Ok(exit),
            };
            Ok(if store.remove(&domain)? { Exit::Policy } else { Exit::NoPolicy })
        }
        CacheCommand::Purge { domain: None } => {
            for (domain, _) in store.list()? {
                store.remove(&domain)?;
            }
            Ok(Exit::Policy)
        }
    }
}

/// `domain mode id expires_at` or `domain no-policy until` for people.
fn summary(domain: &Domain, entry: &Entry) -> String {
    match (&entry.policy, &entry.negative) {
        (Some(p), _) => format!("{domain} {} id={} expires_at={}", p.policy.mode, p.record_id, p.expires_at),
        (None, Some(n)) => {
            let kind = match n.kind {
                NegativeKind::NoPolicy => "no-policy",
                NegativeKind::Tempfail => "tempfail",
            };
            format!("{domain} {kind} until={}", n.until)
        }
        (None, None) => format!("{domain} empty"),
    }
}

/// The whole entry as JSON, with the policy in file form.
fn describe(domain: &Domain, entry: &Entry) -> serde_json::Value {
    json!({
        "domain": domain.as_str(),
        "policy": entry.policy.as_ref().map(|p| json!({
            "mode": p.policy.mode,
            "max_age": p.policy.max_age,
            "mx": p.policy.mx.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "id": p.record_id,
            "fetched_at": p.fetched_at,
            "expires_at": p.expires_at,
            "text": p.policy.to_text(),
        })),
        "checked_at": entry.checked_at,
        "negative": entry.negative,
        "failed_fetch": entry.failed_fetch,
        "last_error": entry.last_error.as_ref().map(ToString::to_string),
    })
}
