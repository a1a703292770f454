//! The policy daemon behind `mta-sts serve`: one long-running process holding the cache,
//! answering every MTA on the host.
//!
//! - [`socketmap`]: the Postfix/Sendmail socketmap protocol: requests `NAME KEY` in
//!   [`netstring`]s, replies `OK data`, `NOTFOUND `, `TEMP reason`, `PERM reason`
//!   (Postfix `socketmap_table(5)`, Sendmail's socket map class);
//! - [`line`](mod@line): one request line in, one answer line out, for Exim's `${readsocket}`;
//! - [`zones`]: what each socketmap name means: dialect and per-zone switches;
//! - [`listener`]: binding TCP and Unix sockets;
//! - [`privileges`]: users, groups and the privilege drop;
//! - [`server`]: connections, limits, reload, drain and the proactive refresh task;
//! - [`notify`]: the systemd readiness datagram;
//! - [`migrate`]: reading postfix-mta-sts-resolver's YAML configuration;
//! - [`error`]: why the daemon cannot start or reload.
//!
//! Like every face, the daemon holds no MTA-STS logic: it calls [`crate::Resolver::lookup`] and
//! renders the decision with [`crate::render`].

pub mod error;
pub mod line;
pub mod listener;
pub mod migrate;
pub mod netstring;
pub mod notify;
pub mod privileges;
pub mod server;
pub mod socketmap;
pub mod zones;
