//! `proxlet-operator run`: the operator itself. Wires the admin server, the module pipeline, the
//! plugin sets and the plugin-set server (on every replica), and the controller, the ConfigMap
//! writer and the report folding (behind leader election when asked); drains on SIGTERM: the
//! reconciles in flight finish, the lease is released, the process exits 0.

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
use crate::pipeline::Pipeline;
use crate::reconcile::Context;
use crate::reconcile::events::Events;
use crate::reports::Reports;
use crate::serve::auth::Authenticator;
use crate::serve::{Modules, Server};
use crate::sets::{ConfigMaps, Sets};
use crate::sidecar_status::{Folder, Peers};

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
    /// The plugin-set server, where sidecars watch their namespace's plugins.
    #[arg(long, env = "PROXLET_PLUGIN_SET_ADDR", default_value = "0.0.0.0:9443")]
    pub plugin_set_addr: SocketAddr,
    /// The serving certificate (PEM) of the plugin-set server; without it the server speaks
    /// plain HTTP (h2c), for local runs only. Re-read when the file changes.
    #[arg(long, env = "PROXLET_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The serving certificate's key (PEM).
    #[arg(long, env = "PROXLET_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// A sidecar silent for this long is forgotten (it long-polls every 30s).
    #[arg(long, default_value = "90s", value_parser = crate::cli::parse_duration)]
    pub sidecar_expiry: Duration,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Why the operator stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serving certificate: {0}")]
    Tls(#[from] crate::tls::TlsError),
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
        let bind = |what, addr| async move {
            admin::bind(addr)
                .await
                .map_err(|source| RunError::Bind { what, addr, source })
        };
        let listener = bind("the admin server", self.admin).await?;
        let plugin_set_listener = bind("the plugin-set server", self.plugin_set_addr).await?;
        let config = self
            .pipeline
            .config()
            .map_err(|e| RunError::Config(e.to_string()))?;
        let pipeline =
            Arc::new(Pipeline::new(config).map_err(|e| RunError::Config(e.to_string()))?);
        let metrics = Arc::new(Metrics::new().map_err(|e| RunError::Config(e.to_string()))?);
        let sets = Arc::new(Sets::default());
        let reports = Arc::new(Reports::new(self.sidecar_expiry));
        let ready = Arc::new(AtomicBool::new(false));
        let stop = CancellationToken::new();
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let cert = crate::tls::Certificate::load(cert, key)?;
                tokio::spawn(Arc::clone(&cert).watch(stop.clone()));
                Some(cert.server_config()?)
            }
            _ => {
                tracing::warn!(
                    "no --tls-cert: the plugin-set server speaks plain HTTP; use it for local runs only"
                );
                None
            }
        };
        let admin = Arc::new(Admin {
            metrics: Arc::clone(&metrics),
            pipeline: Arc::clone(&pipeline),
            sets: Arc::clone(&sets),
            reports: Arc::clone(&reports),
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
        tokio::spawn(Arc::clone(&sets).run(scope.api(client.clone()), stop.clone()));
        let server = Arc::new(Server {
            sets: Arc::clone(&sets),
            reports: Arc::clone(&reports),
            auth: Authenticator::new(client.clone()),
            modules: Modules {
                pipeline: Arc::clone(&pipeline),
                sets: Arc::clone(&sets),
                client: client.clone(),
            },
            metrics: Arc::clone(&metrics),
            stop: stop.clone(),
        });
        tokio::spawn(server.serve(plugin_set_listener, tls));
        ready.store(true, Ordering::SeqCst);
        let peers = self.leader_elect.then(|| {
            let peers = Peers::new(
                client.clone(),
                self.lease_namespace.clone(),
                self.identity(),
                self.sidecar_expiry,
            );
            tokio::spawn(Arc::clone(&peers).publish(
                Arc::clone(&reports),
                Arc::clone(&sets),
                stop.clone(),
            ));
            tokio::spawn(Arc::clone(&peers).watch(stop.clone()));
            peers
        });
        let ctx = Arc::new(Context::new(
            client.clone(),
            pipeline,
            Arc::clone(&metrics),
            Arc::clone(&sets),
            self.resync,
        ));
        let leading = Leading {
            config_maps: ConfigMaps::new(client.clone()),
            folder: Folder {
                client: client.clone(),
                sets,
                reports,
                peers,
                metrics,
                events: Events::new(client.clone()),
            },
        };
        let result = if self.leader_elect {
            self.run_elected(client, ctx, scope, leading, stop.clone())
                .await
        } else {
            let led = leading.start(stop.child_token());
            controller::run(ctx, scope, stop.clone()).await;
            led.cancel();
            Ok(())
        };
        stop.cancel();
        result
    }

    fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(default_identity)
    }

    async fn run_elected(
        &self,
        client: kube::Client,
        ctx: Arc<Context>,
        scope: Scope,
        leading: Leading,
        stop: CancellationToken,
    ) -> Result<(), RunError> {
        let election = Election {
            lease: self.lease_name.clone(),
            namespace: self.lease_namespace.clone(),
            identity: self.identity(),
            duration: self.lease_duration,
        };
        let leadership = tokio::select! {
            held = leader::acquire(client, &election) => held?,
            () = stop.cancelled() => return Ok(()),
        };
        let led = leading.start(stop.child_token());
        let lost = leadership.lost_signal();
        let lost_flag = CancellationToken::new();
        let trigger = CancellationToken::new();
        {
            let (stop, lost_flag, trigger) = (stop.clone(), lost_flag.clone(), trigger.clone());
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = lost => lost_flag.cancel(),
                }
                trigger.cancel();
            });
        }
        controller::run(ctx, scope, trigger).await;
        led.cancel();
        if lost_flag.is_cancelled() {
            return Err(RunError::LeaseLost);
        }
        leadership.release().await;
        Ok(())
    }
}

/// What only the leader runs beside the controller.
struct Leading {
    config_maps: ConfigMaps,
    folder: Folder,
}

impl Leading {
    /// Starts the ConfigMap writer and the report folding; they stop with the returned token.
    fn start(self, stop: CancellationToken) -> CancellationToken {
        tokio::spawn(
            self.config_maps
                .run(Arc::clone(&self.folder.sets), stop.clone()),
        );
        tokio::spawn(self.folder.run(stop.clone()));
        stop
    }
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
