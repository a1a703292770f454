//! The `mta-sts` command: argument parsing and dispatch only.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// MTA-STS (RFC 8461) policy resolver for Exim, Sendmail, Postfix and C programs.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Look up domains once and print one line each.
    Query(cli::query::QueryArgs),
    /// Answer one request per line of standard input, one line each, until end of input.
    Stdio(cli::stdio::StdioArgs),
    /// Renew cached policies before they expire (run from a timer).
    Refresh(cli::refresh::RefreshArgs),
    /// Inspect or purge the policy cache.
    Cache(cli::cache::CacheArgs),
    /// Check a domain's MTA-STS setup as senders see it (for domain owners).
    Check(cli::check::CheckArgs),
    /// Print the records and policy file that publish an MTA-STS policy (for domain owners).
    Generate(cli::generate::GenerateArgs),
    /// Run the policy daemon: socketmap for Postfix and Sendmail, line mode for Exim.
    Serve(cli::serve::ServeArgs),
    /// Print the TOML equivalent of a postfix-mta-sts-resolver YAML configuration.
    MigrateConfig(cli::migrate::MigrateArgs),
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { cli::Exit::Usage.into() } else { ExitCode::SUCCESS };
        }
    };
    // The daemon's log is its record of decisions (one line per network lookup); the one-shot
    // commands print answers on stdout and keep stderr for trouble.
    init_logging(if matches!(args.command, Command::Serve(_)) { "info" } else { "warn" });
    match args.command {
        Command::Query(a) => cli::query::run(a),
        Command::Stdio(a) => cli::stdio::run(a),
        Command::Refresh(a) => cli::refresh::run(a),
        Command::Cache(a) => cli::cache::run(a),
        Command::Check(a) => cli::check::run(a),
        Command::Generate(a) => cli::generate::run(a),
        Command::Serve(a) => cli::serve::run(a),
        Command::MigrateConfig(a) => cli::migrate::run(a),
    }
}

/// Diagnostics go to stderr, `key=value` style; `MTA_STS_LOG` sets the filter, else `default`.
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MTA_STS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
