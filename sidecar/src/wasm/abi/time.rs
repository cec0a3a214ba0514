//! `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`.

use std::time::{Duration, SystemTime};

use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory};
use crate::wasm::host::HostState;

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, HostState>, ret: i32| -> HostResult {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            super::status(memory::write_u64(&mut caller, ret, now))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, HostState>, period: i32| -> HostResult {
            // The timer belongs to the instance's root context, whichever context asks.
            caller.data_mut().tick = Some(Duration::from_millis(u64::from(period as u32)));
            Status::Ok.into()
        },
    )?;
    Ok(())
}
