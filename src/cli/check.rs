//! `mta-sts check`: judge a domain's MTA-STS setup the way senders will see it.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mta_sts::check::report::Verdict;
use mta_sts::check::run::Checker;
use mta_sts::{Config, Domain};

use super::Exit;

/// Check how senders see the MTA-STS setup of DOMAIN: the _mta-sts and _smtp._tls records, the
/// policy host (addresses, HTTPS over each address family, certificate), the policy file, and
/// every MX host (matched by the policy, port 25, STARTTLS, TLS, certificate).
///
/// Prints one line per check: pass, warning or failure, what was found and, for warnings and
/// failures, what to fix; then an overall verdict. Nothing is cached: every run asks DNS and
/// fetches the policy afresh. Connects to port 443 of the policy host and port 25 of each MX
/// host, so run it from a network that allows outgoing port 25.
///
/// Exit status: 0 every check passed, 1 warnings only, 2 failures, 64 bad input,
/// 78 bad configuration.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Configuration file (default: $MTA_STS_CONFIG, then /etc/mta-sts/mta-sts.toml if present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The policy domain to check.
    #[arg(value_name = "DOMAIN")]
    domain: String,
}

/// Runs the subcommand.
pub fn run(args: CheckArgs) -> ExitCode {
    let domain = match Domain::parse(&args.domain) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Usage.into();
        }
    };
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Config.into();
        }
    };
    let checker = match Checker::new(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Config.into();
        }
    };
    let report = checker.check(&domain);
    let text = if args.json { format!("{}\n", report.to_json()) } else { report.to_text() };
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        eprintln!("mta-sts: cannot write the report: {e}");
        return Exit::Tempfail.into();
    }
    exit_code(report.verdict)
}

/// The exit status of a report. Not in [`Exit`]: 1 means "no policy" there.
fn exit_code(verdict: Verdict) -> ExitCode {
    ExitCode::from(match verdict {
        Verdict::Pass => 0,
        Verdict::Warning => 1,
        Verdict::Failure => 2,
    })
}
