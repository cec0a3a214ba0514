use serde_json::json;

use super::{check, crd, resource, spec_errors, spec_messages};
use crate::schema::FieldErrorKind;

fn object(properties: serde_json::Value) -> serde_json::Value {
    let mut schema = json!({"type": "object"});
    schema["properties"] = properties;
    schema
}

#[test]
fn maximum_on_an_integer_is_invalid_with_the_bound_as_an_integer() {
    let errors = spec_errors(
        object(json!({"priority": {"type": "integer", "maximum": 1000}})),
        json!({"priority": 5000}),
    );
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, "spec.priority");
    assert_eq!(errors[0].kind, FieldErrorKind::Invalid);
    assert_eq!(errors[0].cause_reason(), "FieldValueInvalid");
    assert_eq!(
        errors[0].message,
        "Invalid value: 5000: spec.priority in body should be less than or equal to 1000"
    );
    assert_eq!(
        errors[0].to_message(),
        "spec.priority: Invalid value: 5000: spec.priority in body should be less than or equal to 1000"
    );
}

#[test]
fn exclusive_bounds_and_float_values() {
    let schema = object(json!({
        "ratio": {"type": "number", "minimum": 1, "exclusiveMinimum": true},
        "weight": {"type": "number", "maximum": 1_000_000, "exclusiveMaximum": true},
    }));
    assert_eq!(
        spec_messages(schema, json!({"ratio": 0.5, "weight": 2_000_000.5})),
        [
            "spec.ratio: Invalid value: 0.5: spec.ratio in body should be greater than 1",
            "spec.weight: Invalid value: 2.0000005e+06: spec.weight in body should be less than 1e+06",
        ]
    );
}

#[test]
fn multiple_of() {
    let schema = object(json!({"step": {"type": "integer", "multipleOf": 5}}));
    assert_eq!(
        spec_messages(schema.clone(), json!({"step": 12})),
        ["spec.step: Invalid value: 12: spec.step in body should be a multiple of 5"]
    );
    assert!(spec_messages(schema, json!({"step": 15})).is_empty());
}

#[test]
fn wrong_type_is_type_invalid_naming_the_json_type() {
    let errors = spec_errors(
        object(
            json!({"priority": {"type": "integer"}, "port": {"x-kubernetes-int-or-string": true}}),
        ),
        json!({"priority": "high", "port": true}),
    );
    let messages: Vec<String> = errors.iter().map(|e| e.to_message()).collect();
    assert_eq!(
        messages,
        [
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            r#"spec.priority: Invalid value: "string": spec.priority in body must be of type integer: "string""#,
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
    assert_eq!(errors[0].cause_reason(), "FieldValueTypeInvalid");
}

#[test]
fn whole_floats_pass_as_integers_and_integers_as_numbers() {
    let schema = object(json!({"a": {"type": "integer"}, "b": {"type": "number"}}));
    assert!(spec_messages(schema.clone(), json!({"a": 3.0, "b": 3})).is_empty());
    assert_eq!(
        spec_messages(schema, json!({"a": 3.5})),
        [
            r#"spec.a: Invalid value: "number": spec.a in body must be of type integer: "number""#,
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
}

#[test]
fn required_fields_are_reported_at_their_path() {
    let schema = json!({
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"type": "string"},
            "conditions": {"type": "array", "items": {
                "type": "object", "required": ["type", "status"],
                "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
            }},
        },
    });
    let errors = spec_errors(
        schema,
        json!({"conditions": [{"type": "Ready", "status": "True"}, {"status": "False"}]}),
    );
    let shown: Vec<(String, String, &str)> = errors
        .iter()
        .map(|e| (e.path.clone(), e.message.clone(), e.cause_reason()))
        .collect();
    assert_eq!(
        shown[0],
        (
            "spec.conditions[1].type".to_owned(),
            "Required value".to_owned(),
            "FieldValueRequired"
        )
    );
    assert_eq!(
        shown[1],
        (
            "spec.image".to_owned(),
            "Required value".to_owned(),
            "FieldValueRequired"
        )
    );
    assert_eq!(
        errors.len(),
        3,
        "the last error says the rules were not checked"
    );
}

#[test]
fn enum_lists_the_supported_values() {
    let schema = object(json!({
        "mode": {"type": "string", "enum": ["Allow", "Deny"]},
        "level": {"type": "integer", "enum": [1, 2]},
    }));
    let errors = spec_errors(schema, json!({"mode": "fast", "level": 3}));
    assert_eq!(
        errors[0].to_message(),
        r#"spec.level: Unsupported value: 3: supported values: "1", "2""#
    );
    assert_eq!(
        errors[1].to_message(),
        r#"spec.mode: Unsupported value: "fast": supported values: "Allow", "Deny""#
    );
    assert_eq!(errors[1].cause_reason(), "FieldValueNotSupported");
}

#[test]
fn string_length_and_pattern() {
    let schema = object(json!({
        "short": {"type": "string", "maxLength": 3},
        "long": {"type": "string", "minLength": 2},
        "name": {"type": "string", "pattern": "^[a-z]+$"},
    }));
    let errors = spec_errors(schema, json!({"short": "abcd", "long": "é", "name": "ABC"}));
    let messages: Vec<String> = errors.iter().map(|e| e.to_message()).collect();
    assert_eq!(
        messages[0],
        r#"spec.long: Invalid value: "é": spec.long in body should be at least 2 chars long"#
    );
    assert_eq!(
        messages[1],
        r#"spec.name: Invalid value: "ABC": spec.name in body should match '^[a-z]+$'"#
    );
    assert_eq!(
        messages[2],
        "spec.short: Too long: may not be more than 3 bytes"
    );
    assert_eq!(errors[2].cause_reason(), "FieldValueTooLong");
}

#[test]
fn item_and_property_counts() {
    let schema = object(json!({
        "hosts": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
        "ports": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
        "limits": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "string"}},
    }));
    let errors = spec_errors(
        schema,
        json!({"hosts": ["a", "b", "c"], "ports": [], "labels": {"a": "1", "b": "2"}, "limits": {}}),
    );
    let messages: Vec<String> = errors.iter().map(|e| e.to_message()).collect();
    assert_eq!(
        messages[0],
        "spec.hosts: Too many: 3: must have at most 2 items"
    );
    assert_eq!(
        messages[1],
        "spec.labels: Too many: 2: must have at most 1 item"
    );
    assert_eq!(
        messages[2],
        "spec.limits: Invalid value: 0: spec.limits in body should have at least 1 properties"
    );
    assert_eq!(
        messages[3],
        "spec.ports: Invalid value: 0: spec.ports in body should have at least 1 items"
    );
    assert_eq!(errors[0].cause_reason(), "FieldValueTooMany");
}

