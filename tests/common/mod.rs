//! Shared integration-test fixtures: a test PKI, an authoritative DNS server
//! and an HTTPS server. Include with `mod common;` from a test file.
//!
//! Everything is synchronous (std threads), binds 127.0.0.1 on a random port
//! and stops all its threads when dropped.
#![allow(dead_code)]

pub mod dns;
pub mod https;
pub mod pki;
pub mod smtp;
pub mod world;
