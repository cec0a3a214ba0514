//! The request path: one function from a client's request to the response it gets.
//!
//! [`Proxy::handle`] applies, in order: the in-flight limit, request checks (ambiguous framing,
//! header count), the request span, hop-by-hop and `X-Forwarded-*` rewriting, the upstream call
//! with its timeout, upgrade tunnelling, and the response rewrite. Every outcome is counted in
//! [`Metrics`]; every failure becomes a local response through [`ErrorKind`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

use crate::body::{self, ReplyBody, RequestBody, ResponseBody, ResponseStats};
use crate::config::{Config, raw::Forwarded};
use crate::error::ErrorKind;
use crate::forward::Upstream;
use crate::metrics::{CodeClass, Method, Metrics, Protocol};
use crate::telemetry;
use crate::wasm::body_pass::Direction;
use crate::wasm::chain::{Chain, ChainStream, Local, RequestVerdict};
use crate::wasm::stream::StreamInfo;
use http_body::Body as _;
use http_body_util::Either;

/// What the proxy knows about the connection a request arrived on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

/// Per-request facts the listener's framing check established.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestCheck {
    /// The request's header section carried both Content-Length and Transfer-Encoding.
    pub ambiguous_framing: bool,
}

/// The proxy's shared state: upstream clients, metrics and limits.
pub struct Proxy {
    upstream: Upstream,
    metrics: Arc<Metrics>,
    forwarded: Forwarded,
    max_headers: usize,
    max_in_flight: usize,
    in_flight: AtomicUsize,
    draining: AtomicBool,
    chain: RwLock<Option<Arc<Chain>>>,
}

/// One request from its arrival to its response.
struct Exchange {
    start: Instant,
    protocol: Protocol,
    method: Method,
    in_flight: InFlight,
    chain: Option<ChainStream>,
}

/// Decrements the in-flight count when a response ends (or is dropped).
pub struct InFlight {
    proxy: Arc<Proxy>,
}

impl InFlight {
    pub fn metrics(&self) -> &Metrics {
        &self.proxy.metrics
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.proxy.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.proxy.metrics.streams_open.dec();
    }
}

