//! The host against `.wat` fixtures: error paths a real SDK plugin never takes on purpose.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::abi::testing;
use super::chain::{Chain, ChainStream, RequestVerdict};
use super::engine::{Engine, LoadError};
use super::metrics::WasmMetrics;
use super::plugin::{Plugin, Settings};
use super::stream::StreamInfo;
use crate::config::plugins::{FailurePolicy, Permissions};

fn plugin(engine: &Engine, wat: &str, policy: FailurePolicy) -> Result<Arc<Plugin>, String> {
    plugin_with(engine, wat, policy, Permissions::default())
}

fn plugin_with(
    engine: &Engine,
    wat: &str,
    policy: FailurePolicy,
    permissions: Permissions,
) -> Result<Arc<Plugin>, String> {
    let loaded = engine.load(wat.as_bytes()).map_err(|e| e.to_string())?;
    let metrics =
        Arc::new(WasmMetrics::new(&prometheus::Registry::new()).map_err(|e| e.to_string())?);
    let shared = testing::shared(&loaded, &metrics, permissions);
    let settings = Settings {
        source: "fixture.wat".into(),
        kind: crate::config::plugins::PluginKind::Request,
        phase: None,
        priority: 0,
        failure_policy: policy,
        hook_timeout: Duration::from_millis(20),
        max_memory: 1 << 20,
        pool_size: 1,
    };
    Plugin::new(shared, settings, loaded, &metrics).map_err(|e| e.to_string())
}

fn request() -> http::request::Parts {
    let req = http::Request::get("http://app.local/some/path?q=1").body(());
    req.map(|r| r.into_parts().0)
        .unwrap_or_else(|_| http::Request::new(()).into_parts().0)
}

fn info() -> StreamInfo {
    StreamInfo {
        peer: ([127, 0, 0, 1], 40000).into(),
        local: None,
        tls: false,
        protocol: "HTTP/1.1",
        start: std::time::SystemTime::now(),
        connection_id: 1,
    }
}

#[tokio::test]
async fn bad_arguments_get_statuses_not_crashes() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let p = plugin(
        &engine,
        include_str!("testdata/abi_errors.wat"),
        FailurePolicy::FailClosed,
    )?;
    let chain = Arc::new(Chain::new(vec![p.clone()], 1024));
    let mut cs = ChainStream::new(chain, info());
    let verdict = cs.request_headers(request(), true).await;
    assert!(
        matches!(verdict, RequestVerdict::Forward(_)),
        "the request went on"
    );
    let lines = testing::log(&p.shared);
    // The refused call is logged for the plugin's author.
    assert!(lines[0].contains("call to \"nope\" refused"), "{lines:?}");
    // Statuses in call order (see the comments in the fixture): 2 BAD_ARGUMENT, 6
    // INVALID_MEMORY_ACCESS, 1 NOT_FOUND, 0 OK.
    assert_eq!(
        lines.get(1).map(String::as_str),
        Some("2622120021622"),
        "{lines:?}"
    );
    assert_eq!(
        lines.get(2).map(String::as_str),
        Some("/some/path?q=1"),
        "{lines:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_trap_fails_the_request_and_the_instance_is_replaced() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let p = plugin(
        &engine,
        include_str!("testdata/abi_errors.wat"),
        FailurePolicy::FailClosed,
    )?;
    let chain = Arc::new(Chain::new(vec![p.clone()], 1024));
    let mut cs = ChainStream::new(chain.clone(), info());
    let _ = cs.request_headers(request(), true).await;
    let response = http::Response::new(()).into_parts().0;
    let replaced = cs.response_headers(response, true, usize::MAX).await;
    let status = replaced.err().map(|r| r.status());
    assert_eq!(status, Some(http::StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(p.shared.metrics.traps.get(), 1);
    // Replaced at once, before the next request comes, and the failure kept.
    assert!(p.running() && p.running_instances() == 1);
    let failure = p.last_failure().ok_or("no last error")?;
    assert!(
        failure
            .message
            .contains("response_headers hook failed: trapped"),
        "{}",
        failure.message
    );
    // The next request gets the fresh instance.
    let mut next = ChainStream::new(chain, info());
    assert!(matches!(
        next.request_headers(request(), true).await,
        RequestVerdict::Forward(_)
    ));
    Ok(())
}

#[test]
fn modules_without_the_abi_or_with_unknown_imports_are_refused() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let no_abi = engine.load(b"(module (func (export \"proxy_abi_version_0_1_0\")))");
    assert!(
        matches!(&no_abi, Err(LoadError::NoAbi { found }) if found.contains("0_1_0")),
        "{:?}",
        no_abi.as_ref().err()
    );
    let unknown = engine.load(
        b"(module (import \"env\" \"proxy_frobnicate\" (func)) (func (export \"proxy_abi_version_0_2_1\")))",
    );
    let msg = unknown.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("proxy_frobnicate"), "{msg}");
    let garbage = engine.load(b"\x00asm\x01\x00\x00\x00\xff\xff");
    assert!(matches!(garbage, Err(LoadError::Compile(_))));
    Ok(())
}

