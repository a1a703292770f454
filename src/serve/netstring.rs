//! Netstring framing (`<length>:<data>,`), the transport of the socketmap protocol (Postfix
//! `socketmap_table(5)`, Sendmail's socket map class; D. J. Bernstein's netstrings).
//!
//! [`decode`] takes one netstring from the front of a buffer, or says that more bytes are
//! needed. The length limit is checked while the length digits are read, so an announced length
//! over the limit is refused before any of its data arrives. Each framing fault has its own
//! [`NetstringError`] variant, as in postfix-mta-sts-resolver's `netstring.py` (`TooLong`,
//! `BadLength`, `BadTerminator`). Leading zeros in the length are accepted, as there.

use std::fmt;
use std::ops::Range;

/// Most length digits accepted whatever the limit: enough for any length a `usize` limit can
/// allow, few enough that a stream of zeros is refused quickly.
const MAX_DIGITS: usize = 20;

/// A framing fault. After one, the stream cannot be resynchronised: the connection is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetstringError {
    /// The announced length is over the limit (or has too many digits).
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// A byte other than a digit where a length digit was expected, or `:` with no digit
    /// before it.
    BadLength {
        /// The byte seen.
        found: u8,
    },
    /// The byte after the data is not `,`.
    BadTerminator {
        /// The byte seen.
        found: u8,
    },
    /// The stream ended inside a netstring.
    Truncated {
        /// Bytes of the unfinished netstring received.
        received: usize,
    },
}

impl fmt::Display for NetstringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("netstring: ")?;
        match self {
            Self::TooLong { limit } => write!(f, "length over the limit of {limit} bytes"),
            Self::BadLength { found } => write!(f, "bad length: byte {} where a digit or ':' belongs", show(*found)),
            Self::BadTerminator { found } => write!(f, "bad terminator: byte {} where ',' belongs", show(*found)),
            Self::Truncated { received } => write!(f, "stream ended inside a netstring after {received} bytes"),
        }
    }
}

impl std::error::Error for NetstringError {}

/// A byte for an error message: printable ASCII as itself in quotes, anything else as hex.
fn show(b: u8) -> String {
    match b {
        b' '..=b'~' if b != b'"' && b != b'\\' => format!("\"{}\"", char::from(b)),
        _ => format!("0x{b:02x}"),
    }
}

/// One netstring found at the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Where the data lies in the buffer.
    pub data: Range<usize>,
    /// How many bytes of the buffer the whole netstring takes, terminator included.
    pub len: usize,
}

/// Takes one netstring from the front of `buf`: `Ok(Some(frame))` when it is complete,
/// `Ok(None)` when more bytes are needed (what is there is a valid beginning).
///
/// # Errors
///
/// [`NetstringError`] as soon as the bytes present cannot begin a netstring of at most `limit`
/// data bytes; never [`NetstringError::Truncated`], which only the reader can tell.
pub fn decode(buf: &[u8], limit: usize) -> Result<Option<Frame>, NetstringError> {
    let mut length: usize = 0;
    let mut digits = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                digits += 1;
                length = length.saturating_mul(10).saturating_add(usize::from(b - b'0'));
                if length > limit || digits > MAX_DIGITS {
                    return Err(NetstringError::TooLong { limit });
                }
            }
            b':' if digits > 0 => {
                let start = i + 1;
                // With a limit near `usize::MAX` (`serve.max_request` is the administrator's to
                // set) the end would overflow: no such frame can ever arrive.
                let Some(end) = start.checked_add(length) else {
                    return Err(NetstringError::TooLong { limit });
                };
                return match buf.get(end) {
                    None => Ok(None),
                    Some(b',') => Ok(Some(Frame { data: start..end, len: end + 1 })),
                    Some(&found) => Err(NetstringError::BadTerminator { found }),
                };
            }
            found => return Err(NetstringError::BadLength { found }),
        }
    }
    Ok(None)
}

