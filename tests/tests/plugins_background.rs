//! Background plugins, load-time checks, permissions and plugin metric names, with Rust SDK
//! fixtures and `.wat` modules (one shaped like a C++ SDK one), in a real sidecar seen through
//! curl and the admin API.

use std::ffi::OsString;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use proxlet_tests::support::{
    curl::{Curl, Protocol},
    plugins::{self, Plugin},
    prom,
    sidecar::Sidecar,
    upstream::Upstream,
    wait,
};
use serde_json::json;

/// Requests `/echo` over `protocol` until `done`, each answered 200: traffic flows beside the
/// background plugin.
async fn traffic_until(
    sidecar: &Sidecar,
    protocol: Protocol,
    what: &str,
    done: impl AsyncFn() -> bool,
) -> Result<()> {
    wait::until(what, Duration::from_secs(10), || async {
        let reply = protocol.curl(sidecar.url("/echo")).run().await.ok()?;
        if reply.status != 200 {
            return None;
        }
        done().await.then_some(())
    })
    .await
}

/// The paths the ticker called on the upstream (`/echo?tick=N`), as tick numbers.
fn ticks_seen(upstream: &Upstream) -> Vec<u64> {
    upstream
        .seen()
        .iter()
        .filter(|r| r.uri.path() == "/echo")
        .filter_map(|r| r.uri.query()?.strip_prefix("tick=")?.parse().ok())
        .collect()
}

