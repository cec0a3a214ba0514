//! JSON values as the CEL values a rule sees, typed by the schema the way the apiserver types
//! them: `number` as double, `integer` as int, `format: byte` as bytes, `date-time` and `date`
//! as timestamps, and only the fields the schema knows. A resource (the root or an embedded
//! one) shows `apiVersion`, `kind` and, of its metadata, `name` and `generateName`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cel::Value as Cel;
use chrono::{DateTime, FixedOffset, NaiveDate};
use serde_json::{Map, Value};

use crate::schema::node::Schema;

/// `value` under `schema` as CEL sees it; `resource` for the root and embedded resources.
pub(crate) fn to_cel(value: &Value, schema: Option<Schema<'_>>, resource: bool) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => number(n, schema),
        Value::String(s) => string(s, schema.map(Schema::format).unwrap_or("")),
        Value::Array(items) => {
            let item_schema = schema.and_then(Schema::items);
            let list = items
                .iter()
                .map(|item| to_cel(item, item_schema, is_resource(item_schema)))
                .collect();
            Cel::List(Arc::new(list))
        }
        Value::Object(map) => object(map, schema, resource),
    }
}

fn is_resource(schema: Option<Schema<'_>>) -> bool {
    schema.is_some_and(Schema::embedded_resource)
}

fn number(n: &serde_json::Number, schema: Option<Schema<'_>>) -> Cel {
    let declared = schema.map(Schema::type_name).unwrap_or("");
    let float = n.as_f64().unwrap_or(0.0);
    if declared == "number" {
        return Cel::Float(float);
    }
    if let Some(i) = n.as_i64() {
        Cel::Int(i)
    } else if let Some(u) = n.as_u64() {
        Cel::UInt(u)
    } else if declared == "integer" && float.fract() == 0.0 {
        Cel::Int(float as i64)
    } else {
        Cel::Float(float)
    }
}

fn string(text: &str, format: &str) -> Cel {
    let typed = match format {
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()
            .map(|bytes| Cel::Bytes(Arc::new(bytes))),
        "date-time" | "datetime" => DateTime::parse_from_rfc3339(text).ok().map(Cel::Timestamp),
        "date" => midnight(text).map(Cel::Timestamp),
        _ => None,
    };
    typed.unwrap_or_else(|| Cel::String(Arc::new(text.to_owned())))
}

fn midnight(text: &str) -> Option<DateTime<FixedOffset>> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let utc = FixedOffset::east_opt(0)?;
    date.and_hms_opt(0, 0, 0)?.and_local_timezone(utc).single()
}

fn object(map: &Map<String, Value>, schema: Option<Schema<'_>>, resource: bool) -> Cel {
    let mut out: HashMap<String, Cel> = HashMap::new();
    for (key, value) in map {
        let converted = match (key.as_str(), schema) {
            ("apiVersion" | "kind", _) if resource => to_cel(value, None, false),
            ("metadata", _) if resource => object_meta(value),
            (_, None) => to_cel(value, None, false),
            (_, Some(s)) => match s.child(key) {
                Some(child) => to_cel(value, Some(child), child.embedded_resource()),
                None if s.preserves_unknown_fields() => to_cel(value, None, false),
                None => continue,
            },
        };
        out.insert(key.clone(), converted);
    }
    Cel::from(out)
}

fn object_meta(meta: &Value) -> Cel {
    let mut out: HashMap<String, Cel> = HashMap::new();
    for field in ["name", "generateName"] {
        if let Some(Value::String(s)) = meta.get(field) {
            out.insert(field.to_owned(), Cel::String(Arc::new(s.clone())));
        }
    }
    Cel::from(out)
}
