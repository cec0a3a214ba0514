//! proxlet-sidecar: the proxy that runs beside each workload.
//!
//! It accepts HTTP/1.1 and HTTP/2 (cleartext or TLS with ALPN) on one listener and forwards each
//! request to the workload over pooled keep-alive connections, answering failures itself with
//! a marked local response. An admin server on its own port exposes Prometheus metrics and
//! health probes. [`run`] wires the parts; `main.rs` only parses flags and builds the runtime.
//!
//! This crate must not depend on Kubernetes client libraries: outside Kubernetes it runs from one
//! YAML file.

pub mod admin;
pub mod body;
pub mod config;
pub mod error;
pub mod forward;
pub mod framing;
pub mod headers;
pub mod listener;
pub mod metrics;
pub mod proxy;
pub mod reload;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod tunnel;
pub mod wasm;

pub use config::{Cli, Config};
pub use server::run;
