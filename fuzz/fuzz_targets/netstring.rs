//! The socketmap framing (`src/serve/netstring.rs`): `decode` with any limit on any bytes, and
//! `encode`/`Reply::encode` round trips.
//!
//! A frame found lies inside the buffer, ends with `,`, and holds at most `limit` bytes; every
//! shorter prefix of it is a valid beginning; an error stays an error however many bytes follow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_sts::serve::netstring::{decode, encode};
use mta_sts::serve::socketmap::Reply;
use mta_sts_fuzz::assert_printable_line;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    // The limit: the daemon's default, tiny ones, and the extremes a configuration could set.
    let (limit, buf) = match selector % 4 {
        0 => (10_000, rest),
        1 => (usize::MAX - usize::from(selector >> 2), rest),
        2 => (usize::from(selector >> 2), rest),
        _ if rest.len() >= 8 => {
            let (n, buf) = rest.split_at(8);
            (usize::from_le_bytes(n.try_into().unwrap_or_default()), buf)
        }
        _ => (usize::MAX, rest),
    };
    let result = decode(buf, limit);
    match &result {
        Ok(Some(frame)) => {
            assert!(frame.data.start <= frame.data.end && frame.data.end < frame.len && frame.len <= buf.len());
            assert_eq!(frame.data.end + 1, frame.len);
            assert_eq!(buf[frame.len - 1], b',');
            assert_eq!(buf[frame.data.start - 1], b':');
            assert!(frame.data.len() <= limit);
            let digits = std::str::from_utf8(&buf[..frame.data.start - 1]).expect("digits");
            assert_eq!(digits.parse::<usize>().ok(), Some(frame.data.len()));
            for end in (0..frame.len).rev().take(64) {
                assert_eq!(decode(&buf[..end], limit), Ok(None), "prefix of {end} bytes");
            }
        }
        Ok(None) => {}
        Err(e) => {
            assert_printable_line(&e.to_string(), "netstring error");
            let mut longer = buf.to_vec();
            longer.extend_from_slice(b"0:,");
            assert_eq!(decode(&longer, limit), result, "an error must not depend on later bytes");
        }
    }
    let mut out = Vec::new();
    encode(buf, &mut out);
    let frame = decode(&out, usize::MAX).expect("encoded").expect("complete");
    assert_eq!((&out[frame.data.clone()], frame.len), (buf, out.len()));
    let text = String::from_utf8_lossy(buf);
    for reply in [Reply::temp(&text), Reply::perm(&text), Reply::Ok("x".into()), Reply::NotFound] {
        let mut out = Vec::new();
        reply.encode(&mut out);
        let frame = decode(&out, usize::MAX).expect("encoded").expect("complete");
        assert_eq!(frame.len, out.len());
        if matches!(reply, Reply::Temp(_) | Reply::Perm(_)) {
            assert_printable_line(std::str::from_utf8(&out[frame.data]).expect("ascii"), "reply");
        }
    }
});
