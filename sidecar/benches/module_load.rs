//! Loading a plugin module: compiling it, against finding it in the compiled-module cache.
//!
//! Each measurement is one `Engine::load` of `header_modifier.wasm` (about 200 KB): the source
//! digest, the module, the ABI check and the link into an `InstancePre`, which is what a start
//! or a reload does per plugin before it starts instances.
//!
//! - `compile`: a fresh engine without a cache directory: Cranelift compiles the module.
//! - `memory_cache`: the engine already loaded the module (a reload of an unchanged module).
//! - `disk_cache`: a fresh engine whose cache directory holds the compiled module (a restart):
//!   `Module::deserialize_file` maps it instead of compiling.
//!
//! Building the engine (and its epoch ticker) is left out of the timing.

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use proxlet_sidecar::wasm::engine::Engine;

fn module_load(c: &mut Criterion) {
    let Some(path) = support::module("header_modifier") else {
        return;
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => return eprintln!("skipped: {}: {e}", path.display()),
    };
    let cache = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return eprintln!("skipped: no temporary directory: {e}"),
    };
    let fresh = |dir: Option<&std::path::Path>| Engine::new(dir.map(Into::into)).ok();
    // Fills the disk cache, and checks that the module loads at all.
    if let Some(Err(e)) = fresh(Some(cache.path())).map(|e| e.load(&bytes).map(|_| ())) {
        return eprintln!("skipped: {}: {e}", path.display());
    }

    let mut group = c.benchmark_group("module_load");
    group.bench_function("memory_cache", |b| {
        let Some(engine) = fresh(None) else { return };
        let _ = engine.load(&bytes);
        b.iter(|| black_box(engine.load(&bytes)).is_ok())
    });
    group.bench_function("disk_cache", |b| {
        b.iter_batched(
            || fresh(Some(cache.path())),
            |engine| {
                // Returned, so that the engine and the module are dropped outside the timing.
                let loaded = engine.as_ref().map(|e| black_box(e.load(&bytes)));
                (loaded, engine)
            },
            BatchSize::PerIteration,
        )
    });
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("compile", |b| {
        b.iter_batched(
            || fresh(None),
            |engine| {
                // Returned, so that the engine and the module are dropped outside the timing.
                let loaded = engine.as_ref().map(|e| black_box(e.load(&bytes)));
                (loaded, engine)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, module_load);
criterion_main!(benches);
