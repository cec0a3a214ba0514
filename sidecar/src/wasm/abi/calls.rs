//! Outbound calls: `proxy_http_call`, and the gRPC calls (answered `INTERNAL_FAILURE` for now:
//! the Rust SDK accepts that status from them).
//!
//! A call is only recorded here, with a fresh token; the instance starts it once the callback
//! returns and delivers `proxy_on_http_call_response` to the root context when it completes.

use std::time::Duration;

use bytes::Bytes;
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::{HostState, PendingCall};

/// Upper bound on a call's timeout (0 asks for none).
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut caller: Caller<'_, HostState>,
         up_ptr: i32,
         up_len: i32,
         h_ptr: i32,
         h_len: i32,
         b_ptr: i32,
         b_len: i32,
         _t_ptr: i32,
         _t_len: i32,
         timeout_ms: i32,
         ret_token: i32|
         -> HostResult {
            let read = (|| {
                let cluster = memory::read_string(&mut caller, up_ptr, up_len)?;
                let headers = memory::read(&mut caller, h_ptr, h_len)?;
                let body = memory::read(&mut caller, b_ptr, b_len)?;
                Ok::<_, Status>((cluster, headers, body))
            })();
            let (cluster, headers, body) = match read {
                Ok(r) => r,
                Err(s) => return s.into(),
            };
            let Some(headers) = pairs::decode(&headers) else {
                return Status::BadArgument.into();
            };
            let state = caller.data();
            let allowed = state.plugin.permissions.http_calls.contains(&cluster);
            if !allowed || !state.plugin.services.clusters.contains_key(&cluster) {
                state.plugin.log(
                    crate::wasm::logs::Level::Warn,
                    format!("http_call to {cluster:?} refused: not a cluster this plugin may call"),
                );
                return Status::BadArgument.into();
            }
            let has = |name: &[u8]| headers.iter().any(|(k, _)| k.as_slice() == name);
            if !(has(b":method") && has(b":path")) {
                return Status::BadArgument.into();
            }
            let timeout = match timeout_ms as u32 {
                0 => MAX_TIMEOUT,
                ms => Duration::from_millis(u64::from(ms)).min(MAX_TIMEOUT),
            };
            let token = caller.data_mut().next_token();
            if let Err(s) = memory::write_u32(&mut caller, ret_token, token) {
                return s.into();
            }
            caller.data_mut().pending_calls.push(PendingCall {
                token,
                cluster,
                headers,
                body: Bytes::from(body),
                timeout,
            });
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |_: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult { Status::InternalFailure.into() },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_: Caller<'_, HostState>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> HostResult { Status::InternalFailure.into() },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            Status::NotFound.into()
        },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker.func_wrap(
            "env",
            name,
            |_: Caller<'_, HostState>, _: i32| -> HostResult { Status::NotFound.into() },
        )?;
    }
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> HostResult {
            Status::NotFound.into()
        },
    )?;
    Ok(())
}
