//! One instance of a plugin's module: its store, its root context, and the typed callbacks.
//!
//! Every callback runs under the plugin's time cap (epoch deadline) and memory cap. A callback
//! that traps, overruns or exits leaves the instance unusable: [`Instance::healthy`] turns
//! false and the pool replaces it.

mod runner;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{InstancePre, Store, TypedFunc};

use self::runner::{Runner, classify, ticks};
use super::host::{CallResponse, HostState, PendingCall};
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
    #[error("the module creates no HTTP context: {0}")]
    NoHttpContext(String),
}

/// What a stream callback asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

/// Most ended streams an instance keeps for its plugin after `proxy_on_done` returned false.
pub const MAX_DEFERRED: usize = 1024;

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
    ex: Exports,
    run: Runner,
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
        notifier: super::host::QueueNotifier,
    ) -> Result<Self, HookError> {
        let mut store = Store::new(
            pre.module().engine(),
            HostState::new(plugin.clone(), max_memory),
        );
        store.limiter(|s| &mut s.cap);
        store.epoch_deadline_trap();
        // Start-up may compile regexes and the like, and a busy machine may hold it up: give it
        // ten hooks' worth, at least a second, for each of its steps.
        let start_timeout = (hook_timeout * 10).max(Duration::from_secs(1));
        let start_ticks = ticks(start_timeout);
        let ticker = plugin.ticker.clone();
        ticker.allow(start_ticks);
        ticker.enter();
        store.set_epoch_deadline(start_ticks);
        store.data_mut().deadline = Some(std::time::Instant::now() + start_timeout);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&store, &e, "instantiation"))?;
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .or_else(|_| instance.get_typed_func::<i32, i32>(&mut store, "malloc"))
            .ok()
            .map(Arc::new);
        store.data_mut().memory = memory;
        store.data_mut().alloc = alloc;
        // Set before start-up: a queue registered in `proxy_on_vm_start` is notified too.
        store.data_mut().queue_notifier = Some(notifier);
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
            ex,
            run: Runner {
                store,
                timeout: hook_timeout,
                start_timeout,
                ticker,
                healthy: true,
            },
        };
        me.start_root()?;
        Ok(me)
    }

    /// False once a callback failed: the pool replaces the instance.
    pub fn healthy(&self) -> bool {
        self.run.healthy
    }

    fn start_root(&mut self) -> Result<(), HookError> {
        let (ex, run) = (&self.ex, &mut self.run);
        let root = run.store.data().root as i32;
        if let Some(f) = &ex.context_create {
            run.call(Hook::Start, 0, f, (root, 0))?;
        }
        let plugin = run.store.data().plugin.clone();
        run.store.data_mut().configuring = true;
        let vm = match &ex.vm_start {
            Some(f) => run.call(
                Hook::Start,
                root as u32,
                f,
                (root, plugin.vm_config.len() as i32),
            )?,
            None => 1,
        };
        let configured = match &ex.configure {
            Some(f) if vm != 0 => run.call(
                Hook::Start,
                root as u32,
                f,
                (root, plugin.config.len() as i32),
            )?,
            _ => vm,
        };
        run.store.data_mut().configuring = false;
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

    /// What the module read while it started: `plugin_root_id` (it picks its root context by
    /// root id), and its plugin configuration.
    pub fn start_reads(&self) -> (bool, bool) {
        let d = self.run.store.data();
        (d.read_root_id, d.read_config)
    }

    /// Creates a stream context and deletes it again, with no stream behind it: whether the
    /// module can create the HTTP contexts requests need.
    pub fn probe_stream_context(&mut self) -> Result<(), HookError> {
        let id = HostState::PROBE_CONTEXT;
        let root = self.run.store.data().root as i32;
        if let Some(f) = &self.ex.context_create {
            self.run
                .call(Hook::ContextCreate, 0, f, (id as i32, root))?;
        }
        // Ended as a stream is (without `on_log`: there was no request to log), and deleted
        // whatever `on_done` answers.
        if let Some(f) = &self.ex.done {
            self.run.call(Hook::Done, id, f, id as i32)?;
        }
        if let Some(f) = &self.ex.delete {
            self.run.call(Hook::Delete, id, f, id as i32)?;
        }
        Ok(())
    }

    /// Registers a stream and creates its context; returns the context id.
    pub fn create_stream(&mut self, stream: Arc<Stream>) -> Result<u32, HookError> {
        let data = self.run.store.data_mut();
        let id = data.next_context_id();
        let root = data.root as i32;
        data.streams.insert(id, stream);
        if let Some(f) = &self.ex.context_create {
            self.run
                .call(Hook::ContextCreate, 0, f, (id as i32, root))?;
        }
        Ok(id)
    }

    pub fn request_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<Action, HookError> {
        let f = self.ex.request_headers.as_ref();
        let args = (ctx as i32, n as i32, i32::from(eos));
        self.run.stream_call(Hook::RequestHeaders, ctx, f, args)
    }

    pub fn response_headers(&mut self, ctx: u32, n: usize, eos: bool) -> Result<Action, HookError> {
        let f = self.ex.response_headers.as_ref();
        let args = (ctx as i32, n as i32, i32::from(eos));
        self.run.stream_call(Hook::ResponseHeaders, ctx, f, args)
    }

    pub fn request_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<Action, HookError> {
        let f = self.ex.request_body.as_ref();
        let args = (ctx as i32, size as i32, i32::from(eos));
        self.run.stream_call(Hook::RequestBody, ctx, f, args)
    }

    pub fn response_body(&mut self, ctx: u32, size: usize, eos: bool) -> Result<Action, HookError> {
        let f = self.ex.response_body.as_ref();
        let args = (ctx as i32, size as i32, i32::from(eos));
        self.run.stream_call(Hook::ResponseBody, ctx, f, args)
    }

    pub fn request_trailers(&mut self, ctx: u32, n: usize) -> Result<Action, HookError> {
        let f = self.ex.request_trailers.as_ref();
        let args = (ctx as i32, n as i32);
        self.run.stream_call(Hook::RequestTrailers, ctx, f, args)
    }

    pub fn response_trailers(&mut self, ctx: u32, n: usize) -> Result<Action, HookError> {
        let f = self.ex.response_trailers.as_ref();
        let args = (ctx as i32, n as i32);
        self.run.stream_call(Hook::ResponseTrailers, ctx, f, args)
    }

    /// Ends a stream's context: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`. If
    /// `proxy_on_done` returns false the deletion waits until the plugin calls `proxy_done` for
    /// the context (see [`Instance::delete_done`]); at most [`MAX_DEFERRED`] streams wait so.
    pub fn finish_stream(&mut self, ctx: u32) {
        let (ex, run) = (&self.ex, &mut self.run);
        if !run.store.data().streams.contains_key(&ctx) {
            return;
        }
        let id = ctx as i32;
        // Each step runs only if the previous one did not fail the instance.
        let logged = match &ex.log {
            Some(f) => run.call(Hook::Log, ctx, f, id).is_ok(),
            None => true,
        };
        let done = match &ex.done {
            Some(f) if logged => run.call(Hook::Done, ctx, f, id).map(|d| d != 0),
            Some(_) => Err(HookError::Lost),
            None => Ok(true),
        };
        match done {
            Ok(false) if self.defer(ctx) => {}
            done => self.delete(ctx, done.is_ok()),
        }
    }

    /// Keeps an ended stream for the plugin until it calls `proxy_done`; false if it may not
    /// wait (it called `proxy_done` already, or too many streams wait).
    fn defer(&mut self, ctx: u32) -> bool {
        let data = self.run.store.data_mut();
        if let Some(i) = data.done.iter().position(|&c| c == ctx) {
            data.done.swap_remove(i);
            return false;
        }
        if data.deferred.len() >= MAX_DEFERRED {
            let plugin = data.plugin.clone();
            plugin.log(
                super::logs::Level::Warn,
                format!(
                    "{MAX_DEFERRED} ended streams already wait for proxy_done; context {ctx} is deleted now"
                ),
            );
            return false;
        }
        data.deferred.push(ctx);
        true
    }

    /// Deletes the deferred streams the plugin called `proxy_done` for during the last
    /// callbacks.
    pub fn delete_done(&mut self) {
        while let Some(ctx) = self.run.store.data_mut().done.pop() {
            let data = self.run.store.data_mut();
            if let Some(i) = data.deferred.iter().position(|&c| c == ctx) {
                data.deferred.swap_remove(i);
                self.delete(ctx, true);
            }
        }
    }

    /// Calls `proxy_on_delete` (if `call` and the instance is sound) and forgets the stream.
    fn delete(&mut self, ctx: u32, call: bool) {
        let (ex, run) = (&self.ex, &mut self.run);
        if call && let Some(f) = &ex.delete {
            let _ = run.call(Hook::Delete, ctx, f, ctx as i32);
        }
        run.store.data_mut().streams.remove(&ctx);
    }

    /// Delivers an HTTP call's outcome to the root context (`None`: the call failed).
    pub fn http_call_response(
        &mut self,
        token: u32,
        response: Option<CallResponse>,
        status: (u32, bytes::Bytes),
    ) {
        let (ex, run) = (&self.ex, &mut self.run);
        let Some(f) = &ex.http_call_response else {
            return;
        };
        let root = run.store.data().root;
        let (nh, nb, nt) = response.as_ref().map_or((0, 0, 0), |r| {
            (
                r.headers.len() as i32,
                r.body.len() as i32,
                r.trailers.len() as i32,
            )
        });
        let data = run.store.data_mut();
        data.call_response = response;
        data.status = Some(status);
        let args = (root as i32, token as i32, nh, nb, nt);
        let _ = run.call(Hook::HttpCallResponse, root, f, args);
        let data = run.store.data_mut();
        data.call_response = None;
        data.status = None;
    }

    /// Delivers a unary gRPC call's outcome to the root context: the message, or the status it
    /// closed with (readable with `proxy_get_status`).
    pub fn grpc_outcome(&mut self, token: u32, outcome: super::calls::GrpcOutcome) {
        let (ex, run) = (&self.ex, &mut self.run);
        let root = run.store.data().root;
        match outcome {
            super::calls::GrpcOutcome::Message(response) => {
                let Some(f) = &ex.grpc_receive else {
                    return;
                };
                let size = response.body.len() as i32;
                run.store.data_mut().call_response = Some(response);
                let args = (root as i32, token as i32, size);
                let _ = run.call(Hook::HttpCallResponse, root, f, args);
            }
            super::calls::GrpcOutcome::Closed(status, message) => {
                let Some(f) = &ex.grpc_close else {
                    return;
                };
                run.store.data_mut().status = Some((status, message));
                let args = (root as i32, token as i32, status as i32);
                let _ = run.call(Hook::HttpCallResponse, root, f, args);
            }
        }
        let data = run.store.data_mut();
        data.call_response = None;
        data.status = None;
    }

    pub fn tick(&mut self) {
        if let Some(f) = &self.ex.tick {
            let root = self.run.store.data().root;
            let _ = self.run.call(Hook::Tick, root, f, root as i32);
        }
    }

    pub fn queue_ready(&mut self, queue: u32) {
        if let Some(f) = &self.ex.queue_ready {
            let root = self.run.store.data().root;
            let args = (root as i32, queue as i32);
            let _ = self.run.call(Hook::QueueReady, root, f, args);
        }
    }

    /// The calls dispatched and the tick period set during the last callbacks.
    pub fn take_pending(&mut self) -> (Vec<PendingCall>, Option<Duration>) {
        let data = self.run.store.data_mut();
        (std::mem::take(&mut data.pending_calls), data.tick.take())
    }

    /// Bytes of linear memory in use.
    pub fn memory_bytes(&self) -> usize {
        let store = &self.run.store;
        store.data().memory.map_or(0, |m| m.data_size(store))
    }
}
