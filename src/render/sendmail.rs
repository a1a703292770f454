//! The Sendmail dialect: the value of the `sts` map that `FEATURE(sts)` queries.
//!
//! ```text
//! secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname
//! ```
//!
//! `FEATURE(sts)` was written for postfix-mta-sts-resolver's reply, so this is the classic
//! [Postfix reply](super::postfix), with two differences that its rules (`cf/m4/proto.m4`)
//! dictate:
//! - ` servername=hostname` is always there, whatever [`OutputConfig::require_sni`] says: that
//!   knob exists for Postfix older than 3.4, and `Set_SNI` needs the attribute to send SNI;
//! - nothing ever follows it: the rules strip a literal `servername=hostname` at the end and
//!   read everything after `match=` as the host list, so Postfix 3.10's TLSRPT attributes would
//!   end up in the list.
//!
//! Only a value containing `secure` is enforced, and Sendmail has no report-only mode, so a
//! testing policy is answered as no policy unless [`OutputConfig::strict_testing`] is on, as for
//! Postfix. Sendmail's `.parent` entries strip exactly one label, which is RFC 8461 §4.1's
//! wildcard.

use super::Answer;
use crate::config::OutputConfig;

/// Renders one answer; empty when the answer is not `secure` (the face answers NOTFOUND, or
/// prints nothing and exits 1 or 75 in a program map).
pub fn render(answer: &Answer, config: &OutputConfig) -> String {
    super::postfix::secure_line(answer, config.strict_testing, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::{answer, invalid, no_policy, policy, tempfail, RFC_EXAMPLE};

    #[test]
    fn golden_lines() {
        let testing = "version: STSv1\nmode: testing\nmx: *.mx.example.org\nmax_age: 86400\n";
        let no_sni = OutputConfig { strict_testing: false, require_sni: false };
        let strict = OutputConfig { strict_testing: true, require_sni: false };
        let rfc = "secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";
        for (answer, config, want) in [
            (answer(policy(RFC_EXAMPLE), None), &OutputConfig::default(), rfc),
            (answer(policy(RFC_EXAMPLE), Some("mail.example.com")), &no_sni, rfc),
            (answer(policy(testing), None), &no_sni, ""),
            (answer(policy(testing), None), &strict, "secure match=.mx.example.org servername=hostname"),
            (answer(no_policy(false), None), &strict, ""),
            (answer(tempfail(), None), &strict, ""),
            (invalid("[192.0.2.1]"), &strict, ""),
        ] {
            assert_eq!(render(&answer, config), want);
        }
    }
}
