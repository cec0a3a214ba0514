use serde_json::{Value, json};

use super::{check, crd, resource, spec_errors, spec_messages};

/// A spec schema with `properties` and the rules `rules` on the spec itself.
fn spec_with_rules(properties: Value, rules: Value) -> Value {
    let mut schema = json!({"type": "object"});
    schema["properties"] = properties;
    schema["x-kubernetes-validations"] = rules;
    schema
}

#[test]
fn a_failing_rule_on_an_object_omits_the_value_and_uses_its_message() {
    let schema = spec_with_rules(
        json!({"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}}),
        json!([
            {"rule": "self.replicas <= self.maxReplicas", "message": "replicas must not exceed maxReplicas"},
            {"rule": "self.replicas >= 0"},
        ]),
    );
    let errors = spec_errors(schema.clone(), json!({"replicas": 5, "maxReplicas": 3}));
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_message(),
        "spec: Invalid value: replicas must not exceed maxReplicas"
    );
    assert_eq!(errors[0].cause_reason(), "FieldValueInvalid");
    assert_eq!(
        spec_messages(schema, json!({"replicas": -1, "maxReplicas": 3})),
        ["spec: Invalid value: failed rule: self.replicas >= 0"]
    );
}

#[test]
fn a_failing_rule_on_a_scalar_shows_the_value() {
    let schema = json!({"type": "object", "properties": {"name": {
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self == self.lowerAscii()", "message": "must be lowercase"}],
    }}});
    assert_eq!(
        spec_messages(schema, json!({"name": "Foo"})),
        [r#"spec.name: Invalid value: "Foo": must be lowercase"#]
    );
}

#[test]
fn message_expression_reason_and_field_path() {
    let schema = spec_with_rules(
        json!({"replicas": {"type": "integer"}, "max": {"type": "integer"}, "mode": {"type": "string"}}),
        json!([
            {"rule": "self.replicas <= self.max", "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.max)", "fieldPath": ".replicas"},
            {"rule": "!has(self.mode) || self.mode != 'Debug'", "message": "debug mode is not allowed", "reason": "FieldValueForbidden", "fieldPath": ".mode"},
            {"rule": "has(self.mode)", "message": "mode must be set", "reason": "FieldValueRequired"},
        ]),
    );
    let errors = spec_errors(
        schema.clone(),
        json!({"replicas": 5, "max": 3, "mode": "Debug"}),
    );
    let shown: Vec<(String, &str)> = errors
        .iter()
        .map(|e| (e.to_message(), e.cause_reason()))
        .collect();
    assert_eq!(
        shown,
        [
            (
                "spec.replicas: Invalid value: replicas 5 exceeds 3".to_owned(),
                "FieldValueInvalid"
            ),
            (
                "spec.mode: Forbidden: debug mode is not allowed".to_owned(),
                "FieldValueForbidden"
            ),
        ]
    );
    assert_eq!(
        spec_messages(schema, json!({"replicas": 1, "max": 3})),
        ["spec: Required value: mode must be set"]
    );
}

#[test]
fn a_message_expression_that_fails_falls_back_to_the_message() {
    let schema = spec_with_rules(
        json!({"a": {"type": "integer"}}),
        json!([{"rule": "self.a > 1", "message": "a is too small", "messageExpression": "self.missing"}]),
    );
    assert_eq!(
        spec_messages(schema, json!({"a": 1})),
        ["spec: Invalid value: a is too small"]
    );
}

#[test]
fn transition_rules_run_only_on_update_against_the_old_value() {
    let schema = crd(json!({"type": "object", "properties": {"name": {
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}],
    }}}));
    assert_eq!(
        check(&schema, resource(json!({"name": "a"})), None),
        Ok(vec![])
    );
    let old = resource(json!({"name": "a"}));
    assert_eq!(
        check(&schema, resource(json!({"name": "a"})), Some(&old)),
        Ok(vec![])
    );
    assert_eq!(
        check(&schema, resource(json!({"name": "b"})), Some(&old)),
        Err(vec![
            r#"spec.name: Invalid value: "b": name is immutable"#.to_owned()
        ])
    );
}

#[test]
fn optional_old_self_runs_on_create_with_no_value() {
    let schema = crd(spec_with_rules(
        json!({"tier": {"type": "string"}}),
        json!([{"rule": "!oldSelf.hasValue() || oldSelf.value().tier == self.tier", "optionalOldSelf": true, "message": "tier is fixed"}]),
    ));
    assert_eq!(
        check(&schema, resource(json!({"tier": "gold"})), None),
        Ok(vec![])
    );
    let old = resource(json!({"tier": "gold"}));
    assert_eq!(
        check(&schema, resource(json!({"tier": "silver"})), Some(&old)),
        Err(vec!["spec: Invalid value: tier is fixed".to_owned()])
    );
}

#[test]
fn rules_see_items_and_map_values_at_their_paths() {
    let schema = json!({"type": "object", "properties": {
        "hosts": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self.endsWith('.example.com')", "message": "must be in example.com"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "size(self) <= 3"}]}},
    }});
    assert_eq!(
        spec_messages(
            schema,
            json!({"hosts": ["a.example.com", "b.example.org"], "labels": {"app": "toolong"}})
        ),
        [
            r#"spec.hosts[1]: Invalid value: "b.example.org": must be in example.com"#,
            r#"spec.labels[app]: Invalid value: "toolong": failed rule: size(self) <= 3"#,
        ]
    );
}

