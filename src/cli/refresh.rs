//! `mta-sts refresh`: renew cached policies before they expire, for a timer or cron job.

use std::process::ExitCode;

use clap::Args;
use mta_sts::Resolver;

use super::{Exit, Setup};

/// Renew cached policies past a random point between half and three quarters of their max_age,
/// and forget entries that no longer apply (RFC 8461 10.2). Run it hourly from a timer.
///
/// Prints one line per domain acted on. Exit status: 0 all renewals succeeded, 75 some failed
/// (their cached policies still apply until they expire), 78 bad configuration.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    #[command(flatten)]
    setup: Setup,
}

/// Runs the subcommand.
pub fn run(args: RefreshArgs) -> ExitCode {
    let config = match args.setup.config() {
        Ok(c) => c,
        Err(exit) => return exit.into(),
    };
    // A periodic job can afford to read the whole file to check it.
    let store = mta_sts::store::open(&config.cache, true);
    let resolver = match Resolver::builder(config).store(store).build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Config.into();
        }
    };
    match resolver.refresh_due() {
        Ok(done) => {
            for (verb, domains) in [("renewed", &done.renewed), ("failed", &done.failed), ("forgotten", &done.forgotten)] {
                for domain in domains {
                    println!("{verb} {domain}");
                }
            }
            if done.failed.is_empty() { Exit::Policy.into() } else { Exit::Tempfail.into() }
        }
        Err(e) => {
            eprintln!("mta-sts: {e}");
            Exit::Tempfail.into()
        }
    }
}
