//! A loaded plugin: its module, its configuration, and a small pool of instances.
//!
//! A request picks one instance and keeps its context there for its whole life; a callback
//! holds the instance only while it runs. A failed instance is replaced on next use (with a new
//! generation, so streams whose contexts died with it know they are lost).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::Bytes;
use wasmtime::InstancePre;

use super::calls;
use super::engine::{AbiVersion, Loaded};
use super::host::HostState;
use super::instance::{HookError, Instance};
use super::logs::{Level, LogRing};
use super::metrics::{CustomMetrics, PluginMetrics, WasmMetrics};
use super::services::Services;
use crate::config::plugins::{FailurePolicy, Permissions, PluginPhase};

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
}

impl PluginShared {
    pub fn log(&self, level: Level, message: String) {
        self.logs.push(&self.name, level, message);
    }
}

/// A plugin's settings that the chain needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub source: String,
    pub phase: Option<PluginPhase>,
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
    pre: InstancePre<HostState>,
    slots: Vec<Mutex<Slot>>,
    next: AtomicUsize,
    last_error: Mutex<Option<String>>,
    me: Weak<Plugin>,
}

impl Plugin {
    /// Builds the plugin and starts its first instance.
    pub fn new(
        shared: PluginShared,
        settings: Settings,
        loaded: Loaded,
        wasm_metrics: &WasmMetrics,
    ) -> Result<Arc<Self>, HookError> {
        let _ = wasm_metrics;
        let pool = settings.pool_size.max(1);
        let plugin = Arc::new_cyclic(|me| Self {
            shared: Arc::new(shared),
            settings,
            digest: loaded.digest,
            abi: loaded.abi,
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
            last_error: Mutex::new(None),
            me: me.clone(),
        });
        plugin.shared.metrics.reloads.inc();
        // Start the first instance now so a plugin that cannot start is reported at once. It
        // stays in the chain: each request then tries again and, failing, gets the plugin's
        // failure policy (FailClosed: 503, FailOpen: skipped).
        if let Err(e) = plugin.with_slot(0, None, |_| ()) {
            tracing::error!(plugin = plugin.name(), error = %e, "plugin cannot start");
        }
        Ok(plugin)
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Whether an instance is running (false after a failed start).
    pub fn running(&self) -> bool {
        self.slots.iter().any(|s| {
            s.lock()
                .unwrap_or_else(|p| p.into_inner())
                .instance
                .as_ref()
                .is_some_and(Instance::healthy)
        })
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
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

    /// Runs `f` on the instance in `slot`, starting (or replacing) it if needed. With
    /// `generation`, fails with [`HookError::Lost`] if the instance is not that one any more.
    /// Starts the calls and timers the callback asked for.
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
            guard.instance = None;
            let generation = guard.generation + 1;
            let instance = Instance::start(
                &self.shared,
                &self.pre,
                self.settings.hook_timeout,
                self.settings.max_memory,
                self.queue_notifier(slot, generation),
            )
            .inspect_err(|e| self.record_error(format!("cannot start: {e}")))?;
            guard.generation = generation;
            guard.instance = Some(instance);
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
        let (calls, tick) = instance.take_pending();
        drop(guard);
        if !calls.is_empty() || tick.is_some() {
            self.start_pending(slot, current, calls, tick);
        }
        Ok((r, current))
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

    fn record_error(&self, e: String) {
        self.shared.log(Level::Error, e.clone());
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
    }

    /// Starts dispatched HTTP calls and (re)arms the tick timer of an instance.
    fn start_pending(
        &self,
        slot: usize,
        generation: u64,
        calls: Vec<super::host::PendingCall>,
        tick: Option<Duration>,
    ) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for call in calls {
            let me = self.me.clone();
            let services = self.shared.services.clone();
            handle.spawn(async move {
                let token = call.token;
                if call.grpc.is_some() {
                    let outcome = calls::perform_grpc(&services, call).await;
                    if let Some(plugin) = me.upgrade() {
                        let _ = plugin
                            .with_slot(slot, Some(generation), |i| i.grpc_outcome(token, outcome));
                    }
                    return;
                }
                let (response, status) = calls::perform(&services, call).await;
                if let Some(plugin) = me.upgrade() {
                    let _ = plugin.with_slot(slot, Some(generation), |i| {
                        i.http_call_response(token, response, status)
                    });
                }
            });
        }
        if let Some(period) = tick {
            let me = self.me.clone();
            let timer = handle.spawn(async move {
                if period.is_zero() {
                    return;
                }
                let mut interval = tokio::time::interval(period);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let Some(plugin) = me.upgrade() else { return };
                    // A later period (or a replaced instance) ends this timer.
                    if plugin
                        .with_slot(slot, Some(generation), |i| i.tick())
                        .is_err()
                    {
                        return;
                    }
                }
            });
            if let Some(old) = self.lock(slot).timer.replace(timer.abort_handle()) {
                old.abort();
            }
        }
    }
}
