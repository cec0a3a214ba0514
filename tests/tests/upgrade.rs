//! An HTTP/1.1 `Upgrade: websocket` request is tunnelled: the client gets the upstream's 101 and
//! then bytes flow both ways unchanged over the same connection.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{pattern, raw::RawConn, sidecar::Sidecar, upstream::Upstream};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn upgrade_round_trip(setting: &str) -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.protocol", setting)
        .start()
        .await?;
    let mut conn = RawConn::connect(sidecar.addr()).await?;
    conn.send(
        b"GET /ws HTTP/1.1\r\nHost: ws.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await?;
    let head = conn.read_head(TIMEOUT).await?;
    ensure!(
        head.status == 101,
        "status {} headers {:?}",
        head.status,
        head.headers
    );
    let upgrade = head.header("upgrade").unwrap_or("");
    ensure!(
        upgrade.eq_ignore_ascii_case("websocket"),
        "upgrade header {upgrade:?}"
    );
    let connection = head.header("connection").unwrap_or("").to_ascii_lowercase();
    ensure!(
        connection.contains("upgrade"),
        "connection header {connection:?}"
    );

    let seen = upstream.last().context("the upstream saw no request")?;
    ensure!(
        seen.header("upgrade") == Some("websocket"),
        "the upstream saw {:?}",
        seen.headers
    );
    ensure!(
        seen.header("sec-websocket-key") == Some("dGhlIHNhbXBsZSBub25jZQ=="),
        "the upstream saw {:?}",
        seen.headers
    );

    conn.send(b"hello through the tunnel").await?;
    let echoed = conn.read_exact(24, TIMEOUT).await?;
    ensure!(
        echoed == b"hello through the tunnel",
        "echoed {:?}",
        String::from_utf8_lossy(&echoed)
    );
    let block = pattern::bytes(60_000);
    conn.send(&block).await?;
    let echoed = conn.read_exact(block.len(), TIMEOUT).await?;
    ensure!(echoed == block, "a 60 kB block came back changed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrade_is_tunnelled_with_upstream_auto() -> Result<()> {
    upgrade_round_trip("auto").await
}

#[tokio::test(flavor = "multi_thread")]
async fn websocket_upgrade_is_tunnelled_with_upstream_http1() -> Result<()> {
    upgrade_round_trip("http1").await
}
