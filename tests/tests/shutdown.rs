//! SIGTERM drains: readiness turns 503, the listener closes, requests in flight finish, and the
//! process exits 0 saying the drain completed; past the grace period it gives up and says so.

use std::time::Duration;

use anyhow::{Result, ensure};
use proxlet_tests::support::{
    client::Connection, curl::Curl, sidecar::Sidecar, upstream::Upstream, wait,
};
use tokio::{net::TcpStream, time::Instant};

async fn wait_for_requests(upstream: &Upstream, n: u64) -> Result<()> {
    wait::until_true(
        &format!("{n} requests at the upstream"),
        Duration::from_secs(5),
        || async move { upstream.requests() == n },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_requests_in_flight_and_exits_0() -> Result<()> {
    let upstream = Upstream::start().await?;
    let mut sidecar = Sidecar::builder(upstream.addr())
        .set("shutdown.grace_period", "10s")
        .start()
        .await?;
    let in_flight: Vec<_> = (0..3)
        .map(|_| tokio::spawn(Curl::new(sidecar.url("/delay/1500")).http1().run()))
        .collect();
    wait_for_requests(&upstream, 3).await?;

    sidecar.sigterm()?;
    let signalled = Instant::now();
    let proxy = &sidecar;
    wait::until_true(
        "GET /readyz to answer 503 while draining",
        Duration::from_secs(1),
        || async move { proxy.readyz().await.is_ok_and(|status| status == 503) },
    )
    .await?;
    let addr = sidecar.addr();
    wait::until_true(
        "the listener to refuse new connections",
        Duration::from_secs(1),
        || async move { TcpStream::connect(addr).await.is_err() },
    )
    .await?;

    for request in in_flight {
        let reply = request.await??;
        reply.ok()?;
        ensure!(
            reply.status == 200,
            "an in-flight request got {} {:?}",
            reply.status,
            reply.text()
        );
        ensure!(
            reply.text() == "delayed 1500ms\n",
            "an in-flight request got body {:?}",
            reply.text()
        );
    }
    let status = sidecar.wait_exit(Duration::from_secs(10)).await?;
    eprintln!("exited {status} {:?} after SIGTERM", signalled.elapsed());
    ensure!(status.code() == Some(0), "exit status {status}");
    ensure!(
        sidecar.log().contains("drain complete"),
        "the log does not say `drain complete`"
    );
    ensure!(
        upstream.requests() == 3,
        "the upstream saw {} requests, want 3",
        upstream.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_do_not_hold_up_shutdown() -> Result<()> {
    let upstream = Upstream::start().await?;
    let mut sidecar = Sidecar::builder(upstream.addr())
        .set("shutdown.grace_period", "10s")
        .start()
        .await?;
    let mut http1 = Connection::http1(sidecar.addr()).await?;
    let mut h2c = Connection::h2c(sidecar.addr()).await?;
    ensure!(
        http1.get("/bytes/10").await?.status == 200,
        "HTTP/1.1 request failed"
    );
    ensure!(
        h2c.get("/bytes/10").await?.status == 200,
        "h2c request failed"
    );

    sidecar.sigterm()?;
    let status = sidecar.wait_exit(Duration::from_secs(3)).await?;
    ensure!(status.code() == Some(0), "exit status {status}");
    ensure!(
        sidecar.log().contains("drain complete"),
        "the log does not say `drain complete`"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn drain_gives_up_after_the_grace_period() -> Result<()> {
    let upstream = Upstream::start().await?;
    let mut sidecar = Sidecar::builder(upstream.addr())
        .set("shutdown.grace_period", "1s")
        .start()
        .await?;
    let slow = tokio::spawn(Curl::new(sidecar.url("/delay/8000")).http1().run());
    wait_for_requests(&upstream, 1).await?;

    sidecar.sigterm()?;
    let signalled = Instant::now();
    sidecar.wait_exit(Duration::from_secs(4)).await?;
    let elapsed = signalled.elapsed();
    ensure!(
        elapsed >= Duration::from_millis(900),
        "exited {elapsed:?} after SIGTERM, before the 1 s grace period"
    );
    ensure!(
        sidecar.log().contains("drain timed out"),
        "the log does not say `drain timed out`"
    );
    let reply = slow.await??;
    ensure!(
        !reply.exit.success() || reply.status != 200,
        "the 8 s request completed after a 1 s grace period"
    );
    Ok(())
}
