//! Rendering answers for each consumer: pure functions from an [`Answer`] to one line of text,
//! one file per dialect. Raw request text never reaches them: only validated names and escaped
//! error text do.

pub mod json;
pub mod text;

use crate::domain::Domain;
use crate::error::Error;
use crate::resolve::{Decision, Outcome};

/// What a face has to say about one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The request was looked up.
    Decided {
        /// The decision.
        decision: Decision,
        /// The MX host the request asked about, if any.
        mx: Option<Domain>,
    },
    /// The request could not be looked up (an invalid domain or MX host).
    Invalid(Error),
}

/// The four statuses every dialect distinguishes, with their JSON spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A policy applies (its mode may be `none`).
    Policy,
    /// No policy applies.
    NoPolicy,
    /// Temporary failure.
    Tempfail,
    /// Bad input.
    Error,
}

impl Status {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Policy => "policy",
            Self::NoPolicy => "no-policy",
            Self::Tempfail => "tempfail",
            Self::Error => "error",
        }
    }
}

impl Answer {
    /// The status of this answer.
    pub fn status(&self) -> Status {
        match self {
            Self::Decided { decision, .. } => match decision.outcome {
                Outcome::Policy { .. } => Status::Policy,
                Outcome::NoPolicy { .. } => Status::NoPolicy,
                Outcome::Tempfail { .. } => Status::Tempfail,
            },
            Self::Invalid(_) => Status::Error,
        }
    }

    /// Whether the asked-about MX host is allowed; `None` when no MX host was asked about or no
    /// active policy applies.
    pub fn mx_allowed(&self) -> Option<bool> {
        match self {
            Self::Decided { decision, mx: Some(mx) } => decision.mx_allowed(mx),
            _ => None,
        }
    }

    /// The error or reason to show, if any.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Self::Decided { decision, .. } => match &decision.outcome {
                Outcome::Policy { warning, .. } => warning.as_ref(),
                Outcome::NoPolicy { reason, .. } => reason.as_ref(),
                Outcome::Tempfail { error, .. } => Some(error),
            },
            Self::Invalid(e) => Some(e),
        }
    }
}