impl Proxy {
    pub fn new(cfg: &Config, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            upstream: Upstream::new(&cfg.upstream),
            metrics,
            forwarded: cfg.forwarded.clone(),
            max_headers: cfg.limits.max_headers,
            max_in_flight: cfg.limits.max_requests_in_flight,
            in_flight: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
            chain: RwLock::new(None),
        })
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// From now on responses ask HTTP/1.1 clients to close their connection.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Proxies one request. Never fails: every error becomes a local response.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
        check: RequestCheck,
    ) -> Response<ResponseBody> {
        let mut exchange = self.begin(&req);
        let span = telemetry::request_span(&req, exchange.protocol);
        exchange.chain = self.chain_stream(&req, &conn, exchange.protocol);
        let result = match self.refuse(&req, check) {
            Some(kind) => Err(kind),
            None => {
                let chain = exchange.chain.as_mut();
                let forward = self.forward(req, &conn, exchange.protocol, &span, chain);
                tracing::Instrument::instrument(forward, span.clone()).await
            }
        };
        let res = self.finish(result, exchange);
        telemetry::record_status(&span, res.status());
        res
    }

    /// Answers a request with a local error response without looking further at it.
    pub fn local(
        self: &Arc<Self>,
        kind: ErrorKind,
        req: &Request<Incoming>,
    ) -> Response<ResponseBody> {
        let exchange = self.begin(req);
        self.finish(Err(kind), exchange)
    }

    fn begin<B>(self: &Arc<Self>, req: &Request<B>) -> Exchange {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.metrics.streams_open.inc();
        Exchange {
            start: Instant::now(),
            protocol: Protocol::of(req.version()),
            method: Method::of(req.method()),
            in_flight: InFlight {
                proxy: self.clone(),
            },
            chain: None,
        }
    }

    /// A passage through the plugin chain for this request, if plugins are configured.
    fn chain_stream<B>(
        &self,
        req: &Request<B>,
        conn: &ConnInfo,
        protocol: Protocol,
    ) -> Option<ChainStream> {
        let chain = self
            .chain
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let info = StreamInfo {
            peer: conn.peer,
            local: None,
            tls: conn.tls,
            protocol: match protocol {
                Protocol::Http1 if req.version() == http::Version::HTTP_10 => "HTTP/1.0",
                Protocol::Http1 => "HTTP/1.1",
                Protocol::Http2 => "HTTP/2",
            },
            start: std::time::SystemTime::now(),
            connection_id: 0,
        };
        Some(ChainStream::new(chain, info))
    }

    /// The plugin chain new requests go through.
    pub fn chain(&self) -> Option<Arc<Chain>> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Installs (or removes) the plugin chain new requests go through; requests in flight keep
    /// the chain they started with.
    pub fn set_chain(&self, chain: Option<Arc<Chain>>) {
        *self.chain.write().unwrap_or_else(|p| p.into_inner()) = chain.filter(|c| !c.is_empty());
    }

    /// Turns the outcome into the client's response, and counts it.
    fn finish(
        &self,
        result: Result<Reply, ErrorKind>,
        exchange: Exchange,
    ) -> Response<ResponseBody> {
        let Exchange {
            start,
            protocol,
            method,
            in_flight,
            chain,
        } = exchange;
        let stats = ResponseStats {
            start,
            protocol,
            in_flight,
            chain,
        };
        let mut res = match result {
            Ok(res) => res.map(|b| ResponseBody::new(b, stats)),
            Err(kind) => {
                self.metrics.upstream_error(kind).inc();
                tracing::debug!(kind = kind.label(), "local response");
                let mut res = kind
                    .response()
                    .map(|b| ResponseBody::new(body::local(b), stats));
                if protocol == Protocol::Http1 && !kind.is_upstream() {
                    res.headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                res
            }
        };
        if protocol == Protocol::Http1 && self.draining.load(Ordering::Relaxed) {
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        self.metrics
            .request(method, CodeClass::of(res.status()), protocol)
            .inc();
        res
    }

    /// The checks that answer a request without forwarding it.
    fn refuse(&self, req: &Request<Incoming>, check: RequestCheck) -> Option<ErrorKind> {
        if self.in_flight.load(Ordering::Relaxed) > self.max_in_flight {
            return Some(ErrorKind::ConcurrencyLimit);
        }
        if check.ambiguous_framing {
            return Some(ErrorKind::BadRequest);
        }
        if req.headers().len() > self.max_headers {
            return Some(ErrorKind::HeadersTooLarge);
        }
        None
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        conn: &ConnInfo,
        protocol: Protocol,
        span: &tracing::Span,
        mut chain: Option<&mut ChainStream>,
    ) -> Result<Reply, ErrorKind> {
        let (mut parts, body) = req.into_parts();
        let upgrade = protocol == Protocol::Http1 && crate::headers::wants_upgrade(&parts.headers);
        let on_upgrade = upgrade.then(|| {
            let mut stub = Request::new(());
            *stub.extensions_mut() = std::mem::take(&mut parts.extensions);
            hyper::upgrade::on(stub)
        });
        let authority = request_authority(&parts.uri, &parts.headers);
        parts.uri = upstream_uri(
            std::mem::take(&mut parts.uri),
            authority.clone(),
            self.upstream.address,
        )?;
        let scheme = if conn.tls { "https" } else { "http" };
        crate::headers::strip_hop_by_hop(&mut parts.headers, upgrade);
        crate::headers::add_forwarded(
            &mut parts.headers,
            &self.forwarded,
            conn.peer.ip(),
            scheme,
            authority.as_ref().map(Authority::as_str),
        );
        if let Some(cs) = chain.as_deref_mut() {
            match cs.request_headers(parts, body.is_end_stream()).await {
                RequestVerdict::Forward(p) => parts = p,
                RequestVerdict::Answer { response, seen } => {
                    return Ok(answer_locally(cs, response, seen).await);
                }
            }
        }
        telemetry::inject_context(span, &mut parts.headers);
        let broken = Arc::new(AtomicBool::new(false));
        let end_of_stream = body.is_end_stream();
        let body = RequestBody::new(body, self.metrics.request_bytes.clone(), broken.clone());
        let pass = chain
            .as_deref_mut()
            .filter(|_| !end_of_stream)
            .and_then(|cs| cs.body_pass(Direction::Request, usize::MAX));
        let body = match pass {
            Some(pass) => {
                // The plugins may change the length.
                parts.headers.remove(http::header::CONTENT_LENGTH);
                Either::Right(pass.spawn(body))
            }
            None => Either::Left(body),
        };
        let sent = Instant::now();
        let result = self
            .upstream
            .send(Request::from_parts(parts, body), protocol, upgrade)
            .await;
        self.metrics
            .upstream_duration
            .observe(sent.elapsed().as_secs_f64());
        let mut res = match result {
            Ok(res) => res,
            // The client's own body was malformed or cut short: that is the client's error.
            Err(_) if broken.load(Ordering::Relaxed) => return Err(ErrorKind::BadRequest),
            Err(kind) => {
                // A plugin stopped the body to answer the request itself.
                if let Some(cs) = chain {
                    if let Some(local) = cs.take_local() {
                        return Ok(answer_locally(cs, local, usize::MAX).await);
                    }
                    if cs.plugin_failed() {
                        return Err(ErrorKind::PluginFailed);
                    }
                }
                return Err(kind);
            }
        };
        let switching = res.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(downstream)) = (switching, on_upgrade) {
            crate::tunnel::spawn(downstream, hyper::upgrade::on(&mut res));
        }
        crate::headers::strip_hop_by_hop(res.headers_mut(), switching);
        let (head, body) = res.into_parts();
        let Some(cs) = chain else {
            return Ok(Response::from_parts(head, body::upstream(body)));
        };
        let end_of_stream = body.is_end_stream();
        let mut head = match cs.response_headers(head, end_of_stream, usize::MAX).await {
            Ok(head) => head,
            Err(local) => return Ok(local.map(body::local)),
        };
        let body = match cs.body_pass(Direction::Response, usize::MAX) {
            Some(pass) if !end_of_stream => {
                head.headers.remove(http::header::CONTENT_LENGTH);
                Either::Right(pass.spawn(body))
            }
            _ => body::upstream(body),
        };
        Ok(Response::from_parts(head, body))
    }
}

