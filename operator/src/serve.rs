//! The plugin-set server: where sidecars watch their namespace's set, fetch modules by digest
//! and report what they loaded. HTTP/2 over TLS with the operator's serving certificate (h2c and
//! HTTP/1.1 in the clear for local runs). Every replica serves, leader or not.
//!
//! Paths are in [`proxlet_crds::plugin_set::paths`]. A request carries the sidecar's
//! service-account token; it may read only its own namespace's set and the modules that set
//! references, and report only for its own pod. Anything else is refused with a reason, logged
//! and counted.

pub mod auth;
mod modules;

pub use self::modules::Modules;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use proxlet_crds::{Digest, SidecarReport};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::auth::{Authenticator, Identity, Refusal};
use crate::metrics::{Metrics, Served};
use crate::reports::Reports;
use crate::sets::Sets;

/// A long poll's wait when the sidecar names none, and the most it may ask for.
const DEFAULT_WAIT: Duration = Duration::from_secs(30);
const MAX_WAIT: Duration = Duration::from_secs(120);
/// The largest report accepted.
const MAX_REPORT: usize = 1 << 20;

/// What the server reads and writes.
pub struct Server {
    pub sets: Arc<Sets>,
    pub reports: Arc<Reports>,
    pub auth: Authenticator,
    pub modules: Modules,
    pub metrics: Arc<Metrics>,
    pub stop: CancellationToken,
}

enum Route<'a> {
    Set(&'a str),
    Report(&'a str, &'a str),
    Module(&'a str, &'a str),
    Compiled(&'a str, &'a str),
}

fn route(path: &str) -> Option<Route<'_>> {
    let rest = path.strip_prefix("/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    if ns.is_empty() {
        return None;
    }
    match rest.split_once('/') {
        None if rest == "pluginset" => Some(Route::Set(ns)),
        Some(("reports", pod)) if !pod.is_empty() && !pod.contains('/') => {
            Some(Route::Report(ns, pod))
        }
        Some(("modules", digest)) => Some(Route::Module(ns, digest)),
        Some(("compiled", digest)) => Some(Route::Compiled(ns, digest)),
        _ => None,
    }
}

type Reply = Response<Full<Bytes>>;

