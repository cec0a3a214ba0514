//! The leader folds what the sidecars report into each ProxyPlugin's `status.sidecars`
//! (matched, loaded, failed, and the first failing pods with why), under a field manager of
//! its own; the reconcile that this write triggers derives the `Loaded` and `Ready` conditions
//! from it (`status.rs`). Counts are this replica's sidecars plus the other replicas' published
//! tallies ([`Peers`]). A new failure of a pod also gets a Warning Event.

pub mod peers;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use proxlet_crds::plugin::Sidecars;
use proxlet_crds::{Digest, ProxyPlugin};
use tokio_util::sync::CancellationToken;

pub use self::peers::Peers;
use crate::metrics::Metrics;
use crate::reconcile::SIDECARS_MANAGER;
use crate::reconcile::events::Events;
use crate::reports::{Reports, Tally};
use crate::sets::Sets;

/// Reports arriving within this window are written together.
const SETTLE: Duration = Duration::from_millis(100);
/// How often silent sidecars are looked for even when nothing else changes.
const EXPIRE_EVERY: Duration = Duration::from_secs(5);

pub struct Folder {
    pub client: Client,
    pub sets: Arc<Sets>,
    pub reports: Arc<Reports>,
    pub peers: Option<Arc<Peers>>,
    pub metrics: Arc<Metrics>,
    pub events: Events,
}

impl Folder {
    /// Writes `status.sidecars` whenever it changes, until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut reports = self.reports.changes();
        let mut sets = self.sets.changes();
        let mut peers = self.peers.as_ref().map(|p| p.changes());
        self.sets.synced().await;
        let mut written: HashMap<(String, String), Sidecars> = HashMap::new();
        let mut failing: HashSet<(String, String, String, Digest)> = HashSet::new();
        loop {
            self.fold(&mut written, &mut failing).await;
            let peer_change = async {
                match peers.as_mut() {
                    Some(p) => {
                        let _ = p.changed().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = stop.cancelled() => return,
                _ = reports.changed() => {}
                _ = sets.changed() => {}
                () = peer_change => {}
                () = tokio::time::sleep(EXPIRE_EVERY) => {}
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    async fn fold(
        &self,
        written: &mut HashMap<(String, String), Sidecars>,
        failing: &mut HashSet<(String, String, String, Digest)>,
    ) {
        self.reports.expire();
        self.metrics.delivery.connected(self.reports.connected().0);
        let mut still_failing = HashSet::new();
        for ns in self.sets.namespaces() {
            let set = self.sets.current(&ns).set;
            let mut tallies = self.reports.tally(&set);
            if let Some(peers) = &self.peers {
                peers.add_to(&ns, &mut tallies);
            }
            for plugin in &set.plugins {
                let tally = tallies.remove(&plugin.name).unwrap_or_default();
                for f in &tally.failures {
                    let key = (
                        ns.clone(),
                        plugin.name.clone(),
                        f.pod.clone(),
                        plugin.module.digest.clone(),
                    );
                    if !failing.contains(&key) {
                        self.announce(&ns, &plugin.name, f).await;
                    }
                    still_failing.insert(key);
                }
                let sidecars = sidecars(&plugin.module.digest, tally);
                let key = (ns.clone(), plugin.name.clone());
                if written.get(&key) == Some(&sidecars) {
                    continue;
                }
                match self.write(&ns, &plugin.name, &sidecars).await {
                    Ok(()) => {
                        written.insert(key, sidecars);
                    }
                    Err(e) => {
                        tracing::warn!(namespace = %ns, plugin = %plugin.name, error = %e, "cannot write status.sidecars; retrying");
                    }
                }
            }
        }
        *failing = still_failing;
    }

    async fn write(&self, ns: &str, name: &str, sidecars: &Sidecars) -> Result<(), kube::Error> {
        let api: Api<ProxyPlugin> = Api::namespaced(self.client.clone(), ns);
        let body = serde_json::json!({
            "apiVersion": ProxyPlugin::api_version(&()),
            "kind": ProxyPlugin::kind(&()),
            "status": { "sidecars": sidecars },
        });
        match api
            .patch_status(
                name,
                &PatchParams::apply(SIDECARS_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(_) => Ok(()),
            // Deleted meanwhile: nothing to write.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn announce(&self, ns: &str, name: &str, failure: &proxlet_crds::plugin::SidecarFailure) {
        if let Some(plugin) = self.sets.object(ns, name) {
            self.events.load_failed(&plugin, failure).await;
        }
    }
}

/// The status of one plugin from its summed tally.
fn sidecars(digest: &Digest, tally: Tally) -> Sidecars {
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    Sidecars {
        digest: Some(digest.clone()),
        matched: count(tally.matched),
        loaded: count(tally.loaded),
        failed: count(tally.failed),
        summary: format!("{}/{}", tally.loaded, tally.matched),
        failures: tally.failures,
    }
}
