//! The request line protocol shared by `mta-sts stdio` and the daemon's line mode (Exim
//! `${readsocket}`): each line is `DOMAIN` or `DOMAIN MXHOST`, the names separated by spaces or
//! tabs, an optional CR before the LF, and a last line without LF still counts at end of input.
//!
//! Lines are split while they arrive, holding at most the length limit of any one of them: an
//! over-long line is thrown away as it streams past and reported by its length, so a client
//! cannot make a face buffer unbounded input.

use crate::domain::Domain;
use crate::error::{escape, DomainError, Error};
use crate::render::Answer;
use crate::resolve::Resolver;

/// Longest request line in bytes for `mta-sts stdio`, CR included, LF excluded. A domain and an
/// MX host name take at most 2 × 253 bytes and a separator; the rest is slack for sloppy
/// clients.
pub const MAX_LINE: usize = 1024;

/// One item of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item<'a> {
    /// A line within the limit, without its LF and a CR before it.
    Line(&'a [u8]),
    /// A line over the limit, of `len` bytes (LF excluded), already thrown away.
    TooLong {
        /// Its length.
        len: usize,
    },
}

/// Splits a byte stream into lines while holding at most `limit` bytes of any one of them.
#[derive(Debug, Clone)]
pub struct Splitter {
    limit: usize,
    /// Bytes of an over-long line thrown away so far.
    discarding: Option<usize>,
}

impl Splitter {
    /// A splitter for lines of at most `limit` bytes, CR included, LF excluded.
    pub fn new(limit: usize) -> Self {
        Self { limit, discarding: None }
    }

    /// Takes the next item from the front of `buf`. Returns it, if complete, and how many bytes
    /// of `buf` to drop, which may be more than zero with no item while an over-long line is
    /// being thrown away. With `eof`, a last line without LF is complete.
    pub fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> (Option<Item<'a>>, usize) {
        if let Some(seen) = self.discarding {
            return match buf.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.discarding = None;
                    (Some(Item::TooLong { len: seen + i }), i + 1)
                }
                None if eof => {
                    self.discarding = None;
                    (Some(Item::TooLong { len: seen + buf.len() }), buf.len())
                }
                None => {
                    self.discarding = Some(seen + buf.len());
                    (None, buf.len())
                }
            };
        }
        let window = &buf[..buf.len().min(self.limit + 1)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) => (Some(Item::Line(strip_cr(&buf[..i]))), i + 1),
            None if buf.len() > self.limit => {
                self.discarding = Some(0);
                self.next(buf, eof)
            }
            None if eof && !buf.is_empty() => (Some(Item::Line(strip_cr(buf))), buf.len()),
            None => (None, 0),
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Looks up one item: the decision for a valid request, or why it is not one.
pub fn answer(resolver: &Resolver, item: &Item<'_>) -> Answer {
    match item {
        Item::Line(bytes) => match request(bytes) {
            Ok((domain, mx)) => Answer::Decided { decision: resolver.lookup(&domain), mx },
            Err(e) => Answer::Invalid(Error::Domain(e)),
        },
        Item::TooLong { len } => Answer::Invalid(Error::Domain(DomainError::TooLong { len: *len })),
    }
}

/// Decodes one request line into the domain and the optional MX host.
///
/// # Errors
///
/// The [`DomainError`] that describes the fault: a byte that is not UTF-8 or a control
/// character is an invalid character; anything after the MX host makes the MX host invalid.
pub fn request(bytes: &[u8]) -> Result<(Domain, Option<Domain>), DomainError> {
    let request = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Err(bad_character(char::from(bytes[e.valid_up_to()]))),
    };
    // NUL and the other controls; `Domain::parse` would trim some of them as white space.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes, as a socket would deliver it.
    fn split(input: &[u8], chunk: usize, limit: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut splitter = Splitter::new(limit);
        let mut buf: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            let eof = fed == input.len();
            let (item, used) = splitter.next(&buf, eof);
            let item = item.map(|i| match i {
                Item::Line(l) => Ok(l.to_vec()),
                Item::TooLong { len } => Err(len),
            });
            buf.drain(..used);
            assert!(buf.len() <= limit + chunk, "never holds more than a line and a read");
            match item {
                Some(i) => out.push(i),
                None if eof && buf.is_empty() => return out,
                None => {
                    let end = (fed + chunk).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn splits_lines_whatever_the_read_sizes() {
        let mut input = b"a.example\r\n\nb.example mx.b.example\n".to_vec();
        input.extend_from_slice(&[b'a'; 5000]);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'x'; 100]);
        input.extend_from_slice(b"\n");
        input.extend_from_slice(&[b'y'; 101]);
        input.extend_from_slice(b"\nlast.example");
        for chunk in [1, 2, 7, 100, 8192] {
            assert_eq!(
                split(&input, chunk, 100),
                vec![
                    Ok(b"a.example".to_vec()),
                    Ok(Vec::new()),
                    Ok(b"b.example mx.b.example".to_vec()),
                    Err(5000),
                    Ok(vec![b'x'; 100]),
                    Err(101),
                    Ok(b"last.example".to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn end_of_input() {
        assert_eq!(split(b"", 8, 100), Vec::<Result<Vec<u8>, usize>>::new());
        assert_eq!(split(b"a\n", 8, 100), vec![Ok(b"a".to_vec())]);
        assert_eq!(split(b"a", 8, 100), vec![Ok(b"a".to_vec())]);
        assert_eq!(split(&[b'z'; 300], 8, 100), vec![Err(300)]);
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
}
