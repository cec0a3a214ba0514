//! Loading plugins: the `noop` fixture under h2load, plugins given on the command line, and
//! modules the sidecar must refuse at start-up (or leave out, when they may fail open).

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::Curl,
    h2load::H2load,
    plugins::{self, Plugin},
    prom,
    sidecar::{Sidecar, SidecarBuilder},
    upstream::Upstream,
    wait,
};

const REQUESTS: u64 = 2000;
const EXIT_WITHIN: Duration = Duration::from_secs(20);

async fn noop_under_load(load: H2load, upstream: &Upstream, sidecar: &Sidecar) -> Result<()> {
    load.requests(REQUESTS)
        .clients(10)
        .streams(10)
        .run()
        .await?
        .all_succeeded(REQUESTS)?;
    ensure!(
        upstream.requests() == REQUESTS,
        "the upstream saw {}",
        upstream.requests()
    );
    let status = wait::until(
        "the noop plugin to have seen every request",
        Duration::from_secs(5),
        || async move {
            let status = plugins::plugin(sidecar, "noop").await.ok()?;
            (status.counters.request_headers_calls >= REQUESTS).then_some(status)
        },
    )
    .await?;
    ensure!(
        status.counters.request_headers_calls == REQUESTS
            && status.counters.response_headers_calls == REQUESTS
            && status.counters.traps == 0
            && status.counters.timeouts == 0,
        "{:?}",
        status.counters
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn noop_plugin_under_h2load_over_h2c() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&Plugin::new("noop")?)
        .start()
        .await?;
    noop_under_load(H2load::new(sidecar.url("/bytes/100")), &upstream, &sidecar).await
}

#[tokio::test(flavor = "multi_thread")]
async fn noop_plugin_under_h2load_over_http1() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&Plugin::new("noop")?)
        .start()
        .await?;
    noop_under_load(
        H2load::new(sidecar.url("/bytes/100")).h1(),
        &upstream,
        &sidecar,
    )
    .await
}

/// `sha256:<hex>` of the file at `path`, from `sha256sum`.
fn sha256(path: &Path) -> Result<String> {
    let output = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .context("run sha256sum")?;
    ensure!(output.status.success(), "sha256sum {}", path.display());
    let text = String::from_utf8_lossy(&output.stdout);
    let hex = text.split_whitespace().next().context("no digest")?;
    Ok(format!("sha256:{hex}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_from_the_command_line() -> Result<()> {
    let upstream = Upstream::start().await?;
    let dir = tempfile::tempdir()?;
    let template_config = dir.path().join("template.json");
    std::fs::write(
        &template_config,
        r#"{"header": "x-from-file", "value": "yes"}"#,
    )?;
    let (modifier, template) = (
        plugins::wasm("header-modifier")?,
        plugins::wasm("template")?,
    );
    let mut from_file = OsString::from("@");
    from_file.push(&template_config);
    let sidecar = Sidecar::builder(upstream.addr())
        .flags_only()
        .args([
            OsString::from("--plugin"),
            modifier.clone().into(),
            "--plugin-config".into(),
            r#"{"request": {"set": {"x-env": "cli"}}}"#.into(),
            "--plugin".into(),
            template.clone().into(),
            "--plugin-config".into(),
            from_file,
            "--plugin-root-id".into(),
            "tpl-root".into(),
        ])
        .start()
        .await?;

    let reply = Curl::new(sidecar.url("/bytes/1")).http1().run().await?;
    reply.ok()?;
    ensure!(
        reply.status == 200 && reply.header("x-from-file") == Some("yes"),
        "{} {:?}",
        reply.status,
        reply.headers
    );
    let seen = upstream.last().context("nothing reached the upstream")?;
    ensure!(
        seen.header("x-env") == Some("cli"),
        "x-env: {:?}",
        seen.header("x-env")
    );

    let listed = plugins::plugins(&sidecar).await?;
    let mut names: Vec<&str> = listed.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    ensure!(
        names == ["header-modifier", "template"],
        "plugins: {names:?}"
    );
    let metrics = sidecar.metrics().await?;
    for (name, path, root_id) in [
        // No --plugin-root-id: Envoy's default, the empty root id.
        ("header-modifier", &modifier, ""),
        ("template", &template, "tpl-root"),
    ] {
        let status = plugins::plugin(&sidecar, name).await?;
        let digest = sha256(path)?;
        ensure!(
            status.root_id == root_id
                && Path::new(&status.source) == path.as_path()
                && status.digest == digest
                && status.abi == "0.2.1"
                && status.failure_policy == "FailClosed"
                && status.phase.is_none()
                && status.priority == 0
                && status.state == "running"
                && status.last_error.is_none(),
            "want root_id {root_id}, source {}, digest {digest}, abi 0.2.1, FailClosed, \
             running; got {status:?}",
            path.display()
        );
        // The label's form (with or without `sha256:`) is not specified; its hash is.
        let info = prom::parse(&metrics)?.into_iter().find(|s| {
            s.name == "proxlet_plugin_info"
                && s.labels.get("plugin").map(String::as_str) == Some(name)
        });
        let info = info.with_context(|| format!("no proxlet_plugin_info for {name}"))?;
        let label = info.labels.get("digest").map(String::as_str).unwrap_or("");
        ensure!(
            info.value == 1.0
                && info.labels.get("abi").map(String::as_str) == Some("0.2.1")
                && label.trim_start_matches("sha256:") == digest.trim_start_matches("sha256:"),
            "want proxlet_plugin_info for {name} with digest {digest} and abi 0.2.1: {info:?}"
        );
    }
    Ok(())
}

/// A file of 4 KiB of pseudo-random bytes (a fixed xorshift sequence, so runs are repeatable).
fn random_module(dir: &Path) -> Result<PathBuf> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let path = dir.join("garbage.wasm");
    std::fs::write(&path, bytes)?;
    Ok(path)
}

/// The smallest valid module: the header and nothing else, so no ABI export.
fn bare_module(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("bare.wasm");
    std::fs::write(&path, b"\0asm\x01\0\0\0")?;
    Ok(path)
}

fn expect_refused(output: &Output, message: &str) -> Result<()> {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        !output.status.success(),
        "the sidecar accepted the module; output:\n{text}"
    );
    ensure!(
        text.contains(message),
        "the output does not say {message:?}:\n{text}"
    );
    Ok(())
}

