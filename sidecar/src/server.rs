//! The sidecar's life: bind → ready → serve → (signal) → not ready → drain → exit.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::admin::{self, Admin, Readiness};
use crate::config::Config;
use crate::listener::Listener;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::reload::Reloader;
use crate::wasm::Host;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot bind the listener on {addr}: {source}")]
    BindListener {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot bind the admin server on {addr}: {source}")]
    BindAdmin {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Plugin(#[from] crate::wasm::PluginError),
    #[error(transparent)]
    Reload(#[from] crate::reload::ReloadError),
    #[error("metrics registry: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    Complete,
    TimedOut,
}

/// Runs the sidecar until `shutdown` resolves, then drains within the grace period. With
/// `watch`, the configuration file is re-read when it changes and its plugins applied.
pub async fn run(
    cfg: Config,
    watch: Option<(std::path::PathBuf, crate::config::Cli)>,
    started: Instant,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Drained, ServeError> {
    let metrics = Arc::new(Metrics::new()?);
    let readiness = Arc::new(Readiness::default());
    let admin_listener = admin::bind(cfg.admin)
        .await
        .map_err(|source| ServeError::BindAdmin {
            addr: cfg.admin,
            source,
        })?;

    let tls = cfg
        .listener
        .tls
        .as_ref()
        .map(crate::tls::acceptor)
        .transpose()?;
    let proxy = Proxy::new(&cfg, metrics.clone());
    // The host starts even without plugins: a reload may add some.
    let host = Arc::new(Host::new(&cfg, metrics.registry())?);
    let reloader = Reloader::start(host, proxy.clone(), &cfg.plugins)?;
    if let Some((path, cli)) = watch {
        reloader.clone().watch(path, cli);
    }
    let listener = Listener::bind(cfg.listener.address, tls, proxy.clone(), cfg.limits.clone())
        .await
        .map_err(|source| ServeError::BindListener {
            addr: cfg.listener.address,
            source,
        })?;
    let admin = Arc::new(Admin {
        metrics: metrics.clone(),
        readiness: readiness.clone(),
        reloader,
    });
    tokio::spawn(admin.serve(admin_listener));
    let (drain_tx, drain_rx) = watch::channel(false);
    let tasks = TaskTracker::new();
    let accept = tokio::spawn(listener.serve(drain_rx, tasks.clone()));
    readiness.set(true);
    tracing::info!(
        listen = %cfg.listener.address,
        upstream = %cfg.upstream.address,
        admin = %cfg.admin,
        tls = cfg.listener.tls.is_some(),
        ready_ms = started.elapsed().as_secs_f64() * 1000.0,
        "proxlet-sidecar ready"
    );

    shutdown.await;
    tracing::info!(grace_period = ?cfg.grace_period, "shutdown signal received, draining");
    readiness.set(false);
    proxy.start_draining();
    let _ = drain_tx.send(true);
    let _ = accept.await;
    tasks.close();
    let drained = match tokio::time::timeout(cfg.grace_period, tasks.wait()).await {
        Ok(()) => {
            tracing::info!("drain complete");
            Drained::Complete
        }
        Err(_) => {
            tracing::warn!(
                connections = tasks.len(),
                "drain timed out; closing remaining connections"
            );
            Drained::TimedOut
        }
    };
    Ok(drained)
}
