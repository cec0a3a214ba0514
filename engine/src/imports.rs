//! What the Proxy-Wasm host provides under `env`, with each function's signature: the one list
//! both the operator's validation and the sidecar's linking check a module against (the sidecar's
//! tests prove its linker defines every entry with that signature). WASI imports
//! (`wasi_snapshot_preview1`, `wasi_unstable`) are always satisfied: what the sandbox does not
//! provide answers `ENOSYS`.

use wasmtime::{Module, ValType};

use crate::LoadError;

/// A value type in a host function's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
}

use Ty::{I32, I64};

/// A host function: name, parameters, results.
pub type HostFunc = (&'static str, &'static [Ty], &'static [Ty]);

/// Every `env` function the host provides.
#[rustfmt::skip]
pub const ENV: &[HostFunc] = &[
    ("emscripten_notify_memory_growth", &[I32], &[]),
    ("proxy_add_header_map_value", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_call_foreign_function", &[I32, I32, I32, I32, I32, I32], &[I32]),
    ("proxy_clear_route_cache", &[], &[I32]),
    ("proxy_close_stream", &[I32], &[I32]),
    ("proxy_continue_stream", &[I32], &[I32]),
    ("proxy_define_metric", &[I32, I32, I32, I32], &[I32]),
    ("proxy_dequeue_shared_queue", &[I32, I32, I32], &[I32]),
    ("proxy_done", &[], &[I32]),
    ("proxy_enqueue_shared_queue", &[I32, I32, I32], &[I32]),
    ("proxy_get_buffer_bytes", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_get_buffer_status", &[I32, I32, I32], &[I32]),
    ("proxy_get_current_time_nanoseconds", &[I32], &[I32]),
    ("proxy_get_header_map_pairs", &[I32, I32, I32], &[I32]),
    ("proxy_get_header_map_size", &[I32, I32], &[I32]),
    ("proxy_get_header_map_value", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_get_log_level", &[I32], &[I32]),
    ("proxy_get_metric", &[I32, I32], &[I32]),
    ("proxy_get_property", &[I32, I32, I32, I32], &[I32]),
    ("proxy_get_shared_data", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_get_status", &[I32, I32, I32], &[I32]),
    ("proxy_grpc_call", &[I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], &[I32]),
    ("proxy_grpc_cancel", &[I32], &[I32]),
    ("proxy_grpc_close", &[I32], &[I32]),
    ("proxy_grpc_send", &[I32, I32, I32, I32], &[I32]),
    ("proxy_grpc_stream", &[I32, I32, I32, I32, I32, I32, I32, I32, I32], &[I32]),
    ("proxy_http_call", &[I32, I32, I32, I32, I32, I32, I32, I32, I32, I32], &[I32]),
    ("proxy_increment_metric", &[I32, I64], &[I32]),
    ("proxy_log", &[I32, I32, I32], &[I32]),
    ("proxy_record_metric", &[I32, I64], &[I32]),
    ("proxy_register_shared_queue", &[I32, I32, I32], &[I32]),
    ("proxy_remove_header_map_value", &[I32, I32, I32], &[I32]),
    ("proxy_replace_header_map_value", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_resolve_shared_queue", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_send_local_response", &[I32, I32, I32, I32, I32, I32, I32, I32], &[I32]),
    ("proxy_set_buffer_bytes", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_set_effective_context", &[I32], &[I32]),
    ("proxy_set_header_map_pairs", &[I32, I32, I32], &[I32]),
    ("proxy_set_property", &[I32, I32, I32, I32], &[I32]),
    ("proxy_set_shared_data", &[I32, I32, I32, I32, I32], &[I32]),
    ("proxy_set_tick_period_milliseconds", &[I32], &[I32]),
    ("pthread_equal", &[I32, I32], &[I32]),
];

/// The modules whose imports the sandbox always satisfies.
pub const WASI: [&str; 2] = ["wasi_snapshot_preview1", "wasi_unstable"];

/// Refuses a module that imports an `env` function the host lacks or with another signature,
/// or anything from another module than `env` and WASI.
pub fn check(module: &Module) -> Result<(), LoadError> {
    for import in module.imports() {
        let (from, name) = (import.module(), import.name());
        if WASI.contains(&from) {
            continue;
        }
        let unknown = || LoadError::UnknownImport {
            module: from.to_owned(),
            name: name.to_owned(),
        };
        if from != "env" {
            return Err(unknown());
        }
        let Some(want) = import.ty().func().cloned() else {
            // A memory or table from `env`: not something the host provides.
            return Err(unknown());
        };
        let (_, params, results) = ENV
            .iter()
            .find(|(n, _, _)| *n == name)
            .ok_or_else(unknown)?;
        let same = |got: &mut dyn ExactSizeIterator<Item = ValType>, have: &[Ty]| {
            got.len() == have.len()
                && got.zip(have).all(|(g, h)| match h {
                    Ty::I32 => matches!(g, ValType::I32),
                    Ty::I64 => matches!(g, ValType::I64),
                })
        };
        if !same(&mut want.params(), params) || !same(&mut want.results(), results) {
            return Err(LoadError::Link(format!(
                "env.{name} is imported as {want}, the host provides {}",
                describe(params, results)
            )));
        }
    }
    Ok(())
}

fn describe(params: &[Ty], results: &[Ty]) -> String {
    let list = |t: &[Ty]| {
        t.iter()
            .map(|t| match t {
                Ty::I32 => "i32",
                Ty::I64 => "i64",
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!("(func (param {}) (result {}))", list(params), list(results))
}

/// A module that imports every host function with its signature (for a host's own tests: it
/// links exactly when the host defines them all).
pub fn everything_wat() -> String {
    let ty = |t: &[Ty]| {
        t.iter()
            .map(|t| match t {
                Ty::I32 => " i32",
                Ty::I64 => " i64",
            })
            .collect::<String>()
    };
    let imports: String = ENV
        .iter()
        .map(|(name, p, r)| {
            format!(
                "(import \"env\" \"{name}\" (func (param{}) (result{})))\n",
                ty(p),
                ty(r)
            )
        })
        .collect();
    format!("(module\n{imports}(func (export \"proxy_abi_version_0_2_1\")))")
}
