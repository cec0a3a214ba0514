//! Header and trailer maps: `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_value`, `proxy_add_header_map_value`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`,
//! `proxy_get_header_map_size`.
//!
//! Maps follow HTTP/2 conventions whatever the wire protocol: request headers start with
//! `:authority`, `:path` (with the query), `:method`, `:scheme`; response headers with
//! `:status`. Names are lowercase; a repeated header is repeated pairs; a value lookup returns
//! the first value, as Envoy does. A write to a map outside the phase where it can still change
//! (request headers once they went upstream, say) is accepted and ignored, with a debug log, since
//! the Rust SDK panics on any other answer.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, StatusCode, Uri, request, response};
use wasmtime::{Caller, Linker};

use super::{HostResult, Status, memory, pairs};
use crate::wasm::host::HostState;
use crate::wasm::stream::{Phase, StreamData};

const REQUEST_HEADERS: i32 = 0;
const REQUEST_TRAILERS: i32 = 1;
const RESPONSE_HEADERS: i32 = 2;
const RESPONSE_TRAILERS: i32 = 3;
const GRPC_INITIAL_METADATA: i32 = 4;
const GRPC_TRAILING_METADATA: i32 = 5;
const CALL_RESPONSE_HEADERS: i32 = 6;
const CALL_RESPONSE_TRAILERS: i32 = 7;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// One edit of a map.
enum Edit {
    Add(Vec<u8>, Vec<u8>),
    Replace(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>),
    SetAll(Pairs),
}

fn request_pairs(req: &request::Parts, tls: bool) -> Pairs {
    let mut out = Vec::with_capacity(req.headers.len() + 4);
    if let Some(a) = request_authority(req) {
        out.push((b":authority".to_vec(), a));
    }
    let path = req.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    out.push((b":path".to_vec(), path.as_bytes().to_vec()));
    out.push((b":method".to_vec(), req.method.as_str().as_bytes().to_vec()));
    // The URI the sidecar forwards is always http://; the client's scheme is the connection's.
    let scheme = if tls { "https" } else { "http" };
    out.push((b":scheme".to_vec(), scheme.as_bytes().to_vec()));
    headers_into(&req.headers, &mut out, true);
    out
}

fn request_authority(req: &request::Parts) -> Option<Vec<u8>> {
    match req.uri.authority() {
        Some(a) => Some(a.as_str().as_bytes().to_vec()),
        None => req
            .headers
            .get(http::header::HOST)
            .map(|h| h.as_bytes().to_vec()),
    }
}

fn response_pairs(res: &response::Parts) -> Pairs {
    let mut out = Vec::with_capacity(res.headers.len() + 1);
    out.push((b":status".to_vec(), res.status.as_str().as_bytes().to_vec()));
    headers_into(&res.headers, &mut out, false);
    out
}

fn headers_into(headers: &HeaderMap, out: &mut Pairs, skip_host: bool) {
    for (k, v) in headers {
        if skip_host && k == http::header::HOST {
            continue;
        }
        out.push((k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()));
    }
}

fn trailer_pairs(t: Option<&HeaderMap>) -> Pairs {
    let mut out = Vec::new();
    if let Some(t) = t {
        headers_into(t, &mut out, false);
    }
    out
}

/// The map as pairs, or `None` when it does not exist now.
fn read_map(state: &HostState, map: i32) -> Result<Option<Pairs>, Status> {
    match map {
        CALL_RESPONSE_HEADERS => {
            return Ok(state.call_response.as_ref().map(|r| r.headers.clone()));
        }
        CALL_RESPONSE_TRAILERS => {
            return Ok(state.call_response.as_ref().map(|r| r.trailers.clone()));
        }
        GRPC_INITIAL_METADATA => {
            return Ok(state.call_response.as_ref().map(|r| r.headers.clone()));
        }
        GRPC_TRAILING_METADATA => {
            return Ok(state.call_response.as_ref().map(|r| r.trailers.clone()));
        }
        REQUEST_HEADERS..=RESPONSE_TRAILERS => {}
        _ => return Err(Status::BadArgument),
    }
    let Some(stream) = state.stream() else {
        return Ok(None);
    };
    let d = stream.lock();
    Ok(match map {
        REQUEST_HEADERS => d.request.as_ref().map(|r| request_pairs(r, d.info.tls)),
        REQUEST_TRAILERS => d.request_trailers.as_ref().map(|t| trailer_pairs(Some(t))),
        RESPONSE_HEADERS => d.response.as_ref().map(response_pairs),
        _ => d.response_trailers.as_ref().map(|t| trailer_pairs(Some(t))),
    })
}

