//! The validator's configuration. Every rule is optional; an absent rule is not checked.

use serde::Deserialize;

use crate::glob::Glob;

/// Validated rules, as [`crate::check`] applies them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Allowed methods, upper-case; `None` allows any.
    pub methods: Option<Vec<String>>,
    /// Headers that must be present and non-empty; lower-case.
    pub required_headers: Vec<String>,
    /// Allowed paths (query string excluded); `None` allows any.
    pub paths: Option<Vec<Glob>>,
    /// Largest accepted request body; `None` does not check the size.
    pub max_body_bytes: Option<u64>,
    /// Whether a request body must be valid JSON.
    pub json_body: bool,
    /// Status for a missing header, a path not allowed and a body that is not JSON.
    pub status: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            methods: None,
            required_headers: Vec::new(),
            paths: None,
            max_body_bytes: None,
            json_body: false,
            status: 400,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`{0}` is empty, which would refuse every request (leave it out to allow any)")]
    Empty(&'static str),
    #[error("`methods`: {0:?} is not a method name")]
    Method(String),
    #[error("`required_headers`: {0:?} is not a valid header name")]
    HeaderName(String),
    #[error("`paths`: {0:?} must start with `/` or `*` and cannot contain `?`")]
    Path(String),
    #[error("`status`: {0} is not an error status (400-599)")]
    Status(u32),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    methods: Option<Vec<String>>,
    #[serde(default)]
    required_headers: Vec<String>,
    paths: Option<Vec<String>>,
    max_body_bytes: Option<u64>,
    #[serde(default)]
    json_body: bool,
    status: Option<u32>,
}

impl Config {
    /// Parses the plugin configuration; none at all checks nothing.
    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let raw: Raw = match bytes {
            Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(b)?,
            _ => return Ok(Self::default()),
        };
        let methods = raw
            .methods
            .map(|m| list("methods", &m, method))
            .transpose()?;
        let required_headers = raw
            .required_headers
            .iter()
            .map(|h| header_name(h))
            .collect::<Result<_, _>>()?;
        let paths = raw.paths.map(|p| list("paths", &p, path)).transpose()?;
        let status = raw.status.unwrap_or(Self::default().status);
        if !(400..=599).contains(&status) {
            return Err(ConfigError::Status(status));
        }
        Ok(Self {
            methods,
            required_headers,
            paths,
            max_body_bytes: raw.max_body_bytes,
            json_body: raw.json_body,
            status,
        })
    }
}

/// Checks each item of a list that, when given, must not be empty.
fn list<T>(
    field: &'static str,
    items: &[String],
    each: fn(&str) -> Result<T, ConfigError>,
) -> Result<Vec<T>, ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::Empty(field));
    }
    items.iter().map(|item| each(item)).collect()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn method(m: &str) -> Result<String, ConfigError> {
    if is_token(m) {
        Ok(m.to_ascii_uppercase())
    } else {
        Err(ConfigError::Method(m.to_owned()))
    }
}

fn header_name(h: &str) -> Result<String, ConfigError> {
    if is_token(h) {
        Ok(h.to_ascii_lowercase())
    } else {
        Err(ConfigError::HeaderName(h.to_owned()))
    }
}

fn path(p: &str) -> Result<Glob, ConfigError> {
    if (p.starts_with('/') || p.starts_with('*')) && !p.contains('?') {
        Ok(Glob::new(p))
    } else {
        Err(ConfigError::Path(p.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(Some(json.as_bytes()))
    }

    #[test]
    fn nothing_configured_checks_nothing() {
        assert_eq!(Config::from_json(None).unwrap(), Config::default());
        assert_eq!(parse("{}").unwrap(), Config::default());
    }

    #[test]
    fn full_configuration() {
        let c = parse(
            r#"{"methods": ["get", "POST"], "required_headers": ["X-Api-Key"],
                "paths": ["/api/*", "/health"], "max_body_bytes": 1048576,
                "json_body": true, "status": 422}"#,
        )
        .unwrap();
        assert_eq!(c.methods.unwrap(), ["GET", "POST"]);
        assert_eq!(c.required_headers, ["x-api-key"]);
        assert_eq!(
            c.paths.unwrap(),
            [Glob::new("/api/*"), Glob::new("/health")]
        );
        assert_eq!(c.max_body_bytes, Some(1_048_576));
        assert!(c.json_body);
        assert_eq!(c.status, 422);
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = |json: &str| parse(json).unwrap_err().to_string();
        assert!(err(r#"{"methods": []}"#).starts_with("`methods` is empty"));
        assert!(err(r#"{"paths": []}"#).starts_with("`paths` is empty"));
        assert!(err(r#"{"methods": ["GE T"]}"#).starts_with("`methods`"));
        assert!(err(r#"{"required_headers": ["a:b"]}"#).starts_with("`required_headers`"));
        assert!(err(r#"{"paths": ["api/*"]}"#).starts_with("`paths`"));
        assert!(err(r#"{"paths": ["/a?b=1"]}"#).starts_with("`paths`"));
        assert!(err(r#"{"status": 200}"#).starts_with("`status`: 200"));
        assert!(err(r#"{"max_body_bytes": -1}"#).contains("not valid JSON"));
        assert!(err(r#"{"max_body": 1}"#).contains("unknown field `max_body`"));
    }
}