#[tokio::test]
async fn a_stream_whose_on_done_returns_false_waits_for_proxy_done() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let p = plugin(
        &engine,
        include_str!("testdata/deferred_done.wat"),
        FailurePolicy::FailClosed,
    )?;
    let logs = || testing::log(&p.shared);
    let chain = Arc::new(Chain::new(vec![p.clone()], 1024));
    let mut first = ChainStream::new(chain.clone(), info());
    let _ = first.request_headers(request(), true).await;
    drop(first); // on_log, on_done (false): not deleted yet
    assert_eq!(logs(), Vec::<String>::new());
    let mut second = ChainStream::new(chain, info());
    // Its request-headers callback calls proxy_done for the first stream.
    let _ = second.request_headers(request(), true).await;
    assert_eq!(logs(), ["deleted 2"]);
    drop(second);
    assert_eq!(logs(), ["deleted 2"], "the second stream waits in turn");
    Ok(())
}

#[tokio::test]
async fn a_queue_registered_at_start_up_is_notified() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let p = plugin(
        &engine,
        include_str!("testdata/queue_at_start.wat"),
        FailurePolicy::FailClosed,
    )?;
    let chain = Arc::new(Chain::new(vec![p.clone()], 1024));
    let mut cs = ChainStream::new(chain, info());
    let _ = cs.request_headers(request(), true).await;
    for _ in 0..100 {
        if testing::log(&p.shared).iter().any(|l| l == "ready") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!(
        "no proxy_on_queue_ready; log: {:?}",
        testing::log(&p.shared)
    ))
}

#[tokio::test]
async fn a_context_opened_anew_by_a_body_pass_is_ended_with_the_stream() -> Result<(), String> {
    use http_body_util::BodyExt;

    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let permissions = Permissions {
        body: true,
        ..Permissions::default()
    };
    let p = plugin_with(
        &engine,
        include_str!("testdata/trap_second_stream.wat"),
        FailurePolicy::FailClosed,
        permissions,
    )?;
    let deleted = || {
        testing::log(&p.shared)
            .iter()
            .filter(|l| *l == "deleted")
            .count()
    };
    let chain = Arc::new(Chain::new(vec![p.clone()], 1024));
    let mut first = ChainStream::new(chain.clone(), info());
    let _ = first.request_headers(request(), false).await;
    // Another request traps the instance the first stream's context lives in.
    let mut second = ChainStream::new(chain, info());
    let _ = second.request_headers(request(), true).await;
    drop(second);
    // The first stream's body goes on in a fresh context in the replacement instance.
    let pass = first
        .body_pass(super::body_pass::Direction::Request, usize::MAX)
        .ok_or("no body pass")?;
    let body = pass.spawn(http_body_util::Full::new(Bytes::from_static(b"hello")));
    let collected = body.collect().await.map_err(|e| e.to_string())?;
    assert_eq!(collected.to_bytes(), Bytes::from_static(b"hello"));
    assert_eq!(deleted(), 0);
    drop(first);
    assert_eq!(deleted(), 1, "the fresh context was ended");
    Ok(())
}

