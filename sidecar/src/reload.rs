//! Plugin reloads: `POST /api/plugins/{name}/reload`, and a changed configuration file.
//!
//! A reload builds the new chain beside the old one (reusing every plugin whose settings and
//! module are unchanged) and swaps it in atomically. Requests in flight finish on the chain
//! they started with, which is dropped with its instances once they are done. A reload that
//! fails leaves the running chain in place and says why.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::config::plugins::PluginEntry;
use crate::config::{Cli, Config};
use crate::proxy::Proxy;
use crate::wasm::chain::Chain;
use crate::wasm::plugin::Plugin;
use crate::wasm::{Host, PluginError};

/// How often the configuration file is checked for changes.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no plugin named {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
}

pub struct Reloader {
    host: Arc<Host>,
    proxy: Arc<Proxy>,
    loaded: Mutex<Vec<(PluginEntry, Arc<Plugin>)>>,
}

fn file_digest(path: &std::path::Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| hex::encode(Sha256::digest(&b)))
}

impl Reloader {
    /// Loads the configured plugins and installs their chain.
    pub fn start(
        host: Arc<Host>,
        proxy: Arc<Proxy>,
        entries: &[PluginEntry],
    ) -> Result<Arc<Self>, ReloadError> {
        let me = Arc::new(Self {
            host,
            proxy,
            loaded: Mutex::new(Vec::new()),
        });
        me.apply(entries, None)?;
        Ok(me)
    }

    /// Reloads one plugin from its module file, even if nothing changed.
    pub fn reload(&self, name: &str) -> Result<Duration, ReloadError> {
        let entries: Vec<PluginEntry> = self.lock().iter().map(|(e, _)| e.clone()).collect();
        if !entries.iter().any(|e| e.name == name) {
            return Err(ReloadError::Unknown(name.into()));
        }
        self.apply(&entries, Some(name))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PluginEntry, Arc<Plugin>)>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds the chain for `entries` and swaps it in; returns how long building and swapping
    /// took.
    fn apply(&self, entries: &[PluginEntry], force: Option<&str>) -> Result<Duration, ReloadError> {
        let started = Instant::now();
        let mut loaded = self.lock();
        let mut next = Vec::with_capacity(entries.len());
        for e in entries {
            let reuse = loaded.iter().find(|(old, p)| {
                old == e
                    && force != Some(e.name.as_str())
                    && file_digest(&e.path).as_deref() == Some(p.digest.as_str())
            });
            let plugin = match reuse {
                Some((_, p)) => p.clone(),
                None => match self.host.load(e) {
                    Ok(p) => p,
                    Err(err)
                        if e.failure_policy == crate::config::plugins::FailurePolicy::FailOpen =>
                    {
                        tracing::error!(error = %err, "FailOpen plugin left out of the chain");
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                },
            };
            next.push((e.clone(), plugin));
        }
        let chain = Chain::new(
            next.iter().map(|(_, p)| p.clone()).collect(),
            self.host.body_cap(),
        );
        self.proxy.set_chain(Some(Arc::new(chain)));
        *loaded = next;
        let took = started.elapsed();
        tracing::info!(
            plugins = loaded.len(),
            took_ms = took.as_secs_f64() * 1000.0,
            "plugin chain swapped"
        );
        Ok(took)
    }

    /// Watches the configuration file and applies its plugin section when it changes.
    pub fn watch(self: Arc<Self>, path: PathBuf, cli: Cli) {
        tokio::spawn(async move {
            let mut seen = modified(&path);
            let mut tick = tokio::time::interval(WATCH_PERIOD);
            loop {
                tick.tick().await;
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                match Config::load(&cli) {
                    Ok(cfg) => {
                        if let Err(e) = self.apply(&cfg.plugins, None) {
                            tracing::error!(error = %e, "configuration changed but its plugins cannot load; keeping the running chain");
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "configuration changed but is invalid; keeping the running chain")
                    }
                }
            }
        });
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
