//! OpenAPI value validation of a (pruned, defaulted) resource, with kube-openapi's messages:
//! `type`, `nullable`, `enum`, string, format and number constraints, item and property
//! counts, `required`. On update, a value equal to its old value is not validated again
//! (validation ratcheting).

mod scalar;

use serde_json::{Map, Value};

use super::error::{Bad, FieldError, FieldErrorKind};
use super::node::{Schema, correlated_item, sorted_keys};
use super::path::Path;
use super::render::go_json;

/// Validates `obj` against `root`; `old` is the stored object on update.
pub(crate) fn validate(root: Schema<'_>, obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut walker = Walker::default();
    walker.node(root, obj, old, &Path::root());
    walker.errors
}

#[derive(Default)]
struct Walker {
    errors: Vec<FieldError>,
}

/// The JSON type of a decoded value, as the validator names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(types: &[&str], value: &Value) -> bool {
    let actual = json_type(value);
    let whole = value.as_f64().is_some_and(|f| f.fract() == 0.0);
    types.contains(&actual)
        || (actual == "number" && whole && types.contains(&"integer"))
        || (actual == "integer" && types.contains(&"number"))
}

impl Walker {
    fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    fn node(&mut self, s: Schema<'_>, v: &Value, old: Option<&Value>, path: &Path) {
        if old == Some(v) {
            return;
        }
        if !self.check_type(s, v, path) || v.is_null() {
            self.check_enum(s, v, path);
            return;
        }
        match v {
            Value::String(text) => scalar::string(self, s, text, v, path),
            Value::Number(_) => scalar::number(self, s, v, path),
            Value::Array(items) => self.array(s, items, old, path),
            _ => {}
        }
        self.check_enum(s, v, path);
        if let Value::Object(map) = v {
            self.object(s, map, old, path);
        }
    }

    fn check_type(&mut self, s: Schema<'_>, v: &Value, path: &Path) -> bool {
        let types = s.declared_types();
        if types.is_empty() || (v.is_null() && s.nullable()) || type_matches(&types, v) {
            return true;
        }
        let actual = json_type(v);
        let detail = format!(
            "{} in body must be of type {}: \"{actual}\"",
            path.openapi(),
            types.join(",")
        );
        self.push(FieldError::new(
            FieldErrorKind::TypeInvalid,
            path.openapi_field(),
            &Bad::text(actual),
            &detail,
        ));
        false
    }

    fn check_enum(&mut self, s: Schema<'_>, v: &Value, path: &Path) {
        let Some(allowed) = s.enum_values().filter(|e| !e.is_empty()) else {
            return;
        };
        if !v.is_null() && allowed.iter().any(|a| scalar::json_equal(a, v)) {
            return;
        }
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => go_json(other),
            })
            .collect();
        self.push(FieldError::not_supported(
            path.openapi_field(),
            v,
            &supported,
        ));
    }

    fn array(&mut self, s: Schema<'_>, items: &[Value], old: Option<&Value>, path: &Path) {
        if let Some(item_schema) = s.items() {
            for (i, item) in items.iter().enumerate() {
                let old_item = correlated_item(s, item, old);
                self.node(item_schema, item, old_item, &path.index(i));
            }
        }
        let size = i64::try_from(items.len()).unwrap_or(i64::MAX);
        if let Some(min) = s.count("minItems").filter(|min| size < *min) {
            let detail = format!(
                "{} in body should have at least {min} items",
                path.openapi()
            );
            self.push(FieldError::invalid(
                path.openapi_field(),
                &Bad::int(size),
                &detail,
            ));
        }
        if let Some(max) = s.count("maxItems").filter(|max| size > *max) {
            self.push(FieldError::too_many(path.openapi_field(), size, max));
        }
    }

    fn object(
        &mut self,
        s: Schema<'_>,
        map: &Map<String, Value>,
        old: Option<&Value>,
        path: &Path,
    ) {
        let count = i64::try_from(map.len()).unwrap_or(i64::MAX);
        if let Some(min) = s.count("minProperties").filter(|min| count < *min) {
            let detail = format!(
                "{} in body should have at least {min} properties",
                path.openapi()
            );
            self.push(FieldError::invalid(
                path.openapi_field(),
                &Bad::int(count),
                &detail,
            ));
            return;
        }
        if let Some(max) = s.count("maxProperties").filter(|max| count > *max) {
            self.push(FieldError::too_many(path.openapi_field(), count, max));
            return;
        }
        for key in sorted_keys(map) {
            let old_value = old.and_then(|o| o.get(&key));
            if let Some(prop) = s.property(&key) {
                self.node(prop, &map[&key], old_value, &path.child(&key));
            } else if let Some(values) = s.additional() {
                self.node(values, &map[&key], old_value, &path.key(&key));
            }
        }
        for name in s.required() {
            if !map.contains_key(name) {
                self.push(FieldError::required(path.child(name).openapi(), ""));
            }
        }
    }
}
