//! What a misbehaving plugin costs: the `chaos` fixture traps, spins, exhausts its memory, probes
//! the filesystem and the environment, and fails its start. Each failure must cost only the
//! request that caused it (a 503 when FailClosed, a skipped plugin when FailOpen), be counted,
//! and leave the sidecar serving.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::{Curl, CurlReply},
    h2load::H2load,
    plugins::{self, Plugin, PluginStatus},
    prom,
    sidecar::Sidecar,
    upstream::Upstream,
    wait,
};
use serde_json::json;
use tokio::time::Instant;

async fn start(upstream: &Upstream, plugin: &Plugin) -> Result<Sidecar> {
    Sidecar::builder(upstream.addr())
        .plugin(plugin)
        .start()
        .await
}

/// A GET of `/bytes/10` with `x-chaos: mode` (none when `mode` is empty).
async fn chaos(sidecar: &Sidecar, mode: &str) -> Result<CurlReply> {
    let mut curl = Curl::new(sidecar.url("/bytes/10")).http1();
    if !mode.is_empty() {
        curl = curl.header(&format!("x-chaos: {mode}"));
    }
    let reply = curl.run().await?;
    reply.ok()?;
    Ok(reply)
}

fn expect_plugin_failed(reply: &CurlReply) -> Result<()> {
    ensure!(
        reply.status == 503 && reply.header("proxlet-error") == Some("plugin-failed"),
        "want 503 with proxlet-error: plugin-failed; got {} {:?} {:?}",
        reply.status,
        reply.headers,
        reply.text()
    );
    Ok(())
}

/// Fails unless a plain request (no `x-chaos`) gets the upstream's 200.
async fn expect_serving(sidecar: &Sidecar) -> Result<()> {
    let reply = chaos(sidecar, "").await?;
    ensure!(
        reply.status == 200 && reply.body.len() == 10,
        "a plain request after the failure got {} {:?}",
        reply.status,
        reply.text()
    );
    Ok(())
}

/// The chaos plugin's status once `done` holds for it (counters are updated as the request
/// ends), or an error showing the last status.
async fn chaos_status(
    sidecar: &Sidecar,
    what: &str,
    done: impl Fn(&PluginStatus) -> bool,
) -> Result<PluginStatus> {
    let done = &done;
    let waited = wait::until(what, Duration::from_secs(5), || async move {
        let status = plugins::plugin(sidecar, "chaos").await.ok()?;
        done(&status).then_some(status)
    })
    .await;
    match waited {
        Ok(status) => Ok(status),
        Err(error) => Err(error.context(format!(
            "last status: {:?}",
            plugins::plugin(sidecar, "chaos").await
        ))),
    }
}

