//! Plugin-defined metrics: `proxy_define_metric`, `proxy_increment_metric`,
//! `proxy_record_metric`, `proxy_get_metric`. They are exported on `/metrics` under the name the
//! plugin gave, with a `plugin` label (see `wasm::metrics::custom`).

use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory};
use crate::wasm::host::HostState;
use crate::wasm::metrics::MetricKind;

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         name_ptr: i32,
         name_len: i32,
         ret_id: i32|
         -> HostResult {
            let Some(kind) = MetricKind::from_abi(kind) else {
                return Status::BadArgument.into();
            };
            let name = match memory::read_string(&mut caller, name_ptr, name_len) {
                Ok(n) => n,
                Err(s) => return s.into(),
            };
            match caller.data().plugin.custom_metrics.define(kind, &name) {
                Ok(id) => super::status(memory::write_u32(&mut caller, ret_id, id)),
                Err(s) => s.into(),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |caller: Caller<'_, HostState>, id: i32, delta: i64| -> HostResult {
            super::status(
                caller
                    .data()
                    .plugin
                    .custom_metrics
                    .increment(id as u32, delta),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |caller: Caller<'_, HostState>, id: i32, value: i64| -> HostResult {
            super::status(
                caller
                    .data()
                    .plugin
                    .custom_metrics
                    .record(id as u32, value as u64),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, HostState>, id: i32, ret: i32| -> HostResult {
            match caller.data().plugin.custom_metrics.get(id as u32) {
                Ok(v) => super::status(memory::write_u64(&mut caller, ret, v)),
                Err(s) => s.into(),
            }
        },
    )?;
    Ok(())
}
