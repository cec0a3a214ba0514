//! The `proxlet-plugins` ConfigMap of every namespace with a set: the set as JSON, written by
//! server-side apply when it changes, so a sidecar (re)starting while the operator is down
//! still loads its plugins from the mounted file. Only the leader writes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use proxlet_crds::PluginSet;
use proxlet_crds::plugin_set::{CONFIG_MAP, CONFIG_MAP_KEY};
use tokio_util::sync::CancellationToken;

use super::Sets;
use crate::reconcile::MANAGER;

/// How long a failed write waits before the next try.
const RETRY: Duration = Duration::from_secs(2);

/// Writes the ConfigMaps.
#[derive(Clone)]
pub struct ConfigMaps {
    client: Client,
}

impl ConfigMaps {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Writes `set` into its namespace's ConfigMap.
    pub async fn write(&self, set: &PluginSet) -> Result<(), kube::Error> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &set.namespace);
        let json = serde_json::to_string_pretty(set).map_err(kube::Error::SerdeError)?;
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": CONFIG_MAP,
                "namespace": set.namespace,
                "labels": { "app.kubernetes.io/managed-by": MANAGER },
                "annotations": { "proxlet.dev/plugin-set-version": set.version },
            },
            "data": { CONFIG_MAP_KEY: json },
        });
        api.patch(
            CONFIG_MAP,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        tracing::debug!(namespace = %set.namespace, version = %set.version, "plugin set ConfigMap written");
        Ok(())
    }

    /// Keeps every namespace's ConfigMap at its current set until `stop`: each change is
    /// written once (bursts coalesce to the latest version); a failed write is retried.
    pub async fn run(self, sets: Arc<Sets>, stop: CancellationToken) {
        let mut changes = sets.changes();
        sets.synced().await;
        let mut written: HashMap<String, String> = HashMap::new();
        loop {
            let mut failed = false;
            for ns in sets.namespaces() {
                let current = sets.current(&ns).set;
                if written.get(&ns) == Some(&current.version) {
                    continue;
                }
                match self.write(&current).await {
                    Ok(()) => {
                        written.insert(ns, current.version.clone());
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %ns, error = %e, "cannot write the plugin set ConfigMap; retrying");
                        failed = true;
                    }
                }
            }
            let wait = async {
                if failed {
                    tokio::time::sleep(RETRY).await;
                } else {
                    let _ = changes.changed().await;
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = wait => {}
            }
        }
    }
}
