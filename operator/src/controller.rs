//! The ProxyPlugin controller: a preflight check that names what is wrong when the CRD is
//! missing or RBAC forbids a verb, then kube-runtime's `Controller` with bounded concurrency,
//! running [`reconcile`] until told to stop (finishing the reconciles in flight).

use std::sync::Arc;

use futures_util::StreamExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{self, Controller};
use kube::runtime::watcher;
use proxlet_crds::ProxyPlugin;
use tokio_util::sync::CancellationToken;

use crate::reconcile::{self, Context};

/// Why the controller cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "the ProxyPlugin CRD (proxyplugins.proxlet.dev) is not installed in this cluster: \
         install it with `kubectl apply -f crds/`"
    )]
    CrdMissing,
    #[error("RBAC forbids the operator to {verb} proxyplugins.proxlet.dev{scope}: {message}")]
    Forbidden {
        verb: &'static str,
        scope: String,
        message: String,
    },
    #[error("cannot reach the Kubernetes API: {0}")]
    Api(#[source] kube::Error),
}

/// Which ProxyPlugins to watch and how many to reconcile at once.
#[derive(Clone, Debug)]
pub struct Scope {
    /// One namespace, or all of them.
    pub namespace: Option<String>,
    pub concurrency: u16,
}

impl Scope {
    pub fn api(&self, client: kube::Client) -> Api<ProxyPlugin> {
        match &self.namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }

    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => " in all namespaces".into(),
        }
    }
}

/// Lists ProxyPlugins once, so a missing CRD or RBAC rule stops start-up with a clear message.
pub async fn preflight(client: kube::Client, scope: &Scope) -> Result<(), StartError> {
    let api = scope.api(client);
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Err(StartError::CrdMissing),
        Err(kube::Error::Api(s)) if s.code == 403 => Err(StartError::Forbidden {
            verb: "list",
            scope: scope.describe(),
            message: s.message.clone(),
        }),
        Err(e) => Err(StartError::Api(e)),
    }
}

/// Runs the controller until `stop` is cancelled, finishing the reconciles in flight. Stopped
/// before its first list of ProxyPlugins arrived, it has nothing in flight and returns at once.
pub async fn run(ctx: Arc<Context>, scope: Scope, stop: CancellationToken) {
    let api = scope.api(ctx.client.clone());
    let config = controller::Config::default().concurrency(scope.concurrency);
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    let early = {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => true,
                ready = store.wait_until_ready() => ready.is_err(),
            }
        }
    };
    let trigger = {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let running = controller
        .with_config(config)
        .graceful_shutdown_on(trigger)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            match result {
                Ok((obj, _)) => tracing::debug!(plugin = %obj.name, namespace = ?obj.namespace, "reconciled"),
                Err(controller::Error::ReconcilerFailed(e, obj)) => {
                    tracing::debug!(plugin = %obj.name, error = %e, "reconcile failed; backing off");
                }
                Err(e) => tracing::warn!(error = %e, "controller"),
            }
        });
    tokio::pin!(running);
    tokio::select! {
        () = &mut running => {}
        stopped = early => {
            if !stopped {
                running.await;
            }
        }
    }
}
