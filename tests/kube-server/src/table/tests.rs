//! Tests of Table output: the exact JSON kubectl receives.

mod jsonpath;

use serde_json::{Value, json};

use super::cell::{age_of, human_duration};
use super::{builtin_columns, to_table, to_table_at};

/// 2024-01-01T00:00:00Z in seconds since the epoch.
const NEW_YEAR: f64 = 1_704_067_200.0;

fn plugin(name: &str, spec: Value, status: Value) -> Value {
    let mut obj = json!({
        "apiVersion": "proxlet.dev/v1alpha1",
        "kind": "ProxyPlugin",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": "2023-12-31T23:55:00Z"},
    });
    obj["spec"] = spec;
    obj["status"] = status;
    obj
}

fn printer_columns() -> Value {
    json!([
        {"name": "Image", "type": "string", "jsonPath": ".spec.image", "description": "The plugin image."},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
        {"name": "Weight", "type": "number", "format": "double", "jsonPath": ".spec.weight", "priority": 1},
        {"name": "Enabled", "type": "boolean", "jsonPath": ".spec.enabled"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ])
}

#[test]
fn column_definitions_start_with_name_then_the_printer_columns() {
    let table = to_table_at(
        &printer_columns(),
        &[],
        "Object",
        json!({"resourceVersion": "7"}),
        NEW_YEAR,
    );
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(table["metadata"], json!({"resourceVersion": "7"}));
    assert_eq!(table["rows"], json!([]));
    let definitions = table["columnDefinitions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = definitions
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Name", "Image", "Replicas", "Ready", "Weight", "Enabled", "Age"
        ]
    );
    assert_eq!(definitions[0]["type"], "string");
    assert_eq!(definitions[0]["format"], "name");
    assert_eq!(
        definitions[4],
        json!({"name": "Weight", "type": "number", "format": "double", "description": "", "priority": 1})
    );
    assert_eq!(
        definitions[1],
        json!({"name": "Image", "type": "string", "format": "", "description": "The plugin image.", "priority": 0})
    );
}

#[test]
fn cells_are_typed_by_their_column_and_null_when_missing() {
    let ready = plugin(
        "auth",
        json!({"image": "ghcr.io/proxlet/auth:1", "weight": 2.0, "enabled": true}),
        json!({"replicas": 3, "conditions": [{"type": "Synced", "status": "True"}, {"type": "Ready", "status": "False"}]}),
    );
    let bare = plugin("bare", json!({"weight": 0.5}), json!({}));
    let table = to_table_at(
        &printer_columns(),
        &[ready, bare],
        "None",
        json!({}),
        NEW_YEAR,
    );
    assert_eq!(
        table["rows"],
        json!([
            {"cells": ["auth", "ghcr.io/proxlet/auth:1", 3, "False", 2, true, "5m"], "object": null},
            {"cells": ["bare", null, null, null, 0.5, null, "5m"], "object": null},
        ])
    );
}

#[test]
fn string_cells_print_values_as_jsonpath_does() {
    let columns = json!([
        {"name": "N", "type": "string", "jsonPath": ".spec.n"},
        {"name": "F", "type": "string", "jsonPath": ".spec.f"},
        {"name": "Obj", "type": "string", "jsonPath": ".spec.obj"},
        {"name": "Null", "type": "string", "jsonPath": ".spec.none"},
        {"name": "First", "type": "string", "jsonPath": ".spec.hosts[*]"},
        {"name": "Last", "type": "string", "jsonPath": ".spec.hosts[-1]"},
    ]);
    let obj = plugin(
        "p",
        json!({"n": 42, "f": 1e6, "obj": {"b": 1, "a": true}, "none": null, "hosts": ["a", "b"]}),
        json!({}),
    );
    let table = to_table_at(&columns, &[obj], "None", json!({}), NEW_YEAR);
    assert_eq!(
        table["rows"][0]["cells"],
        json!([
            "p",
            "42",
            "1e+06",
            r#"{"a":true,"b":1}"#,
            "<no value>",
            "a",
            "b"
        ])
    );
}

#[test]
fn rows_carry_the_object_as_asked() {
    let obj = plugin("auth", json!({"image": "i"}), json!({}));
    let columns = json!([]);
    let metadata = to_table_at(
        &columns,
        std::slice::from_ref(&obj),
        "Metadata",
        json!({}),
        NEW_YEAR,
    );
    assert_eq!(
        metadata["rows"][0]["object"],
        json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": "auth", "namespace": "default", "creationTimestamp": "2023-12-31T23:55:00Z"},
        })
    );
    let full = to_table_at(
        &columns,
        std::slice::from_ref(&obj),
        "Object",
        json!({}),
        NEW_YEAR,
    );
    assert_eq!(full["rows"][0]["object"], obj);
    let none = to_table_at(
        &columns,
        std::slice::from_ref(&obj),
        "None",
        json!({}),
        NEW_YEAR,
    );
    assert_eq!(
        none["rows"][0],
        json!({"cells": ["auth", "5m"], "object": null})
    );
}

#[test]
fn without_printer_columns_there_is_an_age_column() {
    let table = to_table(
        &json!([]),
        &[],
        "None",
        json!({"resourceVersion": "9", "continue": "", "remainingItemCount": 4}),
    );
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .map(|d| d.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Name", "Age"]);
    assert_eq!(table["columnDefinitions"][1]["type"], "date");
    assert_eq!(
        table["metadata"],
        json!({"resourceVersion": "9", "remainingItemCount": 4})
    );
    let paged = to_table(
        &json!([]),
        &[],
        "None",
        json!({"resourceVersion": "9", "continue": "abc"}),
    );
    assert_eq!(
        paged["metadata"],
        json!({"resourceVersion": "9", "continue": "abc"})
    );
}

#[test]
fn builtin_kinds_get_name_and_age() {
    let columns = builtin_columns("ConfigMap");
    assert_eq!(
        columns,
        json!([{"name": "Age", "type": "date", "description": "When the object was created, shown as its age.", "jsonPath": ".metadata.creationTimestamp"}])
    );
    let cm = json!({"metadata": {"name": "cfg", "creationTimestamp": "2023-12-30T00:00:00Z"}});
    let table = to_table_at(&columns, &[cm], "None", json!({}), NEW_YEAR);
    assert_eq!(table["rows"][0]["cells"], json!(["cfg", "2d"]));
}

#[test]
fn ages_read_like_kubectl() {
    assert_eq!(human_duration(-5.0), "<invalid>");
    assert_eq!(human_duration(-0.5), "0s");
    assert_eq!(human_duration(59.0), "59s");
    assert_eq!(human_duration(119.0), "119s");
    assert_eq!(human_duration(150.0), "2m30s");
    assert_eq!(human_duration(300.0), "5m");
    assert_eq!(human_duration(3_000.0), "50m");
    assert_eq!(human_duration(4.0 * 3600.0 + 120.0), "4h2m");
    assert_eq!(human_duration(30.0 * 3600.0), "30h");
    assert_eq!(human_duration(3.0 * 86_400.0 + 7200.0), "3d2h");
    assert_eq!(human_duration(100.0 * 86_400.0), "100d");
    assert_eq!(human_duration(800.0 * 86_400.0), "2y70d");
    assert_eq!(human_duration(3000.0 * 86_400.0), "8y");
    assert_eq!(age_of("not a time", NEW_YEAR), "<invalid>");
    assert_eq!(age_of("", NEW_YEAR), "<unknown>");
    assert_eq!(age_of("2024-01-01T01:00:00+01:00", NEW_YEAR), "0s");
}
