//! JSON merge patch (RFC 7386): objects merge, `null` removes, anything else replaces.

use serde_json::Value;

pub fn merge(target: &Value, patch: &Value) -> Value {
    let Some(patch_map) = patch.as_object() else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(m) => m.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in patch_map {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc7386_examples() {
        let t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let p = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(merge(&t, &p), json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }
}
