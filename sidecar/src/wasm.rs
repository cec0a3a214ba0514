//! The Proxy-Wasm host: plugins built with the official SDKs run in the request path, each in
//! a sandbox (its own linear memory with a cap, a time cap per callback, WASI without files,
//! sockets or inherited environment, and per-plugin permissions).
//!
//! [`Host`] owns what lives as long as the process: the engine and compiled-module cache (made
//! when the first plugin loads: a sidecar without plugins pays nothing for them), the plugin
//! metric families, the services plugins share. [`Host::load`] turns a configured
//! plugin into a [`plugin::Plugin`]; `reload` orders them into a [`chain::Chain`]. Nothing here depends on the listener: the proxy
//! drives a chain through [`chain::ChainStream`].

mod abi;
pub mod body_pass;
mod calls;
pub mod chain;
pub mod engine;
mod host;
pub mod instance;
pub mod logs;
pub mod metrics;
pub mod plugin;
pub mod services;
pub mod stream;
pub mod ticker;
mod wasi;

/// The header-map ("pairs") codec, public only for the micro-benchmarks
/// (`benches/header_map.rs`); not an API.
#[doc(hidden)]
pub use self::abi::pairs;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use self::engine::{Engine, LoadError};
use self::instance::HookError;
use self::logs::Level;
use self::logs::LogRing;
use self::metrics::{CustomMetrics, Tags, WasmMetrics};
use self::plugin::{Plugin, PluginShared, Settings};
use self::services::{Cluster, Services};
use crate::config::Config;
use crate::config::plugins::{Limits, PluginEntry, config_bytes};

/// Lines kept per plugin for `GET /api/plugins/{name}/logs`.
const LOG_LINES: usize = 512;

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin {name}: cannot read {path}: {source}")]
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plugin {name}: {source}")]
    Load { name: String, source: LoadError },
    #[error("plugin {name}: {source}")]
    Start { name: String, source: HookError },
    #[error("a plugin's load panicked")]
    Panicked,
}

pub struct Host {
    engine: OnceLock<Engine>,
    cache_dir: Option<PathBuf>,
    metrics: Arc<WasmMetrics>,
    services: Arc<Services>,
    pool_size: usize,
    body_cap: usize,
}

impl Host {
    pub fn new(cfg: &Config, registry: &prometheus::Registry) -> Result<Self, PluginError> {
        let tags = Tags::new(&cfg.plugin_metrics.tags);
        let metrics =
            Arc::new(
                WasmMetrics::with_tags(registry, tags).map_err(|e| PluginError::Load {
                    name: "(metrics)".into(),
                    source: LoadError::Engine(e.to_string()),
                })?,
            );
        let services = Arc::new(Services {
            clusters: cfg
                .clusters
                .iter()
                .map(|(name, c)| (name.clone(), Cluster { address: c.address }))
                .collect(),
            ..Services::default()
        });
        Ok(Self {
            engine: OnceLock::new(),
            cache_dir: cfg.module_cache_dir.clone(),
            metrics,
            services,
            pool_size: cfg.workers.get(),
            body_cap: cfg.limits.max_buffered_body_bytes,
        })
    }

    /// Most body bytes one plugin may hold while it pauses on a body.
    pub fn body_cap(&self) -> usize {
        self.body_cap
    }

    /// The engine, made on first use.
    fn engine(&self) -> Result<&Engine, LoadError> {
        if let Some(engine) = self.engine.get() {
            return Ok(engine);
        }
        // Two first loads at once may both make one; the second is dropped.
        let _ = self.engine.set(Engine::new(self.cache_dir.clone())?);
        self.engine
            .get()
            .ok_or_else(|| LoadError::Engine("not initialized".into()))
    }

    /// Reads, compiles (or finds compiled), validates and starts one plugin.
    pub fn load(&self, e: &PluginEntry) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(&e.path).map_err(|source| PluginError::Read {
            name: e.name.clone(),
            path: e.path.clone(),
            source,
        })?;
        let loaded = self
            .engine()
            .and_then(|engine| engine.load(&bytes))
            .map_err(|source| PluginError::Load {
                name: e.name.clone(),
                source,
            })?;
        let shared = PluginShared {
            name: e.name.clone(),
            root_id: e.root_id.clone().unwrap_or_default(),
            vm_id: e.vm_id.clone().unwrap_or_else(|| e.name.clone()),
            config: Bytes::from(config_bytes(e.config.as_ref())),
            vm_config: Bytes::from(config_bytes(e.vm_config.as_ref())),
            permissions: e.permissions.clone(),
            env: e.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            logs: LogRing::new(LOG_LINES),
            metrics: self
                .metrics
                .plugin(&e.name, &loaded.digest, loaded.abi.label()),
            custom_metrics: CustomMetrics::new(&e.name, self.metrics.clone()),
            services: self.services.clone(),
            ticker: loaded.ticker.clone(),
            last_error: std::sync::Mutex::new(None),
        };
        let denied = crate::config::plugins::denied(
            &e.permissions,
            self.services.clusters.keys().map(String::as_str),
        );
        if !denied.is_empty() {
            shared.log(
                Level::Warn,
                format!("{} may not: {}", e.name, denied.join("; ")),
            );
        }
        tracing::info!(
            plugin = %e.name,
            digest = %loaded.digest,
            compile = loaded.compiled.from.label(),
            took_ms = loaded.compiled.took.as_secs_f64() * 1000.0,
            "plugin module loaded"
        );
        let settings = Settings {
            source: e.path.display().to_string(),
            kind: e.kind,
            phase: e.phase,
            priority: e.priority,
            failure_policy: e.failure_policy,
            // Both were checked when the configuration was read.
            hook_timeout: e
                .limits
                .hook_timeout()
                .unwrap_or(Limits::DEFAULT_HOOK_TIMEOUT),
            max_memory: usize::try_from(e.limits.memory_bytes().unwrap_or(Limits::DEFAULT_MEMORY))
                .unwrap_or(usize::MAX),
            pool_size: self.pool_size,
        };
        Plugin::new(shared, settings, loaded, &self.metrics).map_err(|source| PluginError::Start {
            name: e.name.clone(),
            source,
        })
    }
}
