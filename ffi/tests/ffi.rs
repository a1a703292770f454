//! Tests of libmtasts from the outside: the committed header against the sources, and the C
//! programs of `tests/c/` compiled with the system compiler, linked against the built library
//! and run against in-process DNS and HTTPS servers (under valgrind when it is installed).

#[path = "../../tests/common/mod.rs"]
mod common;

#[path = "ffi/c.rs"]
mod c;
#[path = "ffi/header.rs"]
mod header;
#[path = "ffi/net.rs"]
mod net;
