//! A gRPC-style exchange over h2c: POST with `content-type: application/grpc`, `te: trailers` and
//! request trailers; the response's trailers (`grpc-status`, `grpc-message`) reach the client.

use anyhow::{Context, Result, ensure};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Version, header::CONTENT_TYPE};
use proxlet_tests::support::{body, client::Connection, sidecar::Sidecar, upstream::Upstream};

/// A gRPC length-prefixed message: flag byte, big-endian length, payload.
fn grpc_frame(payload: &[u8]) -> Result<Bytes> {
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(payload.len())?);
    frame.put_slice(payload);
    Ok(frame.freeze())
}

fn trailer<'a>(trailers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    trailers.get(name).and_then(|v| v.to_str().ok())
}

async fn grpc_round_trip(setting: &str) -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.protocol", setting)
        .start()
        .await?;
    let mut connection = Connection::h2c(sidecar.addr()).await?;
    let message = grpc_frame(b"hello proxlet")?;
    let mut request_trailers = HeaderMap::new();
    request_trailers.insert("x-client-checksum", HeaderValue::from_static("abc123"));
    let request = Request::post("/trailers")
        .header(CONTENT_TYPE, "application/grpc")
        .header("te", "trailers")
        .body(body::with_trailers(message.clone(), request_trailers))?;

    let reply = connection.send(request).await?;

    ensure!(
        reply.status == 200,
        "status {} body {:?}",
        reply.status,
        reply.text()
    );
    ensure!(
        reply.version == Version::HTTP_2,
        "reply over {:?}",
        reply.version
    );
    ensure!(
        reply.header("content-type") == Some("application/grpc"),
        "headers {:?}",
        reply.headers
    );
    ensure!(
        reply.body == message,
        "body {:?}, want {message:?}",
        reply.body
    );
    let trailers = reply
        .trailers
        .context("the response reached the client without trailers")?;
    ensure!(
        trailer(&trailers, "grpc-status") == Some("0"),
        "trailers {trailers:?}"
    );
    ensure!(
        trailer(&trailers, "grpc-message") == Some("ok"),
        "trailers {trailers:?}"
    );
    ensure!(
        trailer(&trailers, "x-req-trailer-x-client-checksum") == Some("abc123"),
        "the request's trailers did not reach the upstream: response trailers {trailers:?}"
    );
    let seen = upstream.last().context("the upstream saw no request")?;
    ensure!(
        seen.header("te") == Some("trailers"),
        "upstream saw te {:?}",
        seen.header("te")
    );
    ensure!(
        seen.header("content-type") == Some("application/grpc"),
        "upstream headers {:?}",
        seen.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_trailers_round_trip_with_upstream_http2() -> Result<()> {
    grpc_round_trip("http2").await
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_trailers_round_trip_with_upstream_auto() -> Result<()> {
    grpc_round_trip("auto").await
}

#[tokio::test(flavor = "multi_thread")]
async fn curl_sees_the_grpc_status_trailer_over_h2c() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let reply = proxlet_tests::support::curl::Curl::new(sidecar.url("/trailers"))
        .h2c()
        .method("POST")
        .header("content-type: application/grpc")
        .header("te: trailers")
        .args(["--data-binary", "ping"])
        .run()
        .await?;
    reply.ok()?;
    ensure!(
        reply.status == 200 && reply.http_version == "2",
        "status {} over {}",
        reply.status,
        reply.http_version
    );
    ensure!(reply.text() == "ping", "body {:?}", reply.text());
    let dump = reply.header_dump.to_ascii_lowercase();
    ensure!(
        dump.contains("grpc-status: 0"),
        "curl saw no grpc-status trailer:\n{dump}"
    );
    Ok(())
}
