//! The test upstream: an HTTP/1.1 + h2c server with routes that make a proxy's behaviour visible.
//!
//! Routes (see `upstream/routes.rs`):
//! - `/echo`: streams the request body back; request headers come back as `x-echo-<name>`.
//! - `/headers`: the request headers as a JSON object of arrays.
//! - `/bytes/N`: N bytes of [`crate::support::pattern`], streamed in chunks, never buffered.
//! - `/sink`: reads the request body and answers `{"bytes": N, "checksum": "…"}`; a body read to
//!   its end is recorded (see [`Upstream::sunk`]), one cut short is not.
//! - `/delay/MS`: sleeps MS milliseconds, then answers.
//! - `/trailers`: echoes the body, then trailers `grpc-status: 0`, `grpc-message: ok` and the
//!   request's trailers as `x-req-trailer-<name>`.
//! - `/ws`: `Upgrade: websocket` → 101, then echoes raw bytes on the upgraded connection.
//! - `/response-headers?name=value&…`: a 200 carrying the given response headers.
//! - `/auth`: an auth service deciding by `authorization`: `Bearer user:NAME` → 200 with
//!   `x-auth-user: NAME`; none → 401 with `www-authenticate: Bearer realm="proxlet-test"`;
//!   anything else → 403.
//!
//! Every request is counted and its head recorded, so a test can check what reached the upstream.

mod routes;

pub use self::routes::AUTH_CHALLENGE;

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::Result;
use http::{HeaderMap, Method, Uri, Version};
use tokio::net::TcpListener;

use crate::support::server::{self, Server};

/// What the upstream saw of one request.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
}

impl SeenRequest {
    /// The `Host` header, or the `:authority` of an HTTP/2 request.
    pub fn host(&self) -> Option<String> {
        self.header("host")
            .map(str::to_owned)
            .or_else(|| self.uri.authority().map(|a| a.to_string()))
    }

    /// The first value of header `name`, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Every value of header `name`, lossily decoded.
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }
}

/// Shared state of one upstream: the request counter and the recorded request heads.
#[derive(Debug, Default)]
pub struct State {
    requests: AtomicU64,
    seen: Mutex<Vec<SeenRequest>>,
    sunk: Mutex<Vec<u64>>,
}

impl State {
    fn record(&self, seen: SeenRequest) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(seen);
    }

    fn record_sunk(&self, bytes: u64) {
        self.sunk
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(bytes);
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The heads of the requests seen so far, in arrival order.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An upstream running in the test's runtime on 127.0.0.1; stops when dropped.
#[derive(Debug)]
pub struct Upstream {
    server: Server,
    state: Arc<State>,
}

impl Upstream {
    /// Starts an upstream on a free port.
    pub async fn start() -> Result<Self> {
        let state = Arc::new(State::default());
        let handler_state = Arc::clone(&state);
        let server =
            Server::start(move |req| routes::handle(Arc::clone(&handler_state), req)).await?;
        Ok(Self { server, state })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    /// The heads of the requests seen so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state.seen()
    }

    /// The lengths of the bodies `/sink` read to their end, in order.
    pub fn sunk(&self) -> Vec<u64> {
        self.state
            .sunk
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The head of the most recent request.
    pub fn last(&self) -> Option<SeenRequest> {
        self.state.seen().pop()
    }

    /// The paths of the requests seen so far.
    pub fn paths(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|r| r.uri.path().to_owned())
            .collect()
    }
}

/// Serves the upstream's routes on `listener` until the future is dropped (for `proxlet-echo`).
pub async fn serve(listener: TcpListener) {
    let state = Arc::new(State::default());
    server::serve(listener, move |req| routes::handle(Arc::clone(&state), req)).await;
}
