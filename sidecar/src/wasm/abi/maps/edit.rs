//! Writing a stream map in place: add, replace, remove one header, or replace them all.
//! Pseudo-headers rewrite the head: `:path`, `:method` and `:authority` (with `Host`) of the
//! request, `:status` of the response; `:scheme` follows the connection and stays.
//!
//! A write outside the phase where the map can still change (request headers once they went
//! upstream, say) is accepted and ignored, with a debug log, since the Rust SDK panics on any
//! other answer.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{Method, StatusCode, Uri};

use super::{REQUEST_HEADERS, REQUEST_TRAILERS, RESPONSE_HEADERS, RESPONSE_TRAILERS};
use crate::wasm::abi::Status;
use crate::wasm::host::HostState;
use crate::wasm::stream::{Phase, StreamData};

/// One edit of a map; names in any case.
pub enum Edit<'a> {
    Add(&'a [u8], &'a [u8]),
    Replace(&'a [u8], &'a [u8]),
    Remove(&'a [u8]),
    SetAll(Vec<(&'a [u8], &'a [u8])>),
}

/// Applies an edit to a stream map, if the stream is still in the phase where it can change.
pub fn edit_map(state: &HostState, map: i32, edit: Edit<'_>) -> Result<(), Status> {
    if !(REQUEST_HEADERS..=RESPONSE_TRAILERS).contains(&map) {
        // gRPC metadata and call responses are read-only; anything else is not a map.
        return Err(Status::BadArgument);
    }
    let Some(stream) = state.stream_ref() else {
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

fn apply(d: &mut StreamData, map: i32, edit: Edit<'_>) -> Result<(), Status> {
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
                if name.eq_ignore_ascii_case(b":status") {
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
    edit: Edit<'_>,
    mut pseudo: impl FnMut(&mut HeaderMap, &[u8], &[u8]) -> Result<(), Status>,
) -> Result<(), Status> {
    match edit {
        Edit::Add(k, v) | Edit::Replace(k, v) if k.starts_with(b":") => pseudo(headers, k, v),
        Edit::Remove(k) if k.starts_with(b":") => Ok(()),
        Edit::Add(k, v) => {
            headers.append(name(k)?, value(v)?);
            Ok(())
        }
        Edit::Replace(k, v) => {
            headers.insert(name(k)?, value(v)?);
            Ok(())
        }
        Edit::Remove(k) => {
            // A name that is not a valid header name is in no map.
            if let Ok(n) = std::str::from_utf8(k) {
                headers.remove(n);
            }
            Ok(())
        }
        Edit::SetAll(pairs) => {
            headers.clear();
            for (k, v) in pairs {
                if k.starts_with(b":") {
                    pseudo(headers, k, v)?;
                } else {
                    headers.append(name(k)?, value(v)?);
                }
            }
            Ok(())
        }
    }
}

/// A header name from any case (`HeaderName::from_bytes` lower-cases).
fn name(k: &[u8]) -> Result<HeaderName, Status> {
    HeaderName::from_bytes(k).map_err(|_| Status::BadArgument)
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
    if name.eq_ignore_ascii_case(b":path") {
        let pq = PathAndQuery::try_from(value).map_err(|_| Status::BadArgument)?;
        let mut parts = std::mem::take(uri).into_parts();
        parts.path_and_query = Some(pq);
        *uri = Uri::from_parts(parts).map_err(|_| Status::BadArgument)?;
    } else if name.eq_ignore_ascii_case(b":method") {
        *method = Method::from_bytes(value).map_err(|_| Status::BadArgument)?;
    } else if name.eq_ignore_ascii_case(b":authority") {
        let authority = Authority::try_from(value).map_err(|_| Status::BadArgument)?;
        if uri.authority().is_some() {
            let mut parts = std::mem::take(uri).into_parts();
            parts.authority = Some(authority);
            *uri = Uri::from_parts(parts).map_err(|_| Status::BadArgument)?;
        }
        headers.insert(http::header::HOST, self::value(value)?);
    }
    Ok(())
}
