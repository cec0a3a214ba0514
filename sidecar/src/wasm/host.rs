//! What one plugin instance's host functions can reach: [`HostState`] lives in the wasmtime
//! `Store`, one per instance.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use wasmtime::{Memory, ResourceLimiter, TypedFunc};

use super::plugin::PluginShared;
use super::stream::Stream;

/// The response of an HTTP call, readable only during `proxy_on_http_call_response`.
#[derive(Debug, Default)]
pub struct CallResponse {
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Bytes,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A call a plugin dispatched during a callback, started once the callback returns.
#[derive(Debug)]
pub struct PendingCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Bytes,
    pub timeout: Duration,
    /// `None` for HTTP; for a unary gRPC call, its service and method.
    pub grpc: Option<(String, String)>,
}

/// Caps an instance's linear memory and remembers when the cap was hit.
#[derive(Debug)]
pub struct MemoryCap {
    pub max: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// Per-instance host state.
pub struct HostState {
    pub plugin: Arc<PluginShared>,
    pub cap: MemoryCap,
    pub memory: Option<Memory>,
    /// The guest allocator; shared so that handing data over does not clone the function.
    pub alloc: Option<Arc<TypedFunc<i32, i32>>>,
    /// The root context id (1 in every instance).
    pub root: u32,
    next_id: u32,
    /// The context of the running callback (0: start-up, no context).
    pub current: u32,
    /// Set by `proxy_set_effective_context` for the rest of the callback.
    pub effective: Option<u32>,
    /// Live stream contexts of this instance.
    pub streams: HashMap<u32, Arc<Stream>, BuildHasherDefault<ContextIdHasher>>,
    /// Ended streams whose `proxy_on_done` returned false: the plugin still works on them,
    /// and they are deleted when it calls `proxy_done` for them.
    pub deferred: Vec<u32>,
    /// Stream contexts that called `proxy_done` during the running callback.
    pub done: Vec<u32>,
    /// Set during `proxy_on_configure` / `proxy_on_vm_start` so the configuration is readable.
    pub configuring: bool,
    pub call_response: Option<CallResponse>,
    /// `proxy_get_status` of the call being reported.
    pub status: Option<(u32, Bytes)>,
    pub pending_calls: Vec<PendingCall>,
    next_token: u32,
    /// The tick period the root asked for, if it changed during the callback.
    pub tick: Option<Duration>,
    /// Shared queues this instance's root registered.
    pub queues: Vec<u32>,
    /// The exit code a WASI `proc_exit` asked for.
    pub exit_code: Option<i32>,
    /// Called with a queue id when an item is enqueued on a queue this instance registered.
    pub queue_notifier: Option<QueueNotifier>,
    /// Unfinished lines written to WASI stdout and stderr.
    pub output: [Vec<u8>; 2],
    /// When the running callback's time cap ends (for host functions that wait).
    pub deadline: Option<std::time::Instant>,
    /// The first line the plugin logged at error level or above during the running callback
    /// (a panic message), for the failure's record.
    pub error_line: Option<String>,
    /// Whether the module read `plugin_root_id` while it started: it picks its root context
    /// by root id.
    pub read_root_id: bool,
    /// Whether the module read its plugin configuration while it started.
    pub read_config: bool,
    /// Where host functions assemble what they hand the guest (a header value, a map's pairs);
    /// kept between calls so that doing so does not allocate.
    pub scratch: Vec<u8>,
}

/// Hashes context ids, which the host hands out in sequence: a multiplication spreads them over
/// the table (SipHash's resistance to chosen keys buys nothing here, and it is looked up on
/// every hook and host call).
#[derive(Default)]
pub struct ContextIdHasher(u64);

impl Hasher for ContextIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Delivers `proxy_on_queue_ready` to the instance that registered a queue.
pub type QueueNotifier = Arc<dyn Fn(u32) + Send + Sync>;

impl HostState {
    pub fn new(plugin: Arc<PluginShared>, max_memory: usize) -> Self {
        Self {
            plugin,
            cap: MemoryCap {
                max: max_memory,
                hit: false,
            },
            memory: None,
            alloc: None,
            root: 1,
            next_id: 2,
            current: 0,
            effective: None,
            streams: HashMap::default(),
            deferred: Vec::new(),
            done: Vec::new(),
            configuring: false,
            call_response: None,
            status: None,
            pending_calls: Vec::new(),
            next_token: 1,
            tick: None,
            queues: Vec::new(),
            exit_code: None,
            queue_notifier: None,
            output: [Vec::new(), Vec::new()],
            scratch: Vec::new(),
            deadline: None,
            error_line: None,
            read_root_id: false,
            read_config: false,
        }
    }

    /// Logs a plugin line, keeping the first error line of the callback.
    pub fn log(&mut self, level: super::logs::Level, message: String) {
        if level >= super::logs::Level::Error && self.error_line.is_none() {
            self.error_line = Some(message.clone());
        }
        self.plugin.log(level, message);
    }

    /// The context id of the load-time probe (see `Instance::probe_stream_context`): apart from
    /// the ids streams get, so that the first request is context 2 as in Envoy.
    pub const PROBE_CONTEXT: u32 = i32::MAX as u32;

    /// A fresh context id for a new stream.
    pub fn next_context_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(2);
        if self.next_id == Self::PROBE_CONTEXT {
            self.next_id += 1;
        }
        id
    }

    /// A fresh call token, unique among this instance's calls.
    pub fn next_token(&mut self) -> u32 {
        let t = self.next_token;
        self.next_token = self.next_token.wrapping_add(1).max(1);
        t
    }

    /// The context host calls act on: the effective one if set, else the current one.
    pub fn context(&self) -> u32 {
        self.effective.unwrap_or(self.current)
    }

    /// The stream host calls act on, if the acting context is a stream.
    pub fn stream(&self) -> Option<Arc<Stream>> {
        self.stream_ref().cloned()
    }

    /// The same, borrowed.
    pub fn stream_ref(&self) -> Option<&Arc<Stream>> {
        self.streams.get(&self.context())
    }
}
