//! The protobuf bodies kubectl's typed clients send (`kubectl create namespace | configmap |
//! secret | serviceaccount | token`), decoded into JSON: the `k8s\0` envelope, the protobuf
//! wire format, and the field numbers of those few kinds. Any other kind is refused with 415.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Int,
    Bool,
    Msg(&'static [F]),
    MapStr,
    MapBytes,
}

/// One field: number, JSON name, type, repeated.
type F = (u32, &'static str, Ty, bool);

const OWNER_REF: &[F] = &[
    (1, "kind", Ty::Str, false),
    (3, "name", Ty::Str, false),
    (4, "uid", Ty::Str, false),
    (5, "apiVersion", Ty::Str, false),
    (6, "controller", Ty::Bool, false),
    (7, "blockOwnerDeletion", Ty::Bool, false),
];
const OBJECT_META: &[F] = &[
    (1, "name", Ty::Str, false),
    (2, "generateName", Ty::Str, false),
    (3, "namespace", Ty::Str, false),
    (5, "uid", Ty::Str, false),
    (6, "resourceVersion", Ty::Str, false),
    (11, "labels", Ty::MapStr, false),
    (12, "annotations", Ty::MapStr, false),
    (13, "ownerReferences", Ty::Msg(OWNER_REF), true),
    (14, "finalizers", Ty::Str, true),
];
const META: F = (1, "metadata", Ty::Msg(OBJECT_META), false);
const NAMESPACE: &[F] = &[
    META,
    (
        2,
        "spec",
        Ty::Msg(&[(1, "finalizers", Ty::Str, true)]),
        false,
    ),
];
const CONFIG_MAP: &[F] = &[
    META,
    (2, "data", Ty::MapStr, false),
    (3, "binaryData", Ty::MapBytes, false),
    (4, "immutable", Ty::Bool, false),
];
const SECRET: &[F] = &[
    META,
    (2, "data", Ty::MapBytes, false),
    (3, "type", Ty::Str, false),
    (4, "stringData", Ty::MapStr, false),
    (5, "immutable", Ty::Bool, false),
];
const SERVICE_ACCOUNT: &[F] = &[
    META,
    (
        3,
        "imagePullSecrets",
        Ty::Msg(&[(1, "name", Ty::Str, false)]),
        true,
    ),
    (4, "automountServiceAccountToken", Ty::Bool, false),
];
const BOUND_REF: &[F] = &[
    (1, "kind", Ty::Str, false),
    (2, "apiVersion", Ty::Str, false),
    (3, "name", Ty::Str, false),
    (4, "uid", Ty::Str, false),
];
const TOKEN_REQUEST: &[F] = &[
    META,
    (
        2,
        "spec",
        Ty::Msg(&[
            (1, "audiences", Ty::Str, true),
            (3, "boundObjectRef", Ty::Msg(BOUND_REF), false),
            (4, "expirationSeconds", Ty::Int, false),
        ]),
        false,
    ),
];

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".to_string())
}

fn fields(buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let num = u32::try_from(tag >> 3).map_err(|_| "bad field number")?;
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "bad length")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let b = &buf[pos..end];
                pos = end;
                Wire::Bytes(b)
            }
            1 => {
                pos += 8;
                continue;
            }
            5 => {
                pos += 4;
                continue;
            }
            t => return Err(format!("unsupported wire type {t}")),
        };
        out.push((num, wire));
    }
    Ok(out)
}

fn text(b: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(b).into_owned())
}

fn map_entry(b: &[u8], bytes: bool) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (n, w) in fields(b)? {
        match (n, w) {
            (1, Wire::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Wire::Bytes(v)) if bytes => value = json!(STANDARD.encode(v)),
            (2, Wire::Bytes(v)) => value = text(v),
            _ => {}
        }
    }
    Ok((key, value))
}

fn message(buf: &[u8], spec: &[F]) -> Result<Value, String> {
    let mut out = Map::new();
    for (num, wire) in fields(buf)? {
        let Some(&(_, name, ty, repeated)) = spec.iter().find(|f| f.0 == num) else {
            continue;
        };
        let value = match (ty, wire) {
            (Ty::Str, Wire::Bytes(b)) => text(b),
            (Ty::Int, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Msg(inner), Wire::Bytes(b)) => message(b, inner)?,
            (Ty::MapStr | Ty::MapBytes, Wire::Bytes(b)) => {
                let (k, v) = map_entry(b, matches!(ty, Ty::MapBytes))?;
                out.entry(name).or_insert_with(|| json!({}))[k] = v;
                continue;
            }
            _ => return Err(format!("field {name} has an unexpected wire type")),
        };
        if repeated {
            let list = out.entry(name).or_insert_with(|| json!([]));
            if let Some(items) = list.as_array_mut() {
                items.push(value);
            }
        } else {
            out.insert(name.to_string(), value);
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a `application/vnd.kubernetes.protobuf` body into the JSON object it stands for.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing the k8s protobuf envelope")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (num, wire) in fields(inner)? {
        match (num, wire) {
            (1, Wire::Bytes(tm)) => {
                for (n, w) in fields(tm)? {
                    if let Wire::Bytes(s) = w {
                        let s = String::from_utf8_lossy(s).into_owned();
                        if n == 1 {
                            api_version = s
                        } else if n == 2 {
                            kind = s
                        }
                    }
                }
            }
            (2, Wire::Bytes(r)) => raw = r,
            _ => {}
        }
    }
    let spec = match kind.as_str() {
        "Namespace" => NAMESPACE,
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "ServiceAccount" => SERVICE_ACCOUNT,
        "TokenRequest" => TOKEN_REQUEST,
        other => return Err(format!("no protobuf decoding for kind {other:?}")),
    };
    let mut obj = message(raw, spec)?;
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            u8::try_from(num << 3 | 2).unwrap(),
            u8::try_from(payload.len()).unwrap(),
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_config_map() {
        let meta = field(1, b"settings");
        let entry = [field(1, b"a"), field(2, b"1")].concat();
        let raw = [field(1, &meta), field(2, &entry)].concat();
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [b"k8s\0".to_vec(), field(1, &type_meta), field(2, &raw)].concat();
        let obj = decode(&body).unwrap();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings"}, "data": {"a": "1"}})
        );
    }
}
