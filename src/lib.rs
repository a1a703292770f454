//! MTA-STS ([RFC 8461]) policy resolution for mail servers.
//!
//! One resolver answers "which MTA-STS policy applies to this recipient domain right now?" and
//! every face of the project (the `mta-sts` command, the stdio helper, the socketmap daemon and
//! the C library for Exim) only translates requests and answers. The RFC steps live in modules
//! named after them:
//!
//! | step | module |
//! |---|---|
//! | request string to domain | [`domain`] |
//! | `_mta-sts` TXT discovery (§3.1) | [`record`] |
//! | policy grammar (§3.2) | [`policy`] |
//! | HTTPS fetch (§3.3) | [`fetch`] |
//! | MX matching (§4.1) | [`mx`] |
//! | the decision and its cache (§5.1, §10.2) | [`resolve`], [`store`] |
//! | `_smtp._tls` TLSRPT record ([RFC 8460 §3]) | [`tlsrpt`] |
//! | the domain owner's check and generator | [`check`] |
//!
//! ```no_run
//! use mta_sts::{Config, Domain, Resolver};
//!
//! let resolver = Resolver::builder(Config::default()).build()?;
//! let decision = resolver.lookup(&Domain::parse("example.com")?);
//! if let Some(policy) = decision.active_policy() {
//!     println!("{} mode {}", decision.domain, policy.mode);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [RFC 8461]: https://www.rfc-editor.org/rfc/rfc8461
//! [RFC 8460 §3]: https://www.rfc-editor.org/rfc/rfc8460#section-3

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod clock;
pub mod config;
pub mod dns;
pub mod domain;
pub mod error;
pub mod fetch;
pub mod line;
pub mod mx;
pub mod policy;
pub mod record;
pub mod render;
pub mod resolve;
pub mod serve;
pub mod store;
pub mod tlsrpt;

pub use config::Config;
pub use domain::Domain;
pub use error::Error;
pub use policy::{Mode, Policy};
pub use resolve::{Decision, Outcome, Resolver, Source};
