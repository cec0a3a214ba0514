//! Plugins written with the other official Proxy-Wasm SDKs, unchanged, in a real sidecar in front
//! of a real upstream, seen through curl and the admin API. Today: the AssemblyScript SDK
//! (`@solo-io/proxy-runtime`, ABI 0.2.0), with the plugin in `plugins/sdk/assemblyscript`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::{Curl, CurlReply, Protocol},
    plugins::{self, Plugin},
    prom,
    sidecar::Sidecar,
    upstream::Upstream,
};
use serde_yaml::Value;

/// The root id the AssemblyScript plugin registers.
const AS_ROOT_ID: &str = "as_policy";

/// The AssemblyScript plugin as its sample configuration (`sidecar.yaml` beside it) lists it:
/// the tests check what that configuration promises.
fn as_sample() -> Result<Plugin> {
    let module = plugins::sdk_wasm("assemblyscript")?;
    let dir = module
        .parent()
        .and_then(Path::parent)
        .context("the module is not in the plugin's build directory")?;
    let file = dir.join("sidecar.yaml");
    let text = std::fs::read_to_string(&file).with_context(|| format!("{}", file.display()))?;
    let yaml: Value = serde_yaml::from_str(&text).with_context(|| format!("{}", file.display()))?;
    let entry = yaml["plugins"][0]
        .as_mapping()
        .with_context(|| format!("no plugins[0] in {}", file.display()))?;
    let path = entry
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default();
    ensure!(
        module.ends_with(path) && !path.is_empty(),
        "the sample's path {path:?} is not the built module {}",
        module.display()
    );
    let mut plugin = Plugin::at("as-policy", &module);
    for (key, value) in entry {
        match key.as_str() {
            Some("path") | None => {}
            Some(key) => plugin = plugin.set(key, value.clone()),
        }
    }
    Ok(plugin)
}

/// Fails unless curl got a `status` answer over `protocol`; the message shows the whole reply.
fn expect_status(reply: &CurlReply, status: u16, protocol: Protocol) -> Result<()> {
    reply.expect_status(status)?;
    ensure!(
        reply.http_version == protocol.curl_version(),
        "want HTTP/{}, got HTTP/{}",
        protocol.curl_version(),
        reply.http_version
    );
    Ok(())
}

/// A refusal: 403 with the plugin's body and header, and the configured response headers (a
/// local response goes back through the answering plugin's response hook).
fn expect_refused(reply: &CurlReply, reason: &str, protocol: Protocol) -> Result<()> {
    expect_status(reply, 403, protocol)?;
    ensure!(
        reply.text() == format!("refused: {reason}\n"),
        "body {:?}",
        reply.text()
    );
    ensure!(
        reply.header("x-refused-by") == Some(AS_ROOT_ID),
        "{:?}",
        reply.headers
    );
    ensure!(
        reply.header_values("x-served-by") == ["proxlet"],
        "{:?}",
        reply.headers
    );
    Ok(())
}

