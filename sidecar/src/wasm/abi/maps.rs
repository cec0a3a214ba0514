//! Header and trailer maps: `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_value`, `proxy_add_header_map_value`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`,
//! `proxy_get_header_map_size`.
//!
//! Maps follow HTTP/2 conventions whatever the wire protocol ([`view`] says how a head looks as
//! a map; [`edit`] how writes change it). The host functions read keys and values in guest
//! memory where they are and serve reads from the heads in place: a value lookup is one
//! `HeaderMap` lookup, and what goes back to the guest is assembled in the instance's scratch
//! buffer, so a host call allocates only what a changed map keeps.

mod edit;
mod view;

use wasmtime::{Caller, Linker};

use self::edit::{Edit, edit_map};
use self::view::Source;
use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::HostState;

pub const REQUEST_HEADERS: i32 = 0;
pub const REQUEST_TRAILERS: i32 = 1;
pub const RESPONSE_HEADERS: i32 = 2;
pub const RESPONSE_TRAILERS: i32 = 3;
const GRPC_INITIAL_METADATA: i32 = 4;
const GRPC_TRAILING_METADATA: i32 = 5;
const CALL_RESPONSE_HEADERS: i32 = 6;
const CALL_RESPONSE_TRAILERS: i32 = 7;

/// Most scratch capacity an instance keeps between host calls.
const SCRATCH_KEPT: usize = 64 << 10;

/// Runs `f` on map `map` as the acting context sees it now (`None`: it does not exist now).
fn with_map<R>(
    state: &HostState,
    map: i32,
    f: impl FnOnce(Option<Source<'_>>) -> R,
) -> Result<R, Status> {
    let call = state.call_response.as_ref();
    match map {
        CALL_RESPONSE_HEADERS | GRPC_INITIAL_METADATA => {
            return Ok(f(call.map(|r| Source::List(&r.headers))));
        }
        CALL_RESPONSE_TRAILERS | GRPC_TRAILING_METADATA => {
            return Ok(f(call.map(|r| Source::List(&r.trailers))));
        }
        REQUEST_HEADERS..=RESPONSE_TRAILERS => {}
        _ => return Err(Status::BadArgument),
    }
    let Some(stream) = state.stream_ref() else {
        return Ok(f(None));
    };
    let d = stream.lock();
    let source = match map {
        REQUEST_HEADERS => d.request.as_ref().map(|head| Source::Request {
            head,
            tls: d.info.tls,
        }),
        REQUEST_TRAILERS => d.request_trailers.as_ref().map(Source::Trailers),
        RESPONSE_HEADERS => d.response.as_ref().map(Source::Response),
        _ => d.response_trailers.as_ref().map(Source::Trailers),
    };
    Ok(f(source))
}

/// Fills the instance's scratch buffer with `fill` (false: nothing to return) and hands it to
/// the guest through the return slots; the buffer goes back to the instance for the next call.
fn give_scratch(
    caller: &mut Caller<'_, HostState>,
    ret: (i32, i32),
    fill: impl FnOnce(&HostState, &[u8], &mut Vec<u8>) -> Result<bool, Status>,
    args: (i32, i32),
) -> HostResult {
    let (mem, state) = memory::split(caller);
    let mut scratch = std::mem::take(&mut state.scratch);
    scratch.clear();
    let filled = memory::slice(mem, args.0, args.1).and_then(|arg| fill(state, arg, &mut scratch));
    let result = match filled {
        Ok(true) => memory::given(memory::give(caller, &scratch, ret.0, ret.1)),
        Ok(false) => Status::NotFound.into(),
        Err(s) => s.into(),
    };
    // A huge map read once should not stay allocated for the instance's life.
    if scratch.capacity() <= SCRATCH_KEPT {
        caller.data_mut().scratch = scratch;
    }
    result
}

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            let fill = |state: &HostState, _: &[u8], out: &mut Vec<u8>| {
                with_map(state, map, |m| {
                    // A map that does not exist now is an empty one.
                    if let Some(m) = m {
                        pairs::encode_into(out, || m.pairs());
                    }
                    true
                })
            };
            // An empty map encodes as nothing: (0, 0) in the return slots.
            give_scratch(&mut caller, (ret_ptr, ret_len), fill, (0, 0))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut caller: Caller<'_, HostState>, map: i32, ret: i32| -> HostResult {
            let size = with_map(caller.data(), map, |m| {
                m.map_or(0, |m| m.pairs().map(|(k, v)| k.len() + v.len()).sum())
            });
            match size {
                Ok(size) => super::status(memory::write_u32(&mut caller, ret, size as u32)),
                Err(s) => s.into(),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut caller: Caller<'_, HostState>,
         map: i32,
         key_ptr: i32,
         key_len: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> HostResult {
            let fill = |state: &HostState, key: &[u8], out: &mut Vec<u8>| {
                with_map(state, map, |m| match m.and_then(|m| m.get(key)) {
                    Some(v) => {
                        out.extend_from_slice(v);
                        true
                    }
                    None => false,
                })
            };
            give_scratch(&mut caller, (ret_ptr, ret_len), fill, (key_ptr, key_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map: i32, ptr: i32, len: i32| -> HostResult {
            let (mem, state) = memory::split(&mut caller);
            let result = memory::slice(mem, ptr, len).and_then(|buf| {
                let pairs = pairs::decode(buf).ok_or(Status::BadArgument)?;
                edit_map(state, map, Edit::SetAll(pairs))
            });
            super::status(result)
        },
    )?;
    add_edit(linker, "proxy_add_header_map_value", |k, v| Edit::Add(k, v))?;
    add_edit(linker, "proxy_replace_header_map_value", |k, v| {
        Edit::Replace(k, v)
    })?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32| -> HostResult {
            let (mem, state) = memory::split(&mut caller);
            let result = memory::slice(mem, key_ptr, key_len)
                .and_then(|key| edit_map(state, map, Edit::Remove(key)));
            super::status(result)
        },
    )?;
    Ok(())
}

/// Registers a `(map, key, value)` edit function.
fn add_edit(
    linker: &mut Linker<HostState>,
    name: &'static str,
    make: for<'a> fn(&'a [u8], &'a [u8]) -> Edit<'a>,
) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        name,
        move |mut caller: Caller<'_, HostState>,
              map: i32,
              key_ptr: i32,
              key_len: i32,
              val_ptr: i32,
              val_len: i32|
              -> HostResult {
            let (mem, state) = memory::split(&mut caller);
            let result = memory::slice(mem, key_ptr, key_len).and_then(|key| {
                let value = memory::slice(mem, val_ptr, val_len)?;
                edit_map(state, map, make(key, value))
            });
            super::status(result)
        },
    )?;
    Ok(())
}
