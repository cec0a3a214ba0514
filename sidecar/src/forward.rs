//! The upstream side: pooled keep-alive clients towards the workload, one per protocol.
//!
//! Requests keep their own authority in the URI (so HTTP/2 upstreams see the client's
//! `:authority` and HTTP/1.1 upstreams its `Host`), while the connector always dials the one
//! configured upstream address.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::body::RequestBody;
use crate::config::{UpstreamConfig, UpstreamProtocol};
use crate::error::ErrorKind;
use crate::metrics::Protocol;
use crate::wasm::body_pass::ChannelBody;

/// Connects every request to the configured upstream, whatever its URI says.
#[derive(Clone)]
pub struct UpstreamConnector {
    target: Uri,
    inner: HttpConnector,
}

impl UpstreamConnector {
    fn new(cfg: &UpstreamConfig) -> Self {
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        inner.set_connect_timeout(Some(cfg.connect_timeout));
        inner.enforce_http(false);
        Self {
            target: socket_uri(cfg.address),
            inner,
        }
    }
}

fn socket_uri(addr: SocketAddr) -> Uri {
    Uri::builder()
        .scheme("http")
        .authority(addr.to_string())
        .path_and_query("/")
        .build()
        .unwrap_or_default()
}

impl tower_service::Service<Uri> for UpstreamConnector {
    type Response = TokioIo<TcpStream>;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        Box::pin(self.inner.call(self.target.clone()))
    }
}

/// A request body on its way upstream: the client's, or what the plugins' body hooks let through.
pub type UpstreamBody = http_body_util::Either<RequestBody, ChannelBody>;

type UpstreamClient = Client<UpstreamConnector, UpstreamBody>;

/// The clients towards the workload and the rule that picks one for a request.
pub struct Upstream {
    protocol: UpstreamProtocol,
    http1: UpstreamClient,
    http2: UpstreamClient,
    pub address: SocketAddr,
    response_timeout: std::time::Duration,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Self {
        let connector = UpstreamConnector::new(cfg);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(cfg.idle_timeout)
            .pool_max_idle_per_host(1024);
        let http1 = builder.build(connector.clone());
        builder
            .http2_only(true)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Some(std::time::Duration::from_secs(30)));
        let http2 = builder.build(connector);
        Self {
            protocol: cfg.protocol,
            http1,
            http2,
            address: cfg.address,
            response_timeout: cfg.response_timeout,
        }
    }

    /// Sends `req` upstream and waits for the response headers, within the response timeout.
    /// An upgrade request always goes over HTTP/1.1.
    pub async fn send(
        &self,
        mut req: Request<UpstreamBody>,
        downstream: Protocol,
        upgrade: bool,
    ) -> Result<Response<Incoming>, ErrorKind> {
        let http2 = !upgrade
            && match self.protocol {
                UpstreamProtocol::Http1 => false,
                UpstreamProtocol::Http2 => true,
                UpstreamProtocol::Auto => downstream == Protocol::Http2,
            };
        *req.version_mut() = if http2 {
            http::Version::HTTP_2
        } else {
            http::Version::HTTP_11
        };
        if http2 {
            // The authority travels as `:authority`, taken from the URI.
            req.headers_mut().remove(http::header::HOST);
        }
        let client = if http2 { &self.http2 } else { &self.http1 };
        match tokio::time::timeout(self.response_timeout, client.request(req)).await {
            Ok(Ok(res)) => Ok(res),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, source = ?std::error::Error::source(&e), "upstream request failed");
                Err(if e.is_connect() {
                    ErrorKind::UpstreamConnect
                } else {
                    ErrorKind::UpstreamReset
                })
            }
            Err(_) => Err(ErrorKind::UpstreamTimeout),
        }
    }
}
