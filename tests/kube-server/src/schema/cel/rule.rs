//! One `x-kubernetes-validations` entry, and how its outcome is worded.

use cel::ExecutionError;
use serde_json::Value;

/// A validation rule as written in the schema.
pub(crate) struct Rule<'a> {
    pub(crate) rule: &'a str,
    pub(crate) message: &'a str,
    pub(crate) message_expression: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) field_path: Option<&'a str>,
    pub(crate) optional_old_self: bool,
}

impl<'a> Rule<'a> {
    pub(crate) fn parse(entry: &'a Value) -> Self {
        let text = |key: &str| entry.get(key).and_then(Value::as_str);
        Rule {
            rule: text("rule").unwrap_or("").trim(),
            message: text("message").unwrap_or("").trim(),
            message_expression: text("messageExpression").filter(|m| !m.trim().is_empty()),
            reason: text("reason"),
            field_path: text("fieldPath").filter(|p| !p.is_empty()),
            optional_old_self: entry
                .get("optionalOldSelf")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }

    /// The rule's message, or `failed rule: <rule>`.
    pub(crate) fn message_or_default(&self) -> String {
        if self.message.is_empty() {
            format!("failed rule: {}", self.rule)
        } else {
            self.message.to_owned()
        }
    }

    /// How the rule is named in evaluation errors: its message, or its text.
    pub(crate) fn error_string(&self) -> &str {
        if self.message.is_empty() {
            self.rule
        } else {
            self.message
        }
    }

    /// The detail of an evaluation error, as the apiserver words it.
    pub(crate) fn evaluation_error(&self, error: &ExecutionError) -> String {
        let rule = self.error_string();
        match error {
            ExecutionError::NoSuchOverload(_)
            | ExecutionError::ValuesNotComparable(..)
            | ExecutionError::UnsupportedBinaryOperator(..)
            | ExecutionError::UnexpectedType { .. } => format!(
                "'no such overload': call arguments did not match a supported operator, \
                 function or macro signature for rule: {rule}"
            ),
            other => format!("{} evaluating rule: {rule}", describe(other)),
        }
    }
}

/// An evaluation error in the words of the apiserver's CEL runtime, where they differ.
fn describe(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::IndexOutOfBounds(index) => match index {
            cel::Value::Int(i) => format!("index out of range: {i}"),
            other => format!("index out of range: {other:?}"),
        },
        other => other.to_string(),
    }
}

/// A rule's `fieldPath` (`.spec.replicas`, `.labels['app.kubernetes.io/name']`) as the
/// field path the apiserver appends to the rule's own path, or `None` if it cannot be read.
pub(crate) fn normalize_field_path(field_path: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = field_path;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let name = &after[..end];
            if name.is_empty() {
                return None;
            }
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(name);
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            out.push_str(&format!("[{}]", after[..end].replace("\\'", "'")));
            rest = &after[end + 2..];
        } else {
            return None;
        }
    }
    Some(out)
}
