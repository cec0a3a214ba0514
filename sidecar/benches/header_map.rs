//! Header maps: the pairs codec, and the map host calls a header plugin makes.
//!
//! - `pairs/encode`, `pairs/decode`: the serialisation `proxy_get_header_map_pairs` writes and
//!   `proxy_set_header_map_pairs` reads, for a browser-like request (4 pseudo-headers and 13
//!   headers).
//! - `host_call/<function>`: one host call from guest code, on the request headers of a live
//!   stream during `proxy_on_request_headers`. A small module (below) makes the call 100 times
//!   per hook call; the figure is per call, and `host_call/none` (the same loop with no call)
//!   is the loop and hook overhead to subtract.

mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use proxlet_sidecar::wasm::pairs;
use proxlet_sidecar::wasm::plugin::Plugin;

/// Calls per hook call in the host-call module.
const CALLS: u64 = 100;

fn codec(c: &mut Criterion) {
    let head = support::request_head();
    let path = head.uri.path_and_query().map_or("/", |p| p.as_str());
    let pseudo: [(&[u8], &[u8]); 4] = [
        (b":authority", b"app.example.com"),
        (b":path", path.as_bytes()),
        (b":method", b"GET"),
        (b":scheme", b"http"),
    ];
    let all: Vec<(&[u8], &[u8])> = pseudo
        .into_iter()
        .chain(
            head.headers
                .iter()
                .filter(|(k, _)| *k != http::header::HOST)
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes())),
        )
        .collect();
    let all = || all.iter().copied();
    let mut out = Vec::new();
    let mut group = c.benchmark_group("pairs");
    group.bench_function("encode", |b| {
        b.iter(|| {
            pairs::encode_into(&mut out, || black_box(all()));
            out.len()
        })
    });
    let encoded = pairs::encode(all());
    group.bench_function("decode", |b| {
        b.iter(|| pairs::decode(black_box(&encoded)).map(|p| p.len()))
    });
    group.finish();
}

/// A module whose `proxy_on_request_headers` runs `body` [`CALLS`] times. Its allocator is a
/// bump allocator reset at each hook call. Data: "user-agent" at 16, "x-bench" at 32, "1" at 48,
/// ":path" at 64, "x-absent" at 80; return slots at 8 and 12.
fn module(body: &str) -> String {
    format!(
        r#"(module
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "user-agent")
  (data (i32.const 32) "x-bench")
  (data (i32.const 48) "1")
  (data (i32.const 64) ":path")
  (data (i32.const 80) "x-absent")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (global.get $heap)
    (global.set $heap (i32.add (global.get $heap) (local.get $n))))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $i i32)
    (global.set $heap (i32.const 4096))
    (loop $again
      {body}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {CALLS}))))
    (i32.const 0)))"#
    )
}

const CALLS_BENCHED: [(&str, &str); 7] = [
    ("none", "(nop)"),
    (
        "get_header_map_value",
        "(drop (call $get (i32.const 0) (i32.const 16) (i32.const 10) (i32.const 8) (i32.const 12)))",
    ),
    (
        "get_header_map_value_pseudo",
        "(drop (call $get (i32.const 0) (i32.const 64) (i32.const 5) (i32.const 8) (i32.const 12)))",
    ),
    (
        "get_header_map_value_absent",
        "(drop (call $get (i32.const 0) (i32.const 80) (i32.const 8) (i32.const 8) (i32.const 12)))",
    ),
    (
        "replace_header_map_value",
        "(drop (call $replace (i32.const 0) (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 1)))",
    ),
    (
        "add_then_remove_header_map_value",
        "(drop (call $add (i32.const 0) (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 1)))
         (drop (call $remove (i32.const 0) (i32.const 32) (i32.const 7)))",
    ),
    (
        "get_header_map_pairs",
        "(drop (call $pairs (i32.const 0) (i32.const 8) (i32.const 12)))",
    ),
];

fn host_calls(c: &mut Criterion) {
    let Ok(host) = support::host() else { return };
    let Ok(dir) = tempfile::tempdir() else { return };
    let mut group = c.benchmark_group("host_call");
    group.throughput(Throughput::Elements(CALLS));
    for (name, body) in CALLS_BENCHED {
        let path = dir.path().join(format!("{name}.wat"));
        let plugin: Result<Arc<Plugin>, String> = std::fs::write(&path, module(body))
            .map_err(|e| e.to_string())
            .and_then(|()| support::load(&host, name, path, None));
        let plugin = match plugin {
            Ok(p) => p,
            Err(e) => {
                eprintln!("skipped: {name}: {e}");
                continue;
            }
        };
        let stream = support::stream_at_request_headers();
        let Ok((Ok(ctx), _)) = plugin.with_slot(0, None, |i| i.create_stream(stream.clone()))
        else {
            eprintln!("skipped: {name}: cannot create a stream context");
            continue;
        };
        let call = || plugin.with_slot(0, None, |i| i.request_headers(ctx, 18, true).is_ok());
        if !matches!(call(), Ok((true, _))) {
            eprintln!(
                "skipped: {name}: the hook failed: {:?}",
                plugin.last_error()
            );
            continue;
        }
        group.bench_function(name, |b| b.iter(call));
    }
    group.finish();
}

criterion_group!(benches, codec, host_calls);
criterion_main!(benches);
