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
        ("policy_requests_total", 4.0),
        ("policy_refused_total", 2.0),
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

/// The SDK's own hello-world built with the toolchain its 0.1.8 README names (assemblyscript
/// 0.14, its default runtime), on one instance: its default `onConfigure` passes the
/// configuration's size as the address of the size slot. Without a configuration it read a
/// stale size and failed to start; with one as long as its static data (6,854 bytes) the size
/// was written into its heap, and requests after the first trapped in the allocator. Each gets
/// its configuration, and every request its response header.
async fn assemblyscript_014_hello_world_with(config: Option<String>, want: &str) -> Result<()> {
    let upstream = Upstream::start().await?;
    let module = plugins::sdk_wasm("assemblyscript-0.14")?;
    let mut plugin = Plugin::at("as-hello", &module).set("root_id", "add_header");
    if let Some(config) = config {
        plugin = plugin.set("config", config);
    }
    let sidecar = Sidecar::builder(upstream.addr())
        .set("workers", 1)
        .plugin(&plugin)
        .start()
        .await?;
    let protocols = [Protocol::Http1, Protocol::H2c];
    for (i, protocol) in protocols.iter().cycle().take(6).enumerate() {
        let reply = protocol.curl(sidecar.url("/echo")).run().await?;
        expect_status(&reply, 200, *protocol).with_context(|| format!("request {}", i + 1))?;
        ensure!(
            reply.header("hello") == Some(want),
            "request {}: hello {:?}",
            i + 1,
            reply.header("hello").map(|h| h.len())
        );
    }
    let status = plugins::plugin(&sidecar, "as-hello").await?;
    ensure!(status.counters.traps == 0, "{status:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_014_hello_world_without_a_configuration() -> Result<()> {
    assemblyscript_014_hello_world_with(None, "world!").await
}

#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_014_hello_world_with_a_configuration_as_long_as_its_static_data()
-> Result<()> {
    let config = "v".repeat(6_900);
    assemblyscript_014_hello_world_with(Some(config.clone()), &config).await
}

/// Header values the upstream saw for `name`, request by request.
fn seen_values(upstream: &Upstream, name: &str) -> Vec<String> {
    upstream
        .seen()
        .iter()
        .filter_map(|r| r.header(name).map(str::to_owned))
        .collect()
}

/// The Go SDK request plugin, two instances: both start (and initialise the shared counter)
/// before traffic, so the count runs on across them; `time.Sleep` works within the hook's time
/// cap and past it is a time-out; a panic's text reaches the plugin log and `last_error`.
async fn go_plugin_over(protocol: Protocol) -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::at("go-headers", &plugins::go_wasm("headers")?)
        .set("limits.hook_timeout", "100ms")
        .shared_data();
    let sidecar = Sidecar::builder(upstream.addr())
        .set("workers", 2)
        .plugin(&plugin)
        .start()
        .await?;
    let status = plugins::plugin(&sidecar, "go-headers").await?;
    ensure!(status.instances == 2 && status.abi == "0.2.0", "{status:?}");
    let started = plugins::logs(&sidecar, "go-headers").await?;
    let initialised = started
        .iter()
        .filter(|l| l.message == "go-headers: counter initialised")
        .count();
    ensure!(
        initialised == 2,
        "instances started before traffic: {initialised}"
    );

    for _ in 0..4 {
        let reply = protocol.curl(sidecar.url("/echo")).run().await?;
        expect_status(&reply, 200, protocol)?;
        ensure!(
            reply.header("x-go-sdk") == Some("go"),
            "{:?}",
            reply.headers
        );
    }
    let counts = seen_values(&upstream, "x-go-count");
    ensure!(counts == ["1", "2", "3", "4"], "counts {counts:?}");

    let reply = protocol
        .curl(sidecar.url("/echo"))
        .header("x-go-sleep-ms: 10")
        .run()
        .await?;
    expect_status(&reply, 200, protocol)?;
    let slept: u64 = upstream
        .last()
        .and_then(|r| r.header("x-go-slept-ms").map(str::to_owned))
        .context("no x-go-slept-ms")?
        .parse()?;
    ensure!((10..100).contains(&slept), "slept {slept} ms");
    let reply = protocol
        .curl(sidecar.url("/echo"))
        .header("x-go-sleep-ms: 1000")
        .run()
        .await?;
    reply.expect_status(503)?;
    ensure!(
        plugins::plugin(&sidecar, "go-headers")
            .await?
            .counters
            .timeouts
            == 1,
        "the long sleep was not a time-out"
    );

    let reply = protocol
        .curl(sidecar.url("/echo"))
        .header("x-go-panic: boom")
        .run()
        .await?;
    reply.expect_status(503)?;
    plugins::wait_for_log(&sidecar, "go-headers", "the panic text", |l| {
        l.level == "error" && l.message == "panic: go-headers: boom"
    })
    .await?;
    let status = plugins::plugin(&sidecar, "go-headers").await?;
    let error = status.last_error.clone().unwrap_or_default();
    ensure!(
        error.contains("request_headers hook failed") && error.contains("panic: go-headers: boom"),
        "last_error {error:?}"
    );
    ensure!(
        status.last_error_at.is_some() && status.instances == 2,
        "{status:?}"
    );
    let reply = protocol.curl(sidecar.url("/echo")).run().await?;
    expect_status(&reply, 200, protocol)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn go_plugin_works_over_http1() -> Result<()> {
    go_plugin_over(Protocol::Http1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn go_plugin_works_over_h2c() -> Result<()> {
    go_plugin_over(Protocol::H2c).await
}

/// Go SDK background plugins beside a request plugin: the ticker ticks and calls out while
/// requests flow, traps once and ticks on in its replacement; the request plugin and the
/// receiver share a vm id, and every path the first enqueues reaches the second, which
/// registered two queues.
#[tokio::test(flavor = "multi_thread")]
async fn go_background_plugins_tick_call_out_and_share_a_queue() -> Result<()> {
    let upstream = Upstream::start().await?;
    let ticker = Plugin::at("go-ticker", &plugins::go_wasm("ticker")?)
        .background()
        .config(serde_json::json!({
            "period_ms": 30, "cluster": "sink", "path": "/echo", "trap_on_tick": 3
        }))
        .http_calls(&["sink"])
        .shared_data();
    let receiver = Plugin::at("go-receiver", &plugins::go_wasm("receiver")?)
        .background()
        .vm_id("queues")
        .config(serde_json::json!({"queues": ["audit", "requests"]}))
        .shared_data();
    let sender = Plugin::at("go-headers", &plugins::go_wasm("headers")?)
        .vm_id("queues")
        .config(serde_json::json!({"queue": "requests"}))
        .shared_data();
    let sidecar = Sidecar::builder(upstream.addr())
        .cluster("sink", upstream.addr())
        .plugin(&ticker)
        .plugin(&receiver)
        .plugin(&sender)
        .start()
        .await?;

    for (i, protocol) in [Protocol::Http1, Protocol::H2c]
        .iter()
        .cycle()
        .take(4)
        .enumerate()
    {
        let reply = protocol
            .curl(sidecar.url(&format!("/echo?q={i}")))
            .run()
            .await?;
        expect_status(&reply, 200, *protocol)?;
    }
    for i in 0..4 {
        let message = format!("go-receiver: /echo?q={i} on requests");
        plugins::wait_for_log(&sidecar, "go-receiver", &message, |l| l.message == message).await?;
    }
    plugins::wait_for_log(&sidecar, "go-ticker", "the panic text", |l| {
        l.message == "panic: go-ticker: trap on tick 3"
    })
    .await?;
    plugins::wait_for_log(&sidecar, "go-ticker", "a tick after the trap", |l| {
        l.message
            .strip_prefix("go-ticker: tick ")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= 6)
    })
    .await?;
    let status = plugins::plugin(&sidecar, "go-ticker").await?;
    ensure!(
        status.kind == "background"
            && status.state == "running"
            && status.counters.traps == 1
            && status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("go-ticker: trap on tick 3")),
        "{status:?}"
    );
    let receiver = plugins::plugin(&sidecar, "go-receiver").await?;
    ensure!(receiver.vm_id == "queues", "{receiver:?}");
    Ok(())
}

/// The AssemblyScript module's second root context, `as_ticker`, as a background plugin beside
/// the module's policy in the request path: it ticks (and counts on its metric) while requests
/// flow, over HTTP/1.1 and h2c.
#[tokio::test(flavor = "multi_thread")]
async fn assemblyscript_background_plugin_ticks_while_requests_flow() -> Result<()> {
    let upstream = Upstream::start().await?;
    let module = plugins::sdk_wasm("assemblyscript")?;
    let ticker = Plugin::at("as-ticker", &module)
        .background()
        .set("root_id", "as_ticker");
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&as_sample()?)
        .plugin(&ticker)
        .start()
        .await?;
    for protocol in [Protocol::Http1, Protocol::H2c].iter().cycle().take(4) {
        let reply = protocol.curl(sidecar.url("/echo")).run().await?;
        expect_status(&reply, 200, *protocol)?;
    }
    plugins::wait_for_log(&sidecar, "as-ticker", "the third tick", |l| {
        l.message == "as-ticker: tick 3"
    })
    .await?;
    let text = sidecar.metrics().await?;
    let ticks = prom::sum(&text, "as_ticker_ticks_total", &[("plugin", "as-ticker")])?;
    ensure!(ticks >= 3.0, "as_ticker_ticks_total is {ticks}");
    let policy_defined = prom::parse(&text)?.iter().any(|s| {
        s.name == "as_ticker_ticks_total"
            && s.labels.get("plugin").map(String::as_str) == Some("as-policy")
    });
    ensure!(!policy_defined, "the policy defined the ticker's metric");
    let status = plugins::plugin(&sidecar, "as-ticker").await?;
    ensure!(
        status.kind == "background" && status.counters.tick_calls >= 3,
        "{status:?}"
    );
    ensure!(status.counters.request_headers_calls == 0, "{status:?}");
    let policy = plugins::plugin(&sidecar, "as-policy").await?;
    ensure!(policy.counters.request_headers_calls == 4, "{policy:?}");
    Ok(())
}
