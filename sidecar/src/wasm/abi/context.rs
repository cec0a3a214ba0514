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
        |mut caller: Caller<'_, HostState>| -> HostResult {
            // Meaningful for a stream whose `proxy_on_done` returned false: the host deletes it
            // once the callback returns. Anything else has nothing to finish; the Rust SDK only
            // accepts OK here.
            let state = caller.data_mut();
            let id = state.context();
            if state.streams.contains_key(&id) && !state.done.contains(&id) {
                state.done.push(id);
            }
            Status::Ok.into()
        },
    )?;
    Ok(())
}
