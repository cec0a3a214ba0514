//! Cells of printer columns, as the apiserver fills them: the first value the column's path
//! reaches, typed by the column (`date` as an age), `null` when there is none.

use chrono::DateTime;
use serde_json::{Number, Value};

use super::jsonpath::JsonPath;
use crate::schema::render::{go_json, go_number};

/// The cell of a column of type `column_type` whose path is `path`, for `object`.
pub(crate) fn cell(path: Option<&JsonPath>, column_type: &str, object: &Value, now: f64) -> Value {
    let Some(value) = path.and_then(|p| p.find(object).into_iter().next()) else {
        return Value::Null;
    };
    if column_type == "string" {
        return Value::String(render_text(value));
    }
    match (column_type, value) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => Value::from(i),
            None => Value::from(n.as_f64().unwrap_or(0.0) as i64),
        },
        ("number", Value::Number(n)) => float_cell(n.as_f64().unwrap_or(0.0)),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => Value::String(age_of(s, now)),
        _ => Value::Null,
    }
}

/// A value as client-go's jsonpath prints it into a `string` column.
fn render_text(value: &Value) -> String {
    match value {
        Value::Null => "<no value>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::Array(_) | Value::Object(_) => go_json(value),
    }
}

/// A float64 cell as Go encodes it: whole numbers without a fraction.
fn float_cell(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        Value::Number(Number::from(f as i64))
    } else {
        Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// The age of an RFC 3339 timestamp at `now` (seconds since the epoch), as kubectl shows it.
pub(crate) fn age_of(timestamp: &str, now: f64) -> String {
    if timestamp.is_empty() || timestamp == "null" {
        return "<unknown>".to_owned();
    }
    match DateTime::parse_from_rfc3339(timestamp) {
        Ok(t) => {
            let then = t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9;
            human_duration(now - then)
        }
        Err(_) => "<invalid>".to_owned(),
    }
}

/// A duration in seconds with two or three significant figures: `45s`, `5m30s`, `3h`, `2d4h`.
pub(crate) fn human_duration(seconds: f64) -> String {
    let secs = seconds.trunc() as i64;
    if secs < -1 {
        return "<invalid>".to_owned();
    }
    if secs < 0 {
        return "0s".to_owned();
    }
    if secs < 120 {
        return format!("{secs}s");
    }
    let with_rest = |big: i64, unit: &str, rest: i64, rest_unit: &str| {
        if rest == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{rest}{rest_unit}")
        }
    };
    let minutes = secs / 60;
    let hours = secs / 3600;
    let days = hours / 24;
    match () {
        _ if minutes < 10 => with_rest(minutes, "m", secs % 60, "s"),
        _ if minutes < 180 => format!("{minutes}m"),
        _ if hours < 8 => with_rest(hours, "h", minutes % 60, "m"),
        _ if hours < 48 => format!("{hours}h"),
        _ if hours < 24 * 8 => with_rest(days, "d", hours % 24, "h"),
        _ if hours < 24 * 365 * 2 => format!("{days}d"),
        _ if hours < 24 * 365 * 8 => with_rest(days / 365, "y", days % 365, "d"),
        _ => format!("{}y", days / 365),
    }
}
