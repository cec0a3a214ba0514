//! String and number constraints, worded like kube-openapi's validators.

use serde_json::Value;

use super::Walker;
use crate::schema::error::{Bad, FieldError, FieldErrorKind};
use crate::schema::format;
use crate::schema::node::Schema;
use crate::schema::path::Path;
use crate::schema::render::{go_float, go_quote};

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| json_equal(i, j))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

pub(super) fn string(w: &mut Walker, s: Schema<'_>, text: &str, v: &Value, path: &Path) {
    let name = path.openapi();
    let length = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
    if let Some(max) = s.count("maxLength").filter(|max| length > *max) {
        w.push(FieldError::too_long(path.openapi_field(), max));
    }
    if let Some(min) = s.count("minLength").filter(|min| length < *min) {
        let detail = format!("{name} in body should be at least {min} chars long");
        w.push(FieldError::invalid(
            path.openapi_field(),
            &Bad::of(v),
            &detail,
        ));
    }
    if let Some(pattern) = s.pattern() {
        let detail = match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(text) => None,
            Ok(_) => Some(format!("{name} in body should match '{pattern}'")),
            Err(e) => Some(format!(
                "{name} in body should match '{pattern}, but pattern is invalid: {e}'"
            )),
        };
        if let Some(detail) = detail {
            w.push(FieldError::invalid(
                path.openapi_field(),
                &Bad::of(v),
                &detail,
            ));
        }
    }
    if format::check(s.format(), text) == Some(false) {
        let detail = format!(
            "{name} in body must be of type {}: {}",
            s.format(),
            go_quote(text)
        );
        w.push(FieldError::new(
            FieldErrorKind::TypeInvalid,
            path.openapi_field(),
            &Bad::of(v),
            &detail,
        ));
    }
}

/// A bound as the message prints it: as an int64 when the value is an integer.
fn bound(limit: f64, integer: bool) -> String {
    if integer {
        (limit as i64).to_string()
    } else {
        go_float(limit)
    }
}

/// Whether `value` passes `limit`: `upper` for maximum, `exclusive` for the strict forms.
fn within(value: &Value, limit: f64, upper: bool, exclusive: bool) -> bool {
    let ordering = match value.as_i64() {
        Some(i) => i.cmp(&(limit as i64)),
        None => {
            let f = value.as_f64().unwrap_or(0.0);
            f.partial_cmp(&limit).unwrap_or(std::cmp::Ordering::Equal)
        }
    };
    match (upper, exclusive) {
        (true, false) => ordering.is_le(),
        (true, true) => ordering.is_lt(),
        (false, false) => ordering.is_ge(),
        (false, true) => ordering.is_gt(),
    }
}

pub(super) fn number(w: &mut Walker, s: Schema<'_>, v: &Value, path: &Path) {
    let name = path.openapi();
    let integer = v.is_i64();
    if let Some(factor) = s.number("multipleOf").filter(|f| !multiple_of(v, *f)) {
        let shown = bound(factor, integer && factor.fract() == 0.0);
        let detail = format!("{name} in body should be a multiple of {shown}");
        w.push(FieldError::invalid(
            path.openapi_field(),
            &Bad::of(v),
            &detail,
        ));
    }
    let checks = [
        ("maximum", "exclusiveMaximum", true),
        ("minimum", "exclusiveMinimum", false),
    ];
    for (keyword, exclusive_keyword, upper) in checks {
        let Some(limit) = s.number(keyword) else {
            continue;
        };
        let exclusive = s.exclusive(exclusive_keyword);
        if within(v, limit, upper, exclusive) {
            continue;
        }
        let relation = match (upper, exclusive) {
            (true, false) => "less than or equal to",
            (true, true) => "less than",
            (false, false) => "greater than or equal to",
            (false, true) => "greater than",
        };
        let detail = format!(
            "{name} in body should be {relation} {}",
            bound(limit, integer)
        );
        w.push(FieldError::invalid(
            path.openapi_field(),
            &Bad::of(v),
            &detail,
        ));
    }
}

fn multiple_of(v: &Value, factor: f64) -> bool {
    if let (Some(i), true) = (v.as_i64(), factor.fract() == 0.0 && factor >= 1.0) {
        return i % (factor as i64) == 0;
    }
    let data = v.as_f64().unwrap_or(0.0);
    let mult = data / factor;
    mult.is_finite() && (mult - mult.round()).abs() < 1e-9
}
