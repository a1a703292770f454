//! `mta-sts cache`: inspect and purge the policy cache.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use mta_sts::store::{exchange, Entry, NegativeKind, Store, StoreError};
use mta_sts::Domain;

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
    /// Every entry as JSON lines on standard output, for `import` on another machine.
    Export,
    /// Read JSON lines written by `export` from standard input and store them. Each line is
    /// validated like a fetched policy; the first bad line stops the import (exit 65).
    Import,
}

/// Runs the subcommand. Exit status: 0 done, 1 domain not cached, 64 bad input, 65 bad import
/// data, 75 store failure.
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
        CacheCommand::List { json: false } => {
            for (domain, entry) in store.list()? {
                println!("{}", summary(&domain, &entry));
            }
            Ok(Exit::Policy)
        }
        CacheCommand::List { json: true } | CacheCommand::Export => {
            for (domain, entry) in store.list()? {
                println!("{}", exchange::to_line(&domain, &entry));
            }
            Ok(Exit::Policy)
        }
        CacheCommand::Import => {
            for (n, line) in std::io::stdin().lock().lines().enumerate() {
                let parsed = line.map_err(|e| e.to_string()).and_then(|l| exchange::from_line(&l));
                match parsed {
                    Ok((domain, entry)) => store.put(&domain, Arc::new(entry))?,
                    Err(e) => {
                        eprintln!("mta-sts: import line {}: {e}", n + 1);
                        return Ok(Exit::DataErr);
                    }
                }
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
                    println!("{}", exchange::to_line(&domain, &entry));
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
