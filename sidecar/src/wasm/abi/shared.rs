//! Shared data (`proxy_get_shared_data`, `proxy_set_shared_data`) and shared queues
//! (`proxy_register_shared_queue`, `proxy_resolve_shared_queue`,
//! `proxy_enqueue_shared_queue`, `proxy_dequeue_shared_queue`): process-wide, scoped by the
//! plugin's vm id, so every instance of a plugin sees the same values.

use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory};
use crate::wasm::host::HostState;
use crate::wasm::metrics::Denied;

/// Whether the plugin may not use shared data; a refusal is counted as `call`.
fn denied(state: &HostState, call: Denied) -> bool {
    let denied = !state.plugin.permissions.shared_data;
    if denied {
        state.plugin.metrics.deny(call);
    }
    denied
}

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_len: i32,
         ret_cas: i32|
         -> HostResult {
            if denied(caller.data(), Denied::GetSharedData) {
                return Status::NotFound.into();
            }
            let key = match memory::read(&mut caller, key_ptr, key_len) {
                Ok(k) => k,
                Err(s) => return s.into(),
            };
            let plugin = caller.data().plugin.clone();
            let Some((value, cas)) = plugin.services.shared.get(&plugin.vm_id, &key) else {
                return Status::NotFound.into();
            };
            if let Err(s) = memory::write_u32(&mut caller, ret_cas, cas) {
                return s.into();
            }
            memory::given(memory::give(&mut caller, &value, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: i32,
         key_len: i32,
         val_ptr: i32,
         val_len: i32,
         cas: i32|
         -> HostResult {
            if denied(caller.data(), Denied::SetSharedData) {
                return Status::CasMismatch.into();
            }
            let kv = memory::read(&mut caller, key_ptr, key_len)
                .and_then(|k| Ok((k, memory::read(&mut caller, val_ptr, val_len)?)));
            let (key, value) = match kv {
                Ok(kv) => kv,
                Err(s) => return s.into(),
            };
            let plugin = &caller.data().plugin;
            super::status(
                plugin
                    .services
                    .shared
                    .set(&plugin.vm_id, key, value, cas as u32),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut caller: Caller<'_, HostState>,
         name_ptr: i32,
         name_len: i32,
         ret_id: i32|
         -> HostResult {
            let name = match memory::read(&mut caller, name_ptr, name_len) {
                Ok(n) => n,
                Err(s) => return s.into(),
            };
            let state = caller.data();
            let id = state.plugin.services.queues.register(
                &state.plugin.vm_id,
                name,
                state.queue_notifier.clone(),
            );
            caller.data_mut().queues.push(id);
            super::status(memory::write_u32(&mut caller, ret_id, id))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut caller: Caller<'_, HostState>,
         vm_ptr: i32,
         vm_len: i32,
         name_ptr: i32,
         name_len: i32,
         ret_id: i32|
         -> HostResult {
            let read = memory::read_string(&mut caller, vm_ptr, vm_len)
                .and_then(|vm| Ok((vm, memory::read(&mut caller, name_ptr, name_len)?)));
            let (vm, name) = match read {
                Ok(r) => r,
                Err(s) => return s.into(),
            };
            let plugin = caller.data().plugin.clone();
            let vm = if vm.is_empty() {
                plugin.vm_id.clone()
            } else {
                vm
            };
            match plugin.services.queues.resolve(&vm, &name) {
                Some(id) => super::status(memory::write_u32(&mut caller, ret_id, id)),
                None => Status::NotFound.into(),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut caller: Caller<'_, HostState>, id: i32, ptr: i32, len: i32| -> HostResult {
            let value = match memory::read(&mut caller, ptr, len) {
                Ok(v) => v,
                Err(s) => return s.into(),
            };
            super::status(
                caller
                    .data()
                    .plugin
                    .services
                    .queues
                    .enqueue(id as u32, value),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut caller: Caller<'_, HostState>, id: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            match caller.data().plugin.services.queues.dequeue(id as u32) {
                Ok(v) => memory::given(memory::give(&mut caller, &v, ret_ptr, ret_len)),
                Err(s) => s.into(),
            }
        },
    )?;
    Ok(())
}
