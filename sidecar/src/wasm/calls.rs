//! Performs the HTTP calls plugins dispatch with `proxy_http_call`, to their named clusters.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::host::{CallResponse, PendingCall};
use super::services::Services;

/// `proxy_get_status` codes for a call's outcome (Envoy's).
const OK: u32 = 0;
const BROKEN_CONNECTION: u32 = 11;

fn client() -> &'static Client<HttpConnector, Full<Bytes>> {
    static CLIENT: OnceLock<Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

/// gRPC needs HTTP/2 (cleartext, prior knowledge, as gRPC sidecars speak it).
fn grpc_client() -> &'static Client<HttpConnector, Full<Bytes>> {
    static CLIENT: OnceLock<Client<HttpConnector, Full<Bytes>>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        Client::builder(TokioExecutor::new())
            .http2_only(true)
            .build_http()
    })
}

/// The outcome of a unary gRPC call.
pub enum GrpcOutcome {
    /// The response message (without its 5-byte frame header) and the trailing metadata.
    Message(CallResponse),
    /// The call ended with this gRPC status and message.
    Closed(u32, Bytes),
}

/// gRPC status for failures below gRPC (connection, timeout, malformed reply).
const UNAVAILABLE: u32 = 14;
const DEADLINE_EXCEEDED: u32 = 4;
const INTERNAL: u32 = 13;

/// Runs one unary gRPC call.
pub async fn perform_grpc(services: &Services, call: PendingCall) -> GrpcOutcome {
    let Some((service, method)) = call.grpc.clone() else {
        return GrpcOutcome::Closed(INTERNAL, Bytes::from_static(b"not a gRPC call"));
    };
    let Some(cluster) = services.clusters.get(&call.cluster) else {
        return GrpcOutcome::Closed(UNAVAILABLE, Bytes::from_static(b"unknown cluster"));
    };
    let mut framed = Vec::with_capacity(call.body.len() + 5);
    framed.push(0);
    framed.extend_from_slice(&(call.body.len() as u32).to_be_bytes());
    framed.extend_from_slice(&call.body);
    let uri = format!("http://{}/{service}/{method}", cluster.address);
    let mut req = Request::post(uri)
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers");
    for (k, v) in &call.headers {
        if !k.starts_with(b":") {
            req = req.header(k.as_slice(), v.as_slice());
        }
    }
    let Ok(req) = req.body(Full::new(Bytes::from(framed))) else {
        return GrpcOutcome::Closed(INTERNAL, Bytes::from_static(b"invalid metadata"));
    };
    let send = async {
        let res = grpc_client().request(req).await.ok()?;
        let (parts, body) = res.into_parts();
        let collected = body.collect().await.ok()?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let status_of = |h: &http::HeaderMap| {
            h.get("grpc-status")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u32>().ok())
        };
        let message_of = |h: &http::HeaderMap| {
            h.get("grpc-message")
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
                .unwrap_or_default()
        };
        // A trailers-only reply carries its status in the headers.
        let (status, message) = match status_of(&trailers) {
            Some(s) => (s, message_of(&trailers)),
            None => (
                status_of(&parts.headers).unwrap_or(INTERNAL),
                message_of(&parts.headers),
            ),
        };
        if status != 0 {
            return Some(GrpcOutcome::Closed(status, message));
        }
        let body = collected.to_bytes();
        let message = body
            .get(5..)
            .map(Bytes::copy_from_slice)
            .unwrap_or_default();
        Some(GrpcOutcome::Message(CallResponse {
            headers: pairs_of(&parts.headers),
            body: message,
            trailers: pairs_of(&trailers),
        }))
    };
    match tokio::time::timeout(call.timeout, send).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => GrpcOutcome::Closed(UNAVAILABLE, Bytes::from_static(b"upstream unavailable")),
        Err(_) => GrpcOutcome::Closed(DEADLINE_EXCEEDED, Bytes::from_static(b"deadline exceeded")),
    }
}

fn pairs_of(h: &http::HeaderMap) -> Pairs {
    h.iter()
        .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn build(services: &Services, call: &PendingCall) -> Option<Request<Full<Bytes>>> {
    let cluster = services.clusters.get(&call.cluster)?;
    let find = |name: &[u8]| {
        call.headers
            .iter()
            .find(|(k, _)| k.as_slice() == name)
            .map(|(_, v)| v.as_slice())
    };
    let method = Method::from_bytes(find(b":method")?).ok()?;
    let path = std::str::from_utf8(find(b":path")?).ok()?;
    let uri: Uri = format!("http://{}{}", cluster.address, path).parse().ok()?;
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(authority) = find(b":authority") {
        req = req.header(http::header::HOST, authority);
    }
    for (k, v) in &call.headers {
        if !k.starts_with(b":") {
            req = req.header(k.as_slice(), v.as_slice());
        }
    }
    req.body(Full::new(call.body.clone())).ok()
}

/// Runs one call; `None` (with a status) when it failed or timed out.
pub async fn perform(
    services: &Services,
    call: PendingCall,
) -> (Option<CallResponse>, (u32, Bytes)) {
    let Some(req) = build(services, &call) else {
        return (
            None,
            (BROKEN_CONNECTION, Bytes::from_static(b"bad request")),
        );
    };
    let send = async {
        let res = client().request(req).await.ok()?;
        let (parts, body) = res.into_parts();
        let collected = body.collect().await.ok()?;
        let trailers: Pairs = collected
            .trailers()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let mut headers: Pairs = vec![(
            b":status".to_vec(),
            parts.status.as_str().as_bytes().to_vec(),
        )];
        headers.extend(
            parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        Some(CallResponse {
            headers,
            body: collected.to_bytes(),
            trailers,
        })
    };
    match tokio::time::timeout(call.timeout, send).await {
        Ok(Some(r)) => (Some(r), (OK, Bytes::new())),
        Ok(None) => (None, (BROKEN_CONNECTION, Bytes::from_static(b"reset"))),
        Err(_) => (None, (BROKEN_CONNECTION, Bytes::from_static(b"timeout"))),
    }
}
