//! `x-kubernetes-embedded-resource`: an embedded object needs `apiVersion` and `kind`, and its
//! `metadata.name` and `metadata.generateName` must be valid path segments.

use serde_json::{Map, Value};

use super::error::{Bad, FieldError};
use super::node::{Schema, sorted_keys};
use super::path::Path;

/// Validates the embedded resources below the root (the root is the resource itself).
pub(crate) fn validate(root: Schema<'_>, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(Some(root), obj, &Path::root(), &mut errors);
    errors
}

fn walk(s: Option<Schema<'_>>, v: &Value, path: &Path, out: &mut Vec<FieldError>) {
    let Some(s) = s else {
        return;
    };
    match v {
        Value::Object(map) => {
            if s.embedded_resource() && !path.is_root() {
                resource(map, path, out);
            }
            for key in sorted_keys(map) {
                if let Some(prop) = s.property(&key) {
                    walk(Some(prop), &map[&key], &path.child(&key), out);
                } else if let Some(values) = s.additional() {
                    walk(Some(values), &map[&key], &path.key(&key), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(s.items(), item, &path.index(i), out);
            }
        }
        _ => {}
    }
}

fn resource(map: &Map<String, Value>, path: &Path, out: &mut Vec<FieldError>) {
    for field in ["apiVersion", "kind"] {
        if !map.contains_key(field) {
            out.push(FieldError::required(path.child(field).field(), ""));
        }
    }
    if let Some(v) = map.get("apiVersion") {
        let at = path.child("apiVersion").field();
        match v.as_str() {
            None => out.push(FieldError::invalid(at, &Bad::of(v), "must be a string")),
            Some("") => out.push(FieldError::invalid(at, &Bad::of(v), "must not be empty")),
            Some(text) if text.matches('/').count() > 1 => {
                let detail = format!("unexpected GroupVersion string: {text}");
                out.push(FieldError::invalid(at, &Bad::of(v), &detail));
            }
            Some(_) => {}
        }
    }
    if let Some(v) = map.get("kind") {
        let at = path.child("kind").field();
        match v.as_str() {
            None => out.push(FieldError::invalid(at, &Bad::of(v), "must be a string")),
            Some("") => out.push(FieldError::invalid(at, &Bad::of(v), "must not be empty")),
            Some(kind) => {
                if let Some(detail) = dns1035_label(&kind.to_lowercase()) {
                    let detail =
                        format!("may have mixed case, but should otherwise match: {detail}");
                    out.push(FieldError::invalid(at, &Bad::of(v), &detail));
                }
            }
        }
    }
    if let Some(Value::Object(meta)) = map.get("metadata") {
        object_meta(meta, &path.child("metadata"), out);
    }
}

/// Why `value` is not a DNS-1035 label, if it is not.
fn dns1035_label(value: &str) -> Option<String> {
    let mut problems = Vec::new();
    if value.len() > 63 {
        problems.push("must be no more than 63 characters".to_owned());
    }
    let bytes = value.as_bytes();
    let valid = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if !valid {
        problems.push(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
             start with an alphabetic character, and end with an alphanumeric character \
             (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
                .to_owned(),
        );
    }
    (!problems.is_empty()).then(|| problems.join(","))
}

fn object_meta(meta: &Map<String, Value>, path: &Path, out: &mut Vec<FieldError>) {
    for (field, prefix) in [("generateName", true), ("name", false)] {
        let Some(Value::String(name)) = meta.get(field) else {
            continue;
        };
        for problem in path_segment_problems(name, prefix) {
            out.push(FieldError::invalid(
                path.child(field).field(),
                &Bad::text(name),
                problem,
            ));
        }
    }
}

/// Why `name` cannot be a segment of a resource path (a prefix may end up longer).
pub(crate) fn path_segment_problems(name: &str, prefix: bool) -> Vec<&'static str> {
    let mut problems = Vec::new();
    if !prefix && name == "." {
        problems.push("may not be '.'");
    }
    if !prefix && name == ".." {
        problems.push("may not be '..'");
    }
    if name.contains('/') {
        problems.push("may not contain '/'");
    }
    if name.contains('%') {
        problems.push("may not contain '%'");
    }
    problems
}