async fn refused_in_file(module: &Path, name: &str, message: &str) -> Result<()> {
    let upstream = Upstream::start().await?;
    let output = Sidecar::builder(upstream.addr())
        .plugin(&Plugin::at(name, module))
        .run_to_exit(EXIT_WITHIN)
        .await?;
    expect_refused(&output, message).context("in the configuration file")?;
    let output = Sidecar::builder(upstream.addr())
        .flags_only()
        .args([OsString::from("--plugin"), module.into()])
        .run_to_exit(EXIT_WITHIN)
        .await?;
    expect_refused(&output, message).context("with --plugin")
}

#[tokio::test(flavor = "multi_thread")]
async fn module_of_random_bytes_stops_the_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let module = random_module(dir.path())?;
    refused_in_file(
        &module,
        "garbage",
        "plugin garbage: not a WebAssembly module",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn module_without_the_abi_export_stops_the_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let module = bare_module(dir.path())?;
    refused_in_file(
        &module,
        "bare",
        "plugin bare: exports neither proxy_abi_version_0_2_1 nor proxy_abi_version_0_2_0 \
         (found no proxy_abi_version_* export)",
    )
    .await
}

async fn left_out_when_failing_open(module: &Path, name: &str) -> Result<()> {
    let upstream = Upstream::start().await?;
    let builder: SidecarBuilder =
        Sidecar::builder(upstream.addr()).plugin(&Plugin::at(name, module).fail_open());
    let sidecar = builder.start().await?;
    let listed = plugins::plugins(&sidecar).await?;
    ensure!(listed.is_empty(), "/api/plugins lists {listed:?}");
    let reply = Curl::new(sidecar.url("/bytes/3")).h2c().run().await?;
    reply.ok()?;
    ensure!(reply.status == 200, "a request got {}", reply.status);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn module_of_random_bytes_failing_open_is_left_out() -> Result<()> {
    let dir = tempfile::tempdir()?;
    left_out_when_failing_open(&random_module(dir.path())?, "garbage").await
}

#[tokio::test(flavor = "multi_thread")]
async fn module_without_the_abi_export_failing_open_is_left_out() -> Result<()> {
    let dir = tempfile::tempdir()?;
    left_out_when_failing_open(&bare_module(dir.path())?, "bare").await
}
