//! Helpers for Proxlet's end-to-end tests.
//!
//! The tests in `tests/tests/` start the real `proxlet-sidecar` binary as a process and drive it
//! with real clients (curl, h2load, raw TCP, a hyper client) on 127.0.0.1. This library owns the
//! pieces they share: an in-process test upstream, the sidecar launcher, client helpers and
//! certificate generation. It must not depend on the sidecar crate: the tests see the sidecar only
//! through its command line, its sockets and its log, as a user would.

pub mod support;
