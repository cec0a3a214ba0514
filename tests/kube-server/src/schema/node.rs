//! A typed, borrowed view of one node of a structural schema (`openAPIV3Schema` and below).

use serde_json::{Map, Value};

/// One node of a structural schema. Absent keywords read as their defaults.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schema<'a>(&'a Value);

impl<'a> Schema<'a> {
    pub(crate) fn new(value: &'a Value) -> Self {
        Schema(value)
    }

    pub(crate) fn get(self, keyword: &str) -> Option<&'a Value> {
        self.0.get(keyword)
    }

    fn flag(self, keyword: &str) -> bool {
        self.get(keyword).and_then(Value::as_bool).unwrap_or(false)
    }

    /// The `type` keyword, or "" when the node does not declare one.
    pub(crate) fn type_name(self) -> &'a str {
        self.get("type").and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn format(self) -> &'a str {
        self.get("format").and_then(Value::as_str).unwrap_or("")
    }

    pub(crate) fn properties(self) -> Option<&'a Map<String, Value>> {
        self.get("properties").and_then(Value::as_object)
    }

    pub(crate) fn property(self, name: &str) -> Option<Schema<'a>> {
        self.properties()?.get(name).map(Schema)
    }

    /// The schema of a map's values (`additionalProperties` given as a schema).
    pub(crate) fn additional(self) -> Option<Schema<'a>> {
        self.get("additionalProperties")
            .filter(|v| v.is_object())
            .map(Schema)
    }

    /// `additionalProperties: true`: any key, any value, nothing pruned.
    pub(crate) fn allows_any_additional(self) -> bool {
        self.get("additionalProperties") == Some(&Value::Bool(true))
    }

    /// The schema for the value under `key`: a declared property, else the map's value schema.
    pub(crate) fn child(self, key: &str) -> Option<Schema<'a>> {
        self.property(key).or_else(|| self.additional())
    }

    pub(crate) fn items(self) -> Option<Schema<'a>> {
        self.get("items").filter(|v| v.is_object()).map(Schema)
    }

    pub(crate) fn nullable(self) -> bool {
        self.flag("nullable")
    }

    pub(crate) fn preserves_unknown_fields(self) -> bool {
        self.flag("x-kubernetes-preserve-unknown-fields")
    }

    pub(crate) fn embedded_resource(self) -> bool {
        self.flag("x-kubernetes-embedded-resource")
    }

    pub(crate) fn int_or_string(self) -> bool {
        self.flag("x-kubernetes-int-or-string")
    }

    pub(crate) fn list_type(self) -> &'a str {
        self.get("x-kubernetes-list-type")
            .and_then(Value::as_str)
            .unwrap_or("atomic")
    }

    pub(crate) fn list_map_keys(self) -> Vec<&'a str> {
        self.strings("x-kubernetes-list-map-keys")
    }

    pub(crate) fn required(self) -> Vec<&'a str> {
        self.strings("required")
    }

    fn strings(self, keyword: &str) -> Vec<&'a str> {
        self.get(keyword)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    pub(crate) fn default_value(self) -> Option<&'a Value> {
        self.get("default")
    }

    pub(crate) fn enum_values(self) -> Option<&'a Vec<Value>> {
        self.get("enum").and_then(Value::as_array)
    }

    pub(crate) fn number(self, keyword: &str) -> Option<f64> {
        self.get(keyword).and_then(Value::as_f64)
    }

    pub(crate) fn count(self, keyword: &str) -> Option<i64> {
        self.get(keyword).and_then(Value::as_i64)
    }

    pub(crate) fn exclusive(self, keyword: &str) -> bool {
        self.flag(keyword)
    }

    pub(crate) fn pattern(self) -> Option<&'a str> {
        self.get("pattern").and_then(Value::as_str)
    }

    pub(crate) fn validations(self) -> &'a [Value] {
        self.get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The types a value may have here, as the apiserver lists them in messages.
    pub(crate) fn declared_types(self) -> Vec<&'a str> {
        if self.int_or_string() {
            vec!["integer", "string"]
        } else if self.type_name().is_empty() {
            Vec::new()
        } else {
            vec![self.type_name()]
        }
    }
}

/// The fields of `metav1.ObjectMeta`: what survives in `metadata` of a resource.
pub(crate) const OBJECT_META_FIELDS: &[&str] = &[
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// The fields a resource (the root, or an embedded resource) keeps whatever its schema says.
pub(crate) const TYPE_AND_OBJECT_META: &[&str] = &["apiVersion", "kind", "metadata"];

/// Object keys in byte order, so that results do not depend on the map's iteration order.
pub(crate) fn sorted_keys(map: &Map<String, Value>) -> Vec<String> {
    let mut keys: Vec<String> = map.keys().cloned().collect();
    keys.sort();
    keys
}

/// The old value of a list item: only items of `x-kubernetes-list-type: map` lists correlate.
pub(crate) fn correlated_item<'v>(
    schema: Schema<'_>,
    item: &Value,
    old: Option<&'v Value>,
) -> Option<&'v Value> {
    if schema.list_type() != "map" {
        return None;
    }
    let keys = schema.list_map_keys();
    let key_of = |v: &Value| keys.iter().map(|k| v.get(*k).cloned()).collect::<Vec<_>>();
    let wanted = key_of(item);
    old?.as_array()?
        .iter()
        .find(|o| o.is_object() && key_of(o) == wanted)
}
