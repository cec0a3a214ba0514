//! Test support: everything a test needs to stand up a sidecar between a client and an upstream.
//!
//! Every server here binds 127.0.0.1 on a port picked at run time and stops itself when dropped,
//! so tests stay independent and can run in parallel.

pub mod artifacts;
pub mod bin;
pub mod body;
pub mod client;
pub mod cluster;
pub mod curl;
pub mod h2load;
pub mod operator;
pub mod otlp;
pub mod pattern;
pub mod plugins;
pub mod prom;
pub mod raw;
pub mod registry;
pub mod server;
pub mod sidecar;
pub mod tls;
pub mod upstream;
pub mod wait;
