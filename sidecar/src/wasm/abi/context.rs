//! `proxy_set_effective_context`, `proxy_done`.

use wasmtime::{Caller, Linker};

use super::{HostResult, Status};
use crate::wasm::host::HostState;

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut caller: Caller<'_, HostState>, id: i32| -> HostResult {
            let id = id as u32;
            let state = caller.data_mut();
            if id != state.root && !state.streams.contains_key(&id) {
                return Status::BadArgument.into();
            }
            state.effective = Some(id);
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_done",
        |_caller: Caller<'_, HostState>| -> HostResult {
            // The host does not defer tear-down when `proxy_on_done` returns false (it deletes the
            // context when the stream ends), so a later `proxy_done` has nothing left to do. The
            // Rust SDK only accepts OK here.
            Status::Ok.into()
        },
    )?;
    Ok(())
}
