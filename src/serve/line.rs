//! Line mode, for Exim's `${readsocket{/path}{$domain\n}}` (works on `exim4-daemon-light`,
//! which has no `${dlfunc}`): each request line `DOMAIN` or `DOMAIN MXHOST` gets one answer line,
//! in order, in the dialect of the listener's zone (`exim` unless configured).
//!
//! This is the protocol of `mta-sts stdio`, on a socket: an optional CR before the LF, spaces or
//! tabs between the names, a last line without LF still answered at end of input. A line that
//! is not a valid request (over the length limit, not UTF-8, holding a control character, an
//! invalid name) gets an error answer (`mode=error error="..."` in the exim dialect) and the
//! connection goes on. An over-long line is thrown away as it arrives; at most the limit of it
//! is ever held.
//!
//! Exim half-closes its side after the request and reads until end of file, so answers are
//! written after the client's end of input too, and the connection is then closed.

use super::zones::Zone;
use crate::line::Item;
use crate::resolve::Resolver;

/// Answers one item with one line, LF included.
pub fn respond(resolver: &Resolver, zone: &Zone, zone_name: &str, item: &Item<'_>) -> String {
    let answer = crate::line::answer(resolver, item);
    super::server::log_answer(zone_name, &answer);
    let mut line = zone.render(&answer);
    debug_assert!(!line.contains(['\n', '\r']), "{line:?}");
    line.push('\n');
    line
}
