//! The admin server, on its own port: `/metrics`, `/healthz` and `/readyz`.
//!
//! It shares nothing with the data path but the metrics registry and the readiness flag, so a
//! saturated listener still answers probes and scrapes.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

use crate::metrics::Metrics;
use crate::reload::{ReloadError, Reloader};

mod plugins;

/// Whether the sidecar takes traffic: true once the listener is bound, false while draining.
#[derive(Debug, Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub reloader: Arc<Reloader>,
}

impl Admin {
    /// Answers one admin request.
    pub async fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        if req.method() == Method::POST
            && let Some(name) = path
                .strip_prefix("/api/plugins/")
                .and_then(|p| p.strip_suffix("/reload"))
        {
            return match self.reloader.reload(name).await {
                Ok(took) => json(
                    &serde_json::json!({"reloaded": name, "took_ms": took.as_secs_f64() * 1000.0}),
                ),
                Err(e @ ReloadError::Unknown(_)) => text(StatusCode::NOT_FOUND, &format!("{e}\n")),
                Err(e) => text(StatusCode::UNPROCESSABLE_ENTITY, &format!("{e}\n")),
            };
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match req.uri().path() {
            "/metrics" => {
                let mut res = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/api/plugins" => json(&plugins::list(&self.reloader.plugins())),
            path if path.starts_with("/api/plugins/") && path.ends_with("/logs") => {
                let name = &path["/api/plugins/".len()..path.len() - "/logs".len()];
                match plugins::logs(&self.reloader.plugins(), name) {
                    Some(lines) => json(&lines),
                    None => text(StatusCode::NOT_FOUND, "no such plugin\n"),
                }
            }
            "/readyz" if self.readiness.get() => text(StatusCode::OK, "ready\n"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Serves until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let admin = self.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let admin = admin.clone();
                    async move { Ok::<_, Infallible>(admin.respond(&req).await) }
                });
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "admin connection error");
                }
            });
        }
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut res = Response::new(Full::new(Bytes::from(body)));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            res
        }
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode\n"),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *res.status_mut() = status;
    res
}

/// Binds the admin port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}
