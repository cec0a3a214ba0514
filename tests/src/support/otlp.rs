//! A minimal OTLP/HTTP receiver: records every POST so a test can check that spans were exported.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use anyhow::Result;
use http::{HeaderValue, Response, header::CONTENT_TYPE};
use http_body_util::BodyExt;

use crate::support::{body, server::Server, wait};

/// One export request as received.
#[derive(Clone, Debug)]
pub struct Export {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub body_len: usize,
}

/// The receiver; stops when dropped.
#[derive(Debug)]
pub struct Collector {
    server: Server,
    exports: Arc<Mutex<Vec<Export>>>,
}

impl Collector {
    /// Starts a receiver on a free port.
    pub async fn start() -> Result<Self> {
        let exports = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&exports);
        let server = Server::start(move |req: hyper::Request<hyper::body::Incoming>| {
            let recorded = Arc::clone(&recorded);
            async move {
                let (parts, incoming) = req.into_parts();
                let body_len = incoming
                    .collect()
                    .await
                    .map(|c| c.to_bytes().len())
                    .unwrap_or(0);
                let export = Export {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    content_type: parts
                        .headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    body_len,
                };
                recorded
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(export);
                // An empty ExportTraceServiceResponse is a valid, empty protobuf message.
                let mut response = Response::new(body::empty());
                response.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-protobuf"),
                );
                response
            }
        })
        .await?;
        Ok(Self { server, exports })
    }

    /// The endpoint to put in `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Every export received so far.
    pub fn exports(&self) -> Vec<Export> {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until a request for `path` arrived.
    pub async fn wait_for(&self, path: &str, timeout: Duration) -> Result<Export> {
        wait::until(&format!("an OTLP export to {path}"), timeout, || {
            let found = self.exports().into_iter().find(|e| e.path == path);
            async move { found }
        })
        .await
    }
}