#[test]
fn common_rule_functions() {
    let schema = spec_with_rules(
        json!({
            "name": {"type": "string"},
            "hosts": {"type": "array", "items": {"type": "string"}},
            "weights": {"type": "array", "items": {"type": "integer"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "ratio": {"type": "number"},
            "port": {"x-kubernetes-int-or-string": true},
        }),
        json!([
            {"rule": "has(self.name) && !has(self.missing)"},
            {"rule": "size(self.hosts) == 2 && self.hosts.all(h, h.matches('^[a-z.]+$'))"},
            {"rule": "self.hosts.exists(h, h.startsWith('api.')) && 'web.local' in self.hosts"},
            {"rule": "self.name.split('-').size() == 2 && self.name.upperAscii() == 'AUTH-V1'"},
            {"rule": "'app' in self.labels && self.labels.all(k, k.size() > 0)"},
            {"rule": "self.ratio > 0.5 && self.ratio < 2.0"},
            {"rule": "self.port == 8080 || self.port == 'http'"},
            {"rule": "self.weights.isSorted() && self.weights.sum() == 6 && self.weights.min() == 1 && self.weights.max() == 3"},
            {"rule": "self.name.find('[0-9]+') == '1' && self.name.findAll('[a-z]') == ['a', 'u', 't', 'h', 'v']"},
        ]),
    );
    assert_eq!(
        spec_messages(
            schema,
            json!({
                "name": "auth-v1",
                "hosts": ["api.local", "web.local"],
                "weights": [1, 2, 3],
                "labels": {"app": "x"},
                "ratio": 1,
                "port": 8080,
            }),
        ),
        Vec::<String>::new()
    );
}

#[test]
fn root_rules_see_name_and_typed_formats() {
    let schema = json!({
        "type": "object",
        "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('pp-')", "message": "name must start with pp-"}],
        "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.end > self.start && self.payload == b'hi'", "message": "end must follow start"}],
            "properties": {
                "start": {"type": "string", "format": "date-time"},
                "end": {"type": "string", "format": "date-time"},
                "payload": {"type": "string", "format": "byte"},
            },
        }},
    });
    let spec =
        json!({"start": "2024-01-02T00:00:00Z", "end": "2024-01-01T00:00:00Z", "payload": "aGk="});
    assert_eq!(
        check(&schema, resource(spec), None),
        Err(vec![
            "<nil>: Invalid value: name must start with pp-".to_owned(),
            "spec: Invalid value: end must follow start".to_owned(),
        ])
    );
}

#[test]
fn evaluation_and_compile_errors_name_the_rule() {
    let schema = spec_with_rules(
        json!({"a": {"type": "integer"}, "s": {"type": "string"}}),
        json!([
            {"rule": "self.b == 1"},
            {"rule": "self.a / 0 == 1"},
            {"rule": "self.s < 1", "message": "s is compared"},
            {"rule": "self.a +"},
        ]),
    );
    let messages = spec_messages(schema, json!({"a": 1, "s": "x"}));
    assert_eq!(
        messages[0],
        r#"spec: Invalid value: "object": no such key: b evaluating rule: self.b == 1"#
    );
    assert_eq!(
        messages[1],
        r#"spec: Invalid value: "object": division by zero evaluating rule: self.a / 0 == 1"#
    );
    assert_eq!(
        messages[2],
        r#"spec: Invalid value: "object": 'no such overload': call arguments did not match a supported operator, function or macro signature for rule: s is compared"#
    );
    assert!(
        messages[3].starts_with(r#"spec: Invalid value: "object": rule compile error: "#),
        "{}",
        messages[3]
    );
    assert_eq!(messages.len(), 4);
}

#[test]
fn unchanged_values_are_not_failed_again_but_changed_ones_are() {
    let schema = crd(spec_with_rules(
        json!({"a": {"type": "integer"}}),
        json!([{"rule": "self.a < 10"}]),
    ));
    let old = resource(json!({"a": 20}));
    assert_eq!(
        check(&schema, resource(json!({"a": 20})), Some(&old)),
        Ok(vec![])
    );
    assert_eq!(
        check(&schema, resource(json!({"a": 30})), Some(&old)),
        Err(vec![
            "spec: Invalid value: failed rule: self.a < 10".to_owned()
        ])
    );
}

#[test]
fn field_paths_are_normalized() {
    use crate::schema::cel::normalize_field_path;
    assert_eq!(
        normalize_field_path(".spec.replicas").as_deref(),
        Some("spec.replicas")
    );
    assert_eq!(
        normalize_field_path(".labels['app.kubernetes.io/name']").as_deref(),
        Some("labels[app.kubernetes.io/name]")
    );
    assert_eq!(normalize_field_path("spec"), None);
}

#[test]
fn map_list_items_are_correlated_with_their_old_item_by_key() {
    let schema = crd(json!({"type": "object", "properties": {"ports": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.port == oldSelf.port", "message": "port is immutable"}],
        },
    }}}));
    let old =
        resource(json!({"ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}));
    let reordered = json!({"ports": [{"name": "https", "port": 443}, {"name": "grpc", "port": 9000}, {"name": "http", "port": 80}]});
    assert_eq!(check(&schema, resource(reordered), Some(&old)), Ok(vec![]));
    let changed = json!({"ports": [{"name": "https", "port": 8443}, {"name": "http", "port": 80}]});
    assert_eq!(
        check(&schema, resource(changed), Some(&old)),
        Err(vec![
            "spec.ports[0]: Invalid value: port is immutable".to_owned()
        ])
    );
}
