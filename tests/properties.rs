//! Properties that must hold for every input, not just the tables in the unit tests: MX matching
//! (RFC 8461 §4.1), policy parse/render round trips (§3.2), and that arbitrary bytes never panic
//! the parsers.

use mta_sts::mx::MxPattern;
use mta_sts::render::Answer;
use mta_sts::{record, Domain, Policy};
use proptest::prelude::*;

/// An LDH label.
fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
}

/// A host name of two to four labels.
fn host() -> impl Strategy<Value = String> {
    prop::collection::vec(label(), 2..5).prop_map(|l| l.join("."))
        .prop_filter("not an IPv4 look-alike", |h| !h.rsplit('.').next().unwrap().bytes().all(|b| b.is_ascii_digit()))
}

proptest! {
    #[test]
    fn wildcard_never_matches_its_parent_or_two_labels(parent in host(), a in label(), b in label()) {
        let p = MxPattern::parse(&format!("*.{parent}")).unwrap();
        let one = Domain::parse(&format!("{a}.{parent}")).unwrap();
        let two = Domain::parse(&format!("{a}.{b}.{parent}")).unwrap();
        prop_assert!(!p.matches(&Domain::parse(&parent).unwrap()));
        prop_assert!(p.matches(&one));
        prop_assert!(!p.matches(&two));
    }

    #[test]
    fn case_and_trailing_dot_never_change_the_answer(pattern in host(), wildcard: bool, name in host(), upper: bool, dot: bool) {
        let p = MxPattern::parse(&if wildcard { format!("*.{pattern}") } else { pattern.clone() }).unwrap();
        let plain = Domain::parse(&name).unwrap();
        let mut variant = if upper { name.to_uppercase() } else { name.clone() };
        if dot { variant.push('.'); }
        prop_assert_eq!(p.matches(&plain), p.matches(&Domain::parse(&variant).unwrap()));
        let upper_pattern = MxPattern::parse(&p.to_string().to_uppercase()).unwrap();
        prop_assert_eq!(p.matches(&plain), upper_pattern.matches(&plain));
    }

    #[test]
    fn exact_pattern_matches_only_itself(a in host(), b in host()) {
        let p = MxPattern::parse(&a).unwrap();
        prop_assert_eq!(p.matches(&Domain::parse(&b).unwrap()), a == b);
    }

    #[test]
    fn valid_policies_round_trip_through_text(
        mode in prop::sample::select(vec!["enforce", "testing", "none"]),
        max_age in 0u64..=31_557_600,
        mx in prop::collection::vec((any::<bool>(), host()), 1..5),
        crlf: bool,
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut text = format!("version: STSv1{eol}mode: {mode}{eol}max_age: {max_age}{eol}");
        for (wildcard, h) in &mx {
            let star = if *wildcard { "*." } else { "" };
            text += &format!("mx: {star}{h}{eol}");
        }
        let policy = Policy::parse(text.as_bytes()).unwrap();
        prop_assert_eq!(policy.max_age, max_age);
        prop_assert_eq!(Policy::parse(policy.to_text().as_bytes()).unwrap(), policy);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_parsers(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Policy::parse(&bytes);
        let _ = record::select(&[bytes.clone()]);
        let text = String::from_utf8_lossy(&bytes);
        let _ = Domain::parse(&text);
        let _ = MxPattern::parse(&text);
    }

    #[test]
    fn rendered_errors_stay_on_one_safe_line(input in ".{0,80}") {
        if let Err(e) = Domain::parse(&input) {
            let answer = Answer::Invalid(e.into());
            for line in [
                mta_sts::render::text::render(&answer),
                mta_sts::render::json::render(&answer),
                mta_sts::render::exim::render(&answer),
            ] {
                prop_assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\0'), "{}", line);
            }
            let exim = mta_sts::render::exim::render(&answer);
            // One key=value pair per field: the quoted error cannot smuggle a key in.
            prop_assert!(exim.starts_with("mode=error error=\""), "{}", exim);
            prop_assert_eq!(exim.matches('"').count(), 2, "{}", exim);
        }
    }
}
