//! The state of one HTTP stream as the plugins of a chain see it: the request and response
//! heads, bodies and trailers, the per-stream property store, and the flags plugins set to
//! resume, reset or answer the stream.
//!
//! One [`Stream`] is shared by every plugin of the chain (each through its own context id in
//! its own instance). Hook calls lock it briefly; a paused request waits on [`Stream::wait`]
//! until a plugin resumes it or answers it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, request, response};
use tokio::sync::Notify;

/// A reply a plugin asked for with `proxy_send_local_response`.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub status: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Bytes,
    pub details: String,
    /// 0–16 for a gRPC reply, `None` otherwise.
    pub grpc_status: Option<u8>,
}

/// Where a stream is: decides which maps and buffers plugins may read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Log,
}

/// Facts about the downstream connection and request, for properties.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
    pub tls: bool,
    pub protocol: &'static str,
    pub start: SystemTime,
    pub connection_id: u64,
}

/// Everything a plugin can read or change on a stream.
#[derive(Debug)]
pub struct StreamData {
    pub info: StreamInfo,
    pub phase: Phase,
    pub request: Option<request::Parts>,
    pub request_body: BytesMut,
    pub request_trailers: Option<HeaderMap>,
    pub response: Option<response::Parts>,
    pub response_body: BytesMut,
    pub response_trailers: Option<HeaderMap>,
    /// Values set with `proxy_set_property`, by path (segments joined with NUL).
    pub properties: HashMap<Vec<u8>, Bytes>,
    pub local_response: Option<LocalResponse>,
    pub resume_request: bool,
    pub resume_response: bool,
    pub reset: bool,
    /// A FailClosed plugin failed in a body or trailers hook and stopped the body.
    pub plugin_failed: bool,
    pub request_body_size: u64,
    pub response_body_size: u64,
    /// Contexts a body pass opened anew (by plugin index) after the stream's context died with
    /// its instance; the chain ends them with the others.
    pub rebound: Vec<(usize, super::plugin::Binding)>,
}

impl StreamData {
    pub fn new(info: StreamInfo) -> Self {
        Self {
            info,
            phase: Phase::RequestHeaders,
            request: None,
            request_body: BytesMut::new(),
            request_trailers: None,
            response: None,
            response_body: BytesMut::new(),
            response_trailers: None,
            properties: HashMap::new(),
            local_response: None,
            resume_request: false,
            resume_response: false,
            reset: false,
            plugin_failed: false,
            request_body_size: 0,
            response_body_size: 0,
            rebound: Vec::new(),
        }
    }

    /// Whether the stream was answered or reset, so no further hooks apply.
    pub fn finished(&self) -> bool {
        self.local_response.is_some() || self.reset
    }
}

/// A stream shared between its request task and the plugin instances it touches.
#[derive(Debug)]
pub struct Stream {
    data: Mutex<StreamData>,
    wake: Notify,
}

impl Stream {
    pub fn new(info: StreamInfo) -> Self {
        Self {
            data: Mutex::new(StreamData::new(info)),
            wake: Notify::new(),
        }
    }

    /// Locks the stream's data. A poisoned lock (a panic elsewhere while holding it) still
    /// yields the data: every update to it is a plain field write.
    pub fn lock(&self) -> MutexGuard<'_, StreamData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes the request task waiting on this stream (a plugin resumed, answered or reset it).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    /// Waits for the next [`Stream::notify`].
    pub async fn wait(&self) {
        self.wake.notified().await;
    }
}
