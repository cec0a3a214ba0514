//! Applying a configuration (`application/apply-patch+yaml`) for one field manager.
//!
//! The manager comes to own exactly the fields of its configuration. A field another manager
//! owns with a different value is a conflict unless `force` takes it over. Fields the manager
//! applied before, left out now, and owned by nobody else are removed. Maps merge, list-maps
//! merge item by item on their keys, sets are unioned, other lists are replaced.

use serde_json::{Value, json};

use super::Scope;
use super::fieldset::{Element, FieldSet, owned_fields, path_string, remove_at, value_at};
use super::managed::{self, Entry};
use crate::meta;
use crate::status::ApiError;
use crate::structure::{self, ListType};

/// One apply request.
pub struct ApplyRequest<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub scope: Scope,
    /// The merge structure (schema) of the resource.
    pub schema: &'a Value,
    pub api_version: &'a str,
}

/// Merges `config` into `live` (an empty object when creating) and returns the result with its
/// new `managedFields`.
pub fn server_side_apply(
    live: &Value,
    config: &Value,
    req: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let config = in_scope(config, req.scope);
    let config_set = owned_fields(&config, req.schema, req.scope);
    let mut entries = managed::read(live);
    let mine = |e: &Entry| e.is(req.manager, "Apply", req.scope);

    let conflicts = find_conflicts(live, &config, &config_set, &entries, req);
    if !conflicts.is_empty() {
        if !req.force {
            return Err(conflict_error(&entries, &conflicts));
        }
        for (i, p) in &conflicts {
            entries[*i].set = entries[*i].set.difference(&FieldSet::from_paths([p]));
        }
    }

    let mut merged = merge(live, &config, req.schema);
    let previous = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let others = entries
        .iter()
        .filter(|e| !mine(e))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.set));
    let mut dropped = previous.difference(&config_set).difference(&others).paths();
    // Parents first: an item goes whole, before its key fields could be removed from under it.
    dropped.sort_by_key(Vec::len);
    for p in dropped {
        remove_at(&mut merged, &p);
    }

    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.set = config_set;
            e.time = meta::now();
            e.api_version = req.api_version.to_string();
        }
        None => {
            let mut e = Entry::new(req.manager, "Apply", req.scope, req.api_version);
            e.set = config_set;
            entries.push(e);
        }
    }
    managed::write(&mut merged, &entries);
    Ok(merged)
}

/// Fields of the configuration another manager owns with a different live value.
fn find_conflicts(
    live: &Value,
    config: &Value,
    config_set: &FieldSet,
    entries: &[Entry],
    req: &ApplyRequest<'_>,
) -> Vec<(usize, Vec<Element>)> {
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.is(req.manager, "Apply", req.scope) {
            continue;
        }
        for p in config_set.paths() {
            if !e.set.contains(&p) || is_item(&p) {
                continue;
            }
            if let Some(current) = value_at(live, &p)
                && Some(current) != value_at(config, &p)
            {
                conflicts.push((i, p));
            }
        }
    }
    if !conflicts.is_empty() && req.manager == "kubectl" {
        // kubectl's own move from client-side apply: fields the last-applied annotation set,
        // still at those values, may be taken over.
        let allowed = last_applied_fields(live, req);
        conflicts.retain(|(_, p)| !allowed.contains(p));
    }
    conflicts
}

/// The fields of the `last-applied-configuration` annotation whose values are still live.
fn last_applied_fields(live: &Value, req: &ApplyRequest<'_>) -> FieldSet {
    let annotation =
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str();
    let Some(last) = annotation.and_then(|a| serde_json::from_str::<Value>(a).ok()) else {
        return FieldSet::default();
    };
    let fields = owned_fields(&last, req.schema, req.scope);
    let same: Vec<Vec<Element>> = fields
        .paths()
        .into_iter()
        .filter(|p| value_at(&last, p) == value_at(live, p) || is_item(p))
        .collect();
    FieldSet::from_paths(&same)
}

