//! Hot reload under load: while h2load drives traffic through a plugin, the plugin is reloaded a
//! hundred times. No request fails, every reload swaps the chain, and memory stays flat.

use anyhow::{Result, ensure};
use proxlet_tests::support::{
    curl::Curl, h2load::H2load, plugins::Plugin, sidecar::Sidecar, upstream::Upstream,
};
use serde_json::json;

const RELOADS: usize = 100;
const REQUESTS: u64 = 20_000;

#[tokio::test(flavor = "multi_thread")]
async fn reloads_under_load_fail_no_request_and_keep_memory_flat() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin =
        Plugin::new("header-modifier")?.config(json!({"response": {"set": {"x-reloaded": "yes"}}}));
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;
    let reload_url = format!(
        "http://{}/api/plugins/header-modifier/reload",
        sidecar.admin_addr()
    );

    let load = H2load::new(sidecar.url("/echo"))
        .requests(REQUESTS)
        .clients(4)
        .streams(4);
    let load = tokio::spawn(async move { load.run().await });

    let mut baseline = None;
    for i in 0..RELOADS {
        let reply = Curl::new(reload_url.clone()).method("POST").run().await?;
        ensure!(
            reply.status == 200,
            "reload {i} answered {}: {}",
            reply.status,
            reply.text()
        );
        if i == 10 {
            baseline = Some(sidecar.memory()?.rss_kib);
        }
    }
    let after = sidecar.memory()?.rss_kib;
    let summary = load.await??;
    summary.all_succeeded(REQUESTS)?;

    // Instances of replaced chains are freed once their requests finish: past the first few
    // reloads (allocator warm-up), RSS does not grow with the number of reloads.
    let baseline = baseline.unwrap_or(after);
    ensure!(
        after <= baseline + 16 * 1024,
        "RSS grew from {baseline} KiB after 10 reloads to {after} KiB after {RELOADS}"
    );
    let metrics = sidecar.metrics().await?;
    let reloads = format!(
        "proxlet_plugin_reloads_total{{plugin=\"header-modifier\"}} {}",
        RELOADS + 1
    );
    ensure!(
        metrics.lines().any(|l| l == reloads),
        "want `{reloads}` in /metrics:\n{metrics}"
    );
    let check = Curl::new(sidecar.url("/echo")).run().await?;
    ensure!(
        check.header("x-reloaded") == Some("yes"),
        "the reloaded plugin still applies"
    );
    Ok(())
}
