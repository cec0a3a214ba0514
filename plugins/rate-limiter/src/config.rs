//! The rate limiter's configuration: what a bucket is keyed by, its size, and how fast it refills.

use std::time::Duration;

use serde::Deserialize;

use crate::bucket::Limits;

/// What requests are counted together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The client's address (`source.address`, else the first `x-forwarded-for` entry).
    Client,
    /// The value of this request header (lower-case name).
    Header(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub key: Key,
    pub limits: Limits,
    pub refill_interval: Duration,
    /// Status of a refused request.
    pub status: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: Key::Client,
            limits: Limits {
                capacity: 10,
                refill_tokens: 5,
            },
            refill_interval: Duration::from_millis(1000),
            status: 429,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`key`: {0:?} is neither \"client\" nor \"header:<name>\" with a valid header name")]
    Key(String),
    #[error("`{0}` must be at least 1")]
    Zero(&'static str),
    #[error("`status`: {0} is not an error status (400-599)")]
    Status(u32),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    key: Option<String>,
    capacity: Option<u64>,
    refill_tokens: Option<u64>,
    refill_interval_ms: Option<u64>,
    status: Option<u32>,
}

impl Config {
    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let raw: Raw = match bytes {
            Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(b)?,
            _ => return Ok(Self::default()),
        };
        let default = Self::default();
        let key = match raw.key {
            Some(key) => parse_key(&key)?,
            None => default.key,
        };
        let capacity = at_least_one("capacity", raw.capacity, default.limits.capacity)?;
        let refill_tokens = at_least_one(
            "refill_tokens",
            raw.refill_tokens,
            default.limits.refill_tokens,
        )?;
        let default_ms = u64::try_from(default.refill_interval.as_millis()).unwrap_or(1000);
        let interval_ms = at_least_one("refill_interval_ms", raw.refill_interval_ms, default_ms)?;
        let status = raw.status.unwrap_or(default.status);
        if !(400..=599).contains(&status) {
            return Err(ConfigError::Status(status));
        }
        Ok(Self {
            key,
            limits: Limits {
                capacity,
                refill_tokens,
            },
            refill_interval: Duration::from_millis(interval_ms),
            status,
        })
    }
}

fn at_least_one(field: &'static str, value: Option<u64>, default: u64) -> Result<u64, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::Zero(field)),
        n => Ok(n),
    }
}

fn parse_key(key: &str) -> Result<Key, ConfigError> {
    if key == "client" {
        return Ok(Key::Client);
    }
    let name = key.strip_prefix("header:").unwrap_or_default();
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(Key::Header(name.to_ascii_lowercase()))
    } else {
        Err(ConfigError::Key(key.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(Some(json.as_bytes()))
    }

    #[test]
    fn defaults() {
        assert_eq!(Config::from_json(None).unwrap(), Config::default());
        let c = parse("{}").unwrap();
        assert_eq!(c.key, Key::Client);
        assert_eq!((c.limits.capacity, c.limits.refill_tokens), (10, 5));
        assert_eq!((c.refill_interval, c.status), (Duration::from_secs(1), 429));
    }

    #[test]
    fn every_field() {
        let c = parse(
            r#"{"key": "header:X-Api-Key", "capacity": 100, "refill_tokens": 1,
                "refill_interval_ms": 250, "status": 503}"#,
        )
        .unwrap();
        assert_eq!(c.key, Key::Header("x-api-key".into()));
        assert_eq!((c.limits.capacity, c.limits.refill_tokens), (100, 1));
        assert_eq!(
            (c.refill_interval, c.status),
            (Duration::from_millis(250), 503)
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = |json: &str| parse(json).unwrap_err().to_string();
        assert!(err(r#"{"key": "ip"}"#).starts_with("`key`"));
        assert!(err(r#"{"key": "header:"}"#).starts_with("`key`"));
        assert!(err(r#"{"key": "header:a b"}"#).starts_with("`key`"));
        assert_eq!(err(r#"{"capacity": 0}"#), "`capacity` must be at least 1");
        assert_eq!(
            err(r#"{"refill_tokens": 0}"#),
            "`refill_tokens` must be at least 1"
        );
        assert_eq!(
            err(r#"{"refill_interval_ms": 0}"#),
            "`refill_interval_ms` must be at least 1"
        );
        assert!(err(r#"{"status": 302}"#).starts_with("`status`"));
        assert!(err(r#"{"burst": 3}"#).contains("unknown field `burst`"));
    }
}
