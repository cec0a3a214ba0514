//! What the micro-benchmarks share: the built plugins, a host to load them into, and request
//! and response heads like the ones the proxy hands the chain.
//!
//! The benchmarks use the sidecar's public API only, the way `proxy` and `reload` drive it.
//! Plugin modules come from `plugins/target/wasm32-wasip1/release` (`cargo xtask plugins`); a
//! benchmark whose module is missing says so and is skipped.

#![allow(dead_code)] // each benchmark uses a part of this file

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use http::{request, response};
use proxlet_sidecar::config::plugins::PluginEntry;
use proxlet_sidecar::config::{Cli, Config};
use proxlet_sidecar::wasm::Host;
use proxlet_sidecar::wasm::plugin::Plugin;
use proxlet_sidecar::wasm::stream::{Phase, Stream, StreamInfo};

/// The built plugin module `name` (e.g. `header_modifier`), if it was built.
pub fn module(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: {} is not built (run `cargo xtask plugins`)",
            path.display()
        );
        None
    }
}

/// A host as the sidecar builds it with `workers: 1` (one instance per plugin) and no module
/// cache directory.
pub fn host() -> Result<Host, String> {
    let file = Config::parse_yaml(
        "listener: {address: '127.0.0.1:1'}\nupstream: {address: '127.0.0.1:2'}\nworkers: 1\n",
    )
    .map_err(|e| e.to_string())?;
    let config = Config::build(file, &Cli::default()).map_err(|e| e.to_string())?;
    Host::new(&config, &prometheus::Registry::new()).map_err(|e| e.to_string())
}

/// Loads and starts plugin `name` from `path`, with `config` as its configuration.
pub fn load(
    host: &Host,
    name: &str,
    path: PathBuf,
    config: Option<serde_json::Value>,
) -> Result<Arc<Plugin>, String> {
    let mut entry = PluginEntry::from_path(name.into(), path);
    entry.config = config;
    let plugin = host.load(&entry).map_err(|e| e.to_string())?;
    if plugin.running() {
        Ok(plugin)
    } else {
        Err(format!(
            "{name}: {}",
            plugin.last_error().unwrap_or_default()
        ))
    }
}

/// The header-modifier configuration `bench/plugins` uses: one request and one response header.
pub fn header_modifier_config() -> serde_json::Value {
    serde_json::json!({
        "request": {"set": {"x-bench": "1"}},
        "response": {"set": {"x-proxied": "proxlet"}},
    })
}

/// A browser-like GET as the chain sees it: 14 headers, `X-Forwarded-*` already added.
pub fn request_head() -> request::Parts {
    let mut head = http::Request::new(()).into_parts().0;
    head.uri = http::Uri::from_static("http://app.example.com/api/v1/items?page=2&sort=name");
    let h = &mut head.headers;
    for (k, v) in [
        ("host", "app.example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "en-GB,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("referer", "https://app.example.com/"),
        ("cookie", "session=3f9a1c0e7b5d4a2e8c6f; theme=dark"),
        (
            "authorization",
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
        ),
        ("x-request-id", "8d3c1a52-7f0e-4b6a-9c1d-2e5f7a9b0c3d"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("cache-control", "no-cache"),
        ("x-forwarded-for", "10.1.2.3"),
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "app.example.com"),
    ] {
        h.append(k, http::HeaderValue::from_static(v));
    }
    head
}

/// The upstream's answer as the chain sees it: 6 headers.
pub fn response_head() -> response::Parts {
    let mut head = http::Response::new(()).into_parts().0;
    let h = &mut head.headers;
    for (k, v) in [
        ("server", "nginx/1.22.1"),
        ("date", "Thu, 26 Nov 2026 01:32:22 GMT"),
        ("content-type", "application/json"),
        ("content-length", "1532"),
        ("cache-control", "private, max-age=0"),
        ("x-upstream-time", "0.004"),
    ] {
        h.append(k, http::HeaderValue::from_static(v));
    }
    head
}

pub fn info() -> StreamInfo {
    StreamInfo {
        peer: ([127, 0, 0, 1], 40000).into(),
        local: None,
        tls: false,
        protocol: "HTTP/1.1",
        start: std::time::SystemTime::now(),
        connection_id: 1,
    }
}

/// A stream whose request headers are being processed, as during `proxy_on_request_headers`.
pub fn stream_at_request_headers() -> Arc<Stream> {
    let stream = Arc::new(Stream::new(info()));
    {
        let mut d = stream.lock();
        d.request = Some(request_head());
        d.phase = Phase::RequestHeaders;
    }
    stream
}

/// Runs a future that never waits (a chain whose plugins do not pause) to its end, without a
/// runtime: `None` if it did wait.
pub fn ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}
