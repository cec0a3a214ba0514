//! Outbound calls: `proxy_http_call` and unary `proxy_grpc_call`. gRPC streams are not
//! supported (`proxy_grpc_stream` answers `INTERNAL_FAILURE`, which the Rust SDK accepts).
//!
//! A call is only recorded here, with a fresh token; the instance starts it once the callback
//! returns and delivers `proxy_on_http_call_response` to the root context when it completes.

use std::time::Duration;

use bytes::Bytes;
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::{HostState, PendingCall};
use crate::wasm::metrics::Denied;

/// Upper bound on a call's timeout (0 asks for none).
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

fn timeout(ms: i32) -> Duration {
    match ms as u32 {
        0 => MAX_TIMEOUT,
        ms => Duration::from_millis(u64::from(ms)).min(MAX_TIMEOUT),
    }
}

/// Whether the plugin may call `cluster` (listed in its permissions, and defined); a refusal
/// is logged for the plugin's author.
fn may_call(state: &HostState, cluster: &str, call: Denied) -> bool {
    let plugin = &state.plugin;
    let permitted = plugin.permissions.http_calls.iter().any(|c| c == cluster);
    if !permitted {
        plugin.metrics.deny(call);
    }
    let allowed = permitted && plugin.services.clusters.contains_key(cluster);
    if !allowed {
        plugin.log(
            crate::wasm::logs::Level::Warn,
            format!("call to {cluster:?} refused: not a cluster this plugin may call"),
        );
    }
    allowed
}

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
            let Some(headers) = pairs::decode_owned(&headers) else {
                return Status::BadArgument.into();
            };
            if !may_call(caller.data(), &cluster, Denied::HttpCall) {
                return Status::BadArgument.into();
            }
            let has = |name: &[u8]| headers.iter().any(|(k, _)| k.as_slice() == name);
            if !(has(b":method") && has(b":path")) {
                return Status::BadArgument.into();
            }
            let timeout = timeout(timeout_ms);
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
                grpc: None,
            });
            Status::Ok.into()
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut caller: Caller<'_, HostState>,
         up_ptr: i32,
         up_len: i32,
         svc_ptr: i32,
         svc_len: i32,
         method_ptr: i32,
         method_len: i32,
         md_ptr: i32,
         md_len: i32,
         msg_ptr: i32,
         msg_len: i32,
         timeout_ms: i32,
         ret_token: i32|
         -> HostResult {
            let read = (|| {
                let cluster = memory::read_string(&mut caller, up_ptr, up_len)?;
                let service = memory::read_string(&mut caller, svc_ptr, svc_len)?;
                let method = memory::read_string(&mut caller, method_ptr, method_len)?;
                let metadata = memory::read(&mut caller, md_ptr, md_len)?;
                let message = memory::read(&mut caller, msg_ptr, msg_len)?;
                Ok::<_, Status>((cluster, service, method, metadata, message))
            })();
            let (cluster, service, method, metadata, message) = match read {
                Ok(r) => r,
                Err(s) => return s.into(),
            };
            let Some(metadata) = pairs::decode_owned(&metadata) else {
                return Status::BadArgument.into();
            };
            if !may_call(caller.data(), &cluster, Denied::GrpcCall) {
                // The Rust SDK expects PARSE_FAILURE for an upstream it cannot use.
                return Status::ParseFailure.into();
            }
            let token = caller.data_mut().next_token();
            if let Err(s) = memory::write_u32(&mut caller, ret_token, token) {
                return s.into();
            }
            caller.data_mut().pending_calls.push(PendingCall {
                token,
                cluster,
                headers: metadata,
                body: Bytes::from(message),
                timeout: timeout(timeout_ms),
                grpc: Some((service, method)),
            });
            Status::Ok.into()
        },
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
