//! Why the daemon cannot start or reload. Faults of one connection are not errors of the daemon:
//! they are logged and close that connection.

use std::fmt;
use std::io;

use super::zones::ZoneError;
use crate::error::Error;

/// The daemon cannot start, or a reload was refused (the old configuration stays in force).
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// A listener's configuration contradicts itself.
    Listener {
        /// Which listener (`serve.socketmap[0]`, `serve.line[1]`).
        listener: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A socket could not be bound or set up.
    Bind {
        /// The address or path.
        address: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A user or group named in the configuration does not exist or cannot be looked up.
    Account {
        /// `user` or `group`.
        kind: &'static str,
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// Switching to the configured user or group failed.
    Privileges {
        /// The step that failed (`setgroups`, `setgid`, `setuid`, ...).
        step: &'static str,
        /// What the operating system said.
        reason: String,
    },
    /// A zone's settings contradict each other.
    Zone(ZoneError),
    /// The resolver cannot be built (DNS configuration, trust store).
    Resolver(Error),
    /// A task of the daemon failed (a bug), for example while reloading.
    Task {
        /// What the runtime reported.
        reason: String,
    },
    /// A numeric setting is out of range.
    Setting {
        /// The key.
        key: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("serve: ")?;
        match self {
            Self::Listener { listener, reason } => write!(f, "{listener}: {reason}"),
            Self::Bind { address, source } => write!(f, "cannot listen on {address}: {source}"),
            Self::Account { kind, name, reason } => write!(f, "{kind} {name:?}: {reason}"),
            Self::Privileges { step, reason } => write!(f, "cannot drop privileges: {step}: {reason}"),
            Self::Zone(e) => write!(f, "{}", e.to_string().trim_start_matches("serve: ")),
            Self::Resolver(e) => write!(f, "{e}"),
            Self::Task { reason } => write!(f, "task failed: {reason}"),
            Self::Setting { key, reason } => write!(f, "serve.{key}: {reason}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<ZoneError> for ServeError {
    fn from(e: ZoneError) -> Self {
        Self::Zone(e)
    }
}

impl From<Error> for ServeError {
    fn from(e: Error) -> Self {
        Self::Resolver(e)
    }
}
