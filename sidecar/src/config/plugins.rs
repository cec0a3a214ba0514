//! The `plugins:` and `clusters:` sections of the configuration file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One plugin in the chain.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginEntry {
    /// Unique in the chain; names the plugin in metrics, logs and the admin API.
    pub name: String,
    /// The `.wasm` module.
    pub path: PathBuf,
    /// The root context the module should run (Envoy `root_id`). Default: the name.
    #[serde(default)]
    pub root_id: Option<String>,
    /// Handed to `proxy_on_configure`: a string as is, anything else as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// Handed to `proxy_on_vm_start`, likewise.
    #[serde(default)]
    pub vm_config: Option<serde_json::Value>,
    /// Ordering: AUTHN, then AUTHZ, then STATS, then plugins without a phase.
    #[serde(default)]
    pub phase: Option<PluginPhase>,
    /// Within a phase, higher runs first. Default 0.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    #[serde(default)]
    pub limits: PluginLimits,
    #[serde(default)]
    pub permissions: Permissions,
    /// Environment variables the plugin sees through WASI (nothing else is inherited).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

impl PluginEntry {
    /// A plugin from a module file with every setting at its default.
    pub fn from_path(name: String, path: PathBuf) -> Self {
        Self {
            name,
            path,
            root_id: None,
            config: None,
            vm_config: None,
            phase: None,
            priority: 0,
            failure_policy: FailurePolicy::default(),
            limits: PluginLimits::default(),
            permissions: Permissions::default(),
            env: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum PluginPhase {
    #[serde(rename = "AUTHN")]
    Authn,
    #[serde(rename = "AUTHZ")]
    Authz,
    #[serde(rename = "STATS")]
    Stats,
}

/// What happens to a request when its plugin cannot run (trap, time cap, failed start).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum FailurePolicy {
    /// Answer the request with a 503 (`proxlet-error: plugin-failed`).
    #[default]
    FailClosed,
    /// Skip the plugin for this request and count the skip.
    FailOpen,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginLimits {
    /// Longest a single callback may run. Default 20ms.
    #[serde(with = "humantime_serde")]
    pub hook_timeout: Duration,
    /// Linear memory cap per instance, as a Kubernetes quantity (`64Mi`). Default 64Mi.
    pub memory: String,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            hook_timeout: Duration::from_millis(20),
            memory: "64Mi".into(),
        }
    }
}

/// Capabilities beyond reading and changing headers.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Permissions {
    /// Clusters the plugin may call with `proxy_http_call`. Default none.
    pub http_calls: Vec<String>,
    /// Body callbacks and body buffers. Default false: bodies stream past the plugin.
    pub body: bool,
    /// Shared data and shared queues. Default true.
    pub shared_data: bool,
}

impl Default for Permissions {
    fn default() -> Self {
        Self {
            http_calls: Vec::new(),
            body: false,
            shared_data: true,
        }
    }
}

/// An upstream plugins may call by name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEntry {
    pub address: SocketAddr,
}

/// Parses a Kubernetes-style quantity of bytes: `64Mi`, `1Gi`, `512Ki`, `1000000`, `10M`.
pub fn parse_bytes(q: &str) -> Option<usize> {
    let q = q.trim();
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: usize = n.parse().ok()?;
    let mult: usize = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The bytes a config value hands to the plugin: a string as is, anything else as JSON.
pub fn config_bytes(v: Option<&serde_json::Value>) -> Vec<u8> {
    match v {
        None => Vec::new(),
        Some(serde_json::Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_bytes("64Mi"), Some(64 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("2G"), Some(2_000_000_000));
        assert_eq!(parse_bytes("64MB"), None);
        assert_eq!(parse_bytes("Mi"), None);
    }

    #[test]
    fn config_is_a_string_or_json() {
        assert_eq!(config_bytes(Some(&serde_json::json!("plain"))), b"plain");
        assert_eq!(
            config_bytes(Some(&serde_json::json!({"a": 1}))),
            br#"{"a":1}"#
        );
        assert!(config_bytes(None).is_empty());
    }
}
