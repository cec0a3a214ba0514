//! The resolved plugin set of one namespace: what the operator serves to the sidecars there and
//! writes into the ConfigMap they mount, and the report each sidecar sends back (an ACK or NACK
//! per plugin, as in xDS). Also the plugin-set server's paths, so both sides name them once.
//!
//! A set's `version` is a digest of its content: every operator replica computes the same
//! version for the same ProxyPlugins, so a sidecar that moves to another replica sees no change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::plugin::{FailurePolicy, Limits, MatchRule, Permissions, Phase};
use crate::selector;

/// The ConfigMap the operator writes in every namespace with ProxyPlugins, and injected sidecars
/// mount.
pub const CONFIG_MAP: &str = "proxlet-plugins";
/// Its key holding the set as JSON.
pub const CONFIG_MAP_KEY: &str = "plugin-set.json";
/// The audience of the service-account tokens sidecars present to the operator.
pub const TOKEN_AUDIENCE: &str = "proxlet";

/// The plugins of one namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    pub namespace: String,
    /// A digest of the rest of the set (16 hex digits).
    pub version: String,
    /// By name.
    pub plugins: Vec<SetPlugin>,
}

/// One plugin as a sidecar runs it: the module's digest and every setting of its ProxyPlugin.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SetPlugin {
    /// The ProxyPlugin's name.
    pub name: String,
    /// The ProxyPlugin's `metadata.generation` this entry was made from.
    pub generation: i64,
    pub module: Module,
    /// The root id the module's root context is created with (empty by default, as in Envoy).
    #[serde(default)]
    pub root_id: String,
    /// Handed to `proxy_on_configure`: a string as is, anything else as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub priority: i32,
    pub failure_policy: FailurePolicy,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub permissions: Permissions,
    /// The pods whose sidecars run it; unset selects every sidecar of the namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Which of a sidecar's traffic it sees; empty: all of it.
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub match_rules: Vec<MatchRule>,
}

/// A module in the operator's cache.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    pub digest: Digest,
    pub size: u64,
    /// The module compiled by the operator, for sidecars whose engine has the same fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled: Option<Compiled>,
}

/// A compiled artifact of a module.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Compiled {
    /// The engine it was compiled for: wasmtime's version and settings.
    pub engine: String,
    pub digest: Digest,
    pub size: u64,
}

impl PluginSet {
    /// The set of `namespace` holding `plugins` (sorted by name here), with its version.
    pub fn new(namespace: String, mut plugins: Vec<SetPlugin>) -> Self {
        plugins.sort_by(|a, b| a.name.cmp(&b.name));
        let mut hash = Sha256::new();
        hash.update(namespace.as_bytes());
        hash.update([0]);
        // serde_json writes maps in key order, so equal sets serialize equally.
        hash.update(serde_json::to_vec(&plugins).unwrap_or_default());
        let version = hash.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            namespace,
            version,
            plugins,
        }
    }

    /// The plugins whose selector matches a pod with `labels`.
    pub fn selected<'a>(
        &'a self,
        labels: &'a BTreeMap<String, String>,
    ) -> impl Iterator<Item = &'a SetPlugin> + 'a {
        self.plugins
            .iter()
            .filter(|p| selector::matches(p.selector.as_ref(), labels))
    }

    /// Whether a module (by its digest) or a compiled artifact of it is referenced by the set.
    pub fn references(&self, digest: &Digest) -> bool {
        self.plugins.iter().any(|p| {
            &p.module.digest == digest
                || p.module
                    .compiled
                    .as_ref()
                    .is_some_and(|c| &c.digest == digest)
        })
    }
}

/// What one sidecar runs of its namespace's set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SidecarReport {
    /// The set version the report is about.
    pub version: String,
    /// The pod's labels, which decided what it selected.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// One entry per plugin of the set the sidecar selected.
    pub plugins: Vec<PluginReport>,
}

/// How one plugin went in one sidecar.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PluginReport {
    pub name: String,
    /// The module the entry of the set named.
    pub digest: Digest,
    pub state: LoadState,
    /// At which step it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<LoadFailure>,
    /// Why it failed, in the sidecar's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The step at which a sidecar could not load a plugin: the reason in the ProxyPlugin's
