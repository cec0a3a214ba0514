//! Proxy-Wasm plugins in tests: where the built modules are, a plugin entry for the sidecar's
//! `plugins:` list, and what the admin API says about the plugins of a running sidecar.
//!
//! The modules are built by `cargo xtask plugins` into
//! `plugins/target/wasm32-wasip1/release/<name>.wasm`, those written with the AssemblyScript SDK
//! into `plugins/sdk/<sdk>/build/plugin.wasm` and the Go ones into
//! `plugins/sdk/go/build/go_<name>.wasm`; the tests do not build them.

mod admin;

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use serde_yaml::Value;

pub use self::admin::{Counters, LogLine, PluginStatus, logs, plugin, plugins, wait_for_log};
use crate::support::sidecar::ConfigTree;

/// The built module of plugin `name` (`header-modifier` or `header_modifier`), or an error
/// saying how to build it.
pub fn wasm(name: &str) -> Result<PathBuf> {
    built(
        Path::new("plugins/target/wasm32-wasip1/release")
            .join(format!("{}.wasm", name.replace('-', "_"))),
    )
}

/// The built module of the plugin written with another SDK (`assemblyscript`: the directory
/// under `plugins/sdk/`), or an error saying how to build it.
pub fn sdk_wasm(sdk: &str) -> Result<PathBuf> {
    built(Path::new("plugins/sdk").join(sdk).join("build/plugin.wasm"))
}

/// The built Go SDK plugin `name` (`headers`, `ticker`, `receiver`: a directory of
/// `plugins/sdk/go`), or an error saying how to build it.
pub fn go_wasm(name: &str) -> Result<PathBuf> {
    built(Path::new("plugins/sdk/go/build").join(format!("go_{name}.wasm")))
}

/// `relative` (from the repository root) if the module is there.
fn built(relative: PathBuf) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(".."));
    let path = root.join(relative);
    ensure!(
        path.is_file(),
        "plugin module {} not found: run `cargo xtask plugins`",
        path.display()
    );
    Ok(path)
}

/// One entry of the sidecar's `plugins:` list, built by dotted paths like the configuration.
#[derive(Clone, Debug)]
pub struct Plugin {
    entry: ConfigTree,
}

impl Plugin {
    /// The built example or fixture `module` (see [`wasm`]), named after it.
    pub fn new(module: &str) -> Result<Self> {
        Ok(Self::at(module, &wasm(module)?))
    }

    /// A plugin called `name` running the module at `path`.
    pub fn at(name: &str, path: &Path) -> Self {
        let mut entry = ConfigTree::default();
        entry.set("name", name.into());
        entry.set("path", path.display().to_string().into());
        Self { entry }
    }

    /// Sets a field of the entry by dotted path, e.g. `set("limits.memory", "16Mi")`.
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Self {
        self.entry.set(path, value.into());
        self
    }

    /// Renames the plugin (two plugins running the same module need two names).
    pub fn name(self, name: &str) -> Self {
        self.set("name", name)
    }

    /// The configuration handed to `proxy_on_configure`.
    pub fn config(self, config: serde_json::Value) -> Self {
        // A JSON value always has a YAML form; `Null` only if that ever changed.
        let value = serde_yaml::to_value(config).unwrap_or(Value::Null);
        self.set("config", value)
    }

    /// `failure_policy: FailOpen`.
    pub fn fail_open(self) -> Self {
        self.set("failure_policy", "FailOpen")
    }

    /// `kind: background`: one instance outside the request path.
    pub fn background(self) -> Self {
        self.set("kind", "background")
    }

    /// `vm_id`: plugins with the same one share shared data and queues.
    pub fn vm_id(self, vm: &str) -> Self {
        self.set("vm_id", vm)
    }

    /// `permissions.body: true`: the plugin's body callbacks run.
    pub fn body(self) -> Self {
        self.set("permissions.body", true)
    }

    /// `permissions.shared_data: true`: shared data and shared queues.
    pub fn shared_data(self) -> Self {
        self.set("permissions.shared_data", true)
    }

    /// `permissions.http_calls`: the clusters the plugin may call.
    pub fn http_calls(self, clusters: &[&str]) -> Self {
        let list = clusters.iter().map(|c| Value::from(*c)).collect();
        self.set("permissions.http_calls", Value::Sequence(list))
    }

    /// Adds `name=value` to the WASI environment the plugin sees.
    pub fn env(self, name: &str, value: &str) -> Self {
        self.set(&format!("env.{name}"), value)
    }

    /// The entry as YAML.
    pub fn to_value(&self) -> Value {
        self.entry.to_value()
    }
}