fn lower(name: &[u8]) -> Vec<u8> {
    name.to_ascii_lowercase()
}

/// Applies an edit to a stream map, if the stream is still in the phase where it can change.
fn edit_map(state: &HostState, map: i32, edit: Edit) -> Result<(), Status> {
    if !(REQUEST_HEADERS..=RESPONSE_TRAILERS).contains(&map) {
        // gRPC metadata and call responses are read-only; anything else is not a map.
        return Err(Status::BadArgument);
    }
    let Some(stream) = state.stream() else {
        tracing::debug!(plugin = %state.plugin.name, map, "map edit outside a stream ignored");
        return Ok(());
    };
    let mut d = stream.lock();
    let writable = match map {
        REQUEST_HEADERS => d.phase == Phase::RequestHeaders,
        // Trailers may be added from the last body chunk, as Envoy allows.
        REQUEST_TRAILERS => matches!(d.phase, Phase::RequestBody | Phase::RequestTrailers),
        RESPONSE_HEADERS => d.phase == Phase::ResponseHeaders,
        _ => matches!(d.phase, Phase::ResponseBody | Phase::ResponseTrailers),
    };
    if !writable {
        tracing::debug!(plugin = %state.plugin.name, map, phase = ?d.phase, "map edit after the map was sent ignored");
        return Ok(());
    }
    apply(&mut d, map, edit)
}

fn apply(d: &mut StreamData, map: i32, edit: Edit) -> Result<(), Status> {
    match map {
        REQUEST_HEADERS => {
            let req = d.request.as_mut().ok_or(Status::NotFound)?;
            edit_with_pseudo(&mut req.headers, edit, |headers, name, value| {
                set_request_pseudo(&mut req.uri, &mut req.method, headers, name, value)
            })
        }
        RESPONSE_HEADERS => {
            let res = d.response.as_mut().ok_or(Status::NotFound)?;
            edit_with_pseudo(&mut res.headers, edit, |_, name, value| {
                if name == b":status" {
                    res.status = StatusCode::from_bytes(value).map_err(|_| Status::BadArgument)?;
                }
                Ok(())
            })
        }
        REQUEST_TRAILERS => {
            let t = d.request_trailers.get_or_insert_with(HeaderMap::new);
            edit_with_pseudo(t, edit, |_, _, _| Ok(()))
        }
        _ => {
            let t = d.response_trailers.get_or_insert_with(HeaderMap::new);
            edit_with_pseudo(t, edit, |_, _, _| Ok(()))
        }
    }
}

/// Applies `edit` to `headers`, routing pseudo-headers (`:name`) to `pseudo`.
fn edit_with_pseudo(
    headers: &mut HeaderMap,
    edit: Edit,
    mut pseudo: impl FnMut(&mut HeaderMap, &[u8], &[u8]) -> Result<(), Status>,
) -> Result<(), Status> {
    match edit {
        Edit::Add(k, v) | Edit::Replace(k, v) if k.starts_with(b":") => pseudo(headers, &k, &v),
        Edit::Remove(k) if k.starts_with(b":") => Ok(()),
        Edit::Add(k, v) => {
            headers.append(name(&k)?, value(&v)?);
            Ok(())
        }
        Edit::Replace(k, v) => {
            headers.insert(name(&k)?, value(&v)?);
            Ok(())
        }
        Edit::Remove(k) => {
            if let Ok(n) = HeaderName::from_bytes(&k) {
                headers.remove(n);
            }
            Ok(())
        }
        Edit::SetAll(pairs) => {
            headers.clear();
            for (k, v) in pairs {
                if k.starts_with(b":") {
                    pseudo(headers, &k, &v)?;
                } else {
                    headers.append(name(&k)?, value(&v)?);
                }
            }
            Ok(())
        }
    }
}

fn name(k: &[u8]) -> Result<HeaderName, Status> {
    HeaderName::from_bytes(&lower(k)).map_err(|_| Status::BadArgument)
}

