//! `mta-sts query`: look up domains once and print one line each.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use mta_sts::render::Answer;
use mta_sts::{Domain, Error, Resolver};

use super::{Exit, Format};

/// Look up the MTA-STS policy of each DOMAIN and print one line per domain.
///
/// Exit status: 0 an enforce or testing policy applies, 1 no policy (mode none included),
/// 75 temporary failure, 64 bad input, 78 bad configuration. With several domains, the most
/// serious status. The postfix and sendmail formats print no line at all when there is nothing
/// to enforce, so `mta-sts query --format sendmail` works as a Sendmail program map (the key is
/// the last argument; exit 0 with no output means not found, 75 a temporary failure).
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Print one JSON object per domain (same as --format json).
    #[arg(long)]
    json: bool,
    /// Output dialect.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also say whether this MX host is allowed by the policy.
    #[arg(long, value_name = "HOST")]
    mx: Option<String>,
    #[command(flatten)]
    setup: super::Setup,
    /// Domains to look up.
    #[arg(required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
}

/// Runs the subcommand.
pub fn run(args: QueryArgs) -> ExitCode {
    let resolver = match args.setup.resolver() {
        Ok(r) => r,
        Err(exit) => return exit.into(),
    };
    let format = if args.json { Format::Json } else { args.format };
    let output = resolver.config().output.clone();
    let mx = args.mx.as_deref().map(Domain::parse).transpose();
    let mut stdout = std::io::stdout().lock();
    let mut exit = Exit::Policy;
    for (n, input) in args.domains.iter().enumerate() {
        let answer = match &mx {
            Ok(mx) => answer(&resolver, input, mx.clone()),
            Err(e) => Answer::Invalid(Error::Domain(e.clone())),
        };
        let line = format.render(&answer, &output);
        // An empty answer is no line at all: a program map reads "exit 0, no output" as not
        // found, and the exit code says the rest.
        if !line.is_empty() {
            if let Err(e) = writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
                eprintln!("mta-sts: cannot write the answer: {e}");
                return Exit::Tempfail.into();
            }
        }
        let this = Exit::of(&answer);
        exit = if n == 0 { this } else { exit.worst(this) };
    }
    exit.into()
}

fn answer(resolver: &Resolver, input: &str, mx: Option<Domain>) -> Answer {
    match Domain::parse(input) {
        Ok(domain) => Answer::Decided { decision: resolver.lookup(&domain), mx },
        Err(e) => Answer::Invalid(Error::Domain(e)),
    }
}
