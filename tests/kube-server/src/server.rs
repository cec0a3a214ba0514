//! HTTP: the accept loop (HTTP/1.1 and h2c), bearer-token authentication, turning a hyper
//! request into a [`Call`] and a [`Reply`] into a response, watch streams included.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::app::App;
use crate::handlers::{self, Call, Reply};
use crate::request::{self, Query, Route};
use crate::status::ApiError;

type Body = BoxBody<Bytes, Infallible>;

/// Serves connections on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    log: bool,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(app.clone(), log, req));
            // A client that goes away mid-request is not the server's problem.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn header_str(req: &http::request::Parts, name: header::HeaderName) -> &str {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn respond(
    app: Arc<App>,
    log: bool,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let route = request::route(parts.uri.path());
    let token = header_str(&parts, header::AUTHORIZATION)
        .strip_prefix("Bearer ")
        .unwrap_or_default()
        .trim();
    // kubectl sends no credentials over plain HTTP, so a request without a token acts as the
    // admin (like kube-apiserver's old insecure port); a wrong token is refused.
    let user = if token.is_empty() {
        Some(crate::auth::Tokens::admin_user())
    } else {
        app.lock().tokens.authenticate(token)
    };
    let public = matches!(route, Route::Version | Route::Health);
    let reply = match user {
        None if !public => Reply::error(&ApiError::unauthorized()),
        user => {
            let call = Call {
                method: parts.method.clone(),
                route,
                query: Query::parse(parts.uri.query()),
                accept: request::accept(header_str(&parts, header::ACCEPT)),
                content_type: header_str(&parts, header::CONTENT_TYPE).to_string(),
                body,
                user: user.unwrap_or_else(crate::auth::Tokens::admin_user),
                user_agent: header_str(&parts, header::USER_AGENT).to_string(),
            };
            handlers::handle(&app, &call)
        }
    };
    let response = to_response(reply);
    if log {
        // The access log is the server's whole point of view in a failing test.
        let line = format!("{} {} -> {}\n", parts.method, parts.uri, response.status());
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }
    Ok(response)
}

fn content_type_of(body: &Value, asked: &str) -> String {
    match body["kind"].as_str() {
        Some("Table") => format!(
            "application/json;as=Table;v={};g=meta.k8s.io",
            body["apiVersion"]
                .as_str()
                .unwrap_or("meta.k8s.io/v1")
                .trim_start_matches("meta.k8s.io/")
        ),
        Some(k @ ("PartialObjectMetadata" | "PartialObjectMetadataList")) => {
            format!("application/json;as={k};g=meta.k8s.io;v=v1")
        }
        _ => asked.to_string(),
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn to_response(reply: Reply) -> Response<Body> {
    let mut builder = Response::builder();
    let response = match reply {
        Reply::Json {
            code,
            body,
            content_type,
            warnings,
        } => {
            builder = builder
                .status(code)
                .header(header::CONTENT_TYPE, content_type_of(&body, &content_type));
            for w in warnings {
                let quoted = format!("299 - {}", Value::String(w));
                if let Ok(v) = HeaderValue::from_str(&quoted) {
                    builder = builder.header(header::WARNING, v);
                }
            }
            builder.body(full(body.to_string()))
        }
        Reply::Text(code, text) => builder
            .status(code)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(full(text)),
        Reply::Watch(plan) => {
            let (tx, rx) = mpsc::channel(64);
            tokio::spawn(plan.run(tx));
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|frame| (frame, rx))
            });
            builder
                .status(200)
                .header(header::CONTENT_TYPE, "application/json")
                .body(StreamBody::new(stream).boxed())
        }
    };
    response.unwrap_or_else(|_| {
        let mut r = Response::new(full("internal error"));
        *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}
