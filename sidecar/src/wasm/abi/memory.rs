//! Guest memory: bounds-checked reads and writes, and handing data to the guest through its
//! allocator ("return slots": the guest gets a pointer and a length it now owns).

use wasmtime::Caller;

use super::Status;
use crate::wasm::host::HostState;

/// Copies `[ptr, ptr + len)` out of guest memory. A null pointer with length 0 is an empty slice.
pub fn read(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len == 0 {
        return Ok(Vec::new());
    }
    let mem = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
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
    let mem = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
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
    let alloc = caller.data().alloc.clone().ok_or(Status::InternalFailure)?;
    let ptr = alloc.call(&mut *caller, len as i32).map_err(Give::Trap)? as u32;
    if ptr == 0 {
        return Err(Status::InternalFailure.into());
    }
    let mem = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
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
    match caller.data().memory {
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
