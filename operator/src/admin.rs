//! The operator's admin server: `/metrics`, `/healthz`, `/readyz`, `/api/plugins` (each
//! namespace's plugin set as this replica serves it) and `/api/sidecars` (the sidecars this
//! replica has heard from, by namespace), for people debugging.

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
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::reports::Reports;
use crate::sets::Sets;

/// What the admin server reads.
pub struct Admin {
    pub metrics: Arc<Metrics>,
    pub pipeline: Arc<Pipeline>,
    pub sets: Arc<Sets>,
    pub reports: Arc<Reports>,
    /// True once the CRD is installed and readable (a replica waiting for the leader lease is
    /// ready too: it is healthy, only idle).
    pub ready: Arc<AtomicBool>,
}

impl Admin {
    fn respond(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        match req.uri().path() {
            "/metrics" => {
                let stats = self.pipeline.cache_stats();
                self.metrics.cache(stats.entries, stats.bytes);
                let mut res = Response::new(Full::new(Bytes::from(self.metrics.encode())));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }
            "/healthz" => text(StatusCode::OK, "ok\n"),
            "/readyz" if self.ready.load(Ordering::SeqCst) => text(StatusCode::OK, "ready\n"),
            "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
            "/api/plugins" | "/api/sidecars" => {
                let value = if req.uri().path() == "/api/plugins" {
                    let sets: std::collections::BTreeMap<String, _> = self
                        .sets
                        .namespaces()
                        .into_iter()
                        .map(|ns| {
                            let set = self.sets.current(&ns).set;
                            (ns, serde_json::to_value(&*set).unwrap_or_default())
                        })
                        .collect();
                    serde_json::to_value(sets).unwrap_or_default()
                } else {
                    serde_json::to_value(self.reports.connected().1).unwrap_or_default()
                };
                let body = serde_json::to_vec(&value).unwrap_or_default();
                let mut res = Response::new(Full::new(Bytes::from(body)));
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                res
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Serves on `listener` until `stop` fires.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        loop {
            let (stream, _) = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        continue;
                    }
                },
            };
            let admin = Arc::clone(&self);
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let res = admin.respond(&req);
                    async move { Ok::<_, Infallible>(res) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// Binds the admin address (before anything else starts, so a taken port fails start-up).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *res.status_mut() = status;
    res
}
