//! The server's state behind one lock: the store, the registry of resource types, the tokens;
//! and the settings fixed at start (the admin token, the forbid rules).
//!
//! The lock is a std mutex, held only by synchronous handler code and never across an await.

use std::sync::{Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::auth::{ForbidRule, Tokens};
use crate::meta;
use crate::resources::Registry;
use crate::store::Store;

/// Settings fixed at start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub admin_token: String,
    pub forbid: Vec<ForbidRule>,
    /// How many changes watches can replay from.
    pub history: usize,
    /// `host:port` the server answers on (for `/api`'s `serverAddressByClientCIDRs`).
    pub address: String,
}

pub struct State {
    pub store: Store,
    pub registry: Registry,
    pub tokens: Tokens,
}

pub struct App {
    pub settings: Settings,
    state: Mutex<State>,
}

impl App {
    /// A server with the namespaces every cluster has, each with its `default` service account.
    pub fn new(settings: Settings) -> Self {
        let mut state = State {
            store: Store::new(settings.history),
            registry: Registry::new(),
            tokens: Tokens::new(settings.admin_token.clone()),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            state.store.put("namespaces", namespace(ns));
            add_default_service_account(&mut state, ns);
        }
        App {
            settings,
            state: Mutex::new(state),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked leaves consistent JSON behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn namespace(name: &str) -> Value {
    let mut ns = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    });
    meta::init_create(&mut ns, None, name, false);
    ns
}

/// What the service-account controller does for every new namespace.
pub fn add_default_service_account(state: &mut State, ns: &str) {
    if state.store.get("serviceaccounts", ns, "default").is_some() {
        return;
    }
    let mut sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {}});
    meta::init_create(&mut sa, Some(ns), "default", false);
    state.store.put("serviceaccounts", sa);
}