/// A plugin answered the request: its response goes back through the response hooks of the
/// plugins that saw the request.
async fn answer_locally(cs: &mut ChainStream, response: Local, seen: usize) -> Reply {
    let (head, body) = response.into_parts();
    match cs.response_headers(head, body.is_end_stream(), seen).await {
        Ok(head) => Response::from_parts(head, body::local(body)),
        Err(replaced) => replaced.map(body::local),
    }
}

/// A response on its way to the client.
type Reply = Response<ReplyBody>;

/// The request's authority: from the URI (HTTP/2, absolute-form) or the `Host` header.
fn request_authority(uri: &Uri, headers: &http::HeaderMap) -> Option<Authority> {
    uri.authority().cloned().or_else(|| {
        let host = headers.get(header::HOST)?;
        Authority::try_from(host.as_bytes()).ok()
    })
}

/// The URI sent upstream: the client's path and query under its own authority (the connector
/// dials the configured upstream whatever the authority says).
fn upstream_uri(
    uri: Uri,
    authority: Option<Authority>,
    fallback: SocketAddr,
) -> Result<Uri, ErrorKind> {
    let mut parts = uri.into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = match authority {
        Some(a) => Some(a),
        None => Some(Authority::try_from(fallback.to_string()).map_err(|_| ErrorKind::BadRequest)?),
    };
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    Uri::from_parts(parts).map_err(|_| ErrorKind::BadRequest)
}
