//! The JSON form of a cache entry, one object per line: what `mta-sts cache show`, `list --json`
//! and `export` print and what `import` reads back, to move a cache between machines.
//!
//! The policy travels as its text and is parsed again on import, like a freshly fetched one; an
//! imported policy never lives longer than its own max_age from the time it was fetched.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{CachedPolicy, Entry, FailedFetch, Negative};
use crate::domain::Domain;
use crate::error::Error;
use crate::mx::MxPattern;
use crate::policy::{Mode, Policy};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    domain: String,
    policy: Option<PolicyLine>,
    checked_at: u64,
    negative: Option<Negative>,
    failed_fetch: Option<FailedFetch>,
    last_error: Option<Error>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyLine {
    /// Informational on export, ignored on import: `text` is what counts.
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    mx: Vec<String>,
    #[serde(default)]
    max_age: u64,
    id: String,
    fetched_at: u64,
    expires_at: u64,
    text: String,
}

/// Renders one entry as a JSON object on one line.
pub fn to_line(domain: &Domain, entry: &Entry) -> String {
    let line = Line {
        domain: domain.as_str().to_owned(),
        policy: entry.policy.as_ref().map(|p| PolicyLine {
            mode: Some(p.policy.mode),
            mx: p.policy.mx.iter().map(MxPattern::to_string).collect(),
            max_age: p.policy.max_age,
            id: p.record_id.clone(),
            fetched_at: p.fetched_at,
            expires_at: p.expires_at,
            text: p.policy.to_text(),
        }),
        checked_at: entry.checked_at,
        negative: entry.negative.clone(),
        failed_fetch: entry.failed_fetch.clone(),
        last_error: entry.last_error.clone(),
    };
    // Strings, numbers and serde-derived enums always serialise.
    serde_json::to_string(&line).unwrap_or_default()
}

/// Reads one line written by [`to_line`], validating it as if it came from a stranger.
///
/// # Errors
///
/// What is wrong with the line: not JSON of this shape, an invalid domain, an invalid policy or
/// record id.
pub fn from_line(text: &str) -> Result<(Domain, Entry), String> {
    let line: Line = serde_json::from_str(text).map_err(|e| format!("not a cache entry: {e}"))?;
    let domain = Domain::parse(&line.domain).map_err(|e| e.to_string())?;
    let policy = match line.policy {
        None => None,
        Some(p) => {
            let policy = Policy::parse(p.text.as_bytes()).map_err(|e| e.to_string())?;
            if !crate::record::is_valid_id(&p.id) {
                return Err(format!("record: id {} is not 1-32 letters or digits", crate::error::escape(&p.id, 40)));
            }
            let expires_at = p.expires_at.min(p.fetched_at.saturating_add(policy.max_age));
            Some(Arc::new(CachedPolicy { policy, record_id: p.id, fetched_at: p.fetched_at, expires_at }))
        }
    };
    let entry = Entry {
        policy,
        checked_at: line.checked_at,
        negative: line.negative,
        failed_fetch: line.failed_fetch,
        last_error: line.last_error,
    };
    Ok((domain, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let policy = Policy::parse(b"version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 100\n").unwrap();
        let mut entry = Entry::default();
        entry.policy = Some(Arc::new(CachedPolicy { policy, record_id: "abc".into(), fetched_at: 1000, expires_at: 1100 }));
        entry.checked_at = 1050;
        entry.last_error = Some(Error::Fetch(crate::error::FetchError::TooLarge));
        let domain = Domain::parse("example.com").unwrap();
        let line = to_line(&domain, &entry);
        assert!(line.contains(r#""mode":"enforce","mx":["*.example.net"]"#), "{line}");
        assert_eq!(from_line(&line), Ok((domain, entry)));
    }

    #[test]
    fn hostile_lines_are_refused_or_clamped() {
        let line = |domain: &str, id: &str, text: &str, expires: u64| {
            serde_json::json!({"domain": domain, "policy": {"id": id, "fetched_at": 0, "expires_at": expires, "text": text},
                "checked_at": 0, "negative": null, "failed_fetch": null, "last_error": null}).to_string()
        };
        let good = "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 100\n";
        assert!(from_line(&line("exa mple.com", "1", good, 100)).is_err());
        assert!(from_line(&line("example.com", "a-b", good, 100)).is_err());
        assert!(from_line(&line("example.com", "1", "version: STSv1\n", 100)).is_err());
        assert!(from_line("{\"domain\":\"example.com\"}").is_err());
        assert!(from_line("{\"domain\":\"example.com\",\"checked_at\":0,\"extra\":1}").is_err());
        let (_, entry) = from_line(&line("example.com", "1", good, u64::MAX)).unwrap();
        assert_eq!(entry.policy.unwrap().expires_at, 100, "never beyond max_age");
    }
}
