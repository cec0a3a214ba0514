//! Field errors, worded and classified like `k8s.io/apimachinery/pkg/util/validation/field`.

use serde_json::Value;

use super::render::go_value;

/// One invalid field, as the apiserver reports it in a `422 Invalid` status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The field, as the apiserver prints paths: `spec.priority`, `spec.limits.memory`,
    /// `status.conditions[0].type`; `<nil>` for the whole object.
    pub path: String,
    pub kind: FieldErrorKind,
    /// The message without the path: what goes in the status' `causes[].message`,
    /// e.g. `Invalid value: 5000: spec.priority in body should be less than or equal to 1000`.
    pub message: String,
}

/// Why a field is invalid: one of the apiserver's field error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid,
    NotSupported,
    TooLong,
    TooMany,
    Forbidden,
    TypeInvalid,
    Duplicate,
}

impl FieldErrorKind {
    fn title(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Invalid | FieldErrorKind::TypeInvalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
            FieldErrorKind::TooLong => "Too long",
            FieldErrorKind::TooMany => "Too many",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
        }
    }

    /// Whether the message shows the offending value after the title.
    fn shows_value(self) -> bool {
        !matches!(
            self,
            FieldErrorKind::Required | FieldErrorKind::Forbidden | FieldErrorKind::TooLong
        )
    }
}

/// The offending value of an error, or none for errors that leave it out.
pub(crate) enum Bad {
    Omit,
    Value(Value),
}

impl Bad {
    pub(crate) fn of(value: &Value) -> Self {
        Bad::Value(value.clone())
    }

    pub(crate) fn text(text: &str) -> Self {
        Bad::Value(Value::String(text.to_owned()))
    }

    pub(crate) fn int(n: i64) -> Self {
        Bad::Value(Value::from(n))
    }
}

impl FieldError {
    pub(crate) fn new(kind: FieldErrorKind, path: String, bad: &Bad, detail: &str) -> Self {
        let mut message = kind.title().to_owned();
        if let (true, Bad::Value(value)) = (kind.shows_value(), bad) {
            message.push_str(": ");
            message.push_str(&go_value(value));
        }
        if !detail.is_empty() {
            message.push_str(": ");
            message.push_str(detail);
        }
        FieldError {
            path,
            kind,
            message,
        }
    }

    pub(crate) fn invalid(path: String, bad: &Bad, detail: &str) -> Self {
        Self::new(FieldErrorKind::Invalid, path, bad, detail)
    }

    pub(crate) fn required(path: String, detail: &str) -> Self {
        Self::new(FieldErrorKind::Required, path, &Bad::Omit, detail)
    }

    pub(crate) fn forbidden(path: String, detail: &str) -> Self {
        Self::new(FieldErrorKind::Forbidden, path, &Bad::Omit, detail)
    }

    pub(crate) fn duplicate(path: String, bad: &Bad) -> Self {
        Self::new(FieldErrorKind::Duplicate, path, bad, "")
    }

    pub(crate) fn not_supported(path: String, value: &Value, supported: &[String]) -> Self {
        let quoted: Vec<String> = supported
            .iter()
            .map(|s| super::render::go_quote(s))
            .collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(FieldErrorKind::NotSupported, path, &Bad::of(value), &detail)
    }

    pub(crate) fn too_long(path: String, max: i64) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        let detail = format!("may not be more than {max} {unit}");
        Self::new(FieldErrorKind::TooLong, path, &Bad::Omit, &detail)
    }

    pub(crate) fn too_many(path: String, actual: i64, max: i64) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {unit}");
        Self::new(FieldErrorKind::TooMany, path, &Bad::int(actual), &detail)
    }

    /// The reason-style type the apiserver puts in `causes[].reason`.
    pub fn cause_reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
            FieldErrorKind::TooLong => "FieldValueTooLong",
            FieldErrorKind::TooMany => "FieldValueTooMany",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::TypeInvalid => "FieldValueTypeInvalid",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }

    /// The error as kube-apiserver words it in the status message, e.g.
    /// `spec.priority: Invalid value: 5000: spec.priority in body should be less than or equal to 1000`.
    pub fn to_message(&self) -> String {
        format!("{}: {}", self.path, self.message)
    }
}
