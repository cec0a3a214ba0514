//! Sidecars spread over the replicas (a Service balances their connections), so each replica
//! publishes the tallies of its own sidecars in a ConfigMap in its namespace
//! (`proxlet-sidecars-IDENTITY`, labelled `proxlet.dev/sidecar-tallies`), when they change and
//! at least every third of the expiry; the leader watches them and adds those of live replicas
//! to its own. A replica that stopped publishing is left out after the expiry (its sidecars
//! reconnect elsewhere and report again).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::reconcile::MANAGER;
use crate::reports::{Reports, Tally};
use crate::sets::Sets;

const LABEL: &str = "proxlet.dev/sidecar-tallies";
const REPLICA: &str = "proxlet.dev/replica";
const UPDATED: &str = "proxlet.dev/updated";
const KEY: &str = "tallies.json";
/// Changes within this window are published together.
const SETTLE: Duration = Duration::from_millis(300);

/// namespace → plugin → tally.
type Tallies = BTreeMap<String, BTreeMap<String, Tally>>;

pub struct Peers {
    client: Client,
    namespace: String,
    identity: String,
    expiry: Duration,
    others: Mutex<HashMap<String, (Tallies, Timestamp)>>,
    changes: watch::Sender<u64>,
}

impl Peers {
    pub fn new(client: Client, namespace: String, identity: String, expiry: Duration) -> Arc<Self> {
        Arc::new(Self {
            client,
            namespace,
            identity,
            expiry,
            others: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
        })
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Tallies, Timestamp)>> {
        self.others.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the live replicas' tallies for `namespace` whose digest is the same as ours.
    pub fn add_to(&self, namespace: &str, tallies: &mut BTreeMap<String, Tally>) {
        let now = Timestamp::now();
        let expiry = i64::try_from(self.expiry.as_secs()).unwrap_or(i64::MAX);
        for (id, (theirs, updated)) in self.lock().iter() {
            if id == &self.identity || now.as_second() - updated.as_second() > expiry {
                continue;
            }
            for (plugin, tally) in theirs.get(namespace).into_iter().flatten() {
                if let Some(ours) = tallies.get_mut(plugin)
                    && ours.digest == tally.digest
                {
                    ours.add(tally);
                }
            }
        }
    }

    /// Publishes this replica's tallies until `stop`.
    pub async fn publish(
        self: Arc<Self>,
        reports: Arc<Reports>,
        sets: Arc<Sets>,
        stop: CancellationToken,
    ) {
        let mut changes = reports.changes();
        let heartbeat = self.expiry / 3;
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let name = format!("proxlet-sidecars-{}", self.identity);
        let mut last: Option<Tallies> = None;
        let mut written_at = tokio::time::Instant::now();
        loop {
            let tallies: Tallies = sets
                .namespaces()
                .into_iter()
                .map(|ns| {
                    let t = reports.tally(&sets.current(&ns).set);
                    (ns, t)
                })
                .filter(|(_, t)| t.values().any(|t| t.matched > 0))
                .collect();
            if last.as_ref() != Some(&tallies) || written_at.elapsed() >= heartbeat {
                let body = serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": name,
                        "labels": { LABEL: "true", REPLICA: self.identity },
                        "annotations": { UPDATED: Timestamp::now().to_string() },
                    },
                    "data": { KEY: serde_json::to_string(&tallies).unwrap_or_default() },
                });
                match api
                    .patch(
                        &name,
                        &PatchParams::apply(MANAGER).force(),
                        &Patch::Apply(&body),
                    )
                    .await
                {
                    Ok(_) => {
                        last = Some(tallies);
                        written_at = tokio::time::Instant::now();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot publish this replica's sidecar tallies")
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                _ = changes.changed() => {}
                () = tokio::time::sleep(heartbeat) => {}
            }
            tokio::time::sleep(SETTLE).await;
        }
    }

    /// Follows the other replicas' tallies until `stop`.
    pub async fn watch(self: Arc<Self>, stop: CancellationToken) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let config = watcher::Config::default().labels(&format!("{LABEL}=true"));
        let events = watcher::watcher(api, config).default_backoff();
        tokio::pin!(events);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                e = events.next() => match e {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "replica tallies watch (retrying)");
                        continue;
                    }
                    None => return,
                },
            };
            match event {
                Event::Apply(cm) | Event::InitApply(cm) => self.take(&cm),
                Event::Delete(cm) => {
                    if let Some(id) = cm.labels().get(REPLICA) {
                        self.lock().remove(id);
                    }
                }
                Event::Init | Event::InitDone => {}
            }
            self.changes.send_modify(|n| *n += 1);
        }
    }

    fn take(&self, cm: &ConfigMap) {
        let Some(id) = cm.labels().get(REPLICA).cloned() else {
            return;
        };
        let updated = cm
            .annotations()
            .get(UPDATED)
            .and_then(|t| t.parse::<Timestamp>().ok());
        let tallies = cm
            .data
            .as_ref()
            .and_then(|d| d.get(KEY))
            .and_then(|t| serde_json::from_str::<Tallies>(t).ok());
        if let (Some(updated), Some(tallies)) = (updated, tallies) {
            self.lock().insert(id, (tallies, updated));
        }
    }
}
