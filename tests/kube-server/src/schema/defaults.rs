//! Defaulting as the apiserver does it on decode: nulls the schema does not allow and has no
//! default for are dropped, then absent fields (and disallowed nulls) get their `default`,
//! in every object that exists, including objects just created from a default.

use serde_json::Value;

use super::node::{Schema, sorted_keys};

/// Drops non-nullable nulls without a default, then applies defaults, in place.
pub(crate) fn apply(obj: &mut Value, root: Schema<'_>) {
    prune_nulls(obj, Some(root));
    default_value(obj, root);
}

fn is_disallowed_null(value: &Value, schema: Option<Schema<'_>>) -> bool {
    value.is_null() && schema.is_some_and(|s| !s.nullable())
}

fn prune_nulls(value: &mut Value, schema: Option<Schema<'_>>) {
    match value {
        Value::Object(map) => {
            for key in sorted_keys(map) {
                let child = schema.and_then(|s| s.child(&key));
                let drop = map.get(&key).is_some_and(|v| {
                    is_disallowed_null(v, child)
                        && child.is_some_and(|c| c.default_value().is_none())
                });
                if drop {
                    map.remove(&key);
                } else if let Some(v) = map.get_mut(&key) {
                    prune_nulls(v, child);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            for item in items {
                prune_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

fn default_value(value: &mut Value, schema: Schema<'_>) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.properties() {
                for (name, prop) in properties {
                    let Some(default) = Schema::new(prop).default_value() else {
                        continue;
                    };
                    let absent = map
                        .get(name)
                        .is_none_or(|v| is_disallowed_null(v, Some(Schema::new(prop))));
                    if absent {
                        map.insert(name.clone(), default.clone());
                    }
                }
            }
            for key in sorted_keys(map) {
                let Some(child) = schema.child(&key) else {
                    continue;
                };
                if let Some(v) = map.get_mut(&key) {
                    fill_null(v, child);
                    default_value(v, child);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.items() {
                for item in items {
                    fill_null(item, item_schema);
                    default_value(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// A disallowed null (a list item, or a map value) becomes the schema's default, if any.
fn fill_null(value: &mut Value, schema: Schema<'_>) {
    if is_disallowed_null(value, Some(schema))
        && let Some(default) = schema.default_value()
    {
        *value = default.clone();
    }
}
