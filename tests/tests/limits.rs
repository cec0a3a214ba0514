//! Request-head limits: too many or too large headers get 431, a malformed request line gets 400,
//! and a client trickling its headers (slowloris) is cut off after `header_read_timeout`. None of
//! these requests reaches the upstream.

use std::time::Duration;

use anyhow::{Result, ensure};
use proxlet_tests::support::{curl::Curl, raw::RawConn, sidecar::Sidecar, upstream::Upstream};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

fn many_headers(curl: Curl, count: usize) -> Curl {
    (0..count).fold(curl, |curl, i| {
        curl.header(&format!("x-extra-{i}: value-{i}"))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_is_431() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_headers", 20)
        .start()
        .await?;
    let url = sidecar.url("/echo");

    let fine = many_headers(Curl::new(url.clone()).http1(), 10)
        .run()
        .await?;
    ensure!(fine.status == 200, "10 extra headers got {}", fine.status);
    let over = many_headers(Curl::new(url).http1(), 40).run().await?;
    ensure!(
        over.status == 431,
        "40 headers over a limit of 20 got {} (curl: {})",
        over.status,
        over.stderr
    );
    ensure!(
        upstream.requests() == 1,
        "{} requests reached the upstream, want only the first",
        upstream.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_headers_over_http2_is_431_from_the_sidecar() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_headers", 20)
        .start()
        .await?;
    let url = sidecar.url("/echo");

    let fine = many_headers(Curl::new(url.clone()).h2c(), 10).run().await?;
    ensure!(
        fine.status == 200,
        "10 extra headers over h2c got {}",
        fine.status
    );
    let over = many_headers(Curl::new(url).h2c(), 40).run().await?;
    ensure!(
        over.status == 431,
        "40 headers over h2c got {}",
        over.status
    );
    ensure!(
        over.header("proxlet-error") == Some("headers-too-large"),
        "the 431 is not marked as the sidecar's own: {:?}",
        over.header("proxlet-error")
    );
    ensure!(
        upstream.requests() == 1,
        "{} requests reached the upstream, want only the first",
        upstream.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_headers_is_431() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_header_bytes", 8192)
        .start()
        .await?;
    let url = sidecar.url("/echo");

    let fine = Curl::new(url.clone())
        .http1()
        .header(&format!("x-big: {}", "a".repeat(2048)))
        .run()
        .await?;
    ensure!(fine.status == 200, "a 2 KiB header got {}", fine.status);
    let over = Curl::new(url)
        .http1()
        .header(&format!("x-big: {}", "a".repeat(16 * 1024)))
        .run()
        .await?;
    ensure!(
        over.status == 431,
        "a 16 KiB header over an 8 KiB limit got {} (curl: {})",
        over.status,
        over.stderr
    );
    ensure!(
        upstream.requests() == 1,
        "{} requests reached the upstream, want only the first",
        upstream.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn too_large_headers_over_h2c_is_431() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.max_header_bytes", 8192)
        .start()
        .await?;
    let over = Curl::new(sidecar.url("/echo"))
        .h2c()
        .header(&format!("x-big: {}", "a".repeat(16 * 1024)))
        .run()
        .await?;
    ensure!(
        over.status == 431,
        "a 16 KiB header over h2c got {} (curl: {})",
        over.status,
        over.stderr
    );
    ensure!(
        upstream.requests() == 0,
        "the oversized request reached the upstream"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_request_line_is_400() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    for probe in [
        &b"GET /echo HTTP/1.1 trailing-junk\r\nHost: x\r\n\r\n"[..],
        b"GET\r\nHost: x\r\n\r\n",
        b"G@T /echo HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let mut conn = RawConn::connect(sidecar.addr()).await?;
        conn.send(probe).await?;
        let head = conn.read_head(Duration::from_secs(5)).await?;
        ensure!(
            head.status == 400,
            "{:?} got {}",
            String::from_utf8_lossy(probe),
            head.status
        );
    }
    ensure!(
        upstream.requests() == 0,
        "a malformed request reached the upstream"
    );
    Ok(())
}

/// Sends a request head one byte every 200 ms; returns what came back and when the connection was
/// closed, measured from the connect.
async fn slowloris(stream: TcpStream) -> Result<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    let trickle = tokio::spawn(async move {
        let head = b"GET /echo HTTP/1.1\r\nHost: slow.test\r\nX-Slow: ";
        let bytes = head.iter().copied().chain(std::iter::repeat(b'a')).take(60);
        for byte in bytes {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut received = Vec::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), reader.read_to_end(&mut received)).await;
    let elapsed = started.elapsed();
    trickle.abort();
    ensure!(
        read.is_ok(),
        "the slow client was still connected after 10 s"
    );
    Ok((received, elapsed))
}

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_is_cut_off_after_header_read_timeout() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("limits.header_read_timeout", "1s")
        .start()
        .await?;
    let (received, elapsed) = slowloris(TcpStream::connect(sidecar.addr()).await?).await?;
    let text = String::from_utf8_lossy(&received);
    ensure!(
        received.is_empty() || text.starts_with("HTTP/1.1 408"),
        "the slow client got {text:?}, want nothing or a 408"
    );
    ensure!(
        elapsed >= Duration::from_millis(900),
        "cut off after {elapsed:?}, before the 1 s timeout"
    );
    ensure!(
        elapsed <= Duration::from_millis(2500),
        "cut off only after {elapsed:?} with a 1 s timeout"
    );
    ensure!(
        upstream.requests() == 0,
        "the slow request reached the upstream"
    );

    let after = Curl::new(sidecar.url("/echo")).http1().run().await?;
    ensure!(
        after.status == 200,
        "a normal request after the slowloris got {}",
        after.status
    );
    Ok(())
}
