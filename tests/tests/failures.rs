//! What a client sees when the upstream or a limit fails it: 502 and 504 with a `proxlet-error`
//! header naming the cause, 503 over the connection and concurrency limits.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    client::Connection,
    curl::{Curl, CurlReply},
    sidecar::Sidecar,
    upstream::Upstream,
    wait,
};
use tokio::{io::AsyncReadExt, net::TcpListener, time::Instant};

/// An address nothing listens on.
fn closed_port() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn expect_error(reply: &CurlReply, status: u16, kind: &str) -> Result<()> {
    reply.ok()?;
    ensure!(
        reply.status == status && reply.header("proxlet-error") == Some(kind),
        "want {status} with proxlet-error: {kind}; got {} with headers {:?} and body {:?}",
        reply.status,
        reply.headers,
        reply.text()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_refusing_connections_is_502() -> Result<()> {
    let sidecar = Sidecar::builder(closed_port()?).start().await?;
    let url = sidecar.url("/echo");
    expect_error(
        &Curl::new(url.clone()).http1().run().await?,
        502,
        "upstream-connect",
    )
    .context("HTTP/1.1")?;
    expect_error(&Curl::new(url).h2c().run().await?, 502, "upstream-connect").context("h2c")
}

/// An upstream that accepts, reads the request and closes the connection without answering.
async fn resetting_upstream() -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    Ok((addr, task))
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_closing_without_answer_is_502() -> Result<()> {
    let (addr, task) = resetting_upstream().await?;
    let sidecar = Sidecar::builder(addr).start().await?;
    let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
    task.abort();
    expect_error(&reply, 502, "upstream-reset")
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_upstream_is_504_after_response_timeout() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.response_timeout", "300ms")
        .start()
        .await?;
    let started = Instant::now();
    let reply = Curl::new(sidecar.url("/delay/3000")).http1().run().await?;
    let elapsed = started.elapsed();
    expect_error(&reply, 504, "upstream-timeout")?;
    ensure!(
        elapsed < Duration::from_millis(2000),
        "the 504 took {elapsed:?} with a 300ms timeout"
    );
    ensure!(
        elapsed >= Duration::from_millis(250),
        "the 504 came after only {elapsed:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_over_max_connections_is_503() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_connections", 1)
        .start()
        .await?;
    let mut held = Connection::http1(sidecar.addr()).await?;
    let first = held.get("/bytes/10").await?;
    ensure!(
        first.status == 200,
        "the first connection got {}",
        first.status
    );

    let reply = Curl::new(sidecar.url("/bytes/10")).http1().run().await?;
    expect_error(&reply, 503, "connection-limit")?;

    drop(held);
    let url = sidecar.url("/bytes/10");
    wait::until_true(
        "a new connection to be served once the held one closed",
        Duration::from_secs(5),
        || {
            let curl = Curl::new(url.clone()).http1();
            async move { curl.run().await.is_ok_and(|r| r.status == 200) }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_over_max_requests_in_flight_is_503() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_requests_in_flight", 1)
        .start()
        .await?;
    let slow = tokio::spawn(Curl::new(sidecar.url("/delay/2000")).http1().run());
    let up = &upstream;
    wait::until_true(
        "the slow request to reach the upstream",
        Duration::from_secs(5),
        || async move { up.requests() == 1 },
    )
    .await?;

    let reply = Curl::new(sidecar.url("/bytes/10")).h2c().run().await?;
    expect_error(&reply, 503, "concurrency-limit")?;
    ensure!(
        upstream.requests() == 1,
        "the refused request reached the upstream"
    );

    let slow = slow.await??;
    slow.ok()?;
    ensure!(
        slow.status == 200,
        "the in-flight request got {}",
        slow.status
    );
    let after = Curl::new(sidecar.url("/bytes/10")).http1().run().await?;
    ensure!(
        after.status == 200,
        "once the slow request finished, a new one got {}",
        after.status
    );
    Ok(())
}
