use serde_json::json;

use super::{check, crd, resource};
use crate::schema::validate;

#[test]
fn unknown_fields_are_pruned_and_reported_sorted() {
    let schema = crd(json!({
        "type": "object",
        "properties": {
            "image": {"type": "string"},
            "nested": {"type": "object", "properties": {"known": {"type": "string"}}},
            "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
        },
    }));
    let mut obj = resource(json!({
        "image": "x",
        "unknown": 1,
        "nested": {"known": "k", "extra": true},
        "items": [{"name": "a"}, {"name": "b", "extra": 2}],
        "labels": {"app": {"v": "1", "w": "2"}},
    }));
    obj["metadata"]["bogus"] = json!("x");
    obj["status"] = json!({"ready": true});
    let pruned = validate(&schema, &mut obj, None);
    assert_eq!(
        pruned,
        Ok(vec![
            "metadata.bogus".to_owned(),
            "spec.items[1].extra".to_owned(),
            "spec.labels.app.w".to_owned(),
            "spec.nested.extra".to_owned(),
            "spec.unknown".to_owned(),
            "status".to_owned(),
        ])
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "proxlet.dev/v1alpha1",
            "kind": "ProxyPlugin",
            "metadata": {"name": "auth", "namespace": "default"},
            "spec": {"image": "x", "nested": {"known": "k"}, "items": [{"name": "a"}, {"name": "b"}], "labels": {"app": {"v": "1"}}},
        })
    );
}

#[test]
fn preserve_unknown_fields_keeps_everything_below() {
    let schema = crd(json!({
        "type": "object",
        "properties": {"config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
    }));
    let spec = json!({"config": {"anything": {"deep": [1, {"x": 2}]}}});
    let mut obj = resource(spec.clone());
    assert_eq!(validate(&schema, &mut obj, None), Ok(vec![]));
    assert_eq!(obj["spec"], spec);
}

#[test]
fn embedded_resources_keep_type_and_object_meta_and_must_name_their_kind() {
    let schema = crd(json!({
        "type": "object",
        "properties": {"template": {
            "type": "object",
            "x-kubernetes-embedded-resource": true,
            "properties": {"data": {"type": "string"}},
        }},
    }));
    let template = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "junk": 1}, "data": "d", "x": 1});
    let mut obj = resource(json!({"template": template}));
    assert_eq!(
        validate(&schema, &mut obj, None),
        Ok(vec![
            "spec.template.metadata.junk".to_owned(),
            "spec.template.x".to_owned()
        ])
    );
    assert_eq!(
        obj["spec"]["template"],
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": "d"})
    );

    let broken = json!({"template": {"apiVersion": "a/b/c", "kind": "Bad_Kind", "metadata": {"name": "a/b"}}});
    assert_eq!(
        check(&schema, resource(broken), None),
        Err(vec![
            r#"spec.template.apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#.to_owned(),
            "spec.template.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_owned(),
            r#"spec.template.metadata.name: Invalid value: "a/b": may not contain '/'"#.to_owned(),
        ])
    );
    assert_eq!(
        check(&schema, resource(json!({"template": {"data": "d"}})), None),
        Err(vec![
            "spec.template.apiVersion: Required value".to_owned(),
            "spec.template.kind: Required value".to_owned(),
            "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_owned(),
        ])
    );
}

#[test]
fn defaults_fill_absent_fields_of_objects_that_exist() {
    let schema = crd(json!({
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1},
            "mode": {"type": "string", "default": "Allow"},
            "limits": {"type": "object", "properties": {"memory": {"type": "string", "default": "64Mi"}}},
            "probe": {"type": "object", "default": {}, "properties": {"path": {"type": "string", "default": "/healthz"}}},
            "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}},
        },
    }));
    let mut obj = resource(json!({"mode": null, "ports": [{"port": 80}, {"protocol": "UDP"}]}));
    assert_eq!(
        validate(&schema, &mut obj, None),
        Ok(vec!["spec.ports[0].port".to_owned()])
    );
    assert_eq!(
        obj["spec"],
        json!({
            "replicas": 1,
            "mode": "Allow",
            "probe": {"path": "/healthz"},
            "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}],
        }),
        "limits stays absent: defaults apply inside objects that exist"
    );
    let mut with_limits = resource(json!({"limits": {}}));
    assert_eq!(validate(&schema, &mut with_limits, None), Ok(vec![]));
    assert_eq!(with_limits["spec"]["limits"], json!({"memory": "64Mi"}));
}

#[test]
fn list_sets_and_maps_reject_duplicates() {
    let schema = crd(json!({
        "type": "object",
        "properties": {
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["port", "protocol"],
                "items": {"type": "object", "properties": {"port": {"type": "integer"}, "protocol": {"type": "string"}}},
            },
        },
    }));
    let spec = json!({
        "tags": ["a", "b", "a", "a"],
        "ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}, {"port": 80, "protocol": "TCP"}],
    });
    let mut obj = resource(spec);
    let errors = validate(&schema, &mut obj, None).err().unwrap_or_default();
    let shown: Vec<(String, &str)> = errors
        .iter()
        .map(|e| (e.to_message(), e.cause_reason()))
        .collect();
    assert_eq!(
        shown,
        [
            (
                r#"spec.ports[2]: Duplicate value: {"port":80,"protocol":"TCP"}"#.to_owned(),
                "FieldValueDuplicate"
            ),
            (
                r#"spec.tags[2]: Duplicate value: "a""#.to_owned(),
                "FieldValueDuplicate"
            ),
        ]
    );
}
