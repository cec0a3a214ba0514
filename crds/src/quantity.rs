//! The one grammar for sizes and durations in proxlet's configuration: sizes as Kubernetes
//! quantities of bytes (`64Mi`, `1Gi`, `512Ki`, `10M`, `1048576`), durations as Kubernetes and Go
//! write them (`20ms`, `1.5s`, `500us`, `1m30s`, `2h`), the forms a ProxyPlugin's `limits`, the
//! sidecar's YAML and the binaries' flags all use.

use std::time::Duration;

/// A value that is not a size or not a duration, with what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not {what}")]
pub struct ParseError {
    pub value: String,
    pub what: &'static str,
}

/// Bytes in a quantity: a whole number with an optional binary (`Ki`, `Mi`, `Gi`, `Ti`) or decimal
/// (`k`/`K`, `M`, `G`, `T`) suffix.
pub fn parse_bytes(text: &str) -> Result<u64, ParseError> {
    let err = || ParseError {
        value: text.to_owned(),
        what: "a size such as 64Mi, 1Gi or 1048576",
    };
    let (number, unit) = split(text.trim()).ok_or_else(err)?;
    let scale: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return Err(err()),
    };
    number.checked_mul(scale).ok_or_else(err)
}

/// A duration as Go's `time.ParseDuration` reads it (what Kubernetes and CEL use), without a
/// sign: one or more decimal numbers each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`).
pub fn parse_duration(text: &str) -> Result<Duration, ParseError> {
    let err = || ParseError {
        value: text.to_owned(),
        what: "a duration such as 20ms, 1.5s or 1m30s",
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(err());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(err)?;
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(err()),
        };
        total = total
            .checked_add(decimal_nanos(number, scale).ok_or_else(err)?)
            .ok_or_else(err)?;
        rest = next;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| err())?;
    // The remainder of a division by 10^9 fits.
    let nanos = (total % 1_000_000_000) as u32;
    Ok(Duration::new(secs, nanos))
}

/// `number` (digits with at most one `.`) times `scale` nanoseconds, truncated to whole ones.
fn decimal_nanos(number: &str, scale: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(scale)?;
    let mut place = scale;
    for digit in fraction.bytes() {
        place /= 10;
        nanos = nanos.checked_add(u128::from(digit - b'0') * place)?;
    }
    Some(nanos)
}

/// `Duration` as [`parse_duration`] reads it: the largest whole unit.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u128),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
    ] {
        if nanos != 0 && nanos.is_multiple_of(scale) {
            return format!("{}{unit}", nanos / scale);
        }
    }
    format!("{nanos}ns")
}

fn split(text: &str) -> Option<(u64, &str)> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(end);
    Some((digits.parse().ok()?, unit))
}

/// serde for a `Duration` written as [`parse_duration`] reads it.
pub mod duration_serde {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bytes("512Ki"), Ok(512 << 10));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("2G"), Ok(2_000_000_000));
        assert_eq!(parse_bytes(" 10k "), Ok(10_000));
        for bad in ["64MB", "Mi", "", "-1", "1.5Gi", "99999999999999999999Gi"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20ms"), Ok(Duration::from_millis(20)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(
            parse_duration("1h2m3.5s"),
            Ok(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        for bad in ["20", "ms", "20 ms", "1d", "", "1..5s", ".s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        for d in ["20ms", "1s", "500us", "2m", "1h", "7ns"] {
            assert_eq!(format_duration(parse_duration(d).unwrap_or_default()), d);
        }
    }
}