/// status and the label of the operator's NACK counter.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadFailure {
    /// The module could not be downloaded from the operator.
    FetchFailed,
    /// The bytes downloaded do not have the digest the set names.
    DigestMismatch,
    /// The module does not compile or link in this sidecar.
    CompileFailed,
    /// `_initialize`, `proxy_on_vm_start` or `proxy_on_configure` failed or trapped, or no root
    /// context started for the root id.
    StartFailed,
    /// The set's settings for it are not usable here (a limit, a cluster name).
    InvalidSettings,
}

impl LoadFailure {
    pub const ALL: [Self; 5] = [
        Self::FetchFailed,
        Self::DigestMismatch,
        Self::CompileFailed,
        Self::StartFailed,
        Self::InvalidSettings,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FetchFailed => "FetchFailed",
            Self::DigestMismatch => "DigestMismatch",
            Self::CompileFailed => "CompileFailed",
            Self::StartFailed => "StartFailed",
            Self::InvalidSettings => "InvalidSettings",
        }
    }
}

/// The outcome of loading one plugin.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadState {
    /// It runs (an ACK).
    Loaded,
    /// It could not be fetched, compiled, started or configured (a NACK); its failure policy
    /// decides what requests meet.
    Failed,
}

/// The plugin-set server's paths.
pub mod paths {
    use crate::digest::Digest;

    /// `GET`: the namespace's set, as a long poll: with `If-None-Match: "VERSION"` it answers
    /// `304` only after `?wait=` (default 30s) passes without a change.
    pub fn set(namespace: &str) -> String {
        format!("/v1/namespaces/{namespace}/pluginset")
    }

    /// `PUT`: a pod's [`SidecarReport`](super::SidecarReport).
    pub fn report(namespace: &str, pod: &str) -> String {
        format!("/v1/namespaces/{namespace}/reports/{pod}")
    }

    /// `GET`: a module's bytes.
    pub fn module(namespace: &str, digest: &Digest) -> String {
        format!("/v1/namespaces/{namespace}/modules/{digest}")
    }

    /// `GET`: a compiled artifact's bytes.
    pub fn compiled(namespace: &str, digest: &Digest) -> String {
        format!("/v1/namespaces/{namespace}/compiled/{digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(name: &str, module: &[u8]) -> SetPlugin {
        SetPlugin {
            name: name.into(),
            generation: 1,
            module: Module {
                digest: Digest::of(module),
                size: module.len() as u64,
                compiled: None,
            },
            root_id: String::new(),
            config: Some(serde_json::json!({"b": 1, "a": [1, 2]})),
            phase: None,
            priority: 0,
            failure_policy: FailurePolicy::FailClosed,
            limits: Limits::default(),
            permissions: Permissions::default(),
            selector: None,
            match_rules: Vec::new(),
        }
    }

    #[test]
    fn the_version_follows_the_content_not_the_order() {
        let a = PluginSet::new("shop".into(), vec![plugin("x", b"1"), plugin("y", b"2")]);
        let b = PluginSet::new("shop".into(), vec![plugin("y", b"2"), plugin("x", b"1")]);
        assert_eq!(a, b);
        assert_eq!(a.version.len(), 16);
        let c = PluginSet::new("shop".into(), vec![plugin("x", b"1"), plugin("y", b"3")]);
        assert_ne!(a.version, c.version);
        let d = PluginSet::new("cart".into(), vec![plugin("x", b"1"), plugin("y", b"2")]);
        assert_ne!(a.version, d.version);
        let round_trip: PluginSet =
            serde_json::from_slice(&serde_json::to_vec(&a).unwrap_or_default())
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(round_trip, a);
    }

    #[test]
    fn references_cover_modules_and_their_artifacts() {
        let mut p = plugin("x", b"1");
        p.module.compiled = Some(Compiled {
            engine: "e".into(),
            digest: Digest::of(b"compiled"),
            size: 8,
        });
        let set = PluginSet::new("shop".into(), vec![p]);
        assert!(set.references(&Digest::of(b"1")));
        assert!(set.references(&Digest::of(b"compiled")));
        assert!(!set.references(&Digest::of(b"2")));
    }
}
