//! Command-line flags. Each everyday setting is a flag (and a `PROXLET_*` environment variable)
//! so that one line runs a proxy; flags override the file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::raw::{self, LogFormat, UpstreamProtocol};

#[derive(Debug, Default, Parser)]
#[command(name = "proxlet-sidecar", version, about = "Proxlet's sidecar proxy")]
pub struct Cli {
    /// YAML configuration file.
    #[arg(long, env = "PROXLET_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to accept workload traffic on (listener.address).
    #[arg(long, env = "PROXLET_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The workload's address (upstream.address).
    #[arg(long, env = "PROXLET_UPSTREAM")]
    pub upstream: Option<SocketAddr>,
    /// Protocol towards the workload (upstream.protocol).
    #[arg(long, env = "PROXLET_UPSTREAM_PROTOCOL", value_enum)]
    pub upstream_protocol: Option<UpstreamProtocol>,
    /// Admin server address (admin.address).
    #[arg(long, env = "PROXLET_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// PEM certificate chain for TLS on the listener (listener.tls.cert).
    #[arg(long, env = "PROXLET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the listener (listener.tls.key).
    #[arg(long, env = "PROXLET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Worker threads; 0 means one per available core (workers).
    #[arg(long, env = "PROXLET_WORKERS")]
    pub workers: Option<usize>,
    /// Log format (log.format).
    #[arg(long, env = "PROXLET_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl Cli {
    /// Writes every flag that was given into the file's structure.
    pub(super) fn apply(&self, file: &mut raw::File) {
        if let Some(address) = self.listen {
            match &mut file.listener {
                Some(l) => l.address = address,
                None => file.listener = Some(raw::Listener { address, tls: None }),
            }
        }
        if let (Some(cert), Some(key), Some(l)) =
            (&self.tls_cert, &self.tls_key, &mut file.listener)
        {
            l.tls = Some(raw::Tls {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        if let Some(address) = self.upstream {
            match &mut file.upstream {
                Some(u) => u.address = address,
                None => file.upstream = Some(raw::Upstream::at(address)),
            }
        }
        if let (Some(p), Some(u)) = (self.upstream_protocol, &mut file.upstream) {
            u.protocol = p;
        }
        if let Some(address) = self.admin {
            file.admin = Some(raw::Admin { address });
        }
        if let Some(w) = self.workers {
            file.workers = w;
        }
        if let Some(format) = self.log_format {
            file.log = Some(raw::Log { format });
        }
    }
}
