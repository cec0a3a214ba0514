//! The plugin set of every namespace, built from the ProxyPlugins in force, on every replica.
//!
//! A watch on ProxyPlugins (independent of the leader lease, so every replica serves sidecars)
//! keeps, per namespace, the plugins whose `Ready` condition is `True` with a digest in force,
//! and publishes the namespace's [`PluginSet`] on a watch channel whenever its version changes.
//! The set is made from the objects alone (spec and status), so every replica computes the same
//! set and version. A ProxyPlugin being deleted leaves the set at once.

mod configmap;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use proxlet_crds::plugin_set::Module;
use proxlet_crds::{PluginSet, ProxyPlugin, SetPlugin};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use self::configmap::ConfigMaps;

/// One namespace's set, its JSON, and when this replica first saw that version.
#[derive(Clone, Debug)]
pub struct Published {
    pub set: Arc<PluginSet>,
    pub json: Bytes,
    pub since: Instant,
}

impl Published {
    fn new(set: PluginSet) -> Self {
        let json = Bytes::from(serde_json::to_vec(&set).unwrap_or_default());
        Self {
            set: Arc::new(set),
            json,
            since: Instant::now(),
        }
    }
}

/// namespace → name → the set entry and the object it came from.
type State = BTreeMap<String, BTreeMap<String, (SetPlugin, Arc<ProxyPlugin>)>>;

/// Every namespace's set.
#[derive(Default)]
pub struct Sets {
    namespaces: Mutex<HashMap<String, watch::Sender<Published>>>,
    /// Set once the first full list of ProxyPlugins is in: before that, sets are incomplete.
    synced: watch::Sender<bool>,
    /// Bumped whenever any namespace's set changes.
    changes: watch::Sender<u64>,
    /// The plugins in force, with their objects (for a module's source).
    state: Mutex<State>,
}

impl Sets {
    /// The current set of `namespace` (an empty one if it has no plugins).
    pub fn current(&self, namespace: &str) -> Published {
        self.channel(namespace).borrow().clone()
    }

    /// A receiver that sees every new version of `namespace`'s set.
    pub fn subscribe(&self, namespace: &str) -> watch::Receiver<Published> {
        self.channel(namespace).subscribe()
    }

    /// Waits until the first list of ProxyPlugins has been applied.
    pub async fn synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// A receiver woken whenever any namespace's set changes.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Namespaces with a set, for the ConfigMap writer and the admin API.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    fn channel(&self, namespace: &str) -> watch::Sender<Published> {
        self.lock()
            .entry(namespace.to_owned())
            .or_insert_with(|| watch::Sender::new(empty(namespace)))
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Published>>> {
        self.namespaces.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `plugins` as `namespace`'s set if its version differs from the current one.
    fn publish(&self, namespace: &str, plugins: Vec<SetPlugin>) {
        let set = PluginSet::new(namespace.to_owned(), plugins);
        let changed = self.channel(namespace).send_if_modified(|current| {
            if current.set.version == set.version {
                return false;
            }
            tracing::info!(namespace, version = %set.version, plugins = set.plugins.len(), "plugin set changed");
            *current = Published::new(set);
            true
        });
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Keeps the sets current from a watch on `api` until `stop`.
    pub async fn run(self: Arc<Self>, api: Api<ProxyPlugin>, stop: CancellationToken) {
        let mut listing: Option<State> = None;
        let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
        tokio::pin!(events);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => match event {
                    Some(Ok(event)) => event,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "ProxyPlugin watch (retrying)");
                        continue;
                    }
                    None => return,
                },
            };
            match event {
                Event::Init => listing = Some(State::new()),
                Event::InitApply(p) => {
                    if let (Some(list), Some((ns, name, entry))) = (listing.as_mut(), entry(&p)) {
                        list.entry(ns)
                            .or_default()
                            .insert(name, (entry, Arc::new(p)));
                    }
                }
                Event::InitDone => {
                    let fresh = listing.take().unwrap_or_default();
                    let touched: Vec<String> = {
                        let mut state = self.lock_state();
                        let touched = state.keys().chain(fresh.keys()).cloned().collect();
                        *state = fresh;
                        touched
                    };
                    for ns in touched {
                        self.republish(&ns);
                    }
                    self.synced.send_replace(true);
                }
                Event::Apply(p) => {
                    let ns = p.namespace().unwrap_or_default();
                    {
                        let mut state = self.lock_state();
                        let plugins = state.entry(ns.clone()).or_default();
                        match entry(&p) {
                            Some((_, name, e)) => plugins.insert(name, (e, Arc::new(p))),
                            None => plugins.remove(&p.name_any()),
                        };
                    }
                    self.republish(&ns);
                }
                Event::Delete(p) => {
                    let ns = p.namespace().unwrap_or_default();
                    if let Some(plugins) = self.lock_state().get_mut(&ns) {
                        plugins.remove(&p.name_any());
                    }
                    self.republish(&ns);
                }
            }
        }
    }

    /// Publishes `namespace`'s set from the plugins in force.
    fn republish(&self, namespace: &str) {
        let plugins = self
            .lock_state()
            .get(namespace)
            .map(|p| p.values().map(|(e, _)| e.clone()).collect())
            .unwrap_or_default();
        self.publish(namespace, plugins);
    }

    /// The ProxyPlugin of `namespace` whose module in force is `digest`: where a replica that
    /// does not have the module gets it from.
    pub fn source(
        &self,
        namespace: &str,
        digest: &proxlet_crds::Digest,
    ) -> Option<Arc<ProxyPlugin>> {
        self.lock_state()
            .get(namespace)?
            .values()
            .find(|(e, _)| &e.module.digest == digest)
            .map(|(_, p)| Arc::clone(p))
    }

    /// The ProxyPlugin `namespace/name`, if it is in force.
    pub fn object(&self, namespace: &str, name: &str) -> Option<Arc<ProxyPlugin>> {
        self.lock_state()
            .get(namespace)?
            .get(name)
            .map(|(_, p)| Arc::clone(p))
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn empty(namespace: &str) -> Published {
    Published::new(PluginSet::new(namespace.to_owned(), Vec::new()))
}

/// The set entry of a ProxyPlugin in force: `Ready` `True` with a digest, not being deleted.
pub fn entry(p: &ProxyPlugin) -> Option<(String, String, SetPlugin)> {
    if p.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = p.status.as_ref()?;
    let ready = status
        .conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let digest = status.digest.clone().filter(|_| ready)?;
    let size = status.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0);
    let spec = &p.spec;
    let entry = SetPlugin {
        name: p.name_any(),
        generation: p.metadata.generation.unwrap_or(0),
        module: Module {
            digest,
            size,
            compiled: status.compiled.clone(),
        },
        root_id: spec.root_id.clone().unwrap_or_default(),
        config: spec.config.clone(),
        phase: spec.phase,
        priority: spec.priority.unwrap_or(0),
        failure_policy: spec.failure_policy.unwrap_or_default(),
        limits: spec.limits.clone().unwrap_or_default(),
        permissions: spec.permissions.clone().unwrap_or_default(),
        selector: spec.selector.clone(),
        match_rules: spec.match_rules.clone().unwrap_or_default(),
    };
    Some((p.namespace()?, entry.name.clone(), entry))
}
