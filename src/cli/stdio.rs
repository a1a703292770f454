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
use mta_sts::error::{escape, DomainError};
use mta_sts::render::Answer;
use mta_sts::{Domain, Error, Resolver};

use super::{Exit, Format};

/// Longest request line in bytes, CR included, LF excluded. A domain and an MX host name take
/// at most 2 × 253 bytes and a separator; the rest is slack for sloppy clients.
pub const MAX_LINE: usize = 1024;

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
pub fn serve(resolver: &Resolver, format: Format, input: impl BufRead, mut output: impl Write) -> io::Result<()> {
    let config: &OutputConfig = &resolver.config().output;
    let mut lines = Lines::new(input);
    while let Some(line) = lines.next_line()? {
        let answer = match line {
            Line::Complete(bytes) => answer(resolver, bytes),
            Line::TooLong { len } => Answer::Invalid(Error::Domain(DomainError::TooLong { len })),
        };
        let mut text = format.render(&answer, config);
        debug_assert!(!text.contains(['\n', '\r']), "{text:?}");
        text.push('\n');
        output.write_all(text.as_bytes())?;
        output.flush()?;
    }
    Ok(())
}

/// Decodes one request line and looks it up.
fn answer(resolver: &Resolver, bytes: &[u8]) -> Answer {
    match request(bytes) {
        Ok((domain, mx)) => Answer::Decided { decision: resolver.lookup(&domain), mx },
        Err(e) => Answer::Invalid(Error::Domain(e)),
    }
}

/// Decodes one request line into the domain and the optional MX host.
///
/// The request faults have no error variant of their own yet; each is reported as the
/// [`DomainError`] that describes it: a byte that is not UTF-8 or a control character is an
/// invalid character of the name, an over-long line a name that is too long. Anything after
/// the MX host makes the MX host invalid (it then holds a space or tab).
fn request(bytes: &[u8]) -> Result<(Domain, Option<Domain>), DomainError> {
    let request = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        // The byte is shown as `\xNN`: `escape` writes every char below U+0100 that way.
        Err(e) => return Err(bad_character(char::from(bytes[e.valid_up_to()]))),
    };
    // NUL and the other controls (DEL and C1 included); `Domain::parse` would trim some of them
    // (form feed, vertical tab) as white space.
    if let Some(c) = request.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(bad_character(c));
    }
    let request = request.trim_matches([' ', '\t']);
    let (domain, mx) = match request.split_once([' ', '\t']) {
        Some((domain, mx)) => (domain, Some(mx)),
        None => (request, None),
    };
    Ok((Domain::parse(domain)?, mx.map(Domain::parse).transpose()?))
}

fn bad_character(c: char) -> DomainError {
    DomainError::BadCharacter { found: escape(c.encode_utf8(&mut [0; 4]), 4) }
}

/// One line of input, without its LF.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    /// A line of at most [`MAX_LINE`] bytes, a trailing CR removed.
    Complete(&'a [u8]),
    /// A longer line, of `len` bytes, already thrown away.
    TooLong {
        /// Its length, LF excluded.
        len: usize,
    },
}

/// Splits input into lines while holding at most [`MAX_LINE`] bytes of any one of them.
struct Lines<R> {
    input: R,
    line: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R) -> Self {
        Self { input, line: Vec::with_capacity(MAX_LINE) }
    }

    /// The next line, or `None` at end of input. Reads straight from the input's buffer, keeping
    /// a line's bytes only while it is short enough to be a request.
    fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.line.clear();
        let mut len = 0usize;
        let mut started = false;
        loop {
            let buf = match self.input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                // End of input: it ends a last line that had no LF.
                if !started {
                    return Ok(None);
                }
                break;
            }
            started = true;
            let (chunk, used, complete) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], i + 1, true),
                None => (buf, buf.len(), false),
            };
            len = len.saturating_add(chunk.len());
            if len <= MAX_LINE {
                self.line.extend_from_slice(chunk);
            }
            self.input.consume(used);
            if complete {
                break;
            }
        }
        if len > MAX_LINE {
            return Ok(Some(Line::TooLong { len }));
        }
        Ok(Some(Line::Complete(self.line.strip_suffix(b"\r").unwrap_or(&self.line))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `input` through a reader that hands out at most `chunk` bytes at a time.
    fn lines(input: &[u8], chunk: usize) -> Vec<Result<Vec<u8>, usize>> {
        let reader = io::BufReader::with_capacity(chunk, input);
        let mut lines = Lines::new(reader);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(match line {
                Line::Complete(b) => Ok(b.to_vec()),
                Line::TooLong { len } => Err(len),
            });
            assert!(lines.line.capacity() <= MAX_LINE, "never holds more than a request");
        }
        out
    }

    #[test]
    fn splits_lines_whatever_the_read_sizes() {
        let long = vec![b'a'; 100_000];
        let mut input = b"a.example\r\n\nb.example mx.b.example\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'x'; MAX_LINE]);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'y'; MAX_LINE + 1]);
        input.extend_from_slice(b"\nlast.example");
        for chunk in [1, 2, 7, 1000, 8192, 1 << 20] {
            assert_eq!(
                lines(&input, chunk),
                vec![
                    Ok(b"a.example".to_vec()),
                    Ok(Vec::new()),
                    Ok(b"b.example mx.b.example".to_vec()),
                    Err(100_000),
                    Ok(vec![b'x'; MAX_LINE]),
                    Err(MAX_LINE + 1),
                    Ok(b"last.example".to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn requests_are_one_or_two_names() {
        let d = |s: &str| Domain::parse(s).unwrap();
        let bad = |s: &str| DomainError::BadCharacter { found: s.to_owned() };
        for (line, want) in [
            (&b"Example.COM."[..], Ok((d("example.com"), None))),
            (b" \texample.com \t mx.Example.com\t", Ok((d("example.com"), Some(d("mx.example.com"))))),
            (b"example.com mx.example.com extra", Err(bad("\" \""))),
            (b"example.com\tmx.example.com\textra", Err(bad("\"\\x09\""))),
            (b"", Err(DomainError::Empty)),
            (b"exa\0mple.com", Err(bad("\"\\x00\""))),
            (b"\x0cexample.com", Err(bad("\"\\x0c\""))),
            (b"example.com\x7f", Err(bad("\"\\x7f\""))),
            (b"example.com \xc2\x85", Err(bad("\"\\x85\""))),
            (b"ex\xffample.com", Err(bad("\"\\xff\""))),
            (b"b\xc3\xbccher.example", Ok((d("xn--bcher-kva.example"), None))),
            (b"192.0.2.1", Err(DomainError::AddressLiteral)),
            (b"example.com 192.0.2.1", Err(DomainError::AddressLiteral)),
        ] {
            assert_eq!(request(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn end_of_input_after_a_newline_is_not_a_line() {
        assert_eq!(lines(b"", 8), Vec::<Result<Vec<u8>, usize>>::new());
        assert_eq!(lines(b"a\n", 8), vec![Ok(b"a".to_vec())]);
        assert_eq!(lines(b"\n", 8), vec![Ok(Vec::new())]);
    }
}
