//! The configuration file as written: serde structs with their documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole file. Every section is optional; `listener` and `upstream` may come from flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub admin: Option<Admin>,
    pub listener: Option<Listener>,
    pub upstream: Option<Upstream>,
    pub limits: Option<Limits>,
    pub forwarded: Option<Forwarded>,
    pub shutdown: Option<Shutdown>,
    pub log: Option<Log>,
    /// Worker threads; 0 (the default) means one per available core.
    #[serde(default)]
    pub workers: usize,
    /// Proxy-Wasm plugins in the request path.
    #[serde(default)]
    pub plugins: Vec<super::plugins::PluginEntry>,
    /// Upstreams plugins may call with `proxy_http_call`, by name.
    #[serde(default)]
    pub clusters: std::collections::BTreeMap<String, super::plugins::ClusterEntry>,
    /// Where compiled plugin modules are cached across restarts. Default: none (memory only).
    #[serde(default)]
    pub module_cache_dir: Option<PathBuf>,
    /// How plugin-defined metric names become Prometheus series (tag extraction).
    #[serde(default)]
    pub plugin_metrics: super::plugins::PluginMetrics,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    /// Address of the admin server (`/metrics`, `/healthz`, `/readyz`). Default 127.0.0.1:15000.
    #[serde(default = "default_admin")]
    pub address: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            address: default_admin(),
        }
    }
}

fn default_admin() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 15000))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// Where the sidecar accepts traffic for the workload.
    pub address: SocketAddr,
    /// With a certificate and key the listener speaks TLS and negotiates h2 or http/1.1 by ALPN.
    pub tls: Option<Tls>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// The workload's address, e.g. 127.0.0.1:8080.
    pub address: SocketAddr,
    /// Protocol towards the workload. Default `auto`: the same as the downstream request.
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    /// Default 1s.
    #[serde(default = "secs::<1>", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Time allowed until the upstream's response headers; past it the client gets a 504. Default 15s.
    #[serde(default = "secs::<15>", with = "humantime_serde")]
    pub response_timeout: Duration,
    /// How long an idle pooled upstream connection is kept. Default 90s.
    #[serde(default = "secs::<90>", with = "humantime_serde")]
    pub idle_timeout: Duration,
}

impl Upstream {
    /// An upstream at `address` with every other setting at its default.
    pub fn at(address: SocketAddr) -> Self {
        Self {
            address,
            protocol: UpstreamProtocol::default(),
            connect_timeout: secs::<1>(),
            response_timeout: secs::<15>(),
            idle_timeout: secs::<90>(),
        }
    }
}

/// Protocol spoken to the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1 over pooled keep-alive connections.
    Http1,
    /// Cleartext HTTP/2 with prior knowledge (h2c); gRPC upstreams need this or `auto`.
    Http2,
    /// The same protocol as the downstream request.
    #[default]
    Auto,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A client must send a request's whole header section within this time (slowloris). Default 10s.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Largest request header section; larger gets 431. Default 64 KiB.
    pub max_header_bytes: usize,
    /// Most request header fields; more gets 431. Default 100.
    pub max_headers: usize,
    /// A downstream connection with no request in flight and no bytes moving is closed after this. Default 300s.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open downstream connections; past this a connection gets 503 and is closed. Default 10000.
    pub max_connections: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per downstream connection. Default 256.
    pub max_concurrent_streams: usize,
    /// Requests being proxied at once; past this a request gets 503. Default 10000.
    pub max_requests_in_flight: usize,
    /// Cap on a body a component holds in memory at once. Default 1 MiB.
    pub max_buffered_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
            max_concurrent_streams: 256,
            max_requests_in_flight: 10_000,
            max_buffered_body_bytes: 1024 * 1024,
        }
    }
}

/// Which `X-Forwarded-*` headers the sidecar adds to requests it forwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Forwarded {
    /// Append the client address to `X-Forwarded-For`. Default true.
    pub x_forwarded_for: bool,
    /// Set `X-Forwarded-Proto` to the downstream scheme unless already present. Default true.
    pub x_forwarded_proto: bool,
    /// Set `X-Forwarded-Host` to the request's authority unless already present. Default true.
    pub x_forwarded_host: bool,
}

impl Default for Forwarded {
    fn default() -> Self {
        Self {
            x_forwarded_for: true,
            x_forwarded_proto: true,
            x_forwarded_host: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shutdown {
    /// After SIGTERM, how long in-flight requests get to finish. Default 30s.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// `text` (default) or `json`. The level comes from `RUST_LOG` (default `info`).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

const fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}
