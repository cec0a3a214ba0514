//! The Proxy-Wasm ABI (0.2.0 and 0.2.1) as host functions: one submodule per family, each
//! registering its functions into the [`Linker`].
//!
//! Host functions never panic and never trust guest pointers. A plugin's mistake (a bad pointer,
//! an unknown map type, a call outside its permissions) gets a [`Status`] back; only a broken
//! allocator or a WASI `proc_exit` traps the instance. Which statuses each function may return
//! follows what the Rust SDK accepts without panicking (see docs/plugins.md).

mod buffers;
mod calls;
mod context;
mod log;
mod maps;
pub mod memory;
mod metrics;
pub mod pairs;
mod properties;
mod shared;
mod stream;
mod time;

use wasmtime::Linker;

use super::host::HostState;

/// `proxy_status_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

/// What every host function returns to wasmtime: a status, or a trap.
pub type HostResult = wasmtime::Result<i32>;

impl From<Status> for HostResult {
    fn from(s: Status) -> Self {
        Ok(s as i32)
    }
}

/// Turns a `Result<(), Status>` into the status the guest sees.
pub fn status(r: Result<(), Status>) -> HostResult {
    Ok(match r {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    })
}

/// Every `env.proxy_*` function the host provides.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    log::add(linker)?;
    time::add(linker)?;
    context::add(linker)?;
    buffers::add(linker)?;
    maps::add(linker)?;
    properties::add(linker)?;
    stream::add(linker)?;
    calls::add(linker)?;
    shared::add(linker)?;
    metrics::add(linker)?;
    Ok(())
}

/// Starting a `.wat` module as one plugin instance, for the host functions' unit tests.
#[cfg(test)]
pub mod testing {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use crate::config::plugins::Permissions;
    use crate::wasm::engine::{Engine, Loaded};
    use crate::wasm::instance::{HookError, Instance};
    use crate::wasm::logs::LogRing;
    use crate::wasm::metrics::{CustomMetrics, WasmMetrics};
    use crate::wasm::plugin::PluginShared;
    use crate::wasm::services::Services;

    /// A started instance of `wat` (named `fixture`), or why it did not start; and the plugin's
    /// shared state, with its log and metrics.
    pub struct Started {
        pub plugin: Arc<PluginShared>,
        pub registry: prometheus::Registry,
        pub instance: Result<Instance, HookError>,
    }

    /// Loads `wat` (failing if the host cannot link it) and starts an instance of it.
    pub fn start(wat: &str) -> Result<Started, String> {
        let engine = Engine::new(None).map_err(|e| e.to_string())?;
        let loaded = engine.load(wat.as_bytes()).map_err(|e| e.to_string())?;
        let registry = prometheus::Registry::new();
        let metrics = Arc::new(WasmMetrics::new(&registry).map_err(|e| e.to_string())?);
        let plugin = Arc::new(shared(&loaded, &metrics, Permissions::default()));
        let instance = Instance::start(
            &plugin,
            &loaded.pre,
            Duration::from_millis(50),
            1 << 20,
            Arc::new(|_| {}),
        );
        Ok(Started {
            plugin,
            registry,
            instance,
        })
    }

    /// The shared state of a test plugin named `fixture` running `loaded`.
    pub fn shared(
        loaded: &Loaded,
        metrics: &Arc<WasmMetrics>,
        permissions: Permissions,
    ) -> PluginShared {
        PluginShared {
            name: "fixture".into(),
            root_id: "fixture".into(),
            vm_id: "fixture".into(),
            config: Bytes::new(),
            vm_config: Bytes::new(),
            permissions,
            env: Vec::new(),
            logs: LogRing::new(64),
            metrics: metrics.plugin("fixture", &loaded.digest, loaded.abi.label()),
            custom_metrics: CustomMetrics::new("fixture", metrics.clone()),
            services: Arc::new(Services::default()),
            ticker: loaded.ticker.clone(),
            last_error: std::sync::Mutex::new(None),
        }
    }

    /// The plugin's log messages, oldest first.
    pub fn log(plugin: &PluginShared) -> Vec<String> {
        plugin
            .logs
            .snapshot()
            .into_iter()
            .map(|l| l.message)
            .collect()
    }
}
