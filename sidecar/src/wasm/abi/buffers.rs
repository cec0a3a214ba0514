//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`.
//!
//! Buffers: request/response bodies (while their body hook runs or the stream stays paused
//! there), the HTTP call response body (during its callback), and the plugin and VM
//! configuration (during start-up and `proxy_on_configure`).

use bytes::{Bytes, BytesMut};
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory};
use crate::wasm::host::HostState;
use crate::wasm::metrics::Denied;
use crate::wasm::stream::Phase;

const REQUEST_BODY: i32 = 0;
const RESPONSE_BODY: i32 = 1;
const CALL_RESPONSE_BODY: i32 = 4;
const GRPC_CALL_MESSAGE: i32 = 5;
const VM_CONFIGURATION: i32 = 6;
const PLUGIN_CONFIGURATION: i32 = 7;

/// A copy of buffer `kind` as the acting context sees it now; `call` is counted if the
/// plugin's permissions refuse it.
fn snapshot(state: &mut HostState, kind: i32, call: Denied) -> Result<Bytes, Status> {
    if kind == PLUGIN_CONFIGURATION {
        state.read_config = true;
    }
    match kind {
        REQUEST_BODY | RESPONSE_BODY => {
            if !state.plugin.permissions.body {
                state.plugin.metrics.deny(call);
                return Err(Status::NotFound);
            }
            let stream = state.stream().ok_or(Status::NotFound)?;
            let data = stream.lock();
            let (body, phase) = if kind == REQUEST_BODY {
                (&data.request_body, Phase::RequestBody)
            } else {
                (&data.response_body, Phase::ResponseBody)
            };
            if data.phase != phase {
                return Err(Status::NotFound);
            }
            Ok(Bytes::copy_from_slice(body))
        }
        CALL_RESPONSE_BODY | GRPC_CALL_MESSAGE => state
            .call_response
            .as_ref()
            .map(|r| r.body.clone())
            .ok_or(Status::NotFound),
        VM_CONFIGURATION => Ok(state.plugin.vm_config.clone()),
        PLUGIN_CONFIGURATION if state.configuring => Ok(state.plugin.config.clone()),
        PLUGIN_CONFIGURATION => Err(Status::NotFound),
        2 | 3 | 8 => Err(Status::NotFound),
        _ => Err(Status::BadArgument),
    }
}

/// `replace(min(start, len), size, data)`: prepend, append, replace-all and partial edits.
pub fn splice(buf: &mut BytesMut, start: u32, size: u32, data: &[u8]) {
    let len = buf.len();
    let start = (start as usize).min(len);
    let end = start.saturating_add(size as usize).min(len);
    let tail = buf.split_off(end);
    buf.truncate(start);
    buf.extend_from_slice(data);
    buf.extend_from_slice(&tail);
}

/// Where the size of a configuration read goes. The AssemblyScript SDK
/// (`@solo-io/proxy-runtime` 0.1.8), in its default `RootContext.onConfigure`, passes the
/// configuration's size where the address of the size slot belongs:
/// `proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &ref.buffer, size)`. Written there,
/// the size lands at guest address `size`: in the module's static data, or in a heap block's
/// header when the configuration is as long as the static data (the allocator's reference-count
/// assertion fails later, `~lib/rt/pure.ts`), and with an empty configuration the SDK reads a
/// stale size and traps. Its return slots are one `ArrayBufferReference`, the pointer and then
/// the size, so in that case the size goes right after the pointer, where the SDK reads it. A
/// guest whose size slot's address is the size it asked for is that SDK: no other is.
fn size_slot(kind: i32, max: i32, ret_ptr: i32, ret_len: i32) -> i32 {
    let config = kind == PLUGIN_CONFIGURATION || kind == VM_CONFIGURATION;
    if config && ret_len == max && ret_ptr != ret_len {
        ret_ptr.wrapping_add(4)
    } else {
        ret_len
    }
}

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> HostResult {
            let buf = match snapshot(caller.data_mut(), kind, Denied::GetBuffer) {
                Ok(b) => b,
                Err(s) => return s.into(),
            };
            let ret_len = size_slot(kind, max, ret_ptr, ret_len);
            // Offsets are unsigned; SDKs pass u32::MAX for "everything".
            let start = (start as u32 as usize).min(buf.len());
            let end = start.saturating_add(max as u32 as usize).min(buf.len());
            memory::given(memory::give(
                &mut caller,
                &buf[start..end],
                ret_ptr,
                ret_len,
            ))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         start: i32,
         size: i32,
         ptr: i32,
         len: i32|
         -> HostResult {
            let data = match memory::read(&mut caller, ptr, len) {
                Ok(d) => d,
                Err(s) => return s.into(),
            };
            let state = caller.data();
            let body_kind = kind == REQUEST_BODY || kind == RESPONSE_BODY;
            if !body_kind {
                return Status::BadArgument.into();
            }
            if !state.plugin.permissions.body {
                state.plugin.metrics.deny(Denied::SetBuffer);
                return Status::NotFound.into();
            }
            let Some(stream) = state.stream() else {
                return Status::NotFound.into();
            };
            let mut data_guard = stream.lock();
            let d = &mut *data_guard;
            let (body, phase) = if kind == REQUEST_BODY {
                (&mut d.request_body, Phase::RequestBody)
            } else {
                (&mut d.response_body, Phase::ResponseBody)
            };
            if d.phase != phase {
                return Status::NotFound.into();
            }
            splice(body, start as u32, size as u32, &data);
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut caller: Caller<'_, HostState>,
         kind: i32,
         ret_len: i32,
         ret_flags: i32|
         -> HostResult {
            let buf = match snapshot(caller.data_mut(), kind, Denied::BufferStatus) {
                Ok(b) => b,
                Err(s) => return s.into(),
            };
            let r = memory::write_u32(&mut caller, ret_len, buf.len() as u32)
                .and_then(|()| memory::write_u32(&mut caller, ret_flags, 0));
            super::status(r)
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{PLUGIN_CONFIGURATION, REQUEST_BODY, size_slot, splice};

    #[test]
    fn a_configuration_size_passed_as_its_slot_goes_after_the_pointer() {
        // The AssemblyScript SDK's onConfigure: the size (18) where the slot's address belongs.
        assert_eq!(size_slot(PLUGIN_CONFIGURATION, 18, 1024, 18), 1028);
        assert_eq!(size_slot(PLUGIN_CONFIGURATION, 0, 1024, 0), 1028);
        // Everyone else: their own slot.
        assert_eq!(size_slot(PLUGIN_CONFIGURATION, -1, 1024, 1032), 1032);
        assert_eq!(size_slot(REQUEST_BODY, 18, 1024, 18), 18);
    }
    use bytes::BytesMut;

    fn edit(start: u32, size: u32, data: &str) -> String {
        let mut b = BytesMut::from("hello");
        splice(&mut b, start, size, data.as_bytes());
        String::from_utf8_lossy(&b).into_owned()
    }

    #[test]
    fn splices_like_envoy() {
        assert_eq!(edit(0, 0, "prepend."), "prepend.hello");
        assert_eq!(edit(u32::MAX, 0, ".append"), "hello.append");
        assert_eq!(edit(0, u32::MAX, "replace"), "replace");
        assert_eq!(edit(0, 1, "partial.replace."), "partial.replace.ello");
        assert_eq!(edit(0, u32::MAX, ""), "");
        assert_eq!(edit(0, 1, ""), "ello");
    }
}
