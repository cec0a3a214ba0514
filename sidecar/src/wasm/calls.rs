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
