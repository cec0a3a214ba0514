//! Request-smuggling probes over raw TCP. Each sends a request whose framing is ambiguous or
//! malformed, with a second request (`GET /smuggled`) hidden where one reading of the framing
//! would find it. The sidecar must answer 400 (or close the connection) and forward nothing: the
//! upstream sees only the well-formed request sent afterwards on a new connection.

use std::time::Duration;

use anyhow::{Result, ensure};
use proxlet_tests::support::{curl::Curl, raw::RawConn, sidecar::Sidecar, upstream::Upstream};

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: probe.test\r\n\r\n";

async fn assert_rejected(name: &str, probe: &[u8]) -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let mut conn = RawConn::connect(sidecar.addr()).await?;
    conn.send(probe).await?;
    let drained = conn.read_until_close(Duration::from_secs(5)).await?;
    let text = String::from_utf8_lossy(&drained.bytes);
    ensure!(
        drained.statuses.is_empty() || drained.statuses == [400],
        "{name}: want one 400 or a closed connection, got statuses {:?}:\n{text}",
        drained.statuses
    );

    let control = Curl::new(sidecar.url("/headers")).http1().run().await?;
    ensure!(
        control.status == 200,
        "{name}: a well-formed request afterwards got {}",
        control.status
    );
    let paths = upstream.paths();
    ensure!(
        paths == ["/headers"],
        "{name}: the upstream saw {paths:?}, want only the well-formed [\"/headers\"] sent afterwards"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn content_length_with_transfer_encoding_is_rejected() -> Result<()> {
    // Read as chunked, the body ends at `0\r\n\r\n` and /smuggled is a second request; read by
    // Content-Length, /smuggled is body.
    let body = format!("0\r\n\r\n{SMUGGLED}");
    let probe = format!(
        "POST /sink HTTP/1.1\r\nHost: probe.test\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        body.len()
    );
    assert_rejected("CL + TE", probe.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_encoding_before_content_length_is_rejected() -> Result<()> {
    let body = format!("0\r\n\r\n{SMUGGLED}");
    let probe = format!(
        "POST /sink HTTP/1.1\r\nHost: probe.test\r\nTransfer-Encoding: chunked\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_rejected("TE + CL", probe.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn differing_duplicate_content_length_is_rejected() -> Result<()> {
    let body = format!("hello{SMUGGLED}");
    let probe = format!(
        "POST /sink HTTP/1.1\r\nHost: probe.test\r\nContent-Length: 5\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_rejected("duplicate Content-Length", probe.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_chunk_size_is_rejected() -> Result<()> {
    let probe = format!(
        "POST /sink HTTP/1.1\r\nHost: probe.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n{SMUGGLED}"
    );
    assert_rejected("bad chunk size", probe.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn obs_fold_header_is_rejected() -> Result<()> {
    let probe = format!(
        "GET /headers HTTP/1.1\r\nHost: probe.test\r\nX-Folded: first\r\n second\r\n\r\n{SMUGGLED}"
    );
    assert_rejected("obs-fold", probe.as_bytes()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn transfer_encoding_not_ending_in_chunked_is_rejected() -> Result<()> {
    let probe = format!(
        "POST /sink HTTP/1.1\r\nHost: probe.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n{SMUGGLED}"
    );
    assert_rejected("TE chunked, identity", probe.as_bytes()).await
}
