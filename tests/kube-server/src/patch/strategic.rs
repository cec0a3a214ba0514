//! Strategic merge patch, the subset this server implements:
//! - maps merge recursively; `null` removes a key;
//! - lists declared as maps (`x-kubernetes-list-type: map` in the structure: containers, env,
//!   ports, volumes, conditions, ownerReferences, CRD versions…) merge item by item on their
//!   first key; other lists are replaced, except sets (finalizers), which are unioned;
//! - directives: `$patch: replace|delete` in maps and list items, `$retainKeys`,
//!   `$deleteFromPrimitiveList/<field>`; `$setElementOrder/<field>` is accepted and ignored.

use serde_json::{Map, Value};

use super::PatchError;
use crate::structure::{self, ListType};

/// Applies `patch` to `target` using `schema` for list merge keys.
pub fn apply(target: &Value, patch: &Value, schema: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "strategic merge patch must be a JSON object".to_string(),
        ));
    }
    Ok(merge_map(target, patch, schema)?.unwrap_or(Value::Object(Map::new())))
}

fn strip(patch: &Value) -> Value {
    match patch {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `None` means the map is deleted (`$patch: delete`).
fn merge_map(target: &Value, patch: &Value, schema: &Value) -> Result<Option<Value>, PatchError> {
    let Some(p) = patch.as_object() else {
        return Ok(Some(patch.clone()));
    };
    match p.get("$patch").and_then(Value::as_str) {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(strip(patch))),
        Some(other) => {
            return Err(PatchError::Malformed(format!(
                "Unknown patch type: {other} in map: {patch}"
            )));
        }
        None => {}
    }
    let mut out = target.as_object().cloned().unwrap_or_default();
    if let Some(keep) = p.get("$retainKeys").and_then(Value::as_array) {
        out.retain(|k, _| keep.iter().any(|r| r.as_str() == Some(k)));
    }
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(gone)) = (
                out.get_mut(field).and_then(Value::as_array_mut),
                v.as_array(),
            ) {
                list.retain(|item| !gone.contains(item));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let sub = structure::field(schema, k);
        let merged = match v {
            Value::Null => None,
            Value::Object(_) => merge_map(out.get(k).unwrap_or(&Value::Null), v, sub)?,
            Value::Array(items) => Some(merge_list(out.get(k), items, sub)?),
            other => Some(other.clone()),
        };
        match merged {
            Some(m) => out.insert(k.clone(), m),
            None => out.remove(k),
        };
    }
    Ok(Some(Value::Object(out)))
}

fn merge_list(
    target: Option<&Value>,
    patch: &[Value],
    schema: &Value,
) -> Result<Value, PatchError> {
    let current: Vec<Value> = target
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match structure::list_type(schema) {
        ListType::Atomic => Ok(Value::Array(patch.iter().map(strip).collect())),
        ListType::Set => {
            let mut out = current;
            for item in patch {
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
            Ok(Value::Array(out))
        }
        ListType::Map(keys) => {
            let Some(key) = keys.first() else {
                return Ok(Value::Array(patch.iter().map(strip).collect()));
            };
            let replace = patch
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
            let mut out = if replace { Vec::new() } else { current };
            let items_schema = structure::items(schema);
            for item in patch {
                let directive = item.get("$patch").and_then(Value::as_str);
                if directive == Some("replace") && item.as_object().is_some_and(|m| m.len() == 1) {
                    continue;
                }
                let id = item.get(key);
                let pos = out.iter().position(|o| id.is_some() && o.get(key) == id);
                match (directive, pos) {
                    (Some("delete"), _) => out.retain(|o| id.is_none() || o.get(key) != id),
                    (_, Some(i)) => {
                        if let Some(m) = merge_map(&out[i], item, items_schema)? {
                            out[i] = m;
                        }
                    }
                    (_, None) => out.push(strip(item)),
                }
            }
            Ok(Value::Array(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin;
    use serde_json::json;

    #[test]
    fn merges_lists_by_key_and_honours_directives() {
        let schema = builtin::with_metadata(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "containers": {"type": "array", "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"], "items": {"type": "object"}}}}}}));
        let t = json!({
            "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "app", "image": "v1"}, {"name": "side", "image": "s"}],
                     "args": ["1", "2"]}
        });
        let p = json!({
            "metadata": {"finalizers": ["b"], "labels": {"y": null}},
            "spec": {
                "$setElementOrder/containers": [{"name": "app"}],
                "containers": [{"name": "app", "image": "v2"}, {"name": "side", "$patch": "delete"}],
                "args": ["3"]
            }
        });
        let out = apply(&t, &p, &schema);
        assert_eq!(
            out,
            Ok(json!({
                "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1"}},
                "spec": {"containers": [{"name": "app", "image": "v2"}], "args": ["3"]}
            }))
        );
    }
}
