//! One instance of a plugin's module: its store, its root context, and the typed callbacks.
//!
//! Every callback runs under the plugin's time cap (epoch deadline) and memory cap. A callback
//! that traps, overruns or exits leaves the instance unusable: [`Instance::healthy`] turns
//! false and the pool replaces it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{InstancePre, Store, Trap, TypedFunc, WasmParams, WasmResults};

use super::engine::EPOCH_TICK;
use super::host::{CallResponse, HostState, PendingCall};
use super::logs::Level;
use super::metrics::Hook;
use super::plugin::PluginShared;
use super::stream::Stream;
use super::wasi::Exit;

/// How a callback failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HookError {
    #[error("trapped: {0}")]
    Trap(String),
    #[error("exceeded its hook time cap")]
    Timeout,
    #[error("exceeded its memory cap")]
    Memory,
    #[error("exited with code {0}")]
    Exit(i32),
    #[error("failed to start: {0}")]
    Start(String),
    #[error("its instance was replaced after a failure")]
    Lost,
}

/// What a stream callback asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

type F1 = TypedFunc<i32, ()>;
type F2 = TypedFunc<(i32, i32), i32>;
type F3 = TypedFunc<(i32, i32, i32), i32>;
type CallResponseFn = TypedFunc<(i32, i32, i32, i32, i32), ()>;
type F3Unit = TypedFunc<(i32, i32, i32), ()>;

/// The module's callbacks; each is optional (a missing stream callback means Continue).
struct Exports {
    context_create: Option<TypedFunc<(i32, i32), ()>>,
    vm_start: Option<F2>,
    configure: Option<F2>,
    request_headers: Option<F3>,
    request_body: Option<F3>,
    request_trailers: Option<F2>,
    response_headers: Option<F3>,
    response_body: Option<F3>,
    response_trailers: Option<F2>,
    log: Option<F1>,
    done: Option<TypedFunc<i32, i32>>,
    delete: Option<F1>,
    tick: Option<F1>,
    http_call_response: Option<CallResponseFn>,
    grpc_receive: Option<F3Unit>,
    grpc_close: Option<F3Unit>,
    queue_ready: Option<TypedFunc<(i32, i32), ()>>,
}

pub struct Instance {
    store: Store<HostState>,
    ex: Exports,
    timeout_ticks: u64,
    pub healthy: bool,
}

