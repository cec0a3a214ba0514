//! The object store: every object by storage key, namespace and name; the single global
//! `resourceVersion` counter; and the bounded history of changes that watches replay from.
//!
//! The store knows nothing of HTTP or of resource types: it keeps JSON objects and tells
//! subscribers what changed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "ADDED",
            ChangeKind::Modified => "MODIFIED",
            ChangeKind::Deleted => "DELETED",
        }
    }
}

/// One committed change, as watches see it.
#[derive(Debug)]
pub struct Change {
    pub rv: u64,
    pub storage: String,
    pub kind: ChangeKind,
    pub object: Arc<Value>,
    /// The object before the change (for selector transitions).
    pub previous: Option<Arc<Value>>,
}

/// The history a watch starts from.
pub enum Replay {
    /// The changes after the requested version, oldest first.
    Changes(Vec<Arc<Change>>),
    /// The requested version is older than the history kept.
    Expired { oldest: u64 },
}

#[derive(Debug)]
pub struct Store {
    rv: u64,
    objects: HashMap<String, BTreeMap<ObjectKey, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    history_cap: usize,
    /// The highest version no longer in the history.
    compacted: u64,
    tx: broadcast::Sender<Arc<Change>>,
}

impl Store {
    pub fn new(history_cap: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Store {
            rv: 1,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_cap: history_cap.max(1),
            compacted: 1,
            tx,
        }
    }

    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, storage: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(storage)?
            .get(&(ns.to_string(), name.to_string()))
            .cloned()
    }

    /// Objects of one storage key, in one namespace or all, ordered by namespace and name.
    pub fn list(&self, storage: &str, ns: Option<&str>) -> Vec<Arc<Value>> {
        let Some(objects) = self.objects.get(storage) else {
            return Vec::new();
        };
        objects
            .iter()
            .filter(|((o_ns, _), _)| ns.is_none_or(|n| n == o_ns))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Storage keys that hold objects in `ns`.
    pub fn keys_in_namespace(&self, ns: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (storage, objects) in &self.objects {
            for (o_ns, name) in objects.keys() {
                if o_ns == ns {
                    out.push((storage.clone(), name.clone()));
                }
            }
        }
        out
    }

    /// Stores `object` under a new resourceVersion and tells watchers. Returns the stored object.
    pub fn put(&mut self, storage: &str, mut object: Value) -> Arc<Value> {
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let key = key_of(&object);
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(storage.to_string())
            .or_default()
            .insert(key, object.clone());
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(storage, kind, object.clone(), previous);
        object
    }

    /// Removes an object; the DELETED event carries it with a new resourceVersion.
    pub fn remove(&mut self, storage: &str, ns: &str, name: &str) -> Option<Arc<Value>> {
        let previous = self
            .objects
            .get_mut(storage)?
            .remove(&(ns.to_string(), name.to_string()))?;
        self.rv += 1;
        let mut last = (*previous).clone();
        last["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let last = Arc::new(last);
        self.record(storage, ChangeKind::Deleted, last.clone(), Some(previous));
        Some(last)
    }

    /// Forgets every object of a storage key (a CRD going away), telling watchers.
    pub fn remove_all(&mut self, storage: &str) {
        let keys: Vec<ObjectKey> = self
            .objects
            .get(storage)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (ns, name) in keys {
            self.remove(storage, &ns, &name);
        }
        self.objects.remove(storage);
    }

    fn record(
        &mut self,
        storage: &str,
        kind: ChangeKind,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let change = Arc::new(Change {
            rv: self.rv,
            storage: storage.to_string(),
            kind,
            object,
            previous,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_cap {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted = dropped.rv;
            }
        }
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(change);
    }

    /// The changes after `rv`, or `Expired` when some of them are no longer kept.
    pub fn replay(&self, rv: u64) -> Replay {
        if rv < self.compacted {
            return Replay::Expired {
                oldest: self.compacted,
            };
        }
        Replay::Changes(self.history.iter().filter(|c| c.rv > rv).cloned().collect())
    }

    /// The oldest version a list or watch can still be served from.
    pub fn oldest_rv(&self) -> u64 {
        self.compacted
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.tx.subscribe()
    }
}

fn key_of(object: &Value) -> ObjectKey {
    let meta = &object["metadata"];
    (
        meta["namespace"].as_str().unwrap_or_default().to_string(),
        meta["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str) -> Value {
        json!({"metadata": {"name": name, "namespace": "default"}})
    }

    #[test]
    fn versions_grow_and_history_expires() {
        let mut s = Store::new(2);
        let a = s.put("configmaps", obj("a"));
        assert_eq!(a["metadata"]["resourceVersion"], "2");
        s.put("configmaps", obj("b"));
        s.put("configmaps", obj("c"));
        assert!(matches!(s.replay(1), Replay::Expired { oldest: 2 }));
        match s.replay(2) {
            Replay::Changes(c) => assert_eq!(c.len(), 2),
            Replay::Expired { .. } => panic!("rv 2 is still kept"),
        }
        let gone = s.remove("configmaps", "default", "a");
        assert_eq!(
            gone.map(|g| g["metadata"]["resourceVersion"].clone()),
            Some(json!("5"))
        );
        assert_eq!(s.list("configmaps", Some("default")).len(), 2);
    }
}
