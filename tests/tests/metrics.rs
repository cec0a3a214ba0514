//! The admin server's metrics count what clients saw, exactly, in a format `promtool` accepts.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, ensure};
use http::Request;
use proxlet_tests::support::{
    body, client::Connection, curl::Curl, prom, sidecar::Sidecar, upstream::Upstream, wait,
};

const HTTP1_GETS: usize = 12;
const HTTP1_POSTS: usize = 8;
const H2C_CURL_GETS: usize = 10;
const H2C_STREAMS: usize = 7;
const TOTAL: usize = HTTP1_GETS + HTTP1_POSTS + H2C_CURL_GETS + H2C_STREAMS;
const GET_BYTES: usize = 100;
const POST_BYTES: usize = 333;

async fn send_mixed_requests(sidecar: &Sidecar) -> Result<()> {
    let get = sidecar.url(&format!("/bytes/{GET_BYTES}"));
    for _ in 0..HTTP1_GETS {
        ensure!(
            Curl::new(get.clone()).http1().run().await?.status == 200,
            "HTTP/1.1 GET failed"
        );
    }
    let post_body = "p".repeat(POST_BYTES);
    for _ in 0..HTTP1_POSTS {
        let curl = Curl::new(sidecar.url("/echo"))
            .http1()
            .args(["--data-binary", post_body.as_str()]);
        ensure!(curl.run().await?.status == 200, "HTTP/1.1 POST failed");
    }
    for _ in 0..H2C_CURL_GETS {
        ensure!(
            Curl::new(get.clone()).h2c().run().await?.status == 200,
            "h2c GET failed"
        );
    }
    let mut h2c = Connection::h2c(sidecar.addr()).await?;
    for _ in 0..H2C_STREAMS {
        let request = Request::get(format!("/bytes/{GET_BYTES}")).body(body::empty())?;
        ensure!(h2c.send(request).await?.status == 200, "h2c stream failed");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_total_counts_every_request_exactly() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    send_mixed_requests(&sidecar).await?;

    let proxy = &sidecar;
    let text = wait::until(
        "proxlet_requests_total to reach the requests sent",
        Duration::from_secs(3),
        || async move {
            let text = proxy.metrics().await.ok()?;
            let total = prom::sum(&text, "proxlet_requests_total", &[]).ok()?;
            (total >= TOTAL as f64).then_some(text)
        },
    )
    .await?;
    let sum = |name: &str, labels: &[(&str, &str)]| prom::sum(&text, name, labels);

    ensure!(
        sum("proxlet_requests_total", &[])? == TOTAL as f64,
        "requests_total is not {TOTAL}:\n{text}"
    );
    let http1 = (HTTP1_GETS + HTTP1_POSTS) as f64;
    let http2 = (H2C_CURL_GETS + H2C_STREAMS) as f64;
    ensure!(
        sum("proxlet_requests_total", &[("protocol", "http1")])? == http1,
        "http1 count wrong:\n{text}"
    );
    ensure!(
        sum("proxlet_requests_total", &[("protocol", "http2")])? == http2,
        "http2 count wrong:\n{text}"
    );
    ensure!(
        sum("proxlet_requests_total", &[("code_class", "2xx")])? == TOTAL as f64,
        "2xx count wrong:\n{text}"
    );
    ensure!(
        sum("proxlet_requests_total", &[("method", "POST")])? == HTTP1_POSTS as f64,
        "POST count wrong:\n{text}"
    );
    ensure!(
        sum("proxlet_request_duration_seconds_count", &[])? == TOTAL as f64,
        "the duration histogram did not observe every request:\n{text}"
    );
    ensure!(
        sum("proxlet_request_bytes_total", &[])? == (HTTP1_POSTS * POST_BYTES) as f64,
        "request body bytes wrong:\n{text}"
    );
    let response_bytes =
        (HTTP1_GETS + H2C_CURL_GETS + H2C_STREAMS) * GET_BYTES + HTTP1_POSTS * POST_BYTES;
    ensure!(
        sum("proxlet_response_bytes_total", &[])? == response_bytes as f64,
        "response body bytes wrong, want {response_bytes}:\n{text}"
    );
    for name in [
        "proxlet_upstream_duration_seconds_count",
        "proxlet_connections_open",
        "proxlet_connections_total",
        "proxlet_streams_open",
    ] {
        ensure!(prom::has(&text, name)?, "{name} is missing:\n{text}");
    }
    ensure!(
        upstream.requests() == TOTAL as u64,
        "the upstream saw {} requests",
        upstream.requests()
    );
    prom::promtool_check(&text).await
}

fn closed_port() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_errors_are_counted_by_kind() -> Result<()> {
    let sidecar = Sidecar::builder(closed_port()?).start().await?;
    for _ in 0..2 {
        let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
        ensure!(reply.status == 502, "want 502, got {}", reply.status);
    }
    let proxy = &sidecar;
    let text = wait::until(
        "two upstream-connect errors in /metrics",
        Duration::from_secs(3),
        || async move {
            let text = proxy.metrics().await.ok()?;
            let errors = prom::sum(
                &text,
                "proxlet_upstream_errors_total",
                &[("kind", "upstream-connect")],
            )
            .ok()?;
            (errors >= 2.0).then_some(text)
        },
    )
    .await?;
    let errors = prom::sum(
        &text,
        "proxlet_upstream_errors_total",
        &[("kind", "upstream-connect")],
    )?;
    ensure!(
        errors == 2.0,
        "upstream-connect errors {errors}, want 2:\n{text}"
    );
    let failed = prom::sum(&text, "proxlet_requests_total", &[("code_class", "5xx")])?;
    ensure!(failed == 2.0, "5xx requests {failed}, want 2:\n{text}");
    prom::promtool_check(&text).await
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_ok() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let reply = sidecar
        .admin_get("/healthz")
        .await
        .context("GET /healthz")?;
    ensure!(
        reply.status == 200,
        "GET /healthz answered {}",
        reply.status
    );
    ensure!(
        reply.text().trim() == "ok",
        "GET /healthz body {:?}",
        reply.text()
    );
    Ok(())
}
