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
    /// The root context the module should run (Envoy `root_id`). Default: empty, as in Envoy.
    #[serde(default)]
    pub root_id: Option<String>,
    /// Plugins with the same vm id share shared data and shared queues. Default: the name.
    #[serde(default)]
    pub vm_id: Option<String>,
    /// `request` (in the chain) or `background` (one instance outside the request path).
    #[serde(default)]
    pub kind: PluginKind,
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
            vm_id: None,
            kind: PluginKind::default(),
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

/// Where a plugin runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// In the request path: its HTTP contexts see every request (the default).
    #[default]
    Request,
    /// Outside the request path (Envoy's singleton service): one instance, its root context
    /// only, for timers, queues, outbound calls and shared data.
    Background,
}

impl PluginKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Background => "background",
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

impl Permissions {
    /// What the plugin may not do, one phrase each (empty when it may do everything), for the
    /// line logged when it loads.
    pub fn denied<'a>(&self, clusters: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut out = Vec::new();
        if !self.body {
            out.push(
                "see or change bodies: its body callbacks are not called (permissions.body)"
                    .to_owned(),
            );
        }
        if !self.shared_data {
            out.push("read or write shared data (permissions.shared_data)".to_owned());
        }
        let mut others: Vec<&str> = clusters
            .filter(|c| !self.http_calls.iter().any(|h| h == c))
            .collect();
        others.sort_unstable();
        if self.http_calls.is_empty() {
            out.push("call any cluster (permissions.http_calls)".to_owned());
        } else if !others.is_empty() {
            out.push(format!(
                "call the clusters {} (permissions.http_calls)",
                others.join(", ")
            ));
        }
        out
    }
}

/// Envoy-style tag extraction for plugin-defined metric names (Envoy's `stats_tags`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginMetrics {
    /// Applied in order to each name a plugin defines. Default none: names are kept whole.
    pub tags: Vec<TagRule>,
}

/// One tag: the regex's first capture group is cut out of the metric name, its second (or,
/// without one, its first) is the value of the label `name`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRule {
    pub name: String,
    pub regex: String,
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
    fn what_a_plugin_may_not_do_is_said() {
        let default = Permissions::default().denied(["auth"].into_iter());
        assert_eq!(default.len(), 2, "{default:?}");
        assert!(default[0].starts_with("see or change bodies"));
        assert!(default[1].starts_with("call any cluster"));
        let some = Permissions {
            body: true,
            http_calls: vec!["auth".into()],
            shared_data: false,
        };
        assert_eq!(
            some.denied(["billing", "auth"].into_iter()),
            [
                "read or write shared data (permissions.shared_data)",
                "call the clusters billing (permissions.http_calls)"
            ]
        );
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
