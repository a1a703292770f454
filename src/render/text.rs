//! The text dialect: a short line for people.

use super::Answer;
use crate::resolve::Outcome;

/// Renders one answer as a human-readable line.
pub fn render(answer: &Answer) -> String {
    let (decision, mx) = match answer {
        Answer::Decided { decision, mx } => (decision, mx),
        Answer::Invalid(e) => return format!("error: {e}"),
    };
    let what = match &decision.outcome {
        Outcome::Policy { policy, source, warning } => {
            let p = &policy.policy;
            let mut s = format!("{} (max_age {}, id {}, from {}", p.mode, p.max_age, policy.record_id, source.as_str());
            if !p.mx.is_empty() {
                let mx: Vec<String> = p.mx.iter().map(ToString::to_string).collect();
                s += &format!(", mx {}", mx.join(" "));
            }
            s.push(')');
            if let Some(w) = warning {
                s += &format!("; kept despite {w}");
            }
            s
        }
        Outcome::NoPolicy { reason: Some(r), .. } => format!("no policy ({r})"),
        Outcome::NoPolicy { reason: None, .. } => "no policy".to_owned(),
        Outcome::Tempfail { error, .. } => format!("temporary failure ({error})"),
    };
    let verdict = match (mx, answer.mx_allowed()) {
        (Some(host), Some(true)) => format!("; mx {host} allowed"),
        (Some(host), Some(false)) => format!("; mx {host} NOT allowed"),
        _ => String::new(),
    };
    format!("{}: {what}{verdict}", decision.domain)
}
