//! Object metadata as the server keeps it: uid, creation time, generated names, generation,
//! the fields a client cannot change, the finalizer rules, and name validation.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::status::Cause;

/// Now, as `metadata` timestamps are written (RFC 3339, seconds, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Now with microseconds (`MicroTime` fields such as `eventTime`).
pub fn now_micros() -> String {
    humantime::format_rfc3339_micros(SystemTime::now()).to_string()
}

/// Random bytes; the OS generator failing is a broken machine, not a request error.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if getrandom::fill(&mut buf).is_err() {
        // Fall back to the clock: uniqueness within one test run is all that is needed.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    buf
}

/// A random version-4 UUID.
pub fn uid() -> String {
    let mut b = random_bytes::<16>();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The five random characters `generateName` appends.
pub fn name_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// RFC 1123 subdomain (most object names).
pub fn check_subdomain(name: &str) -> Option<Cause> {
    if name.len() <= 253 && name.split('.').all(is_label) {
        return None;
    }
    Some(Cause {
        reason: "FieldValueInvalid".to_string(),
        message: format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ),
        field: "metadata.name".to_string(),
    })
}

/// RFC 1123 label (namespace names).
pub fn check_label(name: &str) -> Option<Cause> {
    if is_label(name) {
        return None;
    }
    Some(Cause {
        reason: "FieldValueInvalid".to_string(),
        message: format!(
            "Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        ),
        field: "metadata.name".to_string(),
    })
}

/// Fills the metadata of a new object.
pub fn init_create(obj: &mut Value, ns: Option<&str>, name: &str, generation: bool) {
    let m = &mut obj["metadata"];
    m["name"] = json!(name);
    match ns {
        Some(ns) => m["namespace"] = json!(ns),
        None => {
            if let Some(map) = m.as_object_mut() {
                map.remove("namespace");
            }
        }
    }
    m["uid"] = json!(uid());
    m["creationTimestamp"] = json!(now());
    if let Some(map) = m.as_object_mut() {
        for gone in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "resourceVersion",
            "selfLink",
            "generation",
        ] {
            map.remove(gone);
        }
    }
    if generation {
        m["generation"] = json!(1);
    }
}

/// Keeps on `new` the metadata a client cannot change, taken from `old`.
pub fn keep_immutable(old: &Value, new: &mut Value) {
    for f in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "namespace",
        "name",
    ] {
        match old["metadata"].get(f) {
            Some(v) => new["metadata"][f] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(f);
                }
            }
        }
    }
}

/// Everything but `metadata` and `status`: what `generation` follows.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        for f in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(f);
        }
    }
    o
}

/// Bumps `generation` when anything but metadata and status changed.
pub fn bump_generation(old: &Value, new: &mut Value) {
    let Some(g) = old["metadata"]["generation"].as_i64() else {
        return;
    };
    let next = if spec_part(old) != spec_part(new) {
        g + 1
    } else {
        g
    };
    new["metadata"]["generation"] = json!(next);
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn has_finalizers(obj: &Value) -> bool {
    !finalizers(obj).is_empty()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj["metadata"]["deletionTimestamp"].is_string()
}

/// The real server's refusal to add finalizers to an object being deleted.
pub fn check_new_finalizers(old: &Value, new: &Value) -> Option<Cause> {
    if !is_deleting(old) {
        return None;
    }
    let before = finalizers(old);
    let added: Vec<String> = finalizers(new)
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    if added.is_empty() {
        return None;
    }
    let quoted: Vec<String> = added.iter().map(|f| format!("{f:?}")).collect();
    Some(Cause {
        reason: "FieldValueForbidden".to_string(),
        message: format!(
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
            quoted.join(", ")
        ),
        field: "metadata.finalizers".to_string(),
    })
}

/// Equal but for `resourceVersion` and the times in `managedFields`: a write that changes nothing.
pub fn same_object(a: &Value, b: &Value) -> bool {
    fn normal(v: &Value) -> Value {
        let mut v = v.clone();
        if let Some(m) = v["metadata"].as_object_mut() {
            m.remove("resourceVersion");
            if let Some(Value::Array(entries)) = m.get_mut("managedFields") {
                for e in entries {
                    if let Some(e) = e.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        v
    }
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_generation() {
        assert!(check_subdomain("my-plugin.v1").is_none());
        assert!(check_subdomain("My_Plugin").is_some());
        assert!(check_label("a.b").is_some());
        let old = json!({"metadata": {"generation": 1}, "spec": {"a": 1}, "status": {"x": 1}});
        let mut same = json!({"metadata": {"generation": 1, "labels": {"l": "1"}}, "spec": {"a": 1}, "status": {"x": 2}});
        bump_generation(&old, &mut same);
        assert_eq!(same["metadata"]["generation"], 1);
        let mut changed = json!({"metadata": {"generation": 1}, "spec": {"a": 2}});
        bump_generation(&old, &mut changed);
        assert_eq!(changed["metadata"]["generation"], 2);
        assert_eq!(uid().len(), 36);
    }
}
