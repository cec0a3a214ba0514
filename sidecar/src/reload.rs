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
    #[error("the reload did not finish: {0}")]
    Join(String),
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

    /// Reloads one plugin from its module file, even if nothing changed. Compiling runs on a
    /// blocking thread, off the request path.
    pub async fn reload(self: &Arc<Self>, name: &str) -> Result<Duration, ReloadError> {
        let entries: Vec<PluginEntry> = self.lock().iter().map(|(e, _)| e.clone()).collect();
        if !entries.iter().any(|e| e.name == name) {
            return Err(ReloadError::Unknown(name.into()));
        }
        let me = self.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || me.apply(&entries, Some(&name)))
            .await
            .map_err(|e| ReloadError::Join(e.to_string()))?
    }

    /// The loaded plugins, request and background, in configuration order.
    pub fn plugins(&self) -> Vec<Arc<Plugin>> {
        self.lock().iter().map(|(_, p)| p.clone()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PluginEntry, Arc<Plugin>)>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Builds the chain for `entries` and swaps it in; returns how long building and swapping
    /// took. The modules that need loading load in parallel, each compiled with the engine's
    /// parallel compilation.
    fn apply(&self, entries: &[PluginEntry], force: Option<&str>) -> Result<Duration, ReloadError> {
        let started = Instant::now();
        let mut loaded = self.lock();
        let reused: Vec<Option<Arc<Plugin>>> = entries
            .iter()
            .map(|e| {
                loaded
                    .iter()
                    .find(|(old, p)| {
                        old == e
                            && force != Some(e.name.as_str())
                            && file_digest(&e.path).as_deref() == Some(p.digest.as_str())
                    })
                    .map(|(_, p)| p.clone())
            })
            .collect();
        // The loading threads run in the runtime's context: a plugin's first callbacks arm
        // timers and start calls there.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let fresh: Vec<Option<Result<Arc<Plugin>, PluginError>>> = std::thread::scope(|s| {
            let handles: Vec<_> = entries
                .iter()
                .zip(&reused)
                .map(|(e, old)| {
                    old.is_none().then(|| {
                        let runtime = runtime.clone();
                        s.spawn(move || {
                            let _entered = runtime.as_ref().map(|r| r.enter());
                            self.host.load(e)
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.map(|h| h.join().unwrap_or_else(|_| Err(PluginError::Panicked))))
                .collect()
        });
        let mut next = Vec::with_capacity(entries.len());
        for ((e, old), new) in entries.iter().zip(reused).zip(fresh) {
            let plugin = match (old, new) {
                (Some(p), _) => p,
                (None, Some(Ok(p))) => p,
                (None, Some(Err(err)))
                    if e.failure_policy == crate::config::plugins::FailurePolicy::FailOpen =>
                {
                    tracing::error!(error = %err, "FailOpen plugin left out of the chain");
                    continue;
                }
                (None, Some(Err(err))) => return Err(err.into()),
                (None, None) => continue,
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
                        let me = self.clone();
                        let applied =
                            tokio::task::spawn_blocking(move || me.apply(&cfg.plugins, None)).await;
                        if let Ok(Err(e)) = applied {
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
