//! `metadata.managedFields`: reading and writing the entries, and the ownership changes of an
//! ordinary write (create, update, non-apply patch): the writer takes the fields it changed,
//! every manager loses the fields that disappeared.

use serde_json::{Value, json};

use super::Scope;
use super::fieldset::{FieldSet, owned_fields, value_at};
use crate::meta;

/// One manager's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub subresource: String,
    pub api_version: String,
    pub time: String,
    pub set: FieldSet,
}

impl Entry {
    pub fn new(manager: &str, operation: &str, scope: Scope, api_version: &str) -> Self {
        Entry {
            manager: manager.to_string(),
            operation: operation.to_string(),
            subresource: scope.subresource().to_string(),
            api_version: api_version.to_string(),
            time: meta::now(),
            set: FieldSet::default(),
        }
    }

    pub fn is(&self, manager: &str, operation: &str, scope: Scope) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == scope.subresource()
    }

    /// How conflict messages name this manager.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

pub fn read(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj["metadata"]["managedFields"].as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            Some(Entry {
                manager: e["manager"].as_str()?.to_string(),
                operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                time: e["time"].as_str().unwrap_or_default().to_string(),
                set: FieldSet::from_fields_v1(&e["fieldsV1"]),
            })
        })
        .collect()
}

pub fn write(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.set.to_fields_v1(),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if list.is_empty() {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("managedFields");
        }
    } else {
        obj["metadata"]["managedFields"] = Value::Array(list);
    }
}

/// Records the ownership changes of a non-apply write by `manager` on `new`.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    scope: Scope,
    schema: &Value,
    api_version: &str,
) {
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let old_set = owned_fields(old_obj, schema, scope);
    let new_set = owned_fields(new, schema, scope);
    let changed = FieldSet::from_paths(
        &new_set
            .paths()
            .into_iter()
            .filter(|p| !old_set.contains(p) || value_at(old_obj, p) != value_at(new, p))
            .filter(|p| !is_item_node(new, p) || !old_set.contains(p))
            .collect::<Vec<_>>(),
    );
    let removed = old_set.difference(&new_set);
    // A client that sends managedFields of its own sets them.
    let sent = &new["metadata"]["managedFields"];
    let mut entries =
        if sent.is_array() && old.is_none_or(|o| o["metadata"]["managedFields"] != *sent) {
            read(new)
        } else {
            read(old_obj)
        };
    for e in &mut entries {
        e.set = e.set.difference(&removed).difference(&changed);
    }
    if !changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, "Update", scope)) {
            Some(e) => {
                e.set = e.set.union(&changed);
                e.time = meta::now();
                e.api_version = api_version.to_string();
            }
            None => {
                let mut e = Entry::new(manager, "Update", scope, api_version);
                e.set = changed;
                entries.push(e);
            }
        }
    }
    write(new, &entries);
}

/// Whether `path` names a list-map or set item (compared by identity, not by value).
fn is_item_node(obj: &Value, path: &[super::fieldset::Element]) -> bool {
    use super::fieldset::Element;
    matches!(path.last(), Some(Element::Key(_) | Element::Value(_)))
        && value_at(obj, path).is_some()
}
