//! JSON patch (RFC 6902): add, remove, replace, move, copy and test, with RFC 6901 pointers.

use serde_json::Value;

use super::PatchError;

fn tokens(pointer: &str) -> Result<Vec<String>, PatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer.strip_prefix('/').ok_or_else(|| {
        PatchError::Malformed(format!("JSON pointer must start with '/': {pointer:?}"))
    })?;
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn missing(op: &str, path: &str) -> PatchError {
    PatchError::Rejected(format!(
        "{op} operation does not apply: doc is missing path: \"{path}\": missing value"
    ))
}

fn index(token: &str, len: usize, allow_end: bool) -> Option<usize> {
    if allow_end && token == "-" {
        return Some(len);
    }
    let i: usize = token.parse().ok()?;
    let limit = if allow_end {
        len
    } else {
        len.saturating_sub(1)
    };
    (i <= limit && (allow_end || len > 0)).then_some(i)
}

fn parent<'a>(doc: &'a mut Value, toks: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn get<'a>(doc: &'a Value, path: &str) -> Result<Option<&'a Value>, PatchError> {
    let mut cur = doc;
    for t in tokens(path)? {
        cur = match cur {
            Value::Object(m) => match m.get(&t) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(a) => match index(&t, a.len(), false).and_then(|i| a.get(i)) {
                Some(v) => v,
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
    }
    Ok(Some(cur))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), PatchError> {
    let toks = tokens(path)?;
    let Some((last, init)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent(doc, init).ok_or_else(|| missing("add", path))? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
        }
        Value::Array(a) => {
            let i = index(last, a.len(), true).ok_or_else(|| missing("add", path))?;
            a.insert(i, value);
        }
        _ => return Err(missing("add", path)),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str, op: &str) -> Result<Value, PatchError> {
    let toks = tokens(path)?;
    let (last, init) = toks.split_last().ok_or_else(|| missing(op, path))?;
    match parent(doc, init).ok_or_else(|| missing(op, path))? {
        Value::Object(m) => m.remove(last).ok_or_else(|| missing(op, path)),
        Value::Array(a) => {
            let i = index(last, a.len(), false).ok_or_else(|| missing(op, path))?;
            Ok(a.remove(i))
        }
        _ => Err(missing(op, path)),
    }
}

fn one(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let name = op["op"].as_str().unwrap_or_default();
    let path = op["path"]
        .as_str()
        .ok_or_else(|| PatchError::Malformed(format!("operation missing \"path\": {op}")))?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| PatchError::Malformed(format!("operation missing \"value\": {op}")))
    };
    let from = || {
        op["from"]
            .as_str()
            .ok_or_else(|| PatchError::Malformed(format!("operation missing \"from\": {op}")))
    };
    match name {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path, "remove").map(|_| ()),
        "replace" => {
            remove(doc, path, "replace")?;
            add(doc, path, value()?)
        }
        "move" => {
            let v = remove(doc, from()?, "move")?;
            add(doc, path, v)
        }
        "copy" => {
            let from = from()?;
            let v = get(doc, from)?
                .cloned()
                .ok_or_else(|| missing("copy", from))?;
            add(doc, path, v)
        }
        // As the API server's JSON patch library does, a missing member tests equal to null
        // (kube-runtime's finalizer helper relies on it to add the first finalizer).
        // A missing field tests equal to null (kube-runtime's finalizer helper relies on it).
        "test" => match (get(doc, path)?, value()?) {
            (Some(v), want) if *v == want => Ok(()),
            (None, Value::Null) => Ok(()),
            _ => Err(PatchError::Rejected(format!(
                "testing value {path} failed: test failed"
            ))),
        },
        other => Err(PatchError::Malformed(format!("Unexpected kind: {other}"))),
    }
}

/// Applies every operation in order; any failure leaves the object untouched.
pub fn apply(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::Malformed(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch".to_string(),
        )
    })?;
    let mut doc = target.clone();
    for op in ops {
        one(&mut doc, op)?;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn operations_and_test() {
        let t = json!({"spec": {"a": 1, "l": [1, 2]}, "metadata": {"labels": {"x/y": "1"}}});
        let p = json!([
            {"op": "test", "path": "/spec/a", "value": 1},
            {"op": "replace", "path": "/spec/a", "value": 2},
            {"op": "add", "path": "/spec/l/-", "value": 3},
            {"op": "remove", "path": "/metadata/labels/x~1y"},
            {"op": "copy", "from": "/spec/a", "path": "/spec/b"}
        ]);
        let out = apply(&t, &p);
        assert_eq!(
            out,
            Ok(json!({"spec": {"a": 2, "b": 2, "l": [1, 2, 3]}, "metadata": {"labels": {}}}))
        );
        let failing = json!([{"op": "test", "path": "/spec/a", "value": 5}]);
        assert_eq!(
            apply(&t, &failing),
            Err(PatchError::Rejected(
                "testing value /spec/a failed: test failed".into()
            ))
        );
        let absent_is_null = json!([{"op": "test", "path": "/metadata/finalizers", "value": null}]);
        assert!(apply(&t, &absent_is_null).is_ok());
        let missing = json!([{"op": "remove", "path": "/spec/zz"}]);
        assert!(matches!(apply(&t, &missing), Err(PatchError::Rejected(_))));
    }
}
