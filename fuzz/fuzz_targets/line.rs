//! The line protocol of `mta-sts stdio` and the daemon's line mode (`src/line.rs`): the
//! `Splitter` fed in reads of any size, and `request` on every line it yields.
//!
//! The items equal those of a plain reference split (LF-terminated lines, an optional CR
//! stripped, lines over the limit reported by length, a last line without LF at end of input),
//! whatever the read sizes, and the buffer never holds more than one line within the limit
//! plus one read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mta_sts::line::{request, Item, Splitter, MAX_LINE};
use mta_sts_fuzz::{assert_printable_line, is_ldh_name};

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Line(Vec<u8>),
    TooLong(usize),
}

fuzz_target!(|data: &[u8]| {
    let [a, b, input @ ..] = data else { return };
    let limit = match a % 3 {
        0 => MAX_LINE,
        1 => usize::from(a / 3),
        _ => 10_000,
    };
    let chunk = usize::from(*b).max(1);
    let got = split(input, chunk, limit);
    assert_eq!(got, reference(input, limit), "limit {limit}, chunk {chunk}");
    for item in &got {
        if let Owned::Line(bytes) = item {
            match request(bytes) {
                Ok((d, mx)) => assert!(is_ldh_name(d.as_str()) && mx.is_none_or(|m| is_ldh_name(m.as_str()))),
                Err(e) => assert_printable_line(&e.to_string(), "request error"),
            }
        }
    }
});

/// Feeds `input` `chunk` bytes at a time, as a socket would, and collects the items.
fn split(input: &[u8], chunk: usize, limit: usize) -> Vec<Owned> {
    let mut splitter = Splitter::new(limit);
    let mut buf: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let mut fed = 0;
    loop {
        let eof = fed == input.len();
        let (item, used) = splitter.next(&buf, eof);
        assert!(used <= buf.len());
        let item = item.map(|i| match i {
            Item::Line(l) => Owned::Line(l.to_vec()),
            Item::TooLong { len } => Owned::TooLong(len),
        });
        buf.drain(..used);
        assert!(buf.len() <= limit + chunk, "holds {} bytes, limit {limit}, read {chunk}", buf.len());
        match item {
            Some(i) => out.push(i),
            None if eof && buf.is_empty() => return out,
            None if eof => panic!("stuck at end of input with {} bytes", buf.len()),
            None => {
                let end = (fed + chunk).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
    }
}

fn reference(input: &[u8], limit: usize) -> Vec<Owned> {
    let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    // After a final LF (or for empty input) the last piece is not a line.
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .into_iter()
        .map(|l| if l.len() > limit { Owned::TooLong(l.len()) } else { Owned::Line(l.strip_suffix(b"\r").unwrap_or(l).to_vec()) })
        .collect()
}
