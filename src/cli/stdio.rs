//! `mta-sts stdio`: a line protocol on standard input and output.
//!
//! Each request line is `DOMAIN` or `DOMAIN MXHOST` (separated by spaces or tabs, an optional CR
//! before the LF); each gets exactly one answer line in the chosen dialect, in order, flushed
//! before the next request is read, until end of input, then the exit status is 0. A last line
//! without a newline is still answered. In the postfix and sendmail dialects "nothing to
//! enforce" is an empty line, so that answers stay one per request.
//!
//! A line that is not a valid request (longer than [`MAX_LINE`], not UTF-8, holding NUL or
//! another control character, an invalid domain or MX host) gets an error answer and the loop
//! goes on. The input is never copied into an answer. An over-long line is read through and
//! thrown away as it arrives: at most [`MAX_LINE`] bytes of a line are ever held.
//!
//! One resolver serves the whole session, so a domain looked up once is answered from the cache
//! afterwards.

use std::io::{self, BufRead, ErrorKind, Write};
use std::process::ExitCode;

use clap::Args;
use mta_sts::config::OutputConfig;
use mta_sts::line::{self, Splitter, MAX_LINE};
use mta_sts::Resolver;

use super::{Exit, Format};

/// Answer one request per line of standard input (`DOMAIN` or `DOMAIN MXHOST`) with one line
/// on standard output, until end of input.
///
/// Exit status: 0 at end of input; 75 if standard input or output fails; 78 bad configuration.
#[derive(Debug, Args)]
pub struct StdioArgs {
    /// Output dialect.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    setup: super::Setup,
}

/// Runs the subcommand.
pub fn run(args: StdioArgs) -> ExitCode {
    let resolver = match args.setup.resolver() {
        Ok(r) => r,
        Err(exit) => return exit.into(),
    };
    match serve(&resolver, args.format, io::stdin().lock(), io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mta-sts: stdio: {e}");
            Exit::Tempfail.into()
        }
    }
}

/// Answers every request line of `input` on `output` until end of input.
///
/// # Errors
///
/// Only a failure to read `input` or to write `output`; bad requests are answered.
pub fn serve(resolver: &Resolver, format: Format, mut input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let config: &OutputConfig = &resolver.config().output;
    let mut splitter = Splitter::new(MAX_LINE);
    // Unanswered input: at most a line within the limit plus one read of the input's buffer.
    let mut buf: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut eof = false;
    loop {
        let (item, used) = splitter.next(&buf[start..], eof);
        if let Some(item) = item {
            let mut text = format.render(&line::answer(resolver, &item), config);
            debug_assert!(!text.contains(['\n', '\r']), "{text:?}");
            text.push('\n');
            output.write_all(text.as_bytes())?;
            output.flush()?;
            start += used;
            continue;
        }
        start += used;
        if eof {
            return Ok(());
        }
        buf.drain(..start);
        start = 0;
        let chunk = match input.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        eof = chunk.is_empty();
        buf.extend_from_slice(chunk);
        let n = chunk.len();
        input.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bad requests need no lookup, so these run without any network.
    #[test]
    fn answers_one_line_per_request_whatever_the_read_sizes() {
        let mut config = mta_sts::Config::default();
        config.cache.path = Default::default();
        let resolver = Resolver::builder(config).build().unwrap();
        let mut input = b"a..example\r\n\n".to_vec();
        input.extend_from_slice(&[b'a'; 100_000]);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'y'; MAX_LINE + 1]);
        input.extend_from_slice(b"\n[192.0.2.1]");
        let want = "error: domain: empty label\nerror: domain: empty\n\
            error: domain: 100000 bytes is too long (limit 244)\n\
            error: domain: 1025 bytes is too long (limit 244)\n\
            error: domain: address literals have no MTA-STS policy\n";
        for chunk in [1, 2, 7, 1000, 8192, 1 << 20] {
            let mut out = Vec::new();
            serve(&resolver, Format::Text, io::BufReader::with_capacity(chunk, &input[..]), &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "chunk {chunk}");
        }
    }
}
