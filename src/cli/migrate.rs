//! `mta-sts migrate-config`: print the TOML equivalent of a postfix-mta-sts-resolver YAML file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mta_sts::serve::migrate;

use super::Exit;

/// Read a postfix-mta-sts-resolver configuration (YAML, as /etc/mta-sts-daemon.yml) and print
/// the equivalent mta-sts TOML configuration on standard output.
///
/// YAML 1.1 values are read as upstream's PyYAML reads them (mode: 0666 is octal; yes, no, on,
/// off are booleans). Settings without an equivalent are listed as comments in the output and on
/// standard error. Exit status: 0 done, 78 the file cannot be read or is not a valid
/// configuration.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The YAML file.
    #[arg(value_name = "FILE", default_value = "/etc/mta-sts-daemon.yml")]
    file: PathBuf,
}

/// Runs the subcommand.
pub fn run(args: MigrateArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mta-sts: cannot read {}: {e}", args.file.display());
            return Exit::Config.into();
        }
    };
    match migrate::migrate(&text, &args.file.display().to_string()) {
        Ok(m) => {
            for note in &m.notes {
                eprintln!("mta-sts: note: {note}");
            }
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(m.toml.as_bytes()).and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("mta-sts: cannot write the configuration: {e}");
                    Exit::Tempfail.into()
                }
            }
        }
        Err(e) => {
            eprintln!("mta-sts: {}: {e}", args.file.display());
            Exit::Config.into()
        }
    }
}
