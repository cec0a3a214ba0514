//! Stream control: `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`,
//! `proxy_get_status`, `proxy_clear_route_cache`. The first three only record what the plugin
//! asked; the chain acts on it once the callback returns, as Envoy does.

use bytes::Bytes;
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::HostState;
use crate::wasm::stream::LocalResponse;

const HTTP_REQUEST: i32 = 0;
const HTTP_RESPONSE: i32 = 1;

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |caller: Caller<'_, HostState>, kind: i32| -> HostResult {
            let Some(stream) = caller.data().stream() else {
                return Status::Ok.into();
            };
            {
                let mut d = stream.lock();
                match kind {
                    HTTP_REQUEST => d.resume_request = true,
                    HTTP_RESPONSE => d.resume_response = true,
                    _ => return Status::BadArgument.into(),
                }
            }
            stream.notify();
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |caller: Caller<'_, HostState>, _kind: i32| -> HostResult {
            if let Some(stream) = caller.data().stream() {
                stream.lock().reset = true;
                stream.notify();
            }
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut caller: Caller<'_, HostState>,
         code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32|
         -> HostResult {
            let read = (|| {
                let details = memory::read_string(&mut caller, details_ptr, details_len)?;
                let body = memory::read(&mut caller, body_ptr, body_len)?;
                let headers = memory::read(&mut caller, headers_ptr, headers_len)?;
                Ok::<_, Status>((details, body, headers))
            })();
            let (details, body, headers) = match read {
                Ok(r) => r,
                Err(s) => return s.into(),
            };
            let Some(headers) = pairs::decode_owned(&headers) else {
                return Status::BadArgument.into();
            };
            let status = code as u32;
            if !(100..=999).contains(&status) {
                return Status::BadArgument.into();
            }
            let Some(stream) = caller.data().stream() else {
                return Status::NotFound.into();
            };
            {
                let mut d = stream.lock();
                // Only the first local response of a stream counts.
                if d.local_response.is_none() {
                    d.local_response = Some(LocalResponse {
                        status: status as u16,
                        headers,
                        body: Bytes::from(body),
                        details,
                        grpc_status: u8::try_from(grpc_status).ok().filter(|s| *s <= 16),
                    });
                }
            }
            stream.notify();
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Caller<'_, HostState>,
         ret_code: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> HostResult {
            let (code, message) = caller.data().status.clone().unwrap_or((0, Bytes::new()));
            if let Err(s) = memory::write_u32(&mut caller, ret_code, code) {
                return s.into();
            }
            memory::given(memory::give(&mut caller, &message, ret_ptr, ret_len))
        },
    )?;
    // Envoy forgets the route it picked when a plugin changed what routing reads. The sidecar
    // has one upstream and no routes, so there is nothing to forget; the AssemblyScript and C++
    // SDKs import it (their `clear_route_cache()`), and a module importing it must still load.
    linker.func_wrap(
        "env",
        "proxy_clear_route_cache",
        |_: Caller<'_, HostState>| -> HostResult { Status::Ok.into() },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::wasm::abi::testing;

    /// The AssemblyScript SDK's `clear_route_cache()` (and the C++ SDK's) links and answers OK.
    #[test]
    fn clear_route_cache_links_and_answers_ok() -> Result<(), String> {
        let started = testing::start(
            r#"(module
                 (import "env" "proxy_clear_route_cache" (func $clear (result i32)))
                 (memory (export "memory") 1)
                 (func (export "proxy_abi_version_0_2_0"))
                 ;; Configured only if the call answered OK (0).
                 (func (export "proxy_on_configure") (param i32 i32) (result i32)
                   (i32.eqz (call $clear))))"#,
        )?;
        started.instance.map_err(|e| e.to_string())?;
        Ok(())
    }
}
