//! A loaded plugin: its module, its configuration, and a small pool of instances.
//!
//! Every instance starts (`on_vm_start`, `on_configure`) when the plugin loads, before it takes
//! traffic, as Envoy starts one per worker. A request picks one instance and keeps its context
//! there for its whole life; a callback holds the instance only while it runs. An instance that
//! fails is replaced at once (with a new generation, so streams whose contexts died with it know
//! they are lost), so its root context's timers and queues keep running. A background plugin has
//! one instance and no stream contexts.

mod pending;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use wasmtime::InstancePre;

use super::engine::{AbiVersion, Compiled, Loaded};
use super::host::HostState;
use super::instance::{HookError, Instance};
use super::logs::{Level, LogRing};
use super::metrics::{CustomMetrics, PluginMetrics, WasmMetrics};
use super::services::Services;
use crate::config::plugins::{FailurePolicy, Permissions, Phase, PluginKind};

/// What host functions know of their plugin; shared by its instances.
pub struct PluginShared {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub config: Bytes,
    pub vm_config: Bytes,
    pub permissions: Permissions,
    pub env: Vec<(String, String)>,
    pub logs: LogRing,
    pub metrics: PluginMetrics,
    pub custom_metrics: CustomMetrics,
    pub services: Arc<Services>,
    /// The engine's epoch ticker: the plugin's callbacks keep it going.
    pub ticker: Arc<super::ticker::Ticker>,
    /// The last failure of the plugin (a callback that failed, an instance that did not start).
    pub last_error: Mutex<Option<Failure>>,
}

/// What failed, and when.
#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    pub at: SystemTime,
}

impl PluginShared {
    pub fn log(&self, level: Level, message: String) {
        self.logs.push(&self.name, level, message);
    }

    /// Logs a failure and keeps it as the plugin's last error.
    pub fn fail(&self, message: String) {
        self.log(Level::Error, message.clone());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(Failure {
            message,
            at: SystemTime::now(),
        });
    }
}

/// A plugin's settings that the chain needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: String,
    pub kind: PluginKind,
    pub phase: Option<Phase>,
    pub priority: i32,
    pub failure_policy: FailurePolicy,
    pub hook_timeout: Duration,
    pub max_memory: usize,
    pub pool_size: usize,
}

struct Slot {
    instance: Option<Instance>,
    generation: u64,
    /// The instance's tick timer; a new period replaces it.
    timer: Option<tokio::task::AbortHandle>,
}

/// Where a stream's context lives.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub slot: usize,
    pub generation: u64,
    pub context: u32,
}

pub struct Plugin {
    pub shared: Arc<PluginShared>,
    pub settings: Settings,
    pub digest: String,
    pub abi: AbiVersion,
    /// How the module was had: compiled now or found compiled, and how long that took.
    pub compiled: Compiled,
    pre: InstancePre<HostState>,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    /// What looked wrong when the plugin loaded, for the admin API.
    warnings: Mutex<Vec<String>>,
    me: Weak<Plugin>,
}

impl Plugin {
    /// Builds the plugin and starts every instance of its pool. A request plugin whose module
    /// creates no HTTP context is refused here, with what to do about it.
    pub fn new(
        shared: PluginShared,
        settings: Settings,
        loaded: Loaded,
        wasm_metrics: &WasmMetrics,
    ) -> Result<Arc<Self>, HookError> {
        let pool = match settings.kind {
            PluginKind::Request => settings.pool_size.max(1),
            PluginKind::Background => 1,
        };
        wasm_metrics.compiled(&shared.name, loaded.compiled.took);
        let plugin = Arc::new_cyclic(|me| Self {
            shared: Arc::new(shared),
            settings,
            digest: loaded.digest,
            abi: loaded.abi,
            compiled: loaded.compiled,
            pre: loaded.pre,
            slots: (0..pool)
                .map(|_| {
                    Mutex::new(Slot {
                        instance: None,
                        generation: 0,
                        timer: None,
                    })
                })
                .collect(),
            next: AtomicUsize::new(0),
            warnings: Mutex::new(Vec::new()),
            me: me.clone(),
        });
        plugin.shared.metrics.reloads.inc();
        // A plugin that cannot start stays in the chain: each request then tries again and,
        // failing, gets the plugin's failure policy (FailClosed: 503, FailOpen: skipped).
        for slot in 0..pool {
            if let Err(e) = plugin.with_slot(slot, None, |_| ()) {
                tracing::error!(plugin = plugin.name(), error = %e, "plugin cannot start");
                return Ok(plugin);
            }
        }
        plugin.check_root_id();
        if plugin.settings.kind == PluginKind::Request {
            plugin.probe()?;
        }
        Ok(plugin)
    }

    /// A module that picks its root context by root id (it read `plugin_root_id` as it
    /// started) and then ignored the configuration it was given most likely found no root
    /// context of that id and runs its SDK's do-nothing default (the C++ SDK does so silently).
    fn check_root_id(&self) {
        let Ok(((read_root_id, read_config), _)) = self.with_slot(0, None, |i| i.start_reads())
        else {
            return;
        };
        if read_root_id && !read_config && !self.shared.config.is_empty() {
            let warning = format!(
                "the module picks its root context by root id and ignored its configuration \
                 under root_id {:?}: it probably registers another root id; set root_id to it",
                self.shared.root_id
            );
            self.shared.log(Level::Warn, warning.clone());
            self.warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(warning);
        }
    }

