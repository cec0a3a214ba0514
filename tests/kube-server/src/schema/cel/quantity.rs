//! Kubernetes' CEL quantity library, as far as CRD rules use it: `quantity(s)`, `isQuantity(s)`,
//! and on a quantity `compareTo`, `isGreaterThan`, `isLessThan`, `asInteger`.
//!
//! A quantity is carried as a CEL map `{"quantityMilli": <int>}`: its value in thousandths, exact
//! for the suffixes Kubernetes accepts (`n`, `u` round down to a milli; binary `Ki`…`Ei` and
//! decimal `k`…`E`) as long as it fits in 64 bits. That covers memory and CPU bounds; it is not
//! the apiserver's arbitrary-precision `resource.Quantity`.

// The interpreter hands function arguments over by value.
#![allow(clippy::needless_pass_by_value)]

use std::collections::HashMap;
use std::sync::Arc;

use cel::extractors::This;
use cel::objects::{Key, Map};
use cel::{ExecutionError, Value};

const KEY: &str = "quantityMilli";

/// The value of `text` in thousandths of its unit, or `None` when it is not a quantity.
pub(crate) fn parse_milli(text: &str) -> Option<i128> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let (multiplier, divisor): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1000 * 1000, 1),
        "M" => (1000 * 1_000_000, 1),
        "G" => (1000 * 1_000_000_000, 1),
        "T" => (1000 * 1_000_000_000_000, 1),
        "Ki" => (1000 << 10, 1),
        "Mi" => (1000 << 20, 1),
        "Gi" => (1000 << 30, 1),
        "Ti" => (1000 << 40, 1),
        "Pi" => (1000 << 50, 1),
        "Ei" => (1000 << 60, 1),
        _ => return None,
    };
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !(whole
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit()))
    {
        return None;
    }
    let scale = 10i128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
    let mantissa: i128 = format!("{whole}{fraction}").parse().ok()?;
    let value = mantissa.checked_mul(multiplier)? / scale / divisor;
    Some(if negative { -value } else { value })
}

fn quantity_value(milli: i128) -> Result<Value, ExecutionError> {
    let milli = i64::try_from(milli)
        .map_err(|_| ExecutionError::function_error("quantity", "quantity out of range"))?;
    let mut map = HashMap::new();
    map.insert(Key::String(Arc::new(KEY.to_owned())), Value::Int(milli));
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

fn milli_of(function: &str, v: &Value) -> Result<i64, ExecutionError> {
    if let Value::Map(m) = v
        && let Some(Value::Int(n)) = m.map.get(&Key::String(Arc::new(KEY.to_owned())))
    {
        return Ok(*n);
    }
    Err(ExecutionError::function_error(function, "not a quantity"))
}

pub(crate) fn quantity(text: Arc<String>) -> Result<Value, ExecutionError> {
    let milli = parse_milli(&text).ok_or_else(|| {
        ExecutionError::function_error("quantity", format!("invalid quantity {text:?}"))
    })?;
    quantity_value(milli)
}

pub(crate) fn is_quantity(text: Arc<String>) -> bool {
    parse_milli(&text).is_some()
}

pub(crate) fn compare_to(This(this): This<Value>, other: Value) -> Result<i64, ExecutionError> {
    let (a, b) = (
        milli_of("compareTo", &this)?,
        milli_of("compareTo", &other)?,
    );
    Ok(match a.cmp(&b) {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    })
}

pub(crate) fn is_greater_than(
    This(this): This<Value>,
    other: Value,
) -> Result<bool, ExecutionError> {
    Ok(milli_of("isGreaterThan", &this)? > milli_of("isGreaterThan", &other)?)
}

pub(crate) fn is_less_than(This(this): This<Value>, other: Value) -> Result<bool, ExecutionError> {
    Ok(milli_of("isLessThan", &this)? < milli_of("isLessThan", &other)?)
}

pub(crate) fn as_integer(This(this): This<Value>) -> Result<i64, ExecutionError> {
    let milli = milli_of("asInteger", &this)?;
    if milli % 1000 != 0 {
        return Err(ExecutionError::function_error(
            "asInteger",
            "quantity is not an integer",
        ));
    }
    Ok(milli / 1000)
}

#[cfg(test)]
mod tests {
    use super::parse_milli;

    #[test]
    fn parses_the_suffixes_crds_use() {
        assert_eq!(parse_milli("64Mi"), Some(64 * 1000 * (1 << 20)));
        assert_eq!(parse_milli("1Gi"), Some(1000 * (1 << 30)));
        assert_eq!(parse_milli("500m"), Some(500));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2k"), Some(2_000_000));
        assert_eq!(parse_milli("12MB"), None);
        assert_eq!(parse_milli("Mi"), None);
        assert_eq!(parse_milli(""), None);
    }
}