impl Instance {
    /// Instantiates the module and runs its start-up: `_initialize` (then `main`), or `_start`;
    /// then the root context: `proxy_on_context_create`, `proxy_on_vm_start`,
    /// `proxy_on_configure`. A false from either of the last two fails the start.
    pub fn start(
        plugin: &Arc<PluginShared>,
        pre: &InstancePre<HostState>,
        hook_timeout: Duration,
        max_memory: usize,
    ) -> Result<Self, HookError> {
        let mut store = Store::new(
            pre.module().engine(),
            HostState::new(plugin.clone(), max_memory),
        );
        store.limiter(|s| &mut s.cap);
        store.epoch_deadline_trap();
        // Start-up may compile regexes and the like: give it ten hooks' worth, at least a second.
        store.set_epoch_deadline(ticks((hook_timeout * 10).max(Duration::from_secs(1))));
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, &e, "instantiation"))?;
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .ok();
        store.data_mut().memory = memory;
        store.data_mut().alloc = alloc;
        macro_rules! export {
            ($name:literal) => {
                instance.get_typed_func(&mut store, $name).ok()
            };
        }
        let ex = Exports {
            context_create: export!("proxy_on_context_create"),
            vm_start: export!("proxy_on_vm_start"),
            configure: export!("proxy_on_configure"),
            request_headers: export!("proxy_on_request_headers"),
            request_body: export!("proxy_on_request_body"),
            request_trailers: export!("proxy_on_request_trailers"),
            response_headers: export!("proxy_on_response_headers"),
            response_body: export!("proxy_on_response_body"),
            response_trailers: export!("proxy_on_response_trailers"),
            log: export!("proxy_on_log"),
            done: export!("proxy_on_done"),
            delete: export!("proxy_on_delete"),
            tick: export!("proxy_on_tick"),
            http_call_response: export!("proxy_on_http_call_response"),
            grpc_receive: export!("proxy_on_grpc_receive"),
            grpc_close: export!("proxy_on_grpc_close"),
            queue_ready: export!("proxy_on_queue_ready"),
        };
        let initialize: Option<TypedFunc<(), ()>> = export!("_initialize");
        let start: Option<TypedFunc<(), ()>> = export!("_start");
        let main: Option<TypedFunc<(i32, i32), i32>> = export!("main");
        let main_void: Option<TypedFunc<(), i32>> = export!("__main_void");
        let startup = |store: &mut Store<HostState>| -> wasmtime::Result<()> {
            if let Some(init) = initialize {
                init.call(&mut *store, ())?;
                if let Some(main) = main {
                    main.call(&mut *store, (0, 0))?;
                } else if let Some(main) = main_void {
                    main.call(&mut *store, ())?;
                }
            } else if let Some(start) = start {
                match start.call(&mut *store, ()) {
                    // TinyGo ends `_start` with proc_exit(0): that is success.
                    Err(e) if e.downcast_ref::<Exit>().is_some_and(|x| x.0 == 0) => {}
                    other => other?,
                }
            }
            Ok(())
        };
        startup(&mut store).map_err(|e| classify(&store, &e, "start-up"))?;
        let mut me = Self {
            store,
            ex,
            timeout_ticks: ticks(hook_timeout),
            healthy: true,
        };
        me.start_root()?;
        Ok(me)
    }

    fn start_root(&mut self) -> Result<(), HookError> {
        let root = self.store.data().root as i32;
        if let Some(f) = self.ex.context_create.clone() {
            self.call(Hook::Start, 0, &f, (root, 0))?;
        }
        let plugin = self.store.data().plugin.clone();
        self.store.data_mut().configuring = true;
        let vm = match self.ex.vm_start.clone() {
            Some(f) => self.call(
                Hook::Start,
                root as u32,
                &f,
                (root, plugin.vm_config.len() as i32),
            )?,
            None => 1,
        };
        let configured = match self.ex.configure.clone() {
            Some(f) if vm != 0 => self.call(
                Hook::Start,
                root as u32,
                &f,
                (root, plugin.config.len() as i32),
            )?,
            _ => vm,
        };
        self.store.data_mut().configuring = false;
        if vm == 0 {
            return Err(HookError::Start("proxy_on_vm_start returned false".into()));
        }
        if configured == 0 {
            return Err(HookError::Start(
                "proxy_on_configure returned false (the plugin refused its configuration; see its log)".into(),
            ));
        }
        Ok(())
    }

    /// Calls a callback as context `ctx`, under the time cap, and records it.
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        hook: Hook,
        ctx: u32,
        f: &TypedFunc<P, R>,
        args: P,
    ) -> Result<R, HookError> {
        if !self.healthy {
            return Err(HookError::Lost);
        }
        let data = self.store.data_mut();
        let (saved_current, saved_effective) = (data.current, data.effective.take());
        data.current = ctx;
        self.store.set_epoch_deadline(self.timeout_ticks);
        let started = Instant::now();
        let result = f.call(&mut self.store, args);
        let data = self.store.data_mut();
        data.current = saved_current;
        data.effective = saved_effective;
        data.plugin
            .metrics
            .hook(hook, started.elapsed().as_secs_f64());
        result.map_err(|e| {
            self.healthy = false;
            let err = classify(&self.store, &e, hook.label());
            let plugin = &self.store.data().plugin;
            match err {
                HookError::Timeout => plugin.metrics.timeouts.inc(),
                HookError::Memory => {
                    plugin.metrics.memory_cap.inc();
                    plugin.metrics.traps.inc();
                }
                _ => plugin.metrics.traps.inc(),
            }
            plugin.log(
                Level::Error,
                format!(
                    "{} hook failed: {err}; the instance is replaced",
                    hook.label()
                ),
            );
            err
        })
    }

    /// Registers a stream and creates its context; returns the context id.
    pub fn create_stream(&mut self, stream: Arc<Stream>) -> Result<u32, HookError> {
        let data = self.store.data_mut();
        let id = data.next_context_id();
        let root = data.root as i32;
        data.streams.insert(id, stream);
        if let Some(f) = self.ex.context_create.clone() {
            self.call(Hook::ContextCreate, 0, &f, (id as i32, root))?;
        }
        Ok(id)
    }

    pub fn request_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<Action, HookError> {
        match self.ex.request_headers.clone() {
            Some(f) => self.stream_call(
                Hook::RequestHeaders,
                ctx,
                &f,
                (ctx as i32, n as i32, i32::from(eos)),
            ),
            None => Ok(Action::Continue),
        }
    }

    pub fn response_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<Action, HookError> {
        match self.ex.response_headers.clone() {
            Some(f) => self.stream_call(
                Hook::ResponseHeaders,
                ctx,
                &f,
                (ctx as i32, n as i32, i32::from(eos)),
            ),
            None => Ok(Action::Continue),
        }
    }

    pub fn request_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<Action, HookError> {
        match self.ex.request_body.clone() {
            Some(f) => self.stream_call(
                Hook::RequestBody,
                ctx,
                &f,
                (ctx as i32, size as i32, i32::from(eos)),
            ),
            None => Ok(Action::Continue),
        }
    }

    pub fn response_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<Action, HookError> {
        match self.ex.response_body.clone() {
            Some(f) => self.stream_call(
                Hook::ResponseBody,
                ctx,
                &f,
                (ctx as i32, size as i32, i32::from(eos)),
            ),
            None => Ok(Action::Continue),
        }
    }

    pub fn request_trailers(&mut self, ctx: u32, n: usize) -> Result<Action, HookError> {
        match self.ex.request_trailers.clone() {
            Some(f) => self.stream_call(Hook::RequestTrailers, ctx, &f, (ctx as i32, n as i32)),
            None => Ok(Action::Continue),
        }
    }

    pub fn response_trailers(&mut self, ctx: u32, n: usize) -> Result<Action, HookError> {
        match self.ex.response_trailers.clone() {
            Some(f) => self.stream_call(Hook::ResponseTrailers, ctx, &f, (ctx as i32, n as i32)),
            None => Ok(Action::Continue),
        }
    }

    fn stream_call<P: WasmParams>(
        &mut self,
        hook: Hook,
        ctx: u32,
        f: &TypedFunc<P, i32>,
        args: P,
    ) -> Result<Action, HookError> {
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

    /// Ends a stream's context: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish_stream(&mut self, ctx: u32) {
        if !self.store.data().streams.contains_key(&ctx) {
            return;
        }
        let id = ctx as i32;
        // Each step runs only if the previous one did not fail the instance.
        let logged = match self.ex.log.clone() {
            Some(f) => self.call(Hook::Log, ctx, &f, id).is_ok(),
            None => true,
        };
        let done = logged
            && match self.ex.done.clone() {
                Some(f) => self.call(Hook::Done, ctx, &f, id).is_ok(),
                None => true,
            };
        if done && let Some(f) = self.ex.delete.clone() {
            let _ = self.call(Hook::Delete, ctx, &f, id);
        }
        self.store.data_mut().streams.remove(&ctx);
    }

    /// Delivers an HTTP call's outcome to the root context (`None`: the call failed).
    pub fn http_call_response(
        &mut self,
        token: u32,
        response: Option<CallResponse>,
        status: (u32, bytes::Bytes),
    ) {
        let Some(f) = self.ex.http_call_response.clone() else {
            return;
        };
        let root = self.store.data().root;
        let (nh, nb, nt) = response.as_ref().map_or((0, 0, 0), |r| {
            (
                r.headers.len() as i32,
                r.body.len() as i32,
                r.trailers.len() as i32,
            )
        });
        let data = self.store.data_mut();
        data.call_response = response;
        data.status = Some(status);
        let _ = self.call(
            Hook::HttpCallResponse,
            root,
            &f,
            (root as i32, token as i32, nh, nb, nt),
        );
        let data = self.store.data_mut();
        data.call_response = None;
        data.status = None;
    }

    /// Delivers a unary gRPC call's outcome to the root context: the message, or the status it
    /// closed with (readable with `proxy_get_status`).
    pub fn grpc_outcome(&mut self, token: u32, outcome: super::calls::GrpcOutcome) {
        let root = self.store.data().root;
        match outcome {
            super::calls::GrpcOutcome::Message(response) => {
                let Some(f) = self.ex.grpc_receive.clone() else {
                    return;
                };
                let size = response.body.len() as i32;
                self.store.data_mut().call_response = Some(response);
                let _ = self.call(
                    Hook::HttpCallResponse,
                    root,
                    &f,
                    (root as i32, token as i32, size),
                );
            }
            super::calls::GrpcOutcome::Closed(status, message) => {
                let Some(f) = self.ex.grpc_close.clone() else {
                    return;
                };
                self.store.data_mut().status = Some((status, message));
                let _ = self.call(
                    Hook::HttpCallResponse,
                    root,
                    &f,
                    (root as i32, token as i32, status as i32),
                );
            }
        }
        let data = self.store.data_mut();
        data.call_response = None;
        data.status = None;
    }

    pub fn tick(&mut self) {
        if let Some(f) = self.ex.tick.clone() {
            let root = self.store.data().root;
            let _ = self.call(Hook::Tick, root, &f, root as i32);
        }
    }

    pub fn queue_ready(&mut self, queue: u32) {
        if let Some(f) = self.ex.queue_ready.clone() {
            let root = self.store.data().root;
            let _ = self.call(Hook::QueueReady, root, &f, (root as i32, queue as i32));
        }
    }

    /// The calls dispatched and the tick period set during the last callbacks.
    pub fn take_pending(&mut self) -> (Vec<PendingCall>, Option<Duration>) {
        let data = self.store.data_mut();
        (std::mem::take(&mut data.pending_calls), data.tick.take())
    }

    pub fn set_queue_notifier(&mut self, notifier: super::host::QueueNotifier) {
        self.store.data_mut().queue_notifier = Some(notifier);
    }

    /// Bytes of linear memory in use.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |m| m.data_size(&self.store))
    }
}

fn ticks(d: Duration) -> u64 {
    (d.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

/// Classifies a failed call; the plugin's panic message (if any) already went to its log.
fn classify(store: &Store<HostState>, e: &wasmtime::Error, during: &str) -> HookError {
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