    /// What looked wrong when the plugin loaded.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Creates and deletes one HTTP context, as the first request would: a module that creates
    /// none (its SDK panics there) is a background plugin, or has the wrong root id.
    fn probe(&self) -> Result<(), HookError> {
        let (probed, _) = self.with_slot(0, None, Instance::probe_stream_context)?;
        probed.map_err(|e| {
            let root = &self.shared.root_id;
            let err = HookError::NoHttpContext(format!(
                "{e}; a plugin with only a root context (timers, queues, calls) runs as \
                 `kind: background`, and a module with several root contexts needs the root_id \
                 of one that creates them (now {root:?})"
            ));
            self.shared.fail(err.to_string());
            err
        })
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// How many instances run (fewer than the pool after a failed start).
    pub fn running_instances(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| {
                s.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .instance
                    .as_ref()
                    .is_some_and(Instance::healthy)
            })
            .count()
    }

    /// Instances the plugin keeps.
    pub fn pool_size(&self) -> usize {
        self.slots.len()
    }

    /// Whether an instance is running (false after a failed start).
    pub fn running(&self) -> bool {
        self.running_instances() > 0
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_failure().map(|f| f.message)
    }

    pub fn last_failure(&self) -> Option<Failure> {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Creates a context for `stream` in one of the instances (started if needed).
    pub fn open_stream(&self, stream: Arc<super::stream::Stream>) -> Result<Binding, HookError> {
        self.open_stream_with(stream, |_, _| Ok(()))
            .map(|(binding, _)| binding)
    }

    /// Creates a context for `stream` and runs `hook` on it, holding the instance once for
    /// both. The binding comes back even if the hook failed: the context exists and still
    /// gets its `on_log`/`on_done`/`on_delete`.
    pub fn open_stream_with<R>(
        &self,
        stream: Arc<super::stream::Stream>,
        hook: impl FnOnce(&mut Instance, u32) -> Result<R, HookError>,
    ) -> Result<(Binding, Result<R, HookError>), HookError> {
        let slot = self.pick();
        let (opened, generation) = self.with_slot(slot, None, |inst| {
            let context = inst.create_stream(stream)?;
            Ok::<_, HookError>((context, hook(inst, context)))
        })?;
        let (context, result) = opened?;
        let binding = Binding {
            slot,
            generation,
            context,
        };
        Ok((binding, result))
    }

    /// Picks the instance a new stream will live in.
    pub fn pick(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len()
    }

    fn lock(&self, slot: usize) -> MutexGuard<'_, Slot> {
        self.slots[slot % self.slots.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the instance in `slot`, starting it if needed. With `generation`, fails with
    /// [`HookError::Lost`] if the instance is not that one any more. An instance that `f` left
    /// failed is replaced at once. Starts the calls and timers the callbacks asked for.
    pub fn with_slot<R>(
        &self,
        slot: usize,
        generation: Option<u64>,
        f: impl FnOnce(&mut Instance) -> R,
    ) -> Result<(R, u64), HookError> {
        let mut guard = self.lock(slot);
        let healthy = guard.instance.as_ref().is_some_and(Instance::healthy);
        if !healthy {
            if generation.is_some() && guard.instance.is_some() {
                return Err(HookError::Lost);
            }
            self.start_in(&mut guard, slot)?;
        }
        if generation.is_some_and(|g| g != guard.generation) {
            return Err(HookError::Lost);
        }
        let current = guard.generation;
        let Some(instance) = guard.instance.as_mut() else {
            return Err(HookError::Lost);
        };
        let r = f(instance);
        instance.delete_done();
        let mut pending = instance.take_pending();
        let mut pending_generation = current;
        if !instance.healthy() {
            // What the failed instance dispatched dies with it; its replacement arms its own.
            match self.start_in(&mut guard, slot) {
                Ok(()) => {
                    pending_generation = guard.generation;
                    pending = guard
                        .instance
                        .as_mut()
                        .map(Instance::take_pending)
                        .unwrap_or_default();
                }
                Err(_) => pending = Default::default(),
            }
        }
        drop(guard);
        let (calls, tick) = pending;
        if !calls.is_empty() || tick.is_some() {
            self.start_pending(slot, pending_generation, calls, tick);
        }
        Ok((r, current))
    }

    /// Starts a new instance in `slot` (the old one, if any, is dropped first).
    fn start_in(&self, guard: &mut MutexGuard<'_, Slot>, slot: usize) -> Result<(), HookError> {
        guard.instance = None;
        let generation = guard.generation + 1;
        let instance = Instance::start(
            &self.shared,
            &self.pre,
            self.settings.hook_timeout,
            self.settings.max_memory,
            self.queue_notifier(slot, generation),
        )
        .inspect_err(|e| self.shared.fail(format!("cannot start: {e}")))?;
        guard.generation = generation;
        guard.instance = Some(instance);
        Ok(())
    }

    /// Delivers `proxy_on_queue_ready` to the instance in `slot` while it is `generation`.
    fn queue_notifier(&self, slot: usize, generation: u64) -> super::host::QueueNotifier {
        let me = self.me.clone();
        Arc::new(move |queue| {
            // Outside a runtime (a unit test enqueuing by hand) nobody could deliver it.
            if let (Some(plugin), Ok(rt)) = (me.upgrade(), tokio::runtime::Handle::try_current()) {
                rt.spawn(async move {
                    let _ = plugin.with_slot(slot, Some(generation), |i| i.queue_ready(queue));
                });
            }
        })
    }
}