fn value(v: &[u8]) -> Result<HeaderValue, Status> {
    HeaderValue::from_bytes(v).map_err(|_| Status::BadArgument)
}

/// `:path`, `:method`, `:authority` rewrite the request; `:scheme` follows the connection.
fn set_request_pseudo(
    uri: &mut Uri,
    method: &mut Method,
    headers: &mut HeaderMap,
    name: &[u8],
    value: &[u8],
) -> Result<(), Status> {
    match name {
        b":path" => {
            let pq = PathAndQuery::try_from(value).map_err(|_| Status::BadArgument)?;
            let mut parts = std::mem::take(uri).into_parts();
            parts.path_and_query = Some(pq);
            *uri = Uri::from_parts(parts).map_err(|_| Status::BadArgument)?;
        }
        b":method" => *method = Method::from_bytes(value).map_err(|_| Status::BadArgument)?,
        b":authority" => {
            let authority = Authority::try_from(value).map_err(|_| Status::BadArgument)?;
            if uri.authority().is_some() {
                let mut parts = std::mem::take(uri).into_parts();
                parts.authority = Some(authority);
                *uri = Uri::from_parts(parts).map_err(|_| Status::BadArgument)?;
            }
            headers.insert(http::header::HOST, self::value(value)?);
        }
        _ => {}
    }
    Ok(())
}

fn read_key(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>, Status> {
    memory::read(caller, ptr, len).map(|k| lower(&k))
}

pub fn add(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map: i32, ret_ptr: i32, ret_len: i32| -> HostResult {
            let pairs = match read_map(caller.data(), map) {
                Ok(p) => p.unwrap_or_default(),
                Err(s) => return s.into(),
            };
            let encoded = pairs::encode(pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
            memory::given(memory::give(&mut caller, &encoded, ret_ptr, ret_len))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut caller: Caller<'_, HostState>, map: i32, ret: i32| -> HostResult {
            let size = match read_map(caller.data(), map) {
                Ok(p) => p.map_or(0, |p| p.iter().map(|(k, v)| k.len() + v.len()).sum()),
                Err(s) => return s.into(),
            };
            super::status(memory::write_u32(&mut caller, ret, size as u32))
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
            let key = match read_key(&mut caller, key_ptr, key_len) {
                Ok(k) => k,
                Err(s) => return s.into(),
            };
            let found = match read_map(caller.data(), map) {
                Ok(p) => p.and_then(|p| p.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v)),
                Err(s) => return s.into(),
            };
            match found {
                Some(v) => memory::given(memory::give(&mut caller, &v, ret_ptr, ret_len)),
                None => Status::NotFound.into(),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut caller: Caller<'_, HostState>, map: i32, ptr: i32, len: i32| -> HostResult {
            let buf = match memory::read(&mut caller, ptr, len) {
                Ok(b) => b,
                Err(s) => return s.into(),
            };
            let Some(pairs) = pairs::decode(&buf) else {
                return Status::BadArgument.into();
            };
            let pairs = pairs.into_iter().map(|(k, v)| (lower(&k), v)).collect();
            super::status(edit_map(caller.data(), map, Edit::SetAll(pairs)))
        },
    )?;
    add_edit(linker, "proxy_add_header_map_value", Edit::Add)?;
    add_edit(linker, "proxy_replace_header_map_value", |k, v| {
        Edit::Replace(k, v)
    })?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut caller: Caller<'_, HostState>, map: i32, key_ptr: i32, key_len: i32| -> HostResult {
            let key = match read_key(&mut caller, key_ptr, key_len) {
                Ok(k) => k,
                Err(s) => return s.into(),
            };
            super::status(edit_map(caller.data(), map, Edit::Remove(key)))
        },
    )?;
    Ok(())
}

/// Registers a `(map, key, value)` edit function.
fn add_edit(
    linker: &mut Linker<HostState>,
    name: &'static str,
    make: fn(Vec<u8>, Vec<u8>) -> Edit,
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
            let edit = read_key(&mut caller, key_ptr, key_len).and_then(|k| {
                let v = memory::read(&mut caller, val_ptr, val_len)?;
                Ok(make(k, v))
            });
            match edit {
                Ok(edit) => super::status(edit_map(caller.data(), map, edit)),
                Err(s) => s.into(),
            }
        },
    )?;
    Ok(())
}
