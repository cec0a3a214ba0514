//! The auth-callout configuration: which cluster to ask, how, and with which request headers.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Cluster name the host resolves (the sidecar's `clusters:`, Envoy's clusters).
    pub upstream: String,
    /// `:path` of the check request.
    pub path: String,
    /// `:authority` of the check request.
    pub authority: String,
    pub timeout: Duration,
    /// Request headers copied onto the check request when present; lower-case.
    pub forward_headers: Vec<String>,
}

impl Config {
    pub const DEFAULT_PATH: &str = "/";
    pub const DEFAULT_TIMEOUT_MS: u64 = 500;
    pub const DEFAULT_FORWARD_HEADERS: [&str; 2] = ["authorization", "cookie"];
    /// Longest accepted `timeout_ms`: a request waits that long at most.
    pub const MAX_TIMEOUT_MS: u64 = 60_000;
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the plugin needs a configuration naming at least `upstream`")]
    Missing,
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`{0}` must not be empty")]
    Empty(&'static str),
    #[error("`path`: {0:?} must start with `/`")]
    Path(String),
    #[error("`timeout_ms`: {0} is not between 1 and {max}", max = Config::MAX_TIMEOUT_MS)]
    Timeout(u64),
    #[error("`forward_headers`: {0:?} is not a header name that can be forwarded")]
    HeaderName(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    upstream: String,
    path: Option<String>,
    authority: Option<String>,
    timeout_ms: Option<u64>,
    forward_headers: Option<Vec<String>>,
}

impl Config {
    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let raw: Raw = match bytes {
            Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(b)?,
            _ => return Err(ConfigError::Missing),
        };
        if raw.upstream.is_empty() {
            return Err(ConfigError::Empty("upstream"));
        }
        let path = raw.path.unwrap_or_else(|| Self::DEFAULT_PATH.to_owned());
        if !path.starts_with('/') {
            return Err(ConfigError::Path(path));
        }
        let authority = raw.authority.unwrap_or_else(|| raw.upstream.clone());
        if authority.is_empty() {
            return Err(ConfigError::Empty("authority"));
        }
        let timeout_ms = raw.timeout_ms.unwrap_or(Self::DEFAULT_TIMEOUT_MS);
        if !(1..=Self::MAX_TIMEOUT_MS).contains(&timeout_ms) {
            return Err(ConfigError::Timeout(timeout_ms));
        }
        let forward_headers = match raw.forward_headers {
            Some(names) => names
                .iter()
                .map(|n| header_name(n))
                .collect::<Result<_, _>>()?,
            None => Self::DEFAULT_FORWARD_HEADERS.map(str::to_owned).to_vec(),
        };
        Ok(Self {
            upstream: raw.upstream,
            path,
            authority,
            timeout: Duration::from_millis(timeout_ms),
            forward_headers,
        })
    }
}

/// A regular header name (pseudo-headers are the plugin's to set), lower-cased.
fn header_name(name: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(ConfigError::HeaderName(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(Some(json.as_bytes()))
    }

    #[test]
    fn only_upstream_is_required() {
        let c = parse(r#"{"upstream": "auth"}"#).unwrap();
        assert_eq!(
            c,
            Config {
                upstream: "auth".into(),
                path: "/".into(),
                authority: "auth".into(),
                timeout: Duration::from_millis(500),
                forward_headers: vec!["authorization".into(), "cookie".into()],
            }
        );
    }

    #[test]
    fn every_field() {
        let c = parse(
            r#"{"upstream": "auth", "path": "/check?v=1", "timeout_ms": 250,
                "forward_headers": ["Authorization", "X-Api-Key"], "authority": "auth.local"}"#,
        )
        .unwrap();
        assert_eq!(c.path, "/check?v=1");
        assert_eq!(c.authority, "auth.local");
        assert_eq!(c.timeout, Duration::from_millis(250));
        assert_eq!(c.forward_headers, ["authorization", "x-api-key"]);
        let none = parse(r#"{"upstream": "a", "forward_headers": []}"#).unwrap();
        assert!(none.forward_headers.is_empty());
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = |json: &str| parse(json).unwrap_err().to_string();
        assert!(
            Config::from_json(None)
                .unwrap_err()
                .to_string()
                .contains("`upstream`")
        );
        assert!(err("{}").contains("missing field `upstream`"));
        assert_eq!(err(r#"{"upstream": ""}"#), "`upstream` must not be empty");
        assert!(err(r#"{"upstream": "a", "path": "check"}"#).starts_with("`path`"));
        assert!(err(r#"{"upstream": "a", "authority": ""}"#).starts_with("`authority`"));
        assert!(err(r#"{"upstream": "a", "timeout_ms": 0}"#).starts_with("`timeout_ms`"));
        assert!(err(r#"{"upstream": "a", "timeout_ms": 60001}"#).starts_with("`timeout_ms`"));
        let pseudo = err(r#"{"upstream": "a", "forward_headers": [":path"]}"#);
        assert!(pseudo.starts_with("`forward_headers`"));
        assert!(err(r#"{"upstream": "a", "cluster": "b"}"#).contains("unknown field `cluster`"));
    }
}
