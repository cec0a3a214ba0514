//! Reading the shape of an object from a schema: the sub-schema of a field or of list items,
//! and how a list merges (atomic, set, or map by keys).
//!
//! Used by strategic merge patch and server-side apply, for custom resources (their CRD
//! schema) and built-in types (the structures in `builtin`). Unknown places read as `Null`:
//! maps merge, lists are atomic.

use serde_json::Value;

static NULL: Value = Value::Null;

/// How a list merges.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// The schema of field `name` of an object schema.
pub fn field<'a>(schema: &'a Value, name: &str) -> &'a Value {
    if let Some(s) = schema.get("properties").and_then(|p| p.get(name)) {
        return s;
    }
    match schema.get("additionalProperties") {
        Some(s) if s.is_object() => s,
        _ => &NULL,
    }
}

/// The schema of the items of an array schema.
pub fn items(schema: &Value) -> &Value {
    schema.get("items").unwrap_or(&NULL)
}

pub fn list_type(schema: &Value) -> ListType {
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

/// The key fields of a list-map item, as a JSON object.
pub fn item_key(item: &Value, keys: &[String]) -> Value {
    let mut key = serde_json::Map::new();
    for k in keys {
        if let Some(v) = item.get(k) {
            key.insert(k.clone(), v.clone());
        }
    }
    Value::Object(key)
}

/// Whether a list-map item has the given key.
pub fn has_key(item: &Value, key: &Value) -> bool {
    key.as_object()
        .is_some_and(|k| k.iter().all(|(f, v)| item.get(f) == Some(v)))
}