async fn assemblyscript_plugin_over(protocol: Protocol) -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = as_sample()?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;

    // 1: passes, with its request and response headers edited.
    let reply = protocol
        .curl(sidecar.url("/response-headers?x-served-by=upstream&x-sdk=upstream&x-kept=yes"))
        .header("x-env: prod")
        .header("x-tag: client")
        .run()
        .await?;
    expect_status(&reply, 200, protocol)?;
    let seen = upstream
        .last()
        .context("the request did not reach the upstream")?;
    for (name, want) in [
        ("x-env", vec!["dev"]),
        ("x-tag", vec!["client", "as-policy"]),
        ("x-request-number", vec!["1"]),
    ] {
        ensure!(
            seen.header_all(name) == want,
            "upstream saw {name} {:?}, want {want:?}",
            seen.header_all(name)
        );
    }
    ensure!(
        reply.header_values("x-served-by") == ["proxlet"],
        "client got x-served-by {:?}",
        reply.header_values("x-served-by")
    );
    ensure!(
        reply.header_values("x-sdk") == ["upstream", "assemblyscript"],
        "client got x-sdk {:?}",
        reply.header_values("x-sdk")
    );
    ensure!(reply.header("x-kept") == Some("yes"), "{:?}", reply.headers);

    // 2 and 3: refused by path and by header, answered by the plugin without the upstream.
    let by_path = protocol.curl(sidecar.url("/admin/users")).run().await?;
    expect_refused(&by_path, "path /admin/users", protocol)?;
    let by_header = protocol
        .curl(sidecar.url("/echo"))
        .header("x-forbidden: 1")
        .run()
        .await?;
    expect_refused(&by_header, "header x-forbidden", protocol)?;
    ensure!(
        upstream.requests() == 1,
        "refused requests reached the upstream: {:?}",
        upstream.paths()
    );

    // 4: the request counter in shared data counted the refused requests too.
    let reply = protocol.curl(sidecar.url("/echo")).run().await?;
    expect_status(&reply, 200, protocol)?;
    let seen = upstream
        .last()
        .context("the request did not reach the upstream")?;
    ensure!(
        seen.header_all("x-request-number") == ["4"],
        "upstream saw x-request-number {:?}",
        seen.header_all("x-request-number")
    );

    // Its metrics, labelled with the plugin.
    let text = sidecar.metrics().await?;
    let labels = [("plugin", "as-policy")];
    for (name, want) in [
        ("proxlet_plugin_metric_policy_requests_total", 4.0),
        ("proxlet_plugin_metric_policy_refused_total", 2.0),
    ] {
        let got = prom::sum(&text, name, &labels)?;
        ensure!(
            got == want,
            "{name}{{plugin=\"as-policy\"}} is {got}, want {want}"
        );
    }

    // Its log: the configuration it read, the properties and headers it read per request.
    let authority = sidecar.addr().to_string();
    let configured = "as-policy configured: 2 request header rules, 2 response header rules, \
                      1 refused paths, 1 refused headers";
    let expected = [
        ("info", configured.to_owned()),
        (
            "info",
            format!(
                "#1 GET {authority}/response-headers?x-served-by=upstream&x-sdk=upstream&x-kept=yes"
            ),
        ),
        ("info", "#1 answered 200".to_owned()),
        ("warn", "#2 refused: path /admin/users".to_owned()),
        ("info", "#2 answered 403".to_owned()),
        ("warn", "#3 refused: header x-forbidden".to_owned()),
    ];
    for (level, message) in expected {
        let line = plugins::wait_for_log(&sidecar, "as-policy", &message, |line| {
            line.message == message
        })
        .await?;
        ensure!(line.level == level, "logged at {}: {line:?}", line.level);
    }

    // The admin API: ABI 0.2.0, running, the two local responses counted.
    let status = plugins::plugin(&sidecar, "as-policy").await?;
    ensure!(status.abi == "0.2.0", "abi {:?}", status.abi);
    ensure!(status.root_id == AS_ROOT_ID, "root_id {:?}", status.root_id);
    ensure!(
        status.state == "running" && status.last_error.is_none(),
        "{status:?}"
    );
    ensure!(
        status.counters.local_responses == 2 && status.counters.traps == 0,
        "{:?}",
        status.counters
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_plugin_works_over_http1() -> Result<()> {
    assemblyscript_plugin_over(Protocol::Http1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_plugin_works_over_h2c() -> Result<()> {
    assemblyscript_plugin_over(Protocol::H2c).await
}

/// The SDK's own start-up checks reach the user: a root id the module did not register, and a
/// configuration its `on_configure` refuses.
#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_plugin_start_failures_are_explained() -> Result<()> {
    let upstream = Upstream::start().await?;
    let wrong_root = as_sample()?
        .name("as-unregistered")
        .set("root_id", "as-unregistered");
    let bad_config = as_sample()?
        .name("as-bad-config")
        .set("config", "deny-method TRACE\n");
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&wrong_root)
        .plugin(&bad_config)
        .start()
        .await?;

    let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
    reply.ok()?;
    ensure!(
        reply.status == 503 && reply.header("proxlet-error") == Some("plugin-failed"),
        "want the FailClosed answer, got {} {:?}",
        reply.status,
        reply.headers
    );
    ensure!(upstream.requests() == 0, "the request reached the upstream");

    for (name, error, logged) in [
        (
            "as-unregistered",
            "exited with code 255",
            "Missing root context factory for root id: as-unregistered",
        ),
        (
            "as-bad-config",
            "proxy_on_configure returned false",
            "invalid configuration: unknown directive or missing argument: deny-method TRACE",
        ),
    ] {
        let status = plugins::plugin(&sidecar, name).await?;
        ensure!(status.state == "failed", "{status:?}");
        ensure!(
            status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains(error)),
            "{name}: last_error {:?}, want it to mention {error:?}",
            status.last_error
        );
        plugins::wait_for_log(&sidecar, name, logged, |line| line.message.contains(logged)).await?;
    }
    Ok(())
}
