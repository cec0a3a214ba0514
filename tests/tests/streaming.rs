//! Bodies stream through the sidecar: 1 GiB up and 1 GiB down arrive intact, and the sidecar's
//! peak resident memory stays small, so it never holds a body in memory. A client that stops
//! reading does not make the sidecar buffer the upstream's response either.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::Curl,
    pattern,
    raw::RawConn,
    sidecar::{Memory, Sidecar},
    upstream::Upstream,
};
use tokio::time::Instant;

const GIB: u64 = 1 << 30;
/// Bound on the sidecar's peak RSS (VmHWM) over a whole test.
const PEAK_LIMIT_KIB: u64 = 64 * 1024;
const TRANSFER_TIME: Duration = Duration::from_secs(300);

fn report(what: &str, memory: Memory) -> Result<()> {
    eprintln!(
        "{what}: sidecar RSS {} KiB, peak (VmHWM) {} KiB",
        memory.rss_kib, memory.peak_kib
    );
    ensure!(
        memory.peak_kib < PEAK_LIMIT_KIB,
        "{what}: sidecar peak RSS {} KiB is over the {PEAK_LIMIT_KIB} KiB bound",
        memory.peak_kib
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gib_downloads_stream_over_http1_and_h2c() -> Result<()> {
    let expected = tokio::task::spawn_blocking(|| pattern::checksum(GIB)).await?;
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    report("idle", sidecar.memory()?)?;
    let url = sidecar.url(&format!("/bytes/{GIB}"));
    for (name, curl) in [
        ("HTTP/1.1", Curl::new(url.clone()).http1()),
        ("h2c", Curl::new(url.clone()).h2c()),
    ] {
        let started = Instant::now();
        let reply = curl.checksum_only().max_time(TRANSFER_TIME).run().await?;
        reply.ok().with_context(|| format!("{name} download"))?;
        ensure!(reply.status == 200, "{name}: status {}", reply.status);
        ensure!(
            reply.checksum.len() == GIB,
            "{name}: got {} bytes",
            reply.checksum.len()
        );
        ensure!(
            reply.checksum.finish() == expected,
            "{name}: downloaded bytes differ"
        );
        eprintln!("{name}: 1 GiB down in {:?}", started.elapsed());
        report(&format!("after the {name} download"), sidecar.memory()?)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn one_gib_uploads_stream_over_http1_and_h2c() -> Result<()> {
    let expected = tokio::task::spawn_blocking(|| pattern::checksum(GIB)).await?;
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let url = sidecar.url("/sink");
    for (name, curl) in [
        ("HTTP/1.1", Curl::new(url.clone()).http1()),
        ("h2c", Curl::new(url.clone()).h2c()),
    ] {
        let started = Instant::now();
        let reply = curl.post_pattern(GIB).max_time(TRANSFER_TIME).run().await?;
        reply.ok().with_context(|| format!("{name} upload"))?;
        ensure!(
            reply.status == 200,
            "{name}: status {} body {:?}",
            reply.status,
            reply.text()
        );
        let sink: serde_json::Value = serde_json::from_slice(&reply.body).context("sink reply")?;
        ensure!(
            sink["bytes"] == GIB,
            "{name}: the upstream received {} bytes",
            sink["bytes"]
        );
        ensure!(
            sink["checksum"] == expected.as_str(),
            "{name}: the upstream received other bytes"
        );
        eprintln!("{name}: 1 GiB up in {:?}", started.elapsed());
        report(&format!("after the {name} upload"), sidecar.memory()?)?;
    }
    Ok(())
}

/// A client reads the head and 1 MiB of a 256 MiB response, then stops reading. For the next two
/// seconds the sidecar's RSS must stay under the bound: it must apply back-pressure to the
/// upstream rather than read the rest of the response into memory.
#[tokio::test(flavor = "multi_thread")]
async fn stalled_client_does_not_make_the_sidecar_buffer() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let mut conn = RawConn::connect(sidecar.addr()).await?;
    conn.send(b"GET /bytes/268435456 HTTP/1.1\r\nHost: stall.test\r\n\r\n")
        .await?;
    let head = conn.read_head(Duration::from_secs(5)).await?;
    ensure!(head.status == 200, "status {}", head.status);
    conn.read_exact(1024 * 1024, Duration::from_secs(10))
        .await?;
    let watch_until = Instant::now() + Duration::from_secs(2);
    let mut highest = 0;
    while Instant::now() < watch_until {
        let memory = sidecar.memory()?;
        highest = highest.max(memory.rss_kib);
        ensure!(
            memory.rss_kib < PEAK_LIMIT_KIB,
            "with a stalled client the sidecar grew to {} KiB RSS: it is buffering the response",
            memory.rss_kib
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("stalled client: sidecar RSS at most {highest} KiB");
    drop(conn);
    Ok(())
}
