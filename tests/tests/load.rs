//! h2load through the sidecar, over h2c and HTTP/1.1 (pipelined): every request succeeds.

use std::{process::Stdio, time::Duration};

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{prom, sidecar::Sidecar, upstream::Upstream, wait};
use tokio::process::Command;

const REQUESTS: u64 = 2000;

/// Counts from h2load's `requests:` and `status codes:` lines.
#[derive(Debug, Default, PartialEq)]
struct Summary {
    succeeded: u64,
    failed: u64,
    errored: u64,
    timeout: u64,
    status_2xx: u64,
}

fn count_before(line: &str, word: &str) -> Option<u64> {
    let words: Vec<&str> = line
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let at = words.iter().position(|w| *w == word)?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

fn summarize(output: &str) -> Result<Summary> {
    let requests = output
        .lines()
        .find(|l| l.starts_with("requests:"))
        .context("no `requests:` line")?;
    let statuses = output
        .lines()
        .find(|l| l.starts_with("status codes:"))
        .context("no `status codes:` line")?;
    let get = |line: &str, word: &str| {
        count_before(line, word).with_context(|| format!("no `{word}` in {line:?}"))
    };
    Ok(Summary {
        succeeded: get(requests, "succeeded")?,
        failed: get(requests, "failed")?,
        errored: get(requests, "errored")?,
        timeout: get(requests, "timeout")?,
        status_2xx: get(statuses, "2xx")?,
    })
}

async fn h2load(extra: &[&str], url: &str) -> Result<String> {
    let n = REQUESTS.to_string();
    let child = Command::new("h2load")
        .args(["-n", &n, "-c", "10", "-m", "10"])
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run h2load: install the `nghttp2-client` package")?;
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .context("h2load did not finish within 120 s")??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "h2load exited {}:\n{text}",
        output.status
    );
    Ok(text)
}

async fn load(extra: &[&str]) -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).start().await?;
    let output = h2load(extra, &sidecar.url("/bytes/100")).await?;
    eprintln!("{output}");
    let summary = summarize(&output)?;
    let want = Summary {
        succeeded: REQUESTS,
        status_2xx: REQUESTS,
        ..Summary::default()
    };
    ensure!(
        summary == want,
        "h2load {extra:?}: {summary:?}, want {want:?}:\n{output}"
    );
    ensure!(
        upstream.requests() == REQUESTS,
        "the upstream saw {} requests",
        upstream.requests()
    );
    let proxy = &sidecar;
    wait::until_true(
        "proxlet_requests_total to count every request",
        Duration::from_secs(3),
        || async move {
            let text = proxy.metrics().await.unwrap_or_default();
            prom::sum(&text, "proxlet_requests_total", &[]).is_ok_and(|n| n == REQUESTS as f64)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn h2load_over_h2c_all_succeed() -> Result<()> {
    load(&[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn h2load_over_http1_pipelined_all_succeed() -> Result<()> {
    load(&["--h1"]).await
}

#[test]
fn summary_is_read_from_h2load_output() -> Result<()> {
    let output = "requests: 2000 total, 2000 started, 2000 done, 1990 succeeded, 10 failed, 10 errored, 0 timeout\n\
                  status codes: 1990 2xx, 0 3xx, 0 4xx, 0 5xx\n";
    let summary = summarize(output)?;
    ensure!(
        summary
            == Summary {
                succeeded: 1990,
                failed: 10,
                errored: 10,
                timeout: 0,
                status_2xx: 1990
            }
    );
    Ok(())
}
