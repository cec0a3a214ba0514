//! A hyper client for what curl cannot show well: HTTP/2 trailers, held connections, admin polls.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Version, header::HOST};
use http_body_util::BodyExt;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{net::TcpStream, task::JoinHandle};

use crate::support::body::{self, Body};

/// A response read to the end.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
}

impl Reply {
    /// The first value of header `name`, if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

enum Sender {
    Http1(http1::SendRequest<Body>),
    Http2(http2::SendRequest<Body>),
}

/// One client connection (HTTP/1.1 keep-alive or h2c prior knowledge); closed when dropped.
pub struct Connection {
    sender: Sender,
    authority: String,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Connection {
    /// Opens an HTTP/1.1 connection to `addr`.
    pub async fn http1(addr: SocketAddr) -> Result<Self> {
        let io = TokioIo::new(connect(addr).await?);
        let (sender, conn) = http1::handshake(io).await.context("HTTP/1.1 handshake")?;
        let task = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Ok(Self {
            sender: Sender::Http1(sender),
            authority: addr.to_string(),
            task,
        })
    }

    /// Opens an h2c (prior knowledge) connection to `addr`.
    pub async fn h2c(addr: SocketAddr) -> Result<Self> {
        let io = TokioIo::new(connect(addr).await?);
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .context("h2c handshake")?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self {
            sender: Sender::Http2(sender),
            authority: addr.to_string(),
            task,
        })
    }

    /// Sends `req` and reads the whole response, trailers included. A relative URI gets this
    /// connection's authority.
    pub async fn send(&mut self, mut req: Request<Body>) -> Result<Reply> {
        let response = match &mut self.sender {
            Sender::Http1(sender) => {
                sender.ready().await.context("connection not ready")?;
                if !req.headers().contains_key(HOST) {
                    req.headers_mut().insert(HOST, self.authority.parse()?);
                }
                sender.send_request(req).await
            }
            Sender::Http2(sender) => {
                sender.ready().await.context("connection not ready")?;
                if req.uri().authority().is_none() {
                    let uri = format!("http://{}{}", self.authority, req.uri());
                    *req.uri_mut() = uri.parse()?;
                }
                sender.send_request(req).await
            }
        };
        let response = response.context("sending request")?;
        let (parts, incoming) = response.into_parts();
        let collected = incoming.collect().await.context("reading response body")?;
        let trailers = collected.trailers().cloned();
        Ok(Reply {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: collected.to_bytes(),
            trailers,
        })
    }

    /// Sends a GET for `path`.
    pub async fn get(&mut self, path: &str) -> Result<Reply> {
        self.send(Request::get(path).body(body::empty())?).await
    }
}

/// One GET for `path` on a fresh HTTP/1.1 connection, bounded by `timeout`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Reply> {
    let attempt = async {
        let mut connection = Connection::http1(addr).await?;
        connection.get(path).await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(reply) => reply,
        Err(_) => bail!("GET http://{addr}{path} took longer than {timeout:?}"),
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}
