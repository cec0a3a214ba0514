//! Sets of field paths, the `FieldsV1` encoding kube-apiserver stores in `managedFields`, and
//! the path notation of apply conflict messages (`.spec.x`, `.status.conditions[type="Ready"]`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Scope;
use crate::structure::{self, ListType};

/// One step in a path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Element {
    /// A field of a map or struct.
    Field(String),
    /// An item of a list-map, by its key fields (canonical JSON object).
    Key(String),
    /// An item of a set, by value (canonical JSON).
    Value(String),
    /// An item of a list by position.
    Index(usize),
}

pub type Path = Vec<Element>;

/// A set of paths, stored as a tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<Element, FieldSet>,
}

impl FieldSet {
    pub fn insert(&mut self, path: &[Element]) {
        match path.split_first() {
            None => self.member = true,
            Some((head, rest)) => self.children.entry(head.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[Element]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((head, rest)) => self.children.get(head).is_some_and(|c| c.contains(rest)),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Every path in the set, parents before their children.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.walk(&mut Vec::new(), &mut out);
        out
    }

    fn walk(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (e, child) in &self.children {
            prefix.push(e.clone());
            child.walk(prefix, out);
            prefix.pop();
        }
    }

    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Self {
        let mut s = FieldSet::default();
        for p in paths {
            s.insert(p);
        }
        s
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut s = self.clone();
        for p in other.paths() {
            s.insert(&p);
        }
        s
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let keep: Vec<Path> = self
            .paths()
            .into_iter()
            .filter(|p| !other.contains(p))
            .collect();
        FieldSet::from_paths(&keep)
    }

    /// The `fieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (e, child) in &self.children {
            m.insert(encode(e), child.to_fields_v1());
        }
        Value::Object(m)
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        let mut s = FieldSet::default();
        let Some(m) = v.as_object() else {
            return s;
        };
        if m.is_empty() {
            s.member = true;
        }
        for (k, child) in m {
            if k == "." {
                s.member = true;
            } else if let Some(e) = decode(k) {
                s.children.insert(e, FieldSet::from_fields_v1(child));
            }
        }
        s
    }
}

fn encode(e: &Element) -> String {
    match e {
        Element::Field(f) => format!("f:{f}"),
        Element::Key(k) => format!("k:{k}"),
        Element::Value(v) => format!("v:{v}"),
        Element::Index(i) => format!("i:{i}"),
    }
}

fn decode(s: &str) -> Option<Element> {
    let (tag, rest) = s.split_once(':')?;
    match tag {
        "f" => Some(Element::Field(rest.to_string())),
        "k" => Some(Element::Key(rest.to_string())),
        "v" => Some(Element::Value(rest.to_string())),
        "i" => rest.parse().ok().map(Element::Index),
        _ => None,
    }
}

/// `.spec.items[name="a"].value`, as conflict messages print paths.
pub fn path_string(path: &[Element]) -> String {
    let mut s = String::new();
    for e in path {
        match e {
            Element::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Element::Key(k) => {
                let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(k)
                    .unwrap_or_default()
                    .iter()
                    .map(|(f, v)| format!("{f}={v}"))
                    .collect();
                s.push_str(&format!("[{}]", parts.join(",")));
            }
            Element::Value(v) => s.push_str(&format!("[={v}]")),
            Element::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The value at `path`, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[Element]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in path {
        cur = match e {
            Element::Field(f) => cur.get(f)?,
            Element::Key(k) => {
                let key: Value = serde_json::from_str(k).ok()?;
                cur.as_array()?
                    .iter()
                    .find(|i| structure::has_key(i, &key))?
            }
            Element::Value(v) => {
                let want: Value = serde_json::from_str(v).ok()?;
                cur.as_array()?.iter().find(|i| **i == want)?
            }
            Element::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

/// Removes the value at `path`; a missing path is not an error.
pub fn remove_at(obj: &mut Value, path: &[Element]) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for e in init {
        let next = match e {
            Element::Field(f) => cur.get_mut(f),
            Element::Key(_) | Element::Value(_) => {
                let idx = find_index(cur, e);
                match idx {
                    Some(i) => cur.get_mut(i),
                    None => None,
                }
            }
            Element::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match last {
        Element::Field(f) => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(f);
            }
        }
        other => {
            if let Some(i) = find_index(cur, other)
                && let Some(a) = cur.as_array_mut()
            {
                a.remove(i);
            }
        }
    }
}

fn find_index(list: &Value, e: &Element) -> Option<usize> {
    let items = list.as_array()?;
    match e {
        Element::Key(k) => {
            let key: Value = serde_json::from_str(k).ok()?;
            items.iter().position(|i| structure::has_key(i, &key))
        }
        Element::Value(v) => {
            let want: Value = serde_json::from_str(v).ok()?;
            items.iter().position(|i| *i == want)
        }
        Element::Index(i) => (*i < items.len()).then_some(*i),
        Element::Field(_) => None,
    }
}

/// Metadata fields the server owns; never part of a manager's set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The fields of `obj` a write in `scope` would own.
pub fn owned_fields(obj: &Value, schema: &Value, scope: Scope) -> FieldSet {
    let mut set = FieldSet::default();
    let Some(top) = obj.as_object() else {
        return set;
    };
    for (k, v) in top {
        let wanted = match scope {
            Scope::Status => k == "status",
            Scope::Main { status_separate } => {
                !(k == "apiVersion" || k == "kind" || (status_separate && k == "status"))
            }
        };
        if !wanted {
            continue;
        }
        let mut path = vec![Element::Field(k.clone())];
        let sub = structure::field(schema, k);
        if k == "metadata" {
            for (mk, mv) in v.as_object().into_iter().flatten() {
                if SERVER_METADATA.contains(&mk.as_str()) {
                    continue;
                }
                path.push(Element::Field(mk.clone()));
                collect(mv, structure::field(sub, mk), &mut path, &mut set);
                path.pop();
            }
        } else {
            collect(v, sub, &mut path, &mut set);
        }
    }
    set
}

fn canonical(v: &Value) -> String {
    v.to_string()
}

fn collect(value: &Value, schema: &Value, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                path.push(Element::Field(k.clone()));
                collect(v, structure::field(schema, k), path, set);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match structure::list_type(schema) {
            ListType::Map(keys) if !keys.is_empty() => {
                for item in items {
                    path.push(Element::Key(canonical(&structure::item_key(item, &keys))));
                    set.insert(path);
                    collect(item, structure::items(schema), path, set);
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    path.push(Element::Value(canonical(item)));
                    set.insert(path);
                    path.pop();
                }
            }
            _ => set.insert(path),
        },
        _ => set.insert(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip_and_paths() {
        let schema = json!({"type": "object", "properties": {"status": {"type": "object",
            "properties": {"conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}}}}});
        let obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a",
            "labels": {"app": "web"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let set = owned_fields(&obj, &schema, Scope::Status);
        let v1 = set.to_fields_v1();
        assert_eq!(
            v1,
            json!({"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}":
            {".": {}, "f:status": {}, "f:type": {}}}}})
        );
        assert_eq!(FieldSet::from_fields_v1(&v1), set);
        let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
        assert!(paths.contains(&".status.conditions[type=\"Ready\"].status".to_string()));
        let main = owned_fields(
            &obj,
            &schema,
            Scope::Main {
                status_separate: true,
            },
        );
        assert_eq!(
            main.to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:app": {}}}})
        );
    }
}
