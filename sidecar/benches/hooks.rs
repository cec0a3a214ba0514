//! Hook calls on a pooled instance, and one request's whole passage through a chain.
//!
//! - `hook_call/<plugin>/<hook>`: one header callback on a context that already exists, in the
//!   instance the pool keeps, as the data path makes it (`Plugin::with_slot`, which also starts
//!   whatever the callback dispatched).
//! - `request_passage/<chain>`: what a chain adds to one request: a fresh stream, the
//!   request-headers hooks, the response-headers hooks, and `on_log`/`on_done`/`on_delete` when
//!   it ends. The heads are built outside the timing.

mod support;

use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use proxlet_sidecar::wasm::Host;
use proxlet_sidecar::wasm::chain::{Chain, ChainStream, RequestVerdict};
use proxlet_sidecar::wasm::plugin::Plugin;

fn hook_call(c: &mut Criterion) {
    let Ok(host) = support::host() else { return };
    let mut group = c.benchmark_group("hook_call");
    for (name, module, config) in [
        ("noop", "noop", None),
        (
            "header-modifier",
            "header_modifier",
            Some(support::header_modifier_config()),
        ),
    ] {
        let Some(plugin) = support::module(module).and_then(|p| {
            support::load(&host, name, p, config)
                .inspect_err(|e| eprintln!("skipped: {e}"))
                .ok()
        }) else {
            continue;
        };
        let stream = support::stream_at_request_headers();
        let Ok((Ok(ctx), _)) = plugin.with_slot(0, None, |i| i.create_stream(stream.clone()))
        else {
            eprintln!("skipped: {name}: cannot create a stream context");
            continue;
        };
        let request = || plugin.with_slot(0, None, |i| i.request_headers(ctx, 18, true).is_ok());
        if !matches!(request(), Ok((true, _))) {
            eprintln!("skipped: {name}: the hook failed");
            continue;
        }
        if name == "header-modifier"
            && !stream
                .lock()
                .request
                .as_ref()
                .is_some_and(|r| r.headers.contains_key("x-bench"))
        {
            eprintln!("skipped: {name}: the request header was not set");
            continue;
        }
        group.bench_function(format!("{name}/request_headers"), |b| b.iter(request));
        {
            let mut d = stream.lock();
            d.response = Some(support::response_head());
            d.phase = proxlet_sidecar::wasm::stream::Phase::ResponseHeaders;
        }
        let response = || plugin.with_slot(0, None, |i| i.response_headers(ctx, 7, true).is_ok());
        group.bench_function(format!("{name}/response_headers"), |b| b.iter(response));
        let _ = plugin.with_slot(0, None, |i| i.finish_stream(ctx));
    }
    group.finish();
}

/// The chains `bench/plugins` compares.
fn chains(host: &Host) -> Option<Vec<(&'static str, Arc<Chain>)>> {
    let load = |name: &str, module: &str, config| -> Option<Arc<Plugin>> {
        support::load(host, name, support::module(module)?, config)
            .inspect_err(|e| eprintln!("skipped: {e}"))
            .ok()
    };
    let chain = |plugins| Arc::new(Chain::new(plugins, host.body_cap()));
    let noop = load("noop", "noop", None)?;
    let header_modifier = load(
        "header-modifier",
        "header_modifier",
        Some(support::header_modifier_config()),
    )?;
    let mut five = (0..3)
        .map(|i| load(&format!("noop-{i}"), "noop", None))
        .collect::<Option<Vec<_>>>()?;
    five.push(header_modifier.clone());
    five.push(load(
        "validator",
        "request_validator",
        Some(serde_json::json!({"methods": ["GET", "POST"]})),
    )?);
    Some(vec![
        ("noop", chain(vec![noop])),
        ("header-modifier", chain(vec![header_modifier])),
        ("five", chain(five)),
    ])
}

fn request_passage(c: &mut Criterion) {
    let Ok(host) = support::host() else { return };
    let Some(chains) = chains(&host) else { return };
    let mut group = c.benchmark_group("request_passage");
    for (name, chain) in chains {
        if let Err(e) = passes(&chain) {
            eprintln!("skipped: {name}: {e}");
            continue;
        }
        group.bench_function(name, |b| {
            b.iter_batched(
                || (support::request_head(), support::response_head()),
                |(request, response)| {
                    let mut stream = ChainStream::new(chain.clone(), support::info());
                    let verdict = support::ready(stream.request_headers(request, true));
                    let seen = chain.plugins.len();
                    let answered = support::ready(stream.response_headers(response, true, seen));
                    drop(stream); // on_log, on_done, on_delete
                    // The heads go on to the upstream and the client: dropped untimed.
                    (verdict, answered)
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Checks that a request goes through `chain` as the benchmark expects: forwarded, with the
/// response head kept, and header-modifier's headers set when it is in the chain.
fn passes(chain: &Arc<Chain>) -> Result<(), String> {
    let modifies = chain.plugins.iter().any(|p| p.name() == "header-modifier");
    let mut stream = ChainStream::new(chain.clone(), support::info());
    let Some(RequestVerdict::Forward(request)) =
        support::ready(stream.request_headers(support::request_head(), true))
    else {
        return Err("the request was not forwarded".into());
    };
    let seen = chain.plugins.len();
    let Some(Ok(response)) =
        support::ready(stream.response_headers(support::response_head(), true, seen))
    else {
        return Err("the response was replaced".into());
    };
    let set = request.headers.contains_key("x-bench") && response.headers.contains_key("x-proxied");
    if modifies && !set {
        return Err("header-modifier did not set its headers".into());
    }
    Ok(())
}

criterion_group!(benches, hook_call, request_passage);
criterion_main!(benches);
