//! The domain owner's side of MTA-STS: `mta-sts check` judges what a domain publishes the way
//! senders will read it, and `mta-sts generate` writes what to publish.
//!
//! The check reuses the resolver's own steps, [`crate::record`], [`crate::fetch`],
//! [`crate::policy`] and [`crate::mx`], so that it cannot pass what a sender would refuse.
//!
//! - [`run`]: [`run::Checker::check`], the check of one domain from top to bottom;
//! - [`dns_checks`]: the `_mta-sts` and `_smtp._tls` records, the policy host's addresses, the
//!   MX records ([RFC 8461 §3.1], [RFC 8460 §3]);
//! - [`policy_checks`]: HTTPS per address family, the policy file, MX matching ([RFC 8461 §3.2],
//!   [§3.3], [§4.1]);
//! - [`smtp`]: each MX host over SMTP with STARTTLS ([RFC 8461 §4.2]);
//! - [`tls`]: handshakes and the certificate checks shared by the policy host and MX hosts;
//! - [`report`]: the [`report::Check`] lines and the [`report::Report`] with its verdict;
//! - [`generate`]: the records and policy file to publish.
//!
//! [RFC 8461 §3.1]: https://www.rfc-editor.org/rfc/rfc8461#section-3.1
//! [RFC 8461 §3.2]: https://www.rfc-editor.org/rfc/rfc8461#section-3.2
//! [§3.3]: https://www.rfc-editor.org/rfc/rfc8461#section-3.3
//! [§4.1]: https://www.rfc-editor.org/rfc/rfc8461#section-4.1
//! [RFC 8461 §4.2]: https://www.rfc-editor.org/rfc/rfc8461#section-4.2
//! [RFC 8460 §3]: https://www.rfc-editor.org/rfc/rfc8460#section-3

pub mod dns_checks;
pub mod generate;
pub mod policy_checks;
pub mod report;
pub mod run;
pub mod smtp;
pub mod tls;
