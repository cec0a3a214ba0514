//! Calling into an instance: every callback under the plugin's time cap, recorded in the hook
//! metrics, and a failure classified (trap, time cap, memory cap, exit) and marking the
//! instance unusable.

use std::time::Duration;

use wasmtime::{Store, Trap, TypedFunc, WasmParams, WasmResults};

use super::{Action, HookError};
use crate::wasm::engine::EPOCH_TICK;
use crate::wasm::host::HostState;
use crate::wasm::metrics::Hook;
use crate::wasm::wasi::Exit;

/// An instance's store and health; kept apart from its exports so that a call borrows the
/// callback where it is instead of cloning it.
pub struct Runner {
    pub store: Store<HostState>,
    pub timeout: Duration,
    /// The budget of the root context's start-up callbacks (`Hook::Start`): longer than a
    /// request hook's, as Envoy does not bound them at all and they may compile patterns.
    pub start_timeout: Duration,
    pub healthy: bool,
    pub ticker: std::sync::Arc<crate::wasm::ticker::Ticker>,
}

impl Runner {
    /// Calls a callback as context `ctx`, under the time cap (the start-up budget for
    /// `Hook::Start`), and records it.
    pub fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        hook: Hook,
        ctx: u32,
        f: &TypedFunc<P, R>,
        args: P,
    ) -> Result<R, HookError> {
        if !self.healthy {
            return Err(HookError::Lost);
        }
        let budget = if hook == Hook::Start {
            self.start_timeout
        } else {
            self.timeout
        };
        let data = self.store.data_mut();
        let (saved_current, saved_effective) = (data.current, data.effective.take());
        data.current = ctx;
        data.error_line = None;
        // Host functions that wait (WASI `poll_oneoff`) wait no longer than the cap.
        let saved_deadline = data.deadline.replace(std::time::Instant::now() + budget);
        self.ticker.enter();
        self.store.set_epoch_deadline(ticks(budget));
        // The TSC where it is invariant (a few ns), the OS clock otherwise.
        let started = quanta::Instant::now();
        let result = f.call(&mut self.store, args);
        let data = self.store.data_mut();
        data.current = saved_current;
        data.effective = saved_effective;
        data.deadline = saved_deadline;
        data.plugin
            .metrics
            .hook(hook, started.elapsed().as_nanos() as u64);
        result.map_err(|e| self.failed(hook, &e))
    }

    /// Calls a stream callback of context `ctx`; a missing callback continues.
    pub fn stream_call<P: WasmParams>(
        &mut self,
        hook: Hook,
        ctx: u32,
        f: Option<&TypedFunc<P, i32>>,
        args: P,
    ) -> Result<Action, HookError> {
        let Some(f) = f else {
            return Ok(Action::Continue);
        };
        if !self.store.data().streams.contains_key(&ctx) {
            return Err(HookError::Lost);
        }
        let action = self.call(hook, ctx, f, args)?;
        // 0 continues; the C++ SDK's "continue and end stream" (2, headers only) continues too.
        Ok(match action {
            0 => Action::Continue,
            2 if matches!(hook, Hook::RequestHeaders | Hook::ResponseHeaders) => Action::Continue,
            _ => Action::Pause,
        })
    }

    /// Marks the instance unusable, counts and logs the failure.
    fn failed(&mut self, hook: Hook, e: &wasmtime::Error) -> HookError {
        self.healthy = false;
        let err = classify(&self.store, e, hook.label());
        let data = self.store.data();
        let plugin = &data.plugin;
        match err {
            HookError::Timeout => plugin.metrics.timeouts.inc(),
            HookError::Memory => {
                plugin.metrics.memory_cap.inc();
                plugin.metrics.traps.inc();
            }
            _ => plugin.metrics.traps.inc(),
        }
        // The plugin's own word on it (a panic message), if it said one before it failed.
        let said = data
            .error_line
            .as_deref()
            .map(|l| format!(" (the plugin logged: {l})"))
            .unwrap_or_default();
        plugin.fail(format!(
            "{} hook failed: {err}{said}; the instance is replaced",
            hook.label()
        ));
        err
    }
}

/// Epoch ticks for a time cap (one more than it spans: the first tick may come at once).
pub fn ticks(d: Duration) -> u64 {
    (d.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

/// Classifies a failed call; the plugin's panic message (if any) already went to its log.
pub fn classify(store: &Store<HostState>, e: &wasmtime::Error, during: &str) -> HookError {
    if let Some(exit) = e.downcast_ref::<Exit>() {
        return HookError::Exit(exit.0);
    }
    if store.data().cap.hit {
        return HookError::Memory;
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => HookError::Timeout,
        _ => HookError::Trap(format!("during {during}: {}", root_cause(e))),
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.downcast_ref::<Trap>()
        .map_or_else(|| e.root_cause().to_string(), |t| t.to_string())
}
