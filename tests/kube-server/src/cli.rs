//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::auth::ForbidRule;

/// A Kubernetes API server for tests, in memory.
#[derive(Debug, clap::Parser)]
#[command(name = "kube-test-server", version)]
pub struct Args {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Write a kubeconfig for this server here.
    #[arg(long, value_name = "OUT.yaml")]
    pub kubeconfig: Option<PathBuf>,
    /// Answer 403 Forbidden to VERB on RESOURCE (`plural[.group][/subresource]`); repeatable.
    #[arg(long = "forbid", value_name = "VERB:RESOURCE")]
    pub forbid: Vec<ForbidRule>,
    /// How many changes watches can start from before a resourceVersion is 410 Expired.
    #[arg(long, default_value_t = 1000)]
    pub watch_history: usize,
    /// The bearer token of the kubeconfig's user (random when not given).
    #[arg(long)]
    pub token: Option<String>,
    /// Keep running when stdin closes (stop with SIGTERM or SIGINT only).
    #[arg(long)]
    pub ignore_stdin: bool,
    /// Log every request to stderr.
    #[arg(long)]
    pub log: bool,
}
