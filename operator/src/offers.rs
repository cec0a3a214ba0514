//! The modules the operator offers to sidecars: for each namespace, each ready `ProxyPlugin`
//! and the digest in force. The reconciler adds an entry when a plugin becomes ready and the
//! finalizer removes it before the resource goes; the plugin-set server reads it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use proxlet_crds::Digest;
use serde::Serialize;

/// One offered plugin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Offer {
    pub digest: Digest,
    pub generation: Option<i64>,
}

/// namespace → name → offer.
#[derive(Debug, Default)]
pub struct Offers(RwLock<BTreeMap<String, BTreeMap<String, Offer>>>);

impl Offers {
    pub fn set(&self, namespace: &str, name: &str, offer: Offer) {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        map.entry(namespace.to_owned())
            .or_default()
            .insert(name.to_owned(), offer);
    }

    /// Withdraws a plugin; true when it was offered.
    pub fn remove(&self, namespace: &str, name: &str) -> bool {
        let mut map = self.0.write().unwrap_or_else(|p| p.into_inner());
        let Some(ns) = map.get_mut(namespace) else {
            return false;
        };
        let removed = ns.remove(name).is_some();
        if ns.is_empty() {
            map.remove(namespace);
        }
        removed
    }

    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<String, Offer>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