fn is_item(p: &[Element]) -> bool {
    matches!(p.last(), Some(Element::Key(_) | Element::Value(_)))
}

/// The part of the configuration a write in `scope` may set.
fn in_scope(config: &Value, scope: Scope) -> Value {
    let mut c = config.clone();
    if let Some(m) = c.as_object_mut() {
        match scope {
            Scope::Main {
                status_separate: true,
            } => {
                m.remove("status");
            }
            Scope::Status => {
                m.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"))
            }
            Scope::Main { .. } => {}
        }
        if scope == Scope::Status
            && let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.retain(|k, _| matches!(k.as_str(), "name" | "namespace"));
        }
    }
    c
}

fn conflict_error(entries: &[Entry], conflicts: &[(usize, Vec<Element>)]) -> ApiError {
    let causes: Vec<(String, String)> = conflicts
        .iter()
        .map(|(i, p)| {
            (
                format!("conflict with {}", entries[*i].describe()),
                path_string(p),
            )
        })
        .collect();
    let message = if let [(i, p)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            entries[*i].describe(),
            path_string(p)
        )
    } else {
        let mut managers: Vec<usize> = conflicts.iter().map(|(i, _)| *i).collect();
        managers.sort_by_key(|i| entries[*i].describe());
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {}:", entries[m].describe()));
            for (_, p) in conflicts.iter().filter(|(i, _)| *i == m) {
                lines.push(format!("- {}", path_string(p)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    ApiError::apply_conflict(message, causes)
}

/// The live object with the configuration merged in.
fn merge(live: &Value, config: &Value, schema: &Value) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, v) in c {
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = merge(
                    l.get(k).unwrap_or(&Value::Null),
                    v,
                    structure::field(schema, k),
                );
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match structure::list_type(schema) {
            ListType::Map(keys) if !keys.is_empty() => {
                let mut out = l.clone();
                for item in c {
                    let key = structure::item_key(item, &keys);
                    match out.iter().position(|o| structure::has_key(o, &key)) {
                        Some(i) => out[i] = merge(&out[i], item, structure::items(schema)),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
            ListType::Set => {
                let mut out = l.clone();
                for item in c {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            _ => config.clone(),
        },
        _ => config.clone(),
    }
}

/// An empty object to apply onto when the object does not exist yet.
pub fn empty_live() -> Value {
    json!({})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object"},
            "status": {"type": "object", "properties": {"conditions": {"type": "array",
                "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                "items": {"type": "object"}}}}}})
    }

    fn req<'a>(manager: &'a str, force: bool, schema: &'a Value) -> ApplyRequest<'a> {
        ApplyRequest {
            manager,
            force,
            scope: Scope::Main {
                status_separate: false,
            },
            schema,
            api_version: "x/v1",
        }
    }

    #[test]
    fn conditions_merge_by_type_and_dropped_fields_go() {
        let s = schema();
        let a = json!({"spec": {"x": 1, "y": 2}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let live = server_side_apply(&json!({}), &a, &req("op", false, &s)).unwrap();
        let b = json!({"status": {"conditions": [{"type": "Fetched", "status": "True"}]}});
        let live = server_side_apply(&live, &b, &req("other", false, &s)).unwrap();
        assert_eq!(
            live["status"]["conditions"].as_array().map(Vec::len),
            Some(2)
        );
        let a2 = json!({"spec": {"x": 1}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let live = server_side_apply(&live, &a2, &req("op", false, &s)).unwrap();
        assert_eq!(live["spec"], json!({"x": 1}));
        assert_eq!(
            live["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True"})
        );
        let clash = json!({"spec": {"x": 5}});
        let err = server_side_apply(&live, &clash, &req("other", false, &s)).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"op\": .spec.x"
        );
        let forced = server_side_apply(&live, &clash, &req("other", true, &s)).unwrap();
        assert_eq!(forced["spec"]["x"], 5);
    }
}
