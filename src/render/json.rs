//! The JSON dialect: one object per line, the shape of `mta-sts query --json`.
//!
//! `{"domain", "status", "mode", "mx", "max_age", "id", "source", "mx_allowed", "error"}`: mode,
//! mx, max_age, id and source when a policy applies; mx_allowed when an MX host was asked about;
//! error for temporary failures and bad input, and as the reason for some no-policy answers.

use serde::Serialize;

use super::{Answer, Status};
use crate::resolve::Outcome;

#[derive(Serialize)]
struct Line<'a> {
    domain: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mx: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_age: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mx_allowed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Renders one answer as a JSON object on one line.
pub fn render(answer: &Answer) -> String {
    let mut line = Line {
        domain: None,
        status: answer.status().as_str(),
        mode: None,
        mx: None,
        max_age: None,
        id: None,
        source: None,
        expires_at: None,
        mx_allowed: answer.mx_allowed(),
        error: answer.error().map(ToString::to_string),
    };
    if let Answer::Decided { decision, .. } = answer {
        line.domain = Some(decision.domain.as_str());
        if let Outcome::Policy { policy, source, .. } = &decision.outcome {
            line.mode = Some(policy.policy.mode.as_str());
            line.mx = Some(policy.policy.mx.iter().map(ToString::to_string).collect());
            line.max_age = Some(policy.policy.max_age);
            line.id = Some(&policy.record_id);
            line.source = Some(source.as_str());
            line.expires_at = Some(policy.expires_at);
        }
    }
    debug_assert!(answer.status() != Status::Policy || line.mode.is_some());
    // Serialising a struct of strings, numbers and booleans cannot fail.
    serde_json::to_string(&line).unwrap_or_else(|_| String::from("{\"status\":\"error\"}"))
}
