//! `proxy_log`, `proxy_get_log_level`.

use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory};
use crate::wasm::host::HostState;
use crate::wasm::logs::Level;

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> HostResult {
            let Some(level) = Level::from_abi(level) else {
                return Status::BadArgument.into();
            };
            let message = match memory::read_string(&mut caller, ptr, len) {
                Ok(m) => m,
                Err(s) => return s.into(),
            };
            caller.data_mut().log(level, message);
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut caller: Caller<'_, HostState>, ret: i32| -> HostResult {
            // Plugins log at every level: the ring buffer keeps all of it, whatever RUST_LOG says.
            super::status(memory::write_u32(&mut caller, ret, Level::Trace as u32))
        },
    )?;
    Ok(())
}
