//! The string formats the apiserver checks in CRD schemas. Others (`int32`, `int64`, `double`,
//! ...) are stripped by the apiserver before validation, so they check nothing here either.

use std::net::IpAddr;

use base64::Engine;
use chrono::NaiveDate;

/// Whether `value` is valid for `format`; `None` when the format is not checked.
pub(crate) fn check(format: &str, value: &str) -> Option<bool> {
    let normalized = format.replace('-', "");
    let valid = match normalized.as_str() {
        "datetime" => is_date_time(value),
        "date" => is_date(value),
        "byte" => base64::engine::general_purpose::STANDARD
            .decode(value)
            .is_ok(),
        "uuid" => is_uuid(value, None),
        "uuid3" => is_uuid(value, Some('3')),
        "uuid4" => is_uuid(value, Some('4')),
        "uuid5" => is_uuid(value, Some('5')),
        "ipv4" => value.parse::<IpAddr>().is_ok() && value.contains('.'),
        "ipv6" => value.parse::<IpAddr>().is_ok() && value.contains(':'),
        "cidr" => is_cidr(value),
        "mac" => is_mac(value),
        "hostname" => is_hostname(value),
        "hexcolor" => is_hex_color(value),
        "password" => true,
        _ => return None,
    };
    Some(valid)
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// A full date, `2006-01-02`.
pub(crate) fn is_date(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    matches!(parts.as_slice(), [y, m, d] if digits(y, 4) && digits(m, 2) && digits(d, 2))
        && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok()
}

/// An RFC 3339 date-time with a time zone, in either case (`2024-01-02T03:04:05.5Z`).
fn is_date_time(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    let Some((date, time)) = lower.split_once('t') else {
        return false;
    };
    if !is_date(date) || time.len() < 9 {
        return false;
    }
    let (clock, rest) = time.split_at(8);
    let fields: Vec<&str> = clock.split(':').collect();
    let [h, m, s] = fields.as_slice() else {
        return false;
    };
    if ![h, m, s].iter().all(|f| digits(f, 2)) || *h > "23" || *m > "59" || *s > "59" {
        return false;
    }
    let zone = match rest.strip_prefix('.') {
        Some(fraction) => fraction.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    if rest.starts_with('.') && zone.len() == rest.len() - 1 {
        return false;
    }
    zone == "z" || is_offset(zone)
}

fn is_offset(zone: &str) -> bool {
    let Some(hm) = zone.strip_prefix(['+', '-']) else {
        return false;
    };
    matches!(hm.split_once(':'), Some((h, m)) if digits(h, 2) && digits(m, 2))
}

fn is_uuid(value: &str, version: Option<char>) -> bool {
    let hex: String = value.chars().filter(|c| *c != '-').collect();
    let groups: Vec<usize> = value.split('-').map(str::len).collect();
    let grouped = groups.len() == 1 || groups == [8, 4, 4, 4, 12];
    let all_hex = hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit());
    if !grouped || !all_hex {
        return false;
    }
    let lower = hex.to_ascii_lowercase();
    match version {
        None => true,
        Some('3') => lower.as_bytes()[12] == b'3',
        Some(v) => {
            lower.as_bytes()[12] as char == v
                && matches!(lower.as_bytes()[16], b'8' | b'9' | b'a' | b'b')
        }
    }
}

fn is_cidr(value: &str) -> bool {
    let Some((ip, bits)) = value.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    digits(bits, bits.len()) && !bits.is_empty() && bits.parse::<u32>().is_ok_and(|b| b <= max)
}

fn is_mac(value: &str) -> bool {
    let hex_group = |g: &str, n: usize| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit());
    let octets = |n: usize| matches!(n, 6 | 8 | 20);
    for separator in [':', '-'] {
        let groups: Vec<&str> = value.split(separator).collect();
        if groups.len() > 1 {
            return octets(groups.len()) && groups.iter().all(|g| hex_group(g, 2));
        }
    }
    let groups: Vec<&str> = value.split('.').collect();
    octets(groups.len() * 2) && groups.iter().all(|g| hex_group(g, 4))
}

fn is_hostname(value: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    value.len() <= 255 && value.split('.').all(label_ok)
}

fn is_hex_color(value: &str) -> bool {
    let hex = value.strip_prefix('#').unwrap_or(value);
    matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}
