//! `proxlet-operator run`: the operator itself. Wires the admin server, the module pipeline and
//! the controller (behind leader election when asked), and drains on SIGTERM: the reconciles in
//! flight finish, the lease is released, the process exits 0.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::admin::{self, Admin};
use crate::cli::PipelineArgs;
use crate::controller::{self, Scope};
use crate::leader::{self, Election};
use crate::metrics::Metrics;
use crate::offers::Offers;
use crate::pipeline::Pipeline;
use crate::reconcile::Context;

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The admin server: `/metrics`, `/healthz`, `/readyz`, `/api/plugins`.
    #[arg(long, env = "PROXLET_ADMIN", default_value = "0.0.0.0:9090")]
    pub admin: SocketAddr,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "PROXLET_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// ProxyPlugins reconciled at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// How often tags under `imagePullPolicy: Always` are resolved again.
    #[arg(long, default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub resync: Duration,
    /// Reconcile only while holding a Lease (run more than one replica with this).
    #[arg(long, env = "PROXLET_LEADER_ELECT")]
    pub leader_elect: bool,
    /// The Lease's name.
    #[arg(long, default_value = "proxlet-operator")]
    pub lease_name: String,
    /// The Lease's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (the pod's name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long a holder that stopped renewing keeps the Lease.
    #[arg(long, default_value = "15s", value_parser = crate::cli::parse_duration)]
    pub lease_duration: Duration,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("cannot bind the admin address {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build a Kubernetes client (kubeconfig or in-cluster config): {0}")]
    Client(#[source] kube::Error),
    #[error(transparent)]
    Start(#[from] controller::StartError),
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),
    #[error("lost the leader lease; restarting as a follower")]
    LeaseLost,
}

impl RunArgs {
    /// Runs until SIGTERM or SIGINT.
    pub async fn run(self) -> Result<(), RunError> {
        let listener = admin::bind(self.admin)
            .await
            .map_err(|source| RunError::Bind {
                addr: self.admin,
                source,
            })?;
        let config = self
            .pipeline
            .config()
            .map_err(|e| RunError::Config(e.to_string()))?;
        let pipeline =
            Arc::new(Pipeline::new(config).map_err(|e| RunError::Config(e.to_string()))?);
        let metrics = Arc::new(Metrics::new().map_err(|e| RunError::Config(e.to_string()))?);
        let offers = Arc::new(Offers::default());
        let ready = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let admin = Arc::new(Admin {
            metrics: Arc::clone(&metrics),
            pipeline: Arc::clone(&pipeline),
            offers: Arc::clone(&offers),
            ready: Arc::clone(&ready),
        });
        tokio::spawn(admin.serve(listener, stop.clone()));
        tokio::spawn(signals(stop.clone()));
        let client = kube::Client::try_default()
            .await
            .map_err(RunError::Client)?;
        let scope = Scope {
            namespace: self.namespace.clone(),
            concurrency: self.concurrency,
        };
        controller::preflight(client.clone(), &scope).await?;
        ready.store(true, Ordering::SeqCst);
        let ctx = Arc::new(Context::new(
            client.clone(),
            pipeline,
            metrics,
            offers,
            self.resync,
        ));
        let result = if self.leader_elect {
            self.run_elected(client, ctx, scope, stop.clone()).await
        } else {
            controller::run(ctx, scope, cancelled(stop.clone())).await;
            Ok(())
        };
        stop.cancel();
        result
    }

    async fn run_elected(
        &self,
        client: kube::Client,
        ctx: Arc<Context>,
        scope: Scope,
        stop: CancellationToken,
    ) -> Result<(), RunError> {
        let election = Election {
            lease: self.lease_name.clone(),
            namespace: self.lease_namespace.clone(),
            identity: self.identity.clone().unwrap_or_else(default_identity),
            duration: self.lease_duration,
        };
        let leadership = tokio::select! {
            held = leader::acquire(client, &election) => held?,
            () = stop.cancelled() => return Ok(()),
        };
        let lost = leadership.lost_signal();
        let lost_flag = CancellationToken::new();
        let trigger = {
            let (stop, lost_flag) = (stop.clone(), lost_flag.clone());
            async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = lost => lost_flag.cancel(),
                }
            }
        };
        controller::run(ctx, scope, trigger).await;
        if lost_flag.is_cancelled() {
            return Err(RunError::LeaseLost);
        }
        leadership.release().await;
        Ok(())
    }
}

async fn cancelled(token: CancellationToken) {
    token.cancelled().await;
}

/// Cancels `stop` on SIGTERM or SIGINT.
async fn signals(stop: CancellationToken) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = term => tracing::info!("SIGTERM: draining"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
    }
    stop.cancel();
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}-{}", host.trim(), std::process::id())
}