async fn rust_background_plugin_over(protocol: Protocol) -> Result<()> {
    let upstream = Upstream::start().await?;
    let ticker = Plugin::new("ticker")?
        .background()
        .config(json!({"period_ms": 30, "cluster": "sink", "path": "/echo", "trap_on_tick": 3}))
        .http_calls(&["sink"])
        .shared_data();
    let sidecar = Sidecar::builder(upstream.addr())
        .cluster("sink", upstream.addr())
        .set("workers", 2)
        .plugin(&ticker)
        .plugin(&Plugin::new("noop")?)
        .start()
        .await?;

    // It ticks and calls out while requests flow, and its third tick traps once: the instance
    // is replaced at once and the ticks go on (numbered across instances in shared data).
    traffic_until(&sidecar, protocol, "ticks after the trap", || async {
        ticks_seen(&upstream).iter().any(|t| *t >= 6)
    })
    .await?;
    plugins::wait_for_log(&sidecar, "ticker", "a call answered", |l| {
        l.message.ends_with("answered 200")
    })
    .await?;
    let status = plugins::plugin(&sidecar, "ticker").await?;
    ensure!(
        status.kind == "background" && status.pool == 1 && status.instances == 1,
        "{status:?}"
    );
    ensure!(
        status.state == "running" && status.counters.traps == 1,
        "{status:?}"
    );
    let error = status.last_error.clone().unwrap_or_default();
    ensure!(
        error.contains("tick hook failed") && error.contains("ticker: trap on tick 3"),
        "last_error {error:?}"
    );
    ensure!(status.last_error_at.is_some(), "{status:?}");
    // No HTTP context in a background plugin: the requests never reached it.
    ensure!(status.counters.request_headers_calls == 0, "{status:?}");
    let noop = plugins::plugin(&sidecar, "noop").await?;
    ensure!(noop.kind == "request" && noop.instances == 2, "{noop:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_background_plugin_ticks_calls_and_is_replaced_over_http1() -> Result<()> {
    rust_background_plugin_over(Protocol::Http1).await
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_background_plugin_ticks_calls_and_is_replaced_over_h2c() -> Result<()> {
    rust_background_plugin_over(Protocol::H2c).await
}

/// A module with a root context only, loaded as a request plugin, is refused when it loads
/// with what to do (FailClosed stops the start; FailOpen leaves it out), not 503 per request.
#[tokio::test(flavor = "multi_thread")]
async fn a_root_only_module_in_the_request_path_is_refused_at_load() -> Result<()> {
    let upstream = Upstream::start().await?;
    let ticker = Plugin::new("ticker")?;
    let output = Sidecar::builder(upstream.addr())
        .plugin(&ticker)
        .run_to_exit(Duration::from_secs(20))
        .await?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    ensure!(!output.status.success(), "it started: {stderr}");
    for want in ["creates no HTTP context", "kind: background"] {
        ensure!(stderr.contains(want), "no {want:?} in:\n{stderr}");
    }
    let sidecar = Sidecar::builder(upstream.addr())
        .plugin(&ticker.fail_open())
        .start()
        .await?;
    let reply = Curl::new(sidecar.url("/echo")).http1().run().await?;
    reply.expect_status(200)?;
    ensure!(plugins::plugins(&sidecar).await?.is_empty(), "not left out");
    Ok(())
}

/// A body plugin given with `--plugin` and no `--plugin-body`: the load says what it may not
/// do, and the body it did not see is counted; `--plugin-body` grants it.
#[tokio::test(flavor = "multi_thread")]
async fn a_body_plugin_without_the_permission_is_logged_and_counted() -> Result<()> {
    let upstream = Upstream::start().await?;
    let validator = plugins::wasm("request-validator")?;
    let args = |body: bool| {
        let mut args: Vec<OsString> = vec![
            "--plugin".into(),
            validator.clone().into(),
            "--plugin-config".into(),
            r#"{"json_body": true}"#.into(),
        ];
        if body {
            args.push("--plugin-body".into());
        }
        args
    };
    let post = |sidecar: &Sidecar| {
        Curl::new(sidecar.url("/echo"))
            .http1()
            .args(["--data-binary", r#"{"ok": "#])
            .run()
    };
    let denied = Sidecar::builder(upstream.addr())
        .flags_only()
        .args(args(false))
        .start()
        .await?;
    post(&denied).await?.expect_status(200)?;
    plugins::wait_for_log(&denied, "request-validator", "the permissions line", |l| {
        l.level == "warn" && l.message.contains("may not: see or change bodies")
    })
    .await?;
    let text = denied.metrics().await?;
    let labels = [
        ("plugin", "request-validator"),
        ("call", "proxy_on_request_body"),
    ];
    let withheld = prom::sum(&text, "proxlet_plugin_denied_total", &labels)?;
    ensure!(withheld == 1.0, "withheld bodies: {withheld}\n{text}");
    let status = plugins::plugin(&denied, "request-validator").await?;
    ensure!(
        status.denied.get("proxy_on_request_body") == Some(&1),
        "{status:?}"
    );

    let granted = Sidecar::builder(upstream.addr())
        .flags_only()
        .args(args(true))
        .start()
        .await?;
    post(&granted).await?.expect_status(400)?;
    Ok(())
}

/// A module shaped like a C++ SDK one: it reads `plugin_root_id` as its root context starts and
/// runs only under the id it registered (`my_root_id`), silently doing nothing otherwise. Under
/// Envoy's default (empty) root id the load says so; with `root_id` set it works.
const CPP_STYLE: &str = r#"(module
  (import "env" "proxy_get_property" (func $property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes"
    (func $buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value"
    (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: return slots; 16: "plugin_root_id"; 32: "my_root_id"; 48: "x-cpp-root".
  (data (i32.const 16) "plugin_root_id")
  (data (i32.const 32) "my_root_id")
  (data (i32.const 48) "x-cpp-root")
  (global $heap (mut i32) (i32.const 1024))
  (global $known (mut i32) (i32.const 0))
  (func (export "malloc") (param $size i32) (result i32)
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get $size))))
  (func (export "proxy_abi_version_0_2_1"))
  ;; The root context picks its factory by root id: only "my_root_id" is registered.
  (func (export "proxy_on_context_create") (param $id i32) (param $parent i32)
    (local $ptr i32) (local $i i32)
    (if (i32.ne (local.get $parent) (i32.const 0)) (then (return)))
    (drop (call $property (i32.const 16) (i32.const 14) (i32.const 0) (i32.const 4)))
    (if (i32.ne (i32.load (i32.const 4)) (i32.const 10)) (then (return)))
    (local.set $ptr (i32.load (i32.const 0)))
    (block $differs
      (loop $each
        (br_if $differs (i32.ne (i32.load8_u (i32.add (local.get $ptr) (local.get $i)))
                                (i32.load8_u (i32.add (i32.const 32) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $each (i32.lt_u (local.get $i) (i32.const 10))))
      (global.set $known (i32.const 1))))
  ;; Its own root context reads its configuration; the default one ignores it.
  (func (export "proxy_on_configure") (param i32) (param $size i32) (result i32)
    (if (global.get $known)
      (then (drop (call $buffer (i32.const 7) (i32.const 0) (local.get $size)
                                (i32.const 8) (i32.const 12)))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (global.get $known)
      (then (drop (call $add (i32.const 0) (i32.const 48) (i32.const 10)
                             (i32.const 32) (i32.const 10)))))
    (i32.const 0)))"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_module_without_a_root_context_for_its_root_id_is_reported() -> Result<()> {
    let upstream = Upstream::start().await?;
    let dir = tempfile::tempdir()?;
    let module = dir.path().join("cpp_style.wat");
    std::fs::write(&module, CPP_STYLE)?;
    let plugin = Plugin::at("cpp-style", &module).config(json!({"greeting": "hello"}));
    let unset = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;
    Curl::new(unset.url("/echo"))
        .http1()
        .run()
        .await?
        .expect_status(200)?;
    let seen = upstream.last().context("nothing reached the upstream")?;
    ensure!(seen.header("x-cpp-root").is_none(), "it ran under \"\"");
    let status = plugins::plugin(&unset, "cpp-style").await?;
    ensure!(
        status.root_id.is_empty(),
        "default root id {:?}",
        status.root_id
    );
    ensure!(
        status
            .warnings
            .iter()
            .any(|w| w.contains("root_id \"\"") && w.contains("set root_id")),
        "{status:?}"
    );
    plugins::wait_for_log(&unset, "cpp-style", "the warning", |l| {
        l.level == "warn" && l.message.contains("picks its root context by root id")
    })
    .await?;

    let set = Sidecar::builder(upstream.addr())
        .plugin(&plugin.set("root_id", "my_root_id"))
        .start()
        .await?;
    Curl::new(set.url("/echo"))
        .h2c()
        .run()
        .await?
        .expect_status(200)?;
    let seen = upstream.last().context("nothing reached the upstream")?;
    ensure!(
        seen.header("x-cpp-root") == Some("my_root_id"),
        "{:?}",
        seen.header("x-cpp-root")
    );
    let status = plugins::plugin(&set, "cpp-style").await?;
    ensure!(status.warnings.is_empty(), "{status:?}");
    Ok(())
}

/// A module that defines a counter whose name carries its values, as Envoy plugins write them,
/// and counts each request on it.
const TAGGED: &str = r#"(module
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "requests.method=GET.code=200")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (i32.eqz (call $define (i32.const 0) (i32.const 16) (i32.const 28) (i32.const 0))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $inc (i32.load (i32.const 0)) (i64.const 1)))
    (i32.const 0)))"#;

/// Plugin metrics keep the name the plugin gave; tag rules make labels of the values in it.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_metric_names_are_kept_and_tag_rules_make_labels() -> Result<()> {
    let upstream = Upstream::start().await?;
    let dir = tempfile::tempdir()?;
    let module = dir.path().join("tagged.wat");
    std::fs::write(&module, TAGGED)?;
    let plugin = Plugin::at("tagged", &module);
    let plain = Sidecar::builder(upstream.addr())
        .plugin(&plugin)
        .start()
        .await?;
    let rules = serde_yaml::from_str::<serde_yaml::Value>(
        r#"[{name: method, regex: '(\.method=(\w+))'}, {name: code, regex: '(\.code=(\d+))'}]"#,
    )?;
    let tagged = Sidecar::builder(upstream.addr())
        .set("plugin_metrics.tags", rules)
        .plugin(&plugin)
        .start()
        .await?;
    for sidecar in [&plain, &tagged] {
        Curl::new(sidecar.url("/echo"))
            .http1()
            .run()
            .await?
            .expect_status(200)?;
    }
    let text = plain.metrics().await?;
    let got = prom::sum(
        &text,
        "requests_method_GET_code_200_total",
        &[("plugin", "tagged")],
    )?;
    ensure!(got == 1.0, "without rules:\n{text}");
    let text = tagged.metrics().await?;
    let labels = [("plugin", "tagged"), ("method", "GET"), ("code", "200")];
    let got = prom::sum(&text, "requests_total", &labels)?;
    ensure!(got == 1.0, "with rules:\n{text}");
    prom::promtool_check(&text).await
}
