//! `proxy_get_property`, `proxy_set_property`.
//!
//! Paths are segments joined by NUL (a trailing NUL, as the C++ SDK sends, is ignored; a single
//! `.`-joined string is accepted too). Values follow Envoy's encodings: strings raw, integers
//! as 8 bytes little-endian, booleans as one byte, timestamps as nanoseconds.

use std::time::SystemTime;

use bytes::Bytes;
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::HostState;
use crate::wasm::stream::StreamData;

/// Splits a property path into its segments.
pub fn segments(path: &[u8]) -> Vec<&[u8]> {
    let parts: Vec<&[u8]> = path.split(|b| *b == 0).filter(|s| !s.is_empty()).collect();
    if parts.len() == 1 && parts[0].contains(&b'.') {
        return parts[0].split(|b| *b == b'.').collect();
    }
    parts
}

fn int(v: i64) -> Bytes {
    Bytes::copy_from_slice(&v.to_le_bytes())
}

fn text(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

fn nanos(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Plugin-level properties, readable from any context.
fn plugin_property(state: &HostState, path: &[&[u8]]) -> Option<Bytes> {
    let p = &state.plugin;
    match path {
        [b"plugin_name"] => Some(text(&p.name)),
        [b"plugin_root_id"] => Some(text(&p.root_id)),
        [b"plugin_vm_id"] => Some(text(&p.vm_id)),
        _ => None,
    }
}

/// Stream properties: connection, request and response attributes.
fn stream_property(d: &StreamData, path: &[&[u8]]) -> Option<Bytes> {
    let info = &d.info;
    let req = d.request.as_ref();
    let res = d.response.as_ref();
    let header = |name: &str| {
        req.and_then(|r| r.headers.get(name))
            .map(|v| text(v.as_bytes()))
    };
    Some(match path {
        [b"source", b"address"] => text(info.peer.to_string()),
        [b"source", b"port"] => int(i64::from(info.peer.port())),
        [b"destination", b"address"] => text(info.local?.to_string()),
        [b"destination", b"port"] => int(i64::from(info.local?.port())),
        [b"connection", b"id"] => int(info.connection_id as i64),
        [b"connection", b"mtls"] => Bytes::from_static(&[0]),
        [b"request", b"protocol"] => text(info.protocol),
        [b"request", b"time"] => int(nanos(info.start)),
        [b"request", b"duration"] => int(info.start.elapsed().map_or(0, |d| d.as_nanos() as i64)),
        [b"request", b"path"] => text(req?.uri.path_and_query()?.as_str()),
        [b"request", b"url_path"] => text(req?.uri.path()),
        [b"request", b"query"] => text(req?.uri.query().unwrap_or_default()),
        [b"request", b"method"] => text(req?.method.as_str()),
        [b"request", b"scheme"] => text(if info.tls { "https" } else { "http" }),
        [b"request", b"host"] => match req?.uri.authority() {
            Some(a) => text(a.as_str()),
            None => header("host")?,
        },
        [b"request", b"id"] => header("x-request-id")?,
        [b"request", b"referer"] => header("referer")?,
        [b"request", b"useragent"] => header("user-agent")?,
        [b"request", b"size"] => int(d.request_body_size as i64),
        [b"request", b"headers"] => {
            let r = req?;
            let list: Vec<(&[u8], &[u8])> = r
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes(), v.as_bytes()))
                .collect();
            Bytes::from(pairs::encode(list.iter().copied()))
        }
        [b"request", b"headers", name] => text(
            req?.headers
                .get(std::str::from_utf8(name).ok()?)?
                .as_bytes(),
        ),
        [b"response", b"code"] => int(i64::from(res?.status.as_u16())),
        [b"response", b"size"] => int(d.response_body_size as i64),
        [b"response", b"headers", name] => text(
            res?.headers
                .get(std::str::from_utf8(name).ok()?)?
                .as_bytes(),
        ),
        _ => return None,
    })
}

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: i32,
         path_len: i32,
         ret_ptr: i32,
         ret_len: i32|
         -> HostResult {
            let raw = match memory::read(&mut caller, path_ptr, path_len) {
                Ok(p) => p,
                Err(s) => return s.into(),
            };
            let path = segments(&raw);
            if path.len() == 1 && path[0] == b"plugin_root_id" {
                caller.data_mut().read_root_id = true;
            }
            let state = caller.data();
            let value = plugin_property(state, &path).or_else(|| {
                let stream = state.stream()?;
                let d = stream.lock();
                let key: Vec<u8> = path.join(&0u8);
                d.properties
                    .get(&key)
                    .cloned()
                    .or_else(|| stream_property(&d, &path))
            });
            match value {
                Some(v) => memory::given(memory::give(&mut caller, &v, ret_ptr, ret_len)),
                None => Status::NotFound.into(),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut caller: Caller<'_, HostState>,
         path_ptr: i32,
         path_len: i32,
         val_ptr: i32,
         val_len: i32|
         -> HostResult {
            let (raw, value) = match memory::read(&mut caller, path_ptr, path_len)
                .and_then(|p| Ok((p, memory::read(&mut caller, val_ptr, val_len)?)))
            {
                Ok(pv) => pv,
                Err(s) => return s.into(),
            };
            let key: Vec<u8> = segments(&raw).join(&0u8);
            // Only per-stream values can be set; the Rust SDK accepts only OK, so a set from a
            // root context is dropped.
            if let Some(stream) = caller.data().stream() {
                stream.lock().properties.insert(key, Bytes::from(value));
            }
            Status::Ok.into()
        },
    )?;
    Ok(())
}
