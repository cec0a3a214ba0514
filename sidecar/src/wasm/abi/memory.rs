//! Guest memory: bounds-checked reads and writes, and handing data to the guest through its
//! allocator ("return slots": the guest gets a pointer and a length it now owns).
//!
//! The instance records its memory and allocator once instantiation is over. Host calls made
//! before that, from a module's start section (AssemblyScript runs its top-level code there, so
//! `const requests = new Counter("requests")` defines a metric from it), find them in the
//! module's exports instead.

use std::sync::Arc;

use wasmtime::{Caller, Memory, TypedFunc};

use super::Status;
use crate::wasm::host::HostState;

/// Copies `[ptr, ptr + len)` out of guest memory. A null pointer with length 0 is an empty slice.
pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = guest_memory(caller).ok_or(Status::InvalidMemoryAccess)?;
    let data = mem.data(&*caller);
    let end = ptr.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
    data.get(ptr..end)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Reads a UTF-8 string (lossily: plugin text is not guaranteed UTF-8).
pub fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<String, Status> {
    read(caller, ptr, len).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Writes bytes at a guest address.
pub fn write(caller: &mut Caller<'_, HostState>, ptr: u32, bytes: &[u8]) -> Result<(), Status> {
    let mem = guest_memory(caller).ok_or(Status::InvalidMemoryAccess)?;
    put(mem.data_mut(&mut *caller), ptr, bytes)
}

fn put(data: &mut [u8], ptr: u32, bytes: &[u8]) -> Result<(), Status> {
    let start = ptr as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?;
    data.get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, v: u32) -> Result<(), Status> {
    write(caller, ptr as u32, &v.to_le_bytes())
}

pub fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, v: u64) -> Result<(), Status> {
    write(caller, ptr as u32, &v.to_le_bytes())
}

/// The guest's exported memory: the one the instance recorded, or during instantiation the
/// module's `memory` export (remembered, as the instance would).
fn guest_memory(caller: &mut Caller<'_, HostState>) -> Option<Memory> {
    if let Some(mem) = caller.data().memory {
        return Some(mem);
    }
    let mem = caller.get_export("memory")?.into_memory()?;
    caller.data_mut().memory = Some(mem);
    Some(mem)
}

/// The guest's allocator: the one the instance recorded, or during instantiation its
/// `proxy_on_memory_allocate` export, else `malloc` (the instance's order).
fn allocator(caller: &mut Caller<'_, HostState>) -> Option<Arc<TypedFunc<i32, i32>>> {
    if let Some(alloc) = &caller.data().alloc {
        return Some(alloc.clone());
    }
    let alloc = ["proxy_on_memory_allocate", "malloc"]
        .iter()
        .find_map(|name| {
            let func = caller.get_export(name)?.into_func()?;
            func.typed::<i32, i32>(&*caller).ok()
        })?;
    let alloc = Arc::new(alloc);
    caller.data_mut().alloc = Some(alloc.clone());
    Some(alloc)
}

/// Hands `data` to the guest: allocates exactly `data.len()` bytes with its allocator, copies,
/// and writes the pointer and length to the two return slots. Empty data is returned as
/// `(0, 0)` without calling the allocator (some SDK allocators fail on size 0).
///
/// `Err(Give::Status)` is a status for the guest; `Err(Give::Trap)` means the allocator trapped.
pub fn give(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> Result<(), Give> {
    if data.is_empty() {
        write_u32(caller, ret_ptr, 0)?;
        write_u32(caller, ret_len, 0)?;
        return Ok(());
    }
    let len = u32::try_from(data.len()).map_err(|_| Status::BadArgument)?;
    let alloc = allocator(caller).ok_or(Status::InternalFailure)?;
    let ptr = alloc.call(&mut *caller, len as i32).map_err(Give::Trap)? as u32;
    if ptr == 0 {
        return Err(Status::InternalFailure.into());
    }
    let mem = guest_memory(caller).ok_or(Status::InvalidMemoryAccess)?;
    let guest = mem.data_mut(&mut *caller);
    put(guest, ptr, data)?;
    put(guest, ret_ptr as u32, &ptr.to_le_bytes())?;
    put(guest, ret_len as u32, &len.to_le_bytes())?;
    Ok(())
}

/// Why [`give`] failed.
#[derive(Debug)]
pub enum Give {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Give {
    fn from(s: Status) -> Self {
        Self::Status(s)
    }
}

/// The host function result for a `give`: a status, or the allocator's trap.
pub fn given(r: Result<(), Give>) -> super::HostResult {
    match r {
        Ok(()) => Ok(Status::Ok as i32),
        Err(Give::Status(s)) => Ok(s as i32),
        Err(Give::Trap(e)) => Err(e),
    }
}

/// Guest memory and the host state at once, so that host functions can use guest data where it
/// is instead of copying it out. Without a memory export the guest memory is empty.
pub fn split<'a>(caller: &'a mut Caller<'_, HostState>) -> (&'a [u8], &'a mut HostState) {
    match guest_memory(caller) {
        Some(mem) => {
            let (data, state) = mem.data_and_store_mut(caller);
            (data, state)
        }
        None => (&[], caller.data_mut()),
    }
}

/// The guest bytes `[ptr, ptr + len)` of `mem`. A null pointer with length 0 is an empty slice.
pub fn slice(mem: &[u8], ptr: i32, len: i32) -> Result<&[u8], Status> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len == 0 {
        return Ok(&[]);
    }
    let end = ptr.checked_add(len).ok_or(Status::InvalidMemoryAccess)?;
    mem.get(ptr..end).ok_or(Status::InvalidMemoryAccess)
}

#[cfg(test)]
mod tests {
    use crate::wasm::abi::testing;

    /// Host calls from a start section (AssemblyScript's top-level code) reach the guest's memory
    /// and allocator before the instance has recorded them.
    #[test]
    fn host_calls_work_from_the_start_section() -> Result<(), String> {
        let started = testing::start(
            r#"(module
                 (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
                 (import "env" "proxy_get_property"
                   (func $property (param i32 i32 i32 i32) (result i32)))
                 (import "env" "proxy_define_metric"
                   (func $define (param i32 i32 i32 i32) (result i32)))
                 (memory (export "memory") 1)
                 (data (i32.const 16) "top-level code ran")
                 (data (i32.const 48) "plugin_name")
                 (data (i32.const 64) "loaded")
                 (global $heap (mut i32) (i32.const 1024))
                 ;; A bump allocator.
                 (func (export "malloc") (param $size i32) (result i32)
                   (global.get $heap)
                   (global.set $heap (i32.add (global.get $heap) (local.get $size))))
                 ;; Runs at instantiation: logs, reads a property (through the allocator) and
                 ;; logs its value, defines a counter. Traps unless every call answers OK.
                 (func $start
                   (if (call $log (i32.const 2) (i32.const 16) (i32.const 18))
                     (then unreachable))
                   (if (call $property (i32.const 48) (i32.const 11) (i32.const 0) (i32.const 4))
                     (then unreachable))
                   (if (call $log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)))
                     (then unreachable))
                   (if (call $define (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 8))
                     (then unreachable)))
                 (start $start)
                 (func (export "proxy_abi_version_0_2_0")))"#,
        )?;
        started.instance.map_err(|e| e.to_string())?;
        assert_eq!(
            testing::log(&started.plugin),
            ["top-level code ran", "fixture"]
        );
        let defined = started
            .registry
            .gather()
            .iter()
            .any(|f| f.name() == "loaded_total");
        assert!(defined, "the counter defined at start-up is not registered");
        Ok(())
    }
}
