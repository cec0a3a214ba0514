//! The Proxy-Wasm ABI (0.2.0 and 0.2.1) as host functions: one submodule per family, each
//! registering its functions into the [`Linker`].
//!
//! Host functions never panic and never trust guest pointers. A plugin's mistake (a bad pointer,
//! an unknown map type, a call outside its permissions) gets a [`Status`] back; only a broken
//! allocator or a WASI `proc_exit` traps the instance. Which statuses each function may return
//! follows what the Rust SDK accepts without panicking (see docs/plugins.md).

mod buffers;
mod calls;
mod context;
mod log;
mod maps;
pub mod memory;
mod metrics;
pub mod pairs;
mod properties;
mod shared;
mod stream;
mod time;

use wasmtime::Linker;

use super::host::HostState;

/// `proxy_status_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    Unimplemented = 12,
}

/// What every host function returns to wasmtime: a status, or a trap.
pub type HostResult = wasmtime::Result<i32>;

impl From<Status> for HostResult {
    fn from(s: Status) -> Self {
        Ok(s as i32)
    }
}

/// Turns a `Result<(), Status>` into the status the guest sees.
pub fn status(r: Result<(), Status>) -> HostResult {
    Ok(match r {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    })
}

/// Every `env.proxy_*` function the host provides.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    log::add(linker)?;
    time::add(linker)?;
    context::add(linker)?;
    buffers::add(linker)?;
    maps::add(linker)?;
    properties::add(linker)?;
    stream::add(linker)?;
    calls::add(linker)?;
    shared::add(linker)?;
    metrics::add(linker)?;
    Ok(())
}
