//! `meta.k8s.io/v1` Tables, what `kubectl get` asks for: a NAME column, then the printer
//! columns (a CRD's `additionalPrinterColumns`, or [`builtin_columns`]), one row per object,
//! each row carrying the object as the request's `includeObject` asks.
//!
//! Pure functions of JSON: no storage, no HTTP.

mod cell;
mod jsonpath;
#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use jsonpath::JsonPath;

const NAME_DESCRIPTION: &str = "The name of the object, unique within its namespace.";
const AGE_DESCRIPTION: &str = "When the object was created, shown as its age.";

/// Builds a meta.k8s.io/v1 Table for `kubectl get`: `columnDefinitions` = NAME (type string,
/// format name) then the printer columns `columns` (name, type, format, description, priority,
/// jsonPath; an AGE column when there are none, as the apiserver does for CRDs without any),
/// rows with `cells` and `object` per `include` ("None" | "Metadata" -> PartialObjectMetadata |
/// "Object"), `metadata` from `list_meta` (resourceVersion, continue, remainingItemCount).
///
/// Cells are what the apiserver sends: `null` where a path finds nothing, ages (`5m`, `3d`) in
/// `date` columns, text in `string` columns.
pub fn to_table(columns: &Value, objects: &[Value], include: &str, list_meta: Value) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    to_table_at(columns, objects, include, list_meta, now)
}

/// NAME and AGE (creationTimestamp) for built-in kinds without special printing.
pub fn builtin_columns(_kind: &str) -> Value {
    json!([age_column()])
}

fn age_column() -> Value {
    json!({
        "name": "Age",
        "type": "date",
        "description": AGE_DESCRIPTION,
        "jsonPath": ".metadata.creationTimestamp",
    })
}

/// A printer column as declared, with its path parsed (`None` if it does not parse).
struct Column<'a> {
    definition: Value,
    column_type: &'a str,
    path: Option<JsonPath>,
}

fn text<'a>(column: &'a Value, key: &str) -> &'a str {
    column.get(key).and_then(Value::as_str).unwrap_or("")
}

fn parse_column(column: &Value) -> Column<'_> {
    Column {
        definition: json!({
            "name": text(column, "name"),
            "type": text(column, "type"),
            "format": text(column, "format"),
            "description": text(column, "description"),
            "priority": column.get("priority").and_then(Value::as_i64).unwrap_or(0),
        }),
        column_type: text(column, "type"),
        path: JsonPath::parse(text(column, "jsonPath")).ok(),
    }
}

pub(crate) fn to_table_at(
    columns: &Value,
    objects: &[Value],
    include: &str,
    list_meta: Value,
    now: f64,
) -> Value {
    let default_columns = json!([age_column()]);
    let declared = match columns.as_array() {
        Some(list) if !list.is_empty() => columns,
        _ => &default_columns,
    };
    let columns: Vec<Column<'_>> = declared
        .as_array()
        .into_iter()
        .flatten()
        .map(parse_column)
        .collect();
    let mut definitions = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": NAME_DESCRIPTION,
        "priority": 0,
    })];
    definitions.extend(columns.iter().map(|c| c.definition.clone()));
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(&columns, o, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": table_meta(list_meta),
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// The table's `ListMeta`: the list's resourceVersion, continue token and remaining count.
fn table_meta(list_meta: Value) -> Value {
    let Value::Object(mut list_meta) = list_meta else {
        return json!({});
    };
    let mut meta = Map::new();
    for key in ["resourceVersion", "continue"] {
        if let Some(v) = list_meta
            .remove(key)
            .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        {
            meta.insert(key.to_owned(), v);
        }
    }
    if let Some(count) = list_meta
        .remove("remainingItemCount")
        .filter(Value::is_number)
    {
        meta.insert("remainingItemCount".to_owned(), count);
    }
    Value::Object(meta)
}

fn row(columns: &[Column<'_>], object: &Value, include: &str, now: f64) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = vec![name];
    cells.extend(
        columns
            .iter()
            .map(|c| cell::cell(c.path.as_ref(), c.column_type, object, now)),
    );
    let embedded = match include {
        "None" => Value::Null,
        "Object" => object.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
    };
    json!({ "cells": cells, "object": embedded })
}
