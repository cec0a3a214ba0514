//! `x-kubernetes-list-type: set` (unique items) and `map` (unique `x-kubernetes-list-map-keys`):
//! every repeated item after the first is a Duplicate.

use serde_json::{Map, Value};

use super::error::{Bad, FieldError};
use super::node::{Schema, sorted_keys};
use super::path::Path;
use super::render::go_json;

/// Validates the uniqueness invariants of set and map lists anywhere in `obj`.
pub(crate) fn validate(root: Schema<'_>, obj: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(root, obj, &Path::root(), &mut errors);
    errors
}

fn walk(s: Schema<'_>, v: &Value, path: &Path, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(map) => {
            for key in sorted_keys(map) {
                if let Some(prop) = s.property(&key) {
                    walk(prop, &map[&key], &path.child(&key), out);
                } else if let Some(values) = s.additional() {
                    walk(values, &map[&key], &path.key(&key), out);
                }
            }
        }
        Value::Array(items) => {
            match s.list_type() {
                "set" => set(items, path, out),
                "map" => list_map(s, items, path, out),
                _ => {}
            }
            if let Some(item_schema) = s.items() {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

/// Indices of the second appearance of each repeated value.
fn repeats(values: &[Value]) -> Vec<usize> {
    let mut seen: Vec<(String, usize)> = Vec::new();
    let mut indices = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let key = go_json(v);
        match seen.iter_mut().find(|(k, _)| *k == key) {
            Some((_, times)) => {
                *times += 1;
                if *times == 2 {
                    indices.push(i);
                }
            }
            None => seen.push((key, 1)),
        }
    }
    indices
}

fn set(items: &[Value], path: &Path, out: &mut Vec<FieldError>) {
    for i in repeats(items) {
        out.push(FieldError::duplicate(
            path.index(i).field(),
            &Bad::of(&items[i]),
        ));
    }
}

fn list_map(s: Schema<'_>, items: &[Value], path: &Path, out: &mut Vec<FieldError>) {
    if let Some((i, item)) = items
        .iter()
        .enumerate()
        .find(|(_, x)| !x.is_null() && !x.is_object())
    {
        let detail = "must be an object for an array of list-type map";
        out.push(FieldError::invalid(
            path.index(i).field(),
            &Bad::of(item),
            detail,
        ));
        return;
    }
    let names = s.list_map_keys();
    let keys: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut key = Map::new();
            for name in &names {
                if let Some(v) = item.get(*name) {
                    key.insert((*name).to_owned(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in repeats(&keys) {
        out.push(FieldError::duplicate(
            path.index(i).field(),
            &Bad::of(&keys[i]),
        ));
    }
}
