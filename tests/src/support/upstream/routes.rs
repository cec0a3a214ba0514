//! The upstream's request handlers.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::stream;
use http::{
    HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Version,
    header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, UPGRADE, WWW_AUTHENTICATE},
};
use http_body::Frame;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::{SeenRequest, State};
use crate::support::{
    body::{self, Body, BoxError},
    pattern::{self, Checksum},
};

pub(super) async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    state.record(SeenRequest {
        method: req.method().clone(),
        uri: req.uri().clone(),
        version: req.version(),
        headers: req.headers().clone(),
    });
    let path = req.uri().path().to_owned();
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    match (segments.next(), segments.next()) {
        (Some("echo"), None) => echo(req),
        (Some("headers"), None) => headers_json(req.headers()),
        (Some("bytes"), Some(len)) => pattern_bytes(len),
        (Some("sink"), None) => sink(&state, req).await,
        (Some("delay"), Some(ms)) => delay(ms).await,
        (Some("trailers"), None) => trailers(req).await,
        (Some("ws"), None) => websocket(req),
        (Some("response-headers"), None) => response_headers(req.uri().query().unwrap_or("")),
        (Some("auth"), None) => auth(req.headers()),
        (Some("test.Echo"), Some("Unary")) => grpc_echo(req).await,
        (Some("test.Echo"), Some("Fail")) => grpc_fail(),
        _ => text(StatusCode::NOT_FOUND, "no such route\n"),
    }
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(body::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let mut response = Response::new(incoming.map_err(BoxError::from).boxed());
    for (name, value) in &parts.headers {
        if let Ok(echoed) = HeaderName::from_bytes(format!("x-echo-{name}").as_bytes()) {
            response.headers_mut().append(echoed, value.clone());
        }
    }
    response
}

fn headers_json(headers: &HeaderMap) -> Response<Body> {
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values = headers
            .get_all(name)
            .iter()
            .map(|v| serde_json::Value::from(String::from_utf8_lossy(v.as_bytes())))
            .collect();
        map.insert(name.to_string(), serde_json::Value::Array(values));
    }
    let mut response = text(StatusCode::OK, serde_json::Value::Object(map).to_string());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn pattern_bytes(len: &str) -> Response<Body> {
    let Ok(len) = len.parse::<u64>() else {
        return text(StatusCode::BAD_REQUEST, "bad length\n");
    };
    let frames = stream::unfold(0u64, move |sent| async move {
        if sent >= len {
            return None;
        }
        let chunk = pattern::chunk(sent, (len - sent).min(pattern::MAX_CHUNK as u64) as usize);
        let next = sent + chunk.len() as u64;
        Some((Ok(Frame::data(chunk)), next))
    });
    let mut response = Response::new(body::from_frames(frames));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

async fn sink(state: &State, req: Request<Incoming>) -> Response<Body> {
    let mut incoming = req.into_body();
    let mut sum = Checksum::new();
    while let Some(frame) = incoming.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    sum.update(data);
                }
            }
            Err(error) => return text(StatusCode::BAD_REQUEST, format!("body error: {error}\n")),
        }
    }
    state.record_sunk(sum.len());
    let json = serde_json::json!({ "bytes": sum.len(), "checksum": sum.finish() });
    let mut response = text(StatusCode::OK, json.to_string());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn delay(ms: &str) -> Response<Body> {
    let Ok(ms) = ms.parse::<u64>() else {
        return text(StatusCode::BAD_REQUEST, "bad delay\n");
    };
    tokio::time::sleep(Duration::from_millis(ms)).await;
    text(StatusCode::OK, format!("delayed {ms}ms\n"))
}

async fn trailers(req: Request<Incoming>) -> Response<Body> {
    let (parts, incoming) = req.into_parts();
    let collected = match incoming.collect().await {
        Ok(collected) => collected,
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("body error: {error}\n")),
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    trailers.insert("grpc-message", HeaderValue::from_static("ok"));
    for (name, value) in collected.trailers().into_iter().flatten() {
        if let Ok(echoed) = HeaderName::from_bytes(format!("x-req-trailer-{name}").as_bytes()) {
            trailers.append(echoed, value.clone());
        }
    }
    let mut response = Response::new(body::with_trailers(collected.to_bytes(), trailers));
    let content_type = parts.headers.get(CONTENT_TYPE).cloned();
    let content_type = content_type.unwrap_or(HeaderValue::from_static("application/octet-stream"));
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let upgrade = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if req.version() != Version::HTTP_11 || !upgrade.eq_ignore_ascii_case("websocket") {
        return text(
            StatusCode::BAD_REQUEST,
            "expected an HTTP/1.1 Upgrade: websocket\n",
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (mut reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let _ = tokio::io::copy(&mut reader, &mut writer).await;
    });
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response
        .headers_mut()
        .insert(UPGRADE, HeaderValue::from_static("websocket"));
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    response
}

fn response_headers(query: &str) -> Response<Body> {
    let mut response = text(StatusCode::OK, "headers set\n");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            return text(StatusCode::BAD_REQUEST, format!("bad header {pair}\n"));
        };
        response.headers_mut().append(name, value);
    }
    response
}

/// The challenge `/auth` sends with its 401.
pub const AUTH_CHALLENGE: &str = "Bearer realm=\"proxlet-test\"";

/// gRPC `test.Echo/Unary`: answers the request's message prefixed with `pong:`, status 0.
async fn grpc_echo(req: Request<Incoming>) -> Response<Body> {
    let message = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("body error: {error}\n")),
    };
    let payload = [b"pong:".as_slice(), message.get(5..).unwrap_or_default()].concat();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    framed.extend_from_slice(&payload);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let mut response = Response::new(body::with_trailers(Bytes::from(framed), trailers));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

/// gRPC `test.Echo/Fail`: a trailers-only answer with status 5 (NOT_FOUND).
fn grpc_fail() -> Response<Body> {
    let mut response = text(StatusCode::OK, Bytes::new());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from_static("5"));
    headers.insert("grpc-message", HeaderValue::from_static("no such thing"));
    response
}

fn auth(headers: &HeaderMap) -> Response<Body> {
    let credential = headers.get(AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let Some(credential) = credential else {
        let mut response = text(StatusCode::UNAUTHORIZED, "who are you?\n");
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static(AUTH_CHALLENGE));
        return response;
    };
    let user = credential
        .strip_prefix("Bearer user:")
        .filter(|user| !user.is_empty())
        .and_then(|user| HeaderValue::from_str(user).ok());
    match user {
        Some(user) => {
            let mut response = text(StatusCode::OK, "welcome\n");
            response.headers_mut().insert("x-auth-user", user);
            response
        }
        None => text(StatusCode::FORBIDDEN, "not you\n"),
    }
}
