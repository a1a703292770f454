//! `mta-sts generate`: print the records and the policy file that publish an MTA-STS policy.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mta_sts::check::generate::{generate, Spec, DEFAULT_MAX_AGE};
use mta_sts::clock::{Clock, SystemClock};
use mta_sts::{Domain, Mode};

use super::Exit;

/// Print the DNS records (_mta-sts TXT, _smtp._tls TXT) and the policy file that publish an
/// MTA-STS policy, ready to paste into a zone file and onto the policy host.
///
/// The record id is the current UTC time (20240101T120000Z). Publish the policy file first,
/// then the records; after every change to the policy file, publish a new id. Start with
/// --mode testing and switch to enforce once TLS reports show no failures; check the result
/// with `mta-sts check DOMAIN`. Exit status: 0, or 64 for bad input.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// MX hosts (mail.example.com) or patterns (*.example.net) the policy allows; give every
    /// MX host of the domain.
    #[arg(long, value_name = "HOST", num_args = 1.., required = true)]
    mx: Vec<String>,
    /// The policy mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Testing)]
    mode: ModeArg,
    /// The policy max_age in seconds, at most 31557600 [default: 604800, one week].
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
    /// Where senders send TLS reports: mailto:address or https://host/path (repeatable).
    /// Without it, no _smtp._tls record is printed.
    #[arg(long, value_name = "URI", num_args = 1..)]
    rua: Vec<String>,
    /// The policy domain, for fully qualified record names and the policy URL.
    #[arg(long, value_name = "DOMAIN")]
    domain: Option<String>,
}

/// The modes a new policy may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    /// Senders report failures but deliver anyway: the safe first step.
    Testing,
    /// Senders deliver only to listed MX hosts over valid TLS.
    Enforce,
}

/// Runs the subcommand.
pub fn run(args: GenerateArgs) -> ExitCode {
    let domain = match args.domain.as_deref().map(Domain::parse).transpose() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Usage.into();
        }
    };
    let mode = match args.mode {
        ModeArg::Testing => Mode::Testing,
        ModeArg::Enforce => Mode::Enforce,
    };
    match Spec::new(domain, mode, args.max_age.unwrap_or(DEFAULT_MAX_AGE), &args.mx, &args.rua) {
        Ok(spec) => {
            print!("{}", generate(&spec, SystemClock.now()).to_text());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mta-sts: {e}");
            Exit::Usage.into()
        }
    }
}
