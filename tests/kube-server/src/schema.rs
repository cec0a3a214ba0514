//! Validation of custom resources against the structural schema of their CRD version, as
//! kube-apiserver does it on create and update: unknown fields are pruned, nulls the schema
//! does not allow are dropped, defaults are applied, then the object is validated (OpenAPI
//! value validation, embedded resources, list-type uniqueness, `x-kubernetes-validations`
//! CEL rules) and every error is worded as the apiserver words it.
//!
//! It owns no storage and no HTTP: callers hand in JSON and get field errors back.

mod cel;
mod defaults;
mod embedded;
mod error;
mod format;
mod listtype;
mod node;
mod openapi;
mod path;
mod prune;
pub(crate) mod render;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use error::{FieldError, FieldErrorKind};

use error::Bad;
use node::Schema;

/// Validates `obj` (a whole custom resource as JSON, including apiVersion/kind/metadata)
/// against the CRD version's structural schema `schema` (the `openAPIV3Schema` value).
/// Applies `default`s and prunes unknown fields in place (returning the pruned paths so
/// Strict field validation can reject them instead).
///
/// `old` is the stored object on update: transition rules (`oldSelf`) run only then, and
/// values left unchanged are not failed again (validation ratcheting).
pub fn validate(
    schema: &Value,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<String>, Vec<FieldError>> {
    let root = Schema::new(schema);
    let pruned = prune::prune_resource(obj, root);
    defaults::apply(obj, root);
    let obj: &Value = obj;
    let mut errors = openapi::validate(root, obj, old);
    errors.extend(embedded::validate(root, obj));
    errors.extend(listtype::validate(root, obj));
    if errors.iter().any(blocks_rules) {
        let detail = "some validation rules were not checked because the object was invalid; \
                      correct the existing errors to complete validation";
        errors.push(FieldError::invalid(
            "<nil>".to_owned(),
            &Bad::Value(Value::Null),
            detail,
        ));
    } else {
        errors.extend(cel::validate(root, obj, old));
    }
    if errors.is_empty() {
        Ok(pruned)
    } else {
        Err(errors)
    }
}

/// Errors after which the apiserver does not evaluate CEL rules: the object does not have the
/// shape the rules were written for.
fn blocks_rules(error: &FieldError) -> bool {
    matches!(
        error.kind,
        FieldErrorKind::NotSupported
            | FieldErrorKind::Required
            | FieldErrorKind::TooLong
            | FieldErrorKind::TooMany
            | FieldErrorKind::TypeInvalid
    )
}