#[test]
fn start_up_callbacks_get_the_start_budget_not_the_hook_cap() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    // 60 ms in proxy_on_configure: three times the 20 ms hook cap.
    let slow = plugin(
        &engine,
        include_str!("testdata/slow_start.wat"),
        FailurePolicy::FailClosed,
    )?;
    assert!(slow.running(), "{:?}", slow.last_error());
    // A configure that never returns is still stopped, once the budget (at least 1 s) is spent.
    let endless = r#"(module
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_configure") (param i32 i32) (result i32)
          (loop $forever (br $forever))
          (i32.const 1)))"#;
    let started = std::time::Instant::now();
    let stuck = plugin(&engine, endless, FailurePolicy::FailClosed)?;
    assert!(!stuck.running());
    let err = stuck.last_error().unwrap_or_default();
    assert!(err.contains("time cap"), "{err}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "stopped after {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn a_hook_that_starts_while_the_ticker_sleeps_meets_its_time_cap() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let endless = r#"(module
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          (loop $forever (br $forever))
          (i32.const 0)))"#;
    let p = plugin(&engine, endless, FailurePolicy::FailClosed)?;
    // Idle for longer than the start-up budget (1 s): the ticker goes to sleep.
    let ticker = p.shared.ticker.clone();
    for _ in 0..1000 {
        if ticker.asleep() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        ticker.asleep(),
        "still ticking after {} ticks",
        ticker.ticks()
    );
    let chain = Arc::new(Chain::new(vec![p], 1024));
    let mut cs = ChainStream::new(chain, info());
    let started = std::time::Instant::now();
    let verdict = cs.request_headers(request(), true).await;
    assert!(
        matches!(verdict, RequestVerdict::Answer { ref response, .. } if response.status() == 503),
        "the endless hook was not stopped"
    );
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

/// A module whose request-headers hook sleeps `ms` with WASI `poll_oneoff` (as Go's and
/// TinyGo's runtimes sleep), then traps unless one clock event came back.
fn sleeper(ms: u64) -> String {
    let ns = ms * 1_000_000;
    format!(
        r#"(module
        (import "wasi_snapshot_preview1" "poll_oneoff"
          (func $poll (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
          ;; One subscription at 0: userdata 7, clock (tag 0), monotonic (id 1), relative.
          (i64.store (i32.const 0) (i64.const 7))
          (i32.store8 (i32.const 8) (i32.const 0))
          (i32.store (i32.const 16) (i32.const 1))
          (i64.store (i32.const 24) (i64.const {ns}))
          (if (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))
            (then unreachable))
          (if (i32.ne (i32.load (i32.const 128)) (i32.const 1)) (then unreachable))
          (if (i64.ne (i64.load (i32.const 64)) (i64.const 7)) (then unreachable))
          (i32.const 0)))"#
    )
}

#[tokio::test]
async fn poll_oneoff_sleeps_within_the_hook_time_cap() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let short = plugin(&engine, &sleeper(5), FailurePolicy::FailClosed)?;
    let chain = Arc::new(Chain::new(vec![short], 1024));
    let started = std::time::Instant::now();
    let verdict = ChainStream::new(chain, info())
        .request_headers(request(), true)
        .await;
    assert!(
        matches!(verdict, RequestVerdict::Forward(_)),
        "the 5 ms sleep failed"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(5),
        "{:?}",
        started.elapsed()
    );
    // Past the 20 ms cap: a time-out at the cap, not a 200 ms wait.
    let long = plugin(&engine, &sleeper(200), FailurePolicy::FailClosed)?;
    let chain = Arc::new(Chain::new(vec![long.clone()], 1024));
    let started = std::time::Instant::now();
    let verdict = ChainStream::new(chain, info())
        .request_headers(request(), true)
        .await;
    assert!(
        matches!(verdict, RequestVerdict::Answer { ref response, .. } if response.status() == 503)
    );
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(long.shared.metrics.timeouts.get(), 1);
    Ok(())
}

/// A module with a root context only, as the Rust SDK builds one: creating an HTTP context
/// traps, so the plugin is refused at load instead of failing every request.
#[test]
fn a_request_plugin_that_creates_no_http_context_is_refused_at_load() -> Result<(), String> {
    let engine = Engine::new(None).map_err(|e| e.to_string())?;
    let root_only = r#"(module
        (memory (export "memory") 1)
        (func (export "proxy_abi_version_0_2_1"))
        (func (export "proxy_on_context_create") (param i32 i32)
          (if (local.get 1) (then unreachable))))"#;
    let err = plugin(&engine, root_only, FailurePolicy::FailClosed)
        .err()
        .unwrap_or_default();
    assert!(
        err.contains("creates no HTTP context") && err.contains("kind: background"),
        "{err}"
    );
    Ok(())
}

#[test]
fn the_linker_defines_every_host_function_the_shared_list_names() {
    // The list the operator validates modules against: a module importing every entry, each
    // with its signature, links here exactly when the host defines them all as listed.
    let engine = Engine::new(None).unwrap_or_else(|e| panic!("{e}"));
    let wat = proxlet_engine::imports::everything_wat();
    engine
        .load(wat.as_bytes())
        .unwrap_or_else(|e| panic!("the host lacks a listed function: {e}"));
}
