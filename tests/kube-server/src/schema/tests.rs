//! Tests of schema validation: each asserts the exact paths and messages a client sees.

mod cel;
mod openapi;
mod prune;
mod render;

use serde_json::{Value, json};

use super::{FieldError, validate};

/// A root schema whose `spec` is `spec`, as CRDs declare it.
fn crd(spec: Value) -> Value {
    let mut root = json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
        },
    });
    root["properties"]["spec"] = spec;
    root
}

/// A ProxyPlugin with `spec`.
fn resource(spec: Value) -> Value {
    let mut obj = json!({
        "apiVersion": "proxlet.dev/v1alpha1",
        "kind": "ProxyPlugin",
        "metadata": {"name": "auth", "namespace": "default"},
    });
    obj["spec"] = spec;
    obj
}

/// The status messages of validating `obj` against `schema`, or the pruned paths.
fn check(schema: &Value, mut obj: Value, old: Option<&Value>) -> Result<Vec<String>, Vec<String>> {
    validate(schema, &mut obj, old)
        .map_err(|errors| errors.iter().map(FieldError::to_message).collect())
}

/// The errors of validating `spec` under the spec schema `spec_schema`, on create.
fn spec_errors(spec_schema: Value, spec: Value) -> Vec<FieldError> {
    let mut obj = resource(spec);
    match validate(&crd(spec_schema), &mut obj, None) {
        Ok(_) => Vec::new(),
        Err(errors) => errors,
    }
}

/// The messages of [`spec_errors`].
fn spec_messages(spec_schema: Value, spec: Value) -> Vec<String> {
    spec_errors(spec_schema, spec)
        .iter()
        .map(FieldError::to_message)
        .collect()
}