impl Server {
    /// Serves on `listener` (TLS when `tls` is given) until the stop token fires.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let builder = Arc::new(builder());
        loop {
            let (stream, peer) = tokio::select! {
                () = self.stop.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "plugin-set server accept failed");
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let (server, builder, acceptor) =
                (Arc::clone(&self), Arc::clone(&builder), acceptor.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(server.handle(req).await) }
                });
                let served = match acceptor {
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => builder.serve_connection(TokioIo::new(tls), service).await,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    },
                    None => {
                        builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "plugin-set connection ended");
                }
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_owned();
        let Some(route) = route(&path) else {
            return text(StatusCode::NOT_FOUND, "no such path\n");
        };
        let authorization = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let who = match self.auth.identify(authorization).await {
            Ok(Ok(who)) => who,
            Ok(Err(refusal)) => return self.refuse(refusal, &path, None),
            Err(e) => {
                tracing::warn!(error = %e, "cannot review a sidecar's token");
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "cannot review the token now\n",
                );
            }
        };
        let ns = match &route {
            Route::Set(ns)
            | Route::Report(ns, _)
            | Route::Module(ns, _)
            | Route::Compiled(ns, _) => *ns,
        };
        if who.namespace != ns {
            return self.refuse(Refusal::WrongNamespace, &path, Some(&who));
        }
        match route {
            Route::Set(ns) => self.set(&req, ns, &who).await,
            Route::Report(ns, pod) => self.report(req, ns, pod, &who).await,
            Route::Module(ns, digest) => self.module(ns, digest, &who, Served::Module).await,
            Route::Compiled(ns, digest) => self.module(ns, digest, &who, Served::Compiled).await,
        }
    }

    fn refuse(&self, refusal: Refusal, path: &str, who: Option<&Identity>) -> Reply {
        self.metrics.delivery.refused(refusal);
        let why = match refusal {
            Refusal::NoToken => "a service-account token is required (Authorization: Bearer)",
            Refusal::Unauthenticated => {
                "the token was not accepted by the API server for the audience proxlet"
            }
            Refusal::NotServiceAccount => "only service accounts may use the plugin-set server",
            Refusal::WrongNamespace => "a service account may read only its own namespace",
            Refusal::WrongPod => "the token is bound to another pod",
            Refusal::NotInSet => "the namespace's plugin set does not reference this digest",
        };
        tracing::warn!(
            reason = refusal.label(),
            path,
            namespace = who.map(|w| w.namespace.as_str()),
            account = who.map(|w| w.service_account.as_str()),
            "plugin-set request refused"
        );
        let body = serde_json::json!({ "reason": refusal.label(), "message": why }).to_string();
        json(refusal.status(), Bytes::from(body))
    }

    /// The long poll: the set at once if the sidecar's version differs, else when it changes or
    /// the wait ends (304).
    async fn set(&self, req: &Request<Incoming>, ns: &str, who: &Identity) -> Reply {
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        let pod = who.pod.clone().or_else(|| query(req, "pod"));
        if let Some(pod) = &pod {
            self.reports.seen(ns, pod);
        }
        let wait = query(req, "wait")
            .and_then(|w| proxlet_crds::quantity::parse_duration(&w).ok())
            .unwrap_or(DEFAULT_WAIT)
            .min(MAX_WAIT);
        let held = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .trim_start_matches("W/")
                    .trim_matches('"')
                    .to_owned()
            });
        tokio::select! {
            () = self.sets.synced() => {}
            () = tokio::time::sleep(wait) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "the operator has not listed the ProxyPlugins yet\n");
            }
        }
        let mut sets = self.sets.subscribe(ns);
        let mut current = sets.borrow_and_update().clone();
        if held.as_deref() == Some(current.set.version.as_str()) {
            let changed = tokio::select! {
                changed = sets.changed() => changed.is_ok(),
                () = tokio::time::sleep(wait) => false,
                () = self.stop.cancelled() => false,
            };
            if !changed {
                if let Some(pod) = &pod {
                    self.reports.seen(ns, pod);
                }
                return not_modified(&current.set.version);
            }
            current = sets.borrow_and_update().clone();
        }
        self.metrics.delivery.set_served(ns);
        let mut reply = json(StatusCode::OK, current.json.clone());
        if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", current.set.version)) {
            reply.headers_mut().insert(header::ETAG, etag);
        }
        reply
    }

    async fn report(&self, req: Request<Incoming>, ns: &str, pod: &str, who: &Identity) -> Reply {
        if req.method() != Method::PUT {
            return text(StatusCode::METHOD_NOT_ALLOWED, "PUT only\n");
        }
        if who.pod.as_deref().is_some_and(|bound| bound != pod) {
            return self.refuse(Refusal::WrongPod, req.uri().path(), Some(who));
        }
        let body = match Limited::new(req.into_body(), MAX_REPORT).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "the report is too large\n"),
        };
        let report: SidecarReport = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("not a report: {e}\n")),
        };
        let recorded = self.reports.record(ns, pod, report);
        for (_, nack) in &recorded.nacks {
            self.metrics.delivery.nack(nack.failure);
            tracing::warn!(namespace = ns, pod, plugin = %nack.name, digest = %nack.digest, message = nack.message.as_deref().unwrap_or(""), "a sidecar could not load a plugin");
        }
        let current = self.sets.current(ns);
        if self.reports.newly_converged(&current.set) {
            self.metrics
                .delivery
                .propagated(current.since.elapsed().as_secs_f64());
        }
        Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Full::new(Bytes::new()))
            .unwrap_or_default()
    }

    async fn module(&self, ns: &str, digest: &str, who: &Identity, kind: Served) -> Reply {
        let Ok(digest) = digest.parse::<Digest>() else {
            return text(StatusCode::BAD_REQUEST, "not a sha256:<hex> digest\n");
        };
        let set = self.sets.current(ns).set;
        let referenced = match kind {
            Served::Module => set.plugins.iter().any(|p| p.module.digest == digest),
            Served::Compiled => set.plugins.iter().any(|p| {
                p.module
                    .compiled
                    .as_ref()
                    .is_some_and(|c| c.digest == digest)
            }),
        };
        if !referenced {
            return self.refuse(Refusal::NotInSet, &format!("{kind:?} {digest}"), Some(who));
        }
        let bytes = match kind {
            Served::Module => self.modules.module(ns, &digest).await,
            Served::Compiled => self.modules.compiled(&digest).await,
        };
        match bytes {
            Some(bytes) => {
                self.metrics.delivery.module_served(kind);
                let mut reply = Response::new(Full::new(bytes));
                reply.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/octet-stream"),
                );
                reply
            }
            None => text(StatusCode::NOT_FOUND, "this replica does not have it now\n"),
        }
    }
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(16)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

fn query(req: &Request<Incoming>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key && !v.is_empty()).then(|| v.to_owned())
    })
}

fn text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

fn json(status: StatusCode, body: Bytes) -> Reply {
    let mut reply = Response::new(Full::new(body));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

fn not_modified(version: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::NOT_MODIFIED;
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        reply.headers_mut().insert(header::ETAG, etag);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(
            route("/v1/namespaces/shop/pluginset"),
            Some(Route::Set("shop"))
        ));
        assert!(matches!(
            route("/v1/namespaces/shop/reports/web-1"),
            Some(Route::Report("shop", "web-1"))
        ));
        assert!(matches!(
            route("/v1/namespaces/shop/modules/sha256:ab"),
            Some(Route::Module("shop", "sha256:ab"))
        ));
        assert!(route("/v1/namespaces//pluginset").is_none());
        assert!(route("/v1/namespaces/shop/reports/a/b").is_none());
        assert!(route("/v1/namespaces/shop").is_none());
        assert!(route("/metrics").is_none());
    }
}
