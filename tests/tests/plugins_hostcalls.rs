//! Host function conformance, through the `hostcalls` fixture: the request header `x-test: NAME`
//! makes the plugin call a group of host functions and report what they returned in the headers
//! of a local 200 (see `plugins/fixtures/hostcalls/README.md`).

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::{Curl, CurlReply, Protocol},
    plugins::{self, Plugin},
    prom,
    sidecar::Sidecar,
    upstream::Upstream,
    wait,
};

async fn start(upstream: &Upstream, plugin: &Plugin) -> Result<Sidecar> {
    Sidecar::builder(upstream.addr())
        .plugin(plugin)
        .start()
        .await
}

/// Runs hostcalls test `name` with a GET of `path`; fails unless the answer is a 200.
async fn report(
    sidecar: &Sidecar,
    name: &str,
    path: &str,
    protocol: Protocol,
) -> Result<CurlReply> {
    let reply = protocol
        .curl(sidecar.url(path))
        .header(&format!("x-test: {name}"))
        .run()
        .await?;
    reply.ok()?;
    ensure!(
        reply.status == 200,
        "x-test: {name} over {protocol:?} got {} {:?} {:?}",
        reply.status,
        reply.headers,
        reply.text()
    );
    Ok(reply)
}

/// Fails unless every `(header, value)` is in `reply`.
fn expect_headers(reply: &CurlReply, want: &[(&str, &str)]) -> Result<()> {
    let wrong: Vec<String> = want
        .iter()
        .filter(|(name, value)| reply.header(name) != Some(value))
        .map(|(name, value)| format!("{name}: want {value:?}, got {:?}", reply.header(name)))
        .collect();
    ensure!(
        wrong.is_empty(),
        "{}\nall headers: {:?}",
        wrong.join("\n"),
        reply.headers
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn props_report_the_request_and_the_plugin() -> Result<()> {
    let upstream = Upstream::start().await?;
    let plugin = Plugin::new("hostcalls")?
        .name("probe")
        .set("root_id", "probe-root");
    let sidecar = start(&upstream, &plugin).await?;
    for (protocol, version) in [(Protocol::Http1, "HTTP/1.1"), (Protocol::H2c, "HTTP/2")] {
        let reply = report(&sidecar, "props", "/some/path?q=1", protocol).await?;
        expect_headers(
            &reply,
            &[
                ("x-prop-request-path", "/some/path?q=1"),
                ("x-prop-request-method", "GET"),
                ("x-prop-plugin-name", "probe"),
                ("x-prop-plugin-root-id", "probe-root"),
                ("x-prop-request-protocol", version),
            ],
        )
        .with_context(|| format!("over {protocol:?}"))?;
        let source = reply.header("x-prop-source-address").unwrap_or_default();
        let port = source.strip_prefix("127.0.0.1:").map(str::parse::<u16>);
        ensure!(
            matches!(port, Some(Ok(p)) if p > 0),
            "source.address over {protocol:?} is {source:?}, want 127.0.0.1:PORT"
        );
    }
    ensure!(
        upstream.requests() == 0,
        "local answers reached the upstream"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn set_property_is_read_back() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    let reply = report(&sidecar, "set-prop", "/", Protocol::Http1).await?;
    expect_headers(&reply, &[("x-prop-my-key", "v")])
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_data_compare_and_swap() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?.shared_data()).await?;
    let reply = report(&sidecar, "shared", "/", Protocol::H2c).await?;
    expect_headers(
        &reply,
        &[
            ("x-shared-set", "ok"),
            ("x-shared-get", "one"),
            ("x-shared-cas-update", "ok"),
            ("x-shared-stale-cas", "cas_mismatch"),
            ("x-shared-final", "two"),
            ("x-shared-cas-changed", "true"),
            ("x-shared-missing", "(none)"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn shared_queue_is_first_in_first_out() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?.shared_data()).await?;
    let reply = report(&sidecar, "queue", "/", Protocol::Http1).await?;
    expect_headers(
        &reply,
        &[
            ("x-queue-registered", "true"),
            ("x-queue-resolved", "same"),
            ("x-queue-enqueue", "ok,ok"),
            ("x-queue-items", "a,b,(none)"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_metrics_are_read_back_and_exported() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    report(&sidecar, "metrics", "/", Protocol::Http1).await?;
    let second = report(&sidecar, "metrics", "/", Protocol::H2c).await?;
    // The second request defines the same names again and gets the same metrics.
    expect_headers(
        &second,
        &[
            ("x-metric-updates", "ok,ok,ok,ok"),
            ("x-metric-counter", "2"),
            ("x-metric-gauge", "40"),
            ("x-metric-histogram", "bad_argument"),
        ],
    )?;

    let text = sidecar.metrics().await?;
    let plugin = [("plugin", "hostcalls")];
    for (name, want) in [
        ("hostcalls_requests_total", 2.0),
        ("hostcalls_level", 40.0),
        ("hostcalls_sizes_count", 2.0),
        ("hostcalls_sizes_sum", 14.0),
    ] {
        let got = prom::sum(&text, name, &plugin)?;
        ensure!(got == want, "{name} is {got}, want {want}:\n{text}");
    }
    for family in [
        "# TYPE hostcalls_requests_total counter",
        "# TYPE hostcalls_level gauge",
        "# TYPE hostcalls_sizes histogram",
    ] {
        ensure!(text.contains(family), "no `{family}` in /metrics:\n{text}");
    }
    let request_headers = [("plugin", "hostcalls"), ("hook", "request_headers")];
    ensure!(
        prom::sum(&text, "proxlet_plugin_hook_calls_total", &request_headers)? == 2.0,
        "request_headers calls:\n{text}"
    );
    ensure!(
        prom::sum(&text, "proxlet_plugin_local_responses_total", &plugin)? == 2.0,
        "local responses:\n{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_with_plugin_families_pass_promtool() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    report(&sidecar, "metrics", "/", Protocol::Http1).await?;
    let text = sidecar.metrics().await?;
    ensure!(
        prom::has(&text, "hostcalls_requests_total")?,
        "the plugin's metrics are not exported:\n{text}"
    );
    prom::promtool_check(&text).await
}

#[tokio::test(flavor = "multi_thread")]
async fn request_body_is_replaced() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?.body()).await?;
    let original = "o".repeat(100);
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/sink"))
            .header("x-test: body")
            .args(["--data-binary", original.as_str()])
            .run()
            .await?;
        reply.ok()?;
        ensure!(
            reply.status == 200 && reply.text().contains(r#""bytes":8"#),
            "over {protocol:?} the upstream answered {} {:?}",
            reply.status,
            reply.text()
        );
        let seen = upstream.last().context("the upstream saw nothing")?;
        let length = seen.header("content-length");
        ensure!(
            matches!(length, None | Some("8")),
            "over {protocol:?} the upstream got content-length {length:?} for an 8-byte body"
        );
    }
    ensure!(upstream.sunk() == [8, 8], "bodies: {:?}", upstream.sunk());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn response_body_is_wrapped() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?.body()).await?;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/response-headers"))
            .header("x-test: resp-body")
            .run()
            .await?;
        reply.ok()?;
        ensure!(
            reply.status == 200 && reply.text() == "pre-headers set\n-post",
            "over {protocol:?}: {} {:?}",
            reply.status,
            reply.text()
        );
        let length = reply.header("content-length");
        let want = reply.body.len().to_string();
        ensure!(
            length.is_none() || length == Some(want.as_str()),
            "over {protocol:?} content-length is {length:?} for {want} bytes"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_log_level_reaches_the_plugin_log() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    let reply = report(&sidecar, "log-levels", "/", Protocol::Http1).await?;
    let levels = ["trace", "debug", "info", "warn", "error", "critical"];
    expect_headers(&reply, &[("x-log-levels", &levels.join(","))])?;
    for level in levels {
        let message = format!("hostcalls: {level}");
        let line = plugins::wait_for_log(&sidecar, "hostcalls", &message, |line| {
            line.message == message
        })
        .await?;
        ensure!(line.level == level, "{message:?} was logged as {line:?}");
        ensure!(line.time_ms > 1_600_000_000_000, "time_ms: {line:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn local_response_is_sent_and_counted() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/bytes/5"))
            .header("x-test: local")
            .run()
            .await?;
        reply.ok()?;
        ensure!(
            reply.status == 418 && reply.header("x-local") == Some("1") && reply.text() == "teapot",
            "over {protocol:?}: {} {:?} {:?}",
            reply.status,
            reply.headers,
            reply.text()
        );
    }
    ensure!(upstream.requests() == 0, "the upstream was reached");
    let status = plugins::plugin(&sidecar, "hostcalls").await?;
    ensure!(
        status.counters.local_responses == 2,
        "counters: {:?}",
        status.counters
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn close_stream_is_a_503_plugin_reset() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?).await?;
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = protocol
            .curl(sidecar.url("/bytes/5"))
            .header("x-test: close")
            .run()
            .await?;
        reply.ok()?;
        ensure!(
            reply.status == 503 && reply.header("proxlet-error") == Some("plugin-reset"),
            "over {protocol:?}: {} {:?} {:?}",
            reply.status,
            reply.headers,
            reply.text()
        );
    }
    ensure!(upstream.requests() == 0, "the upstream was reached");
    let after = Curl::new(sidecar.url("/bytes/5")).http1().run().await?;
    ensure!(
        after.status == 200,
        "a plain request after the resets got {}",
        after.status
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_test_pass_and_on_log_runs_once_each() -> Result<()> {
    let upstream = Upstream::start().await?;
    let sidecar = start(&upstream, &Plugin::new("hostcalls")?.body()).await?;
    let reply = Curl::new(sidecar.url("/echo"))
        .h2c()
        .args(["--data-binary", "as sent"])
        .run()
        .await?;
    reply.ok()?;
    ensure!(reply.status == 200 && reply.text() == "as sent");
    let unknown = Curl::new(sidecar.url("/echo"))
        .http1()
        .header("x-test: nope")
        .run()
        .await?;
    ensure!(
        unknown.status == 400 && unknown.header("x-test-error") == Some("unknown-test"),
        "{} {:?}",
        unknown.status,
        unknown.headers
    );
    // `on_log` runs once per request, after the response: wait for it, then count exactly.
    let proxy = &sidecar;
    let counters = wait::until(
        "on_log to have run for both requests",
        Duration::from_secs(5),
        || async move {
            let status = plugins::plugin(proxy, "hostcalls").await.ok()?;
            (status.counters.log_calls >= 2).then_some(status.counters)
        },
    )
    .await?;
    ensure!(
        counters.log_calls == 2 && counters.request_headers_calls == 2,
        "after 2 requests: {counters:?}"
    );
    let text = sidecar.metrics().await?;
    let log_hook = [("plugin", "hostcalls"), ("hook", "log")];
    let calls = prom::sum(&text, "proxlet_plugin_hook_calls_total", &log_hook)?;
    ensure!(calls == 2.0, "hook=\"log\" calls after 2 requests: {calls}");
    ensure!(upstream.requests() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unary_grpc_calls_reach_the_cluster_and_report_back() -> Result<()> {
    let upstream = Upstream::start().await?;
    // The test upstream speaks h2c and has a `test.Echo` service.
    let grpc = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&Plugin::new("hostcalls")?.http_calls(&["grpc"]))
        .cluster("grpc", grpc.addr())
        .start()
        .await?;
    let ok = report(&sidecar, "grpc", "/", Protocol::Http1).await?;
    expect_headers(
        &ok,
        &[("x-grpc-status", "0"), ("x-grpc-message", "pong:ping")],
    )?;
    let failed = report(&sidecar, "grpc-fail", "/", Protocol::H2c).await?;
    expect_headers(
        &failed,
        &[("x-grpc-status", "5"), ("x-grpc-message", "no such thing")],
    )?;
    ensure!(
        grpc.requests() == 2,
        "the gRPC service saw {} calls",
        grpc.requests()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_outside_the_permissions_are_refused() -> Result<()> {
    let upstream = Upstream::start().await?;
    let grpc = Upstream::start().await?;
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&Plugin::new("hostcalls")?)
        .cluster("grpc", grpc.addr())
        .start()
        .await?;
    let refused = report(&sidecar, "grpc", "/", Protocol::Http1).await?;
    expect_headers(&refused, &[("x-grpc-dispatch", "parse_failure")])?;
    ensure!(grpc.requests() == 0, "the gRPC service was called");
    Ok(())
}