async fn metric(sidecar: &Sidecar, name: &str) -> Result<f64> {
    prom::sum(&sidecar.metrics().await?, name, &[("plugin", "chaos")])
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_fails_the_request_and_the_instance_is_replaced() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("chaos")?).await?;

    expect_plugin_failed(&chaos(&sidecar, "trap").await?)?;
    ensure!(
        upstream.requests() == 0,
        "the trapped request went upstream"
    );
    expect_serving(&sidecar).await?;

    let status = chaos_status(&sidecar, "a trap counted", |s| s.counters.traps >= 1).await?;
    ensure!(
        status.counters.traps == 1 && status.state == "running",
        "{status:?}"
    );
    ensure!(metric(&sidecar, "proxlet_plugin_traps_total").await? == 1.0);
    let panic = plugins::wait_for_log(&sidecar, "chaos", "the panic message", |line| {
        line.message.contains("chaos: trap requested")
    })
    .await?;
    ensure!(
        panic.level == "critical",
        "the panic was logged as {panic:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn spinning_hook_is_stopped_at_the_time_cap() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("chaos")?.set("limits.hook_timeout", "20ms");
    let sidecar = start(&upstream, &plugin).await?;

    let started = Instant::now();
    let reply = chaos(&sidecar, "spin").await?;
    let elapsed = started.elapsed();
    expect_plugin_failed(&reply)?;
    ensure!(
        elapsed < Duration::from_millis(500),
        "a 20ms hook cap answered after {elapsed:?}"
    );
    expect_serving(&sidecar).await?;

    let status = chaos_status(&sidecar, "a timeout counted", |s| s.counters.timeouts >= 1).await?;
    ensure!(status.counters.timeouts == 1, "{:?}", status.counters);
    ensure!(metric(&sidecar, "proxlet_plugin_timeouts_total").await? == 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn runaway_allocation_hits_the_memory_cap() -> Result<()> {
    let upstream = Upstream::start().await?;
    // Writing 16 MiB byte by byte takes longer than the default 20ms hook cap: give the hook
    // time, so that the memory cap is what stops it.
    let plugin = Plugin::new("chaos")?
        .set("limits.memory", "16Mi")
        .set("limits.hook_timeout", "2s");
    let sidecar = start(&upstream, &plugin).await?;

    expect_plugin_failed(&chaos(&sidecar, "oom").await?)?;
    expect_serving(&sidecar).await?;
    let status = chaos_status(&sidecar, "a memory cap hit counted", |s| {
        s.counters.memory_cap_hits >= 1
    })
    .await?;
    ensure!(
        status.state == "running" && status.counters.timeouts == 0,
        "{status:?}"
    );
    ensure!(metric(&sidecar, "proxlet_plugin_memory_cap_hits_total").await? >= 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_has_no_filesystem() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("chaos")?).await?;
    let host_file = std::path::Path::new("/tmp/x");
    let before = std::fs::metadata(host_file).and_then(|m| m.modified()).ok();

    let reply = chaos(&sidecar, "fs").await?;
    ensure!(reply.status == 200, "{} {:?}", reply.status, reply.text());
    let report = reply.header("x-chaos-fs").context("no x-chaos-fs report")?;
    let outcome = |op: &str| {
        report
            .split("; ")
            .find_map(|part| part.strip_prefix(&format!("{op}=")))
            .map(str::to_owned)
    };
    let (read, create) = (outcome("read"), outcome("create"));
    ensure!(
        read.as_deref().is_some_and(|r| r != "ok") && create.as_deref().is_some_and(|c| c != "ok"),
        "reading /etc/passwd and creating /tmp/x must both fail; the plugin reports {report:?}"
    );
    let after = std::fs::metadata(host_file).and_then(|m| m.modified()).ok();
    ensure!(
        before == after,
        "the host's /tmp/x changed: {before:?} → {after:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_sees_only_its_configured_environment() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("chaos")?
        .config(json!({"env": "GREETING"}))
        .env("GREETING", "hi");
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .env("PROXLET_TEST_SIDECAR_ONLY", "leaked")
        .start()
        .await?;
    let reply = chaos(&sidecar, "env").await?;
    ensure!(
        reply.status == 200
            && reply.header("x-chaos-env-count") == Some("1")
            && reply.header("x-chaos-env-value") == Some("hi"),
        "want count 1 and value hi; got {} {:?}",
        reply.status,
        reply.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_inherits_nothing_from_the_sidecar_environment() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("chaos")?.config(json!({"env": "PROXLET_TEST_SIDECAR_ONLY"}));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .env("PROXLET_TEST_SIDECAR_ONLY", "leaked")
        .start()
        .await?;
    let reply = chaos(&sidecar, "env").await?;
    ensure!(
        reply.status == 200
            && reply.header("x-chaos-env-count") == Some("0")
            && reply.header("x-chaos-env-value").is_none(),
        "the plugin sees the sidecar's environment: {} {:?}",
        reply.status,
        reply.headers
    );
    Ok(())
}

async fn post_body_trap(sidecar: &Sidecar, len: usize) -> Result<CurlReply> {
    let body = "b".repeat(len);
    let reply = Curl::new(sidecar.url("/sink"))
        .h2c()
        .header("x-chaos: body-trap")
        .args(["--data-binary", body.as_str()])
        .run()
        .await?;
    reply.ok()?;
    Ok(reply)
}

#[tokio::test(flavor = "multi_thread")]
async fn trap_in_a_body_hook_fails_the_request() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("chaos")?.body()).await?;

    let small = post_body_trap(&sidecar, 512).await?;
    ensure!(
        small.status == 200 && small.text().contains(r#""bytes":512"#),
        "a body under the trap size: {} {:?}",
        small.status,
        small.text()
    );
    expect_plugin_failed(&post_body_trap(&sidecar, 4096).await?)?;
    expect_serving(&sidecar).await?;
    ensure!(
        upstream.sunk() == [512],
        "the upstream read these bodies to the end: {:?}",
        upstream.sunk()
    );
    let status = chaos_status(&sidecar, "a trap counted", |s| s.counters.traps >= 1).await?;
    ensure!(status.counters.traps == 1, "{:?}", status.counters);
    plugins::wait_for_log(&sidecar, "chaos", "the body panic message", |line| {
        line.level == "critical" && line.message.contains("chaos: request body over 1024 bytes")
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn body_hooks_do_not_run_without_body_permission() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("chaos")?).await?;
    let reply = post_body_trap(&sidecar, 4096).await?;
    ensure!(
        reply.status == 200 && reply.text().contains(r#""bytes":4096"#),
        "{} {:?} {:?}",
        reply.status,
        reply.headers,
        reply.text()
    );
    let status = plugins::plugin(&sidecar, "chaos").await?;
    ensure!(status.counters.traps == 0, "{:?}", status.counters);
    Ok(())
}

fn failing_configure() -> Result<Plugin> {
    Ok(Plugin::new("chaos")?.config(json!({"fail_configure": true})))
}

fn expect_failed_start(status: &PluginStatus) -> Result<()> {
    ensure!(
        status.state == "failed"
            && status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("on_configure")),
        "want state failed and a last_error naming on_configure: {status:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_configure_with_fail_closed_refuses_every_request() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &failing_configure()?).await?;
    for path in ["/bytes/1", "/echo", "/headers"] {
        let http1 = Curl::new(sidecar.url(path)).http1().run().await?;
        expect_plugin_failed(&http1).with_context(|| format!("GET {path} over HTTP/1.1"))?;
        let h2c = Curl::new(sidecar.url(path)).h2c().run().await?;
        expect_plugin_failed(&h2c).with_context(|| format!("GET {path} over h2c"))?;
    }
    ensure!(upstream.requests() == 0, "requests went upstream");
    expect_failed_start(&plugins::plugin(&sidecar, "chaos").await?)
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_configure_with_fail_open_skips_the_plugin() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &failing_configure()?.fail_open()).await?;
    for _ in 0..3 {
        let reply = chaos(&sidecar, "trap").await?;
        ensure!(
            reply.status == 200 && reply.body.len() == 10,
            "a request past a FailOpen plugin that never started: {} {:?}",
            reply.status,
            reply.text()
        );
    }
    ensure!(upstream.requests() == 3);
    let status = chaos_status(&sidecar, "3 fail-open skips", |s| {
        s.counters.fail_open_skips >= 3
    })
    .await?;
    ensure!(
        status.counters.fail_open_skips == 3,
        "{:?}",
        status.counters
    );
    expect_failed_start(&status)?;
    ensure!(metric(&sidecar, "proxlet_plugin_fail_open_skips_total").await? == 3.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn traps_do_not_disturb_other_requests() -> Result<()> {
    const LOAD: u64 = 2000;
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("chaos")?).await?;
    let load = H2load::new(sidecar.url("/bytes/100"))
        .requests(LOAD)
        .clients(10)
        .streams(10);
    let load = tokio::spawn(async move { load.run().await });

    let mut traps = 0;
    while traps < 10 || !load.is_finished() {
        let reply = chaos(&sidecar, "trap").await?;
        expect_plugin_failed(&reply).with_context(|| format!("trap request {traps}"))?;
        traps += 1;
    }
    let summary = load.await??;
    summary
        .all_succeeded(LOAD)
        .with_context(|| format!("h2load alongside {traps} trapping requests"))?;
    let status = chaos_status(&sidecar, "every trap counted", |s| {
        s.counters.traps >= traps
    })
    .await?;
    ensure!(
        status.counters.traps == traps,
        "{traps} traps sent: {:?}",
        status.counters
    );
    Ok(())
}