/// Appends `data` as one netstring to `out`.
pub fn encode(data: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(data.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(data);
    out.push(b',');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(buf: &[u8], limit: usize) -> Result<Option<(&[u8], usize)>, NetstringError> {
        decode(buf, limit).map(|f| f.map(|f| (&buf[f.data], f.len)))
    }

    #[test]
    fn complete_netstrings() {
        for (input, data, len) in [
            (&b"0:,"[..], &b""[..], 3),
            (b"5:hello,", b"hello", 8),
            (b"5:hello,6:world!,", b"hello", 8),
            (b"11:hello world,", b"hello world", 15),
            (b"005:hello,", b"hello", 10),
            (b"3:a,b,", b"a,b", 6),
            (b"3:\0:,,", b"\0:,", 6),
        ] {
            assert_eq!(frame(input, 100), Ok(Some((data, len))), "{input:?}");
        }
    }

    #[test]
    fn valid_beginnings_need_more() {
        for input in [&b""[..], b"1", b"12", b"12:", b"5:hell", b"5:hello"] {
            assert_eq!(decode(input, 100), Ok(None), "{input:?}");
        }
    }

    #[test]
    fn each_fault_has_its_error() {
        for (input, limit, want) in [
            (&b":"[..], 100, NetstringError::BadLength { found: b':' }),
            (b"a:", 100, NetstringError::BadLength { found: b'a' }),
            (b"1a", 100, NetstringError::BadLength { found: b'a' }),
            (b"-1:", 100, NetstringError::BadLength { found: b'-' }),
            (b" 5:hello,", 100, NetstringError::BadLength { found: b' ' }),
            (b"\n", 100, NetstringError::BadLength { found: b'\n' }),
            (b"5:hello;", 100, NetstringError::BadTerminator { found: b';' }),
            (b"5:hello\n", 100, NetstringError::BadTerminator { found: b'\n' }),
            (b"4:hello,", 100, NetstringError::BadTerminator { found: b'o' }),
            (b"101:", 100, NetstringError::TooLong { limit: 100 }),
            (b"1000", 100, NetstringError::TooLong { limit: 100 }),
            (b"99999999999999999999999999", usize::MAX, NetstringError::TooLong { limit: usize::MAX }),
            (b"000000000000000000000", 100, NetstringError::TooLong { limit: 100 }),
        ] {
            assert_eq!(decode(input, limit), Err(want), "{input:?}");
        }
    }

    #[test]
    fn limit_is_checked_as_the_digits_arrive() {
        // Only the length digits have arrived: refused before the colon and any data.
        assert_eq!(decode(b"10001", 10_000), Err(NetstringError::TooLong { limit: 10_000 }));
        assert_eq!(decode(b"10000", 10_000), Ok(None));
        assert_eq!(decode(b"1000", 999), Err(NetstringError::TooLong { limit: 999 }));
    }

    #[test]
    fn a_length_past_the_address_space_is_too_long_whatever_the_limit() {
        // Found by fuzz/fuzz_targets/netstring.rs: `start + length` overflowed.
        for limit in [usize::MAX, usize::MAX - 1, usize::MAX - 20] {
            assert_eq!(decode(b"18446744073709551615:", limit), Err(NetstringError::TooLong { limit }));
            assert_eq!(decode(b"99999999999999999999:x,", limit), Err(NetstringError::TooLong { limit }));
        }
    }

    #[test]
    fn encode_round_trips() {
        let mut out = Vec::new();
        encode(b"NOTFOUND ", &mut out);
        encode(b"", &mut out);
        assert_eq!(out, b"9:NOTFOUND ,0:,");
        assert_eq!(frame(&out, 100), Ok(Some((&b"NOTFOUND "[..], 12))));
    }

    #[test]
    fn messages_are_one_printable_line() {
        for e in [
            NetstringError::BadLength { found: b'\n' },
            NetstringError::BadTerminator { found: b'"' },
            NetstringError::TooLong { limit: 5 },
            NetstringError::Truncated { received: 3 },
        ] {
            let text = e.to_string();
            assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text}");
        }
        assert_eq!(
            NetstringError::BadLength { found: b'x' }.to_string(),
            "netstring: bad length: byte \"x\" where a digit or ':' belongs"
        );
    }
}
