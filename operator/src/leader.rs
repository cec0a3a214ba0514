//! Leader election with a `coordination.k8s.io` Lease, for more than one replica: only the
//! holder reconciles; the others wait and take over when the holder's lease lapses. A holder
//! that loses the lease stops reconciling at once (another replica now owns the writes) and the
//! process exits so it starts again as a follower.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;

/// How the lease is held.
#[derive(Clone, Debug)]
pub struct Election {
    pub lease: String,
    pub namespace: String,
    /// This replica's name (the pod's name in a cluster).
    pub identity: String,
    /// How long a holder that stops renewing keeps the lease.
    pub duration: Duration,
}

/// A held lease: watch it to learn when it is lost; release it on shutdown.
pub struct Leadership {
    state: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

/// Waits until this replica holds the lease.
pub async fn acquire(
    client: Client,
    e: &Election,
) -> Result<Leadership, kube_lease_manager::LeaseManagerError> {
    let secs = e.duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(client, &e.lease)
        .with_namespace(&e.namespace)
        .with_identity(&e.identity)
        .with_duration(secs)
        .with_grace(secs / 3)
        .with_field_manager(crate::reconcile::MANAGER)
        .build()
        .await?;
    let (mut state, task) = manager.watch().await;
    tracing::info!(lease = %e.lease, identity = %e.identity, "waiting for the leader lease");
    while !*state.borrow_and_update() {
        if state.changed().await.is_err() {
            break;
        }
    }
    tracing::info!(lease = %e.lease, identity = %e.identity, "holding the leader lease");
    Ok(Leadership { state, task })
}

impl Leadership {
    /// A future for the controller's shutdown trigger: completes when the lease is lost.
    pub fn lost_signal(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut state = self.state.clone();
        async move {
            while *state.borrow_and_update() {
                if state.changed().await.is_err() {
                    return;
                }
            }
        }
    }

    /// Gives the lease up so another replica takes over at once.
    pub async fn release(self) {
        drop(self.state);
        match self.task.await {
            Ok(Ok(manager)) => {
                if let Err(e) = manager.release().await {
                    tracing::warn!(error = %e, "cannot release the leader lease");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "leader lease"),
            Err(e) => tracing::warn!(error = %e, "leader lease task"),
        }
    }
}
