//! The command line and the configuration file: errors name the bad field, `--version` works,
//! and flags or `PROXLET_*` variables are enough without a file (and override it).

use std::{net::SocketAddr, process::Output, time::Duration};

use anyhow::{Result, ensure};
use proxlet_tests::support::{
    curl::Curl,
    sidecar::{self, Sidecar},
    tls::TestCerts,
    upstream::Upstream,
};

const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Runs the binary on a configuration file holding `yaml`.
async fn run_with_config(yaml: &str) -> Result<Output> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml)?;
    sidecar::run_once(
        [std::ffi::OsString::from("--config"), path.into()],
        EXIT_WITHIN,
    )
    .await
}

fn expect_rejected(output: &Output, mentions: &[&str]) -> Result<()> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(
        !output.status.success(),
        "a bad configuration was accepted; stderr:\n{stderr}"
    );
    for word in mentions {
        ensure!(
            stderr.contains(word),
            "stderr does not mention `{word}`:\n{stderr}"
        );
    }
    Ok(())
}

fn free_addr() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn base_yaml() -> Result<String> {
    Ok(format!(
        "admin:\n  address: {}\nlistener:\n  address: {}\nupstream:\n  address: 127.0.0.1:9\n",
        free_addr()?,
        free_addr()?
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_field_is_rejected_by_name() -> Result<()> {
    let yaml = format!("{}limits:\n  max_conections: 5\n", base_yaml()?);
    expect_rejected(
        &run_with_config(&yaml).await?,
        &["limits", "max_conections"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_enum_value_is_rejected_by_field_path() -> Result<()> {
    let yaml = base_yaml()?.replace(
        "  address: 127.0.0.1:9\n",
        "  address: 127.0.0.1:9\n  protocol: http3\n",
    );
    expect_rejected(
        &run_with_config(&yaml).await?,
        &["upstream.protocol", "http3"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_duration_is_rejected_by_field_path() -> Result<()> {
    let yaml = format!(
        "{}limits:\n  header_read_timeout: ten seconds\n",
        base_yaml()?
    );
    expect_rejected(
        &run_with_config(&yaml).await?,
        &["limits.header_read_timeout"],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_upstream_is_rejected_by_name() -> Result<()> {
    let yaml = base_yaml()?.replace("upstream:\n  address: 127.0.0.1:9\n", "");
    expect_rejected(&run_with_config(&yaml).await?, &["upstream"])
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_flag_value_is_rejected() -> Result<()> {
    let output = sidecar::run_once(
        [
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--upstream",
            "127.0.0.1:9",
            "--upstream-protocol",
            "http3",
        ],
        EXIT_WITHIN,
    )
    .await?;
    expect_rejected(&output, &["upstream-protocol", "http3"])
}

#[tokio::test(flavor = "multi_thread")]
async fn version_flag_prints_the_version() -> Result<()> {
    let output = sidecar::run_once(["--version"], EXIT_WITHIN).await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "--version exited {}",
        output.status
    );
    let want = format!("proxlet-sidecar {}", env!("CARGO_PKG_VERSION"));
    ensure!(
        stdout.trim() == want,
        "--version printed {stdout:?}, want {want:?}"
    );
    Ok(())
}

async fn proxies(sidecar: &Sidecar, upstream: &Upstream) -> Result<()> {
    let before = upstream.requests();
    let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
    ensure!(
        reply.status == 200,
        "status {} (curl: {})",
        reply.status,
        reply.stderr
    );
    ensure!(
        upstream.requests() == before + 1,
        "the request did not reach the upstream"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_work_without_a_file() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .flags_only()
        .start()
        .await?;
    proxies(&sidecar, &upstream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_works_without_a_file() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr()).env_only().start().await?;
    proxies(&sidecar, &upstream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn flags_override_the_file() -> Result<()> {
    let upstream = Upstream::start().await?;
    let dead = free_addr()?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.address", dead.to_string())
        .args(["--upstream", &upstream.addr().to_string()])
        .start()
        .await?;
    proxies(&sidecar, &upstream).await
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_flags_serve_https() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let certs = TestCerts::generate(dir.path())?;
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .flags_only()
        .tls(&certs)
        .start()
        .await?;
    let reply = Curl::new(sidecar.url("/echo"))
        .h2_tls(&certs.cert)
        .run()
        .await?;
    reply.ok()?;
    ensure!(
        reply.status == 200 && reply.http_version == "2",
        "got {} over HTTP/{}",
        reply.status,
        reply.http_version
    );
    Ok(())
}

/// The contract's sample configuration, every field set, is accepted as documented.
#[tokio::test(flavor = "multi_thread")]
async fn every_documented_field_is_accepted() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .set("upstream.protocol", "auto")
        .set("upstream.connect_timeout", "1s")
        .set("upstream.response_timeout", "15s")
        .set("upstream.idle_timeout", "90s")
        .set("limits.header_read_timeout", "10s")
        .set("limits.max_header_bytes", 65536)
        .set("limits.max_headers", 100)
        .set("limits.idle_timeout", "300s")
        .set("limits.max_connections", 10000)
        .set("limits.max_concurrent_streams", 256)
        .set("limits.max_requests_in_flight", 10000)
        .set("forwarded.x_forwarded_for", true)
        .set("forwarded.x_forwarded_proto", true)
        .set("forwarded.x_forwarded_host", true)
        .set("shutdown.grace_period", "30s")
        .set("log.format", "json")
        .set("workers", 0)
        .start()
        .await?;
    proxies(&sidecar, &upstream).await
}