#[test]
fn map_values_are_named_with_dots() {
    let schema = object(
        json!({"limits": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 4}}}),
    );
    assert_eq!(
        spec_messages(schema, json!({"limits": {"memory": "512Mi!"}})),
        [
            "spec.limits.memory: Too long: may not be more than 4 bytes",
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
        ]
    );
}

#[test]
fn formats() {
    let schema = object(json!({
        "at": {"type": "string", "format": "date-time"},
        "data": {"type": "string", "format": "byte"},
        "id": {"type": "string", "format": "uuid"},
        "count": {"type": "integer", "format": "int32"},
    }));
    let valid = json!({"at": "2024-05-01T10:00:00.5+02:00", "data": "aGVsbG8=", "id": "0b9f2c1e-8d3a-4c55-9a7e-1f2e3d4c5b6a", "count": 1_u64 << 40});
    assert!(
        spec_messages(schema.clone(), valid).is_empty(),
        "int32 is not enforced by the apiserver"
    );
    let errors = spec_errors(
        schema,
        json!({"at": "yesterday", "data": "!!", "id": "nope"}),
    );
    let messages: Vec<String> = errors.iter().map(|e| e.to_message()).collect();
    assert_eq!(
        messages[0],
        r#"spec.at: Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday""#
    );
    assert_eq!(
        messages[1],
        r#"spec.data: Invalid value: "!!": spec.data in body must be of type byte: "!!""#
    );
    assert_eq!(
        messages[2],
        r#"spec.id: Invalid value: "nope": spec.id in body must be of type uuid: "nope""#
    );
    assert_eq!(errors[0].kind, FieldErrorKind::TypeInvalid);
}

#[test]
fn nulls_are_allowed_when_nullable_and_dropped_otherwise() {
    let schema = crd(object(
        json!({"a": {"type": "string", "nullable": true}, "b": {"type": "string"}}),
    ));
    let mut obj = resource(json!({"a": null, "b": null}));
    assert_eq!(crate::schema::validate(&schema, &mut obj, None), Ok(vec![]));
    assert_eq!(obj["spec"], json!({"a": null}));
    let items = crd(object(
        json!({"list": {"type": "array", "items": {"type": "string"}}}),
    ));
    assert_eq!(
        check(&items, resource(json!({"list": ["x", null]})), None),
        Err(vec![
            r#"spec.list[1]: Invalid value: "null": spec.list[1] in body must be of type string: "null""#.to_owned(),
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_owned(),
        ])
    );
}

#[test]
fn root_metadata_is_checked_only_for_name_rules() {
    let schema = json!({
        "type": "object",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 5}}},
            "spec": {"type": "object"},
        },
    });
    let mut obj = resource(json!({}));
    obj["metadata"]["name"] = json!("authentication");
    obj["metadata"]["labels"] = json!({"anything": "goes"});
    assert_eq!(
        check(&schema, obj, None),
        Err(vec![
            "metadata.name: Too long: may not be more than 5 bytes".to_owned(),
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_owned(),
        ])
    );
}

#[test]
fn unchanged_values_are_not_failed_again_on_update() {
    let schema = crd(object(
        json!({"priority": {"type": "integer", "maximum": 10}, "note": {"type": "string"}}),
    ));
    let old = resource(json!({"priority": 50, "note": "a"}));
    assert_eq!(
        check(
            &schema,
            resource(json!({"priority": 50, "note": "b"})),
            Some(&old)
        ),
        Ok(vec![])
    );
    assert_eq!(
        check(&schema, resource(json!({"priority": 60, "note": "b"})), Some(&old)),
        Err(vec!["spec.priority: Invalid value: 60: spec.priority in body should be less than or equal to 10".to_owned()])
    );
}
