//! Pruning of fields the schema does not specify, and of unknown `metadata` fields of the
//! resource and of embedded resources. Returns the pruned paths, sorted.

use serde_json::{Map, Value};

use super::node::{OBJECT_META_FIELDS, Schema, TYPE_AND_OBJECT_META, sorted_keys};

/// Prunes the resource `obj` in place against its root schema.
pub(crate) fn prune_resource(obj: &mut Value, root: Schema<'_>) -> Vec<String> {
    let mut pruned = Vec::new();
    if let Value::Object(map) = obj {
        prune_object(map, Some(root), true, "", &mut pruned);
    }
    pruned.sort();
    pruned
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

fn prune_value(value: &mut Value, schema: Option<Schema<'_>>, path: &str, out: &mut Vec<String>) {
    let embedded = schema.is_some_and(|s| s.embedded_resource());
    match value {
        Value::Object(map) => prune_object(map, schema, embedded, path, out),
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            let keep = schema.is_some_and(|s| s.preserves_unknown_fields());
            for (i, item) in items.iter_mut().enumerate() {
                let item_path = format!("{path}[{i}]");
                if keep && item_schema.is_none() {
                    continue;
                }
                prune_value(item, item_schema, &item_path, out);
            }
        }
        _ => {}
    }
}

fn prune_object(
    map: &mut Map<String, Value>,
    schema: Option<Schema<'_>>,
    resource: bool,
    path: &str,
    out: &mut Vec<String>,
) {
    let keep_unknown =
        schema.is_some_and(|s| s.preserves_unknown_fields() || s.allows_any_additional());
    for key in sorted_keys(map) {
        let child_path = join(path, &key);
        if resource && TYPE_AND_OBJECT_META.contains(&key.as_str()) {
            if key == "metadata"
                && let Some(Value::Object(meta)) = map.get_mut("metadata")
            {
                prune_object_meta(meta, &child_path, out);
            }
            continue;
        }
        match schema.and_then(|s| s.child(&key)) {
            Some(child) => {
                if let Some(value) = map.get_mut(&key) {
                    prune_value(value, Some(child), &child_path, out);
                }
            }
            None if keep_unknown => {}
            None => {
                map.remove(&key);
                if !TYPE_AND_OBJECT_META.contains(&key.as_str()) {
                    out.push(child_path);
                }
            }
        }
    }
}

/// Drops the fields of a resource's `metadata` that `ObjectMeta` does not have.
fn prune_object_meta(map: &mut Map<String, Value>, path: &str, out: &mut Vec<String>) {
    for key in sorted_keys(map) {
        if !OBJECT_META_FIELDS.contains(&key.as_str()) {
            map.remove(&key);
            out.push(join(path, &key));
        }
    }
}
