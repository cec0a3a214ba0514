//! The `plugins:` and `clusters:` sections of the configuration file.

pub use proxlet_crds::{FailurePolicy, Limits, Permissions, Phase, PluginKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The contract's types are lenient about unknown keys (a newer operator may add some); the
/// sidecar's own file is not: a misspelt key is an error that names it.
trait Known {
    const FIELDS: &'static [&'static str];
}

impl Known for Limits {
    const FIELDS: &'static [&'static str] = Limits::FIELDS;
}

impl Known for Permissions {
    const FIELDS: &'static [&'static str] = Permissions::FIELDS;
}

fn strict<'de, D: Deserializer<'de>, T: DeserializeOwned + Known>(d: D) -> Result<T, D::Error> {
    let value = serde_yaml::Value::deserialize(d)?;
    if let serde_yaml::Value::Mapping(map) = &value {
        for key in map.keys() {
            let key = key.as_str().unwrap_or_default();
            if !T::FIELDS.contains(&key) {
                return Err(serde::de::Error::custom(format!(
                    "unknown field `{key}`, expected one of {}",
                    T::FIELDS.join(", ")
                )));
            }
        }
    }
    serde_yaml::from_value(value).map_err(serde::de::Error::custom)
}

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
    pub phase: Option<Phase>,
    /// Within a phase, higher runs first. Default 0.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// `hook_timeout` (default 20ms) and `memory` (default 64Mi), as in a ProxyPlugin.
    #[serde(default, deserialize_with = "strict")]
    pub limits: Limits,
    /// `http_calls`, `body`, `shared_data`: each off by default, as in a ProxyPlugin.
    #[serde(default, deserialize_with = "strict")]
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
            limits: Limits::default(),
            permissions: Permissions::default(),
            env: BTreeMap::new(),
        }
    }
}

/// What a plugin may not do, one phrase each (empty when it may do everything), for the line
/// logged when it loads.
pub fn denied<'a>(perms: &Permissions, clusters: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out = Vec::new();
    if !perms.body {
        out.push(
            "see or change bodies: its body callbacks are not called (permissions.body)".to_owned(),
        );
    }
    if !perms.shared_data {
        out.push("read or write shared data (permissions.shared_data)".to_owned());
    }
    let mut others: Vec<&str> = clusters
        .filter(|c| !perms.http_calls.iter().any(|h| h == c))
        .collect();
    others.sort_unstable();
    if perms.http_calls.is_empty() {
        out.push("call any cluster (permissions.http_calls)".to_owned());
    } else if !others.is_empty() {
        out.push(format!(
            "call the clusters {} (permissions.http_calls)",
            others.join(", ")
        ));
    }
    out
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
    fn what_a_plugin_may_not_do_is_said() {
        let default = denied(&Permissions::default(), ["auth"].into_iter());
        assert_eq!(default.len(), 3, "{default:?}");
        assert!(default[0].starts_with("see or change bodies"));
        assert!(default[1].starts_with("read or write shared data"));
        assert!(default[2].starts_with("call any cluster"));
        let some = Permissions {
            body: true,
            http_calls: vec!["auth".into()],
            shared_data: false,
        };
        assert_eq!(
            denied(&some, ["billing", "auth"].into_iter()),
            [
                "read or write shared data (permissions.shared_data)",
                "call the clusters billing (permissions.http_calls)"
            ]
        );
    }

    #[test]
    fn limits_and_permissions_refuse_unknown_keys_and_take_both_spellings() {
        let entry = |extra: &str| {
            serde_yaml::from_str::<PluginEntry>(&format!("name: a\npath: a.wasm\n{extra}"))
        };
        let e = entry("limits: {hook_timeout: 50ms, memory: 8Mi}\npermissions: {shared_data: true, httpCalls: [x]}")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            e.limits.hook_timeout(),
            Ok(std::time::Duration::from_millis(50))
        );
        assert_eq!(e.limits.memory_bytes(), Ok(8 << 20));
        assert!(e.permissions.shared_data && e.permissions.http_calls == ["x"]);
        let typo = entry("permissions: {bodyy: true}")
            .err()
            .map(|e| e.to_string());
        assert!(
            typo.as_deref()
                .is_some_and(|t| t.contains("unknown field `bodyy`")),
            "{typo:?}"
        );
        let typo = entry("limits: {memroy: 1Mi}").err().map(|e| e.to_string());
        assert!(
            typo.as_deref()
                .is_some_and(|t| t.contains("unknown field `memroy`")),
            "{typo:?}"
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
