//! The inbound listener: accepts connections, applies the connection limit, terminates TLS,
//! and serves HTTP/1.1 and HTTP/2 (by preface, or by ALPN under TLS) on one port.
//!
//! Each connection runs in its own task and ends on its own, on its idle timeout, or when the
//! drain signal asks it to finish its requests and close.

mod io;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use self::io::{ConnState, Watched};
use crate::config::Limits;
use crate::error::ErrorKind;
use crate::proxy::{ConnInfo, Proxy, RequestCheck};

/// A bound listener, ready to serve.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    limits: Limits,
    builder: Arc<auto::Builder<TokioExecutor>>,
    open: Arc<AtomicUsize>,
}

impl Listener {
    pub async fn bind(
        addr: SocketAddr,
        tls: Option<TlsAcceptor>,
        proxy: Arc<Proxy>,
        limits: Limits,
    ) -> std::io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        let builder = Arc::new(http_builder(&limits));
        Ok(Self {
            tcp,
            tls,
            proxy,
            limits,
            builder,
            open: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts until `drain` turns true, then returns; connections keep running in `tasks`
    /// and finish their requests.
    pub async fn serve(self, mut drain: watch::Receiver<bool>, tasks: TaskTracker) {
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of descriptors and the like: back off briefly, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = drained(&mut drain) => break,
            };
            let _ = stream.set_nodelay(true);
            let conn = Connection {
                proxy: self.proxy.clone(),
                builder: self.builder.clone(),
                limits: self.limits.clone(),
                open: self.open.clone(),
                peer,
                drain: drain.clone(),
            };
            let tls = self.tls.clone();
            tasks.spawn(conn.run(stream, tls));
        }
        tracing::info!("listener closed");
    }
}

/// Resolves once the drain signal is on (immediately if it already is).
async fn drained(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone: the sidecar is going away, so drain too.
    let _ = rx.wait_for(|d| *d).await;
}

fn http_builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .adaptive_window(true);
    builder
}

/// One accepted connection.
struct Connection {
    proxy: Arc<Proxy>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Limits,
    open: Arc<AtomicUsize>,
    peer: SocketAddr,
    drain: watch::Receiver<bool>,
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard {
    open: Arc<AtomicUsize>,
    proxy: Arc<Proxy>,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.proxy.metrics().connections_open.dec();
    }
}

impl Connection {
    async fn run(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let over_limit = self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_connections;
        let metrics = self.proxy.metrics().clone();
        metrics.connections_open.inc();
        metrics.connection_accepted(tls.is_some());
        let _guard = OpenGuard {
            open: self.open.clone(),
            proxy: self.proxy.clone(),
        };
        let state = ConnState::new(self.limits.max_header_bytes);
        let stream = Watched::new(stream, state.clone());
        match tls {
            None => self.serve(stream, state, over_limit, false).await,
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(self.limits.header_read_timeout, handshake).await {
                    Ok(Ok(tls_stream)) => self.serve(tls_stream, state, over_limit, true).await,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn serve<S>(mut self, stream: S, state: Arc<ConnState>, over_limit: bool, tls: bool)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let info = ConnInfo {
            peer: self.peer,
            tls,
        };
        let proxy = self.proxy.clone();
        let requests = AtomicU64::new(0);
        let conn_state = state.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let index = requests.fetch_add(1, Ordering::Relaxed);
            let check = RequestCheck {
                ambiguous_framing: req.version() != http::Version::HTTP_2
                    && conn_state.ambiguous(index),
            };
            let proxy = proxy.clone();
            let info = info.clone();
            async move {
                if over_limit {
                    return Ok::<_, std::convert::Infallible>(
                        proxy.local(ErrorKind::ConnectionLimit, &req),
                    );
                }
                Ok(proxy.handle(req, info, check).await)
            }
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let idle = self.limits.idle_timeout;
        let mut closing = false;
        loop {
            let check_in = idle.saturating_sub(state.idle_for());
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                _ = drained(&mut self.drain), if !closing => {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = tokio::time::sleep(check_in), if !closing => {
                    if state.idle_for() >= idle {
                        tracing::debug!(peer = %self.peer, "closing idle connection");
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        }
    }
}
