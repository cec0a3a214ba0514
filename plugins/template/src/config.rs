//! The plugin configuration: parsed from JSON and validated before the plugin starts.
//! Pure Rust with no `proxy_wasm` in sight, so `cargo test --target x86_64-unknown-linux-gnu`
//! runs these tests on the build machine.

use serde::Deserialize;

/// What the plugin was configured to do, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Lower-case header name.
    pub header: String,
    pub value: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            header: "x-hello".to_owned(),
            value: "world".to_owned(),
        }
    }
}

/// Why a configuration was refused. The message names the bad field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`header`: {0:?} is not a valid header name")]
    HeaderName(String),
    #[error("`value`: header values cannot contain CR, LF or NUL")]
    HeaderValue,
}

/// The configuration as written. `deny_unknown_fields` turns a typo into an error instead of a
/// silently ignored setting.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    header: Option<String>,
    value: Option<String>,
}

impl Config {
    /// Parses the plugin configuration. No configuration at all means every default.
    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let bytes = match bytes {
            Some(b) if !b.iter().all(u8::is_ascii_whitespace) => b,
            _ => return Ok(Self::default()),
        };
        let raw: Raw = serde_json::from_slice(bytes)?;
        let defaults = Self::default();
        let header = raw.header.unwrap_or(defaults.header).to_ascii_lowercase();
        if !is_header_name(&header) {
            return Err(ConfigError::HeaderName(header));
        }
        let value = raw.value.unwrap_or(defaults.value);
        if value.contains(['\r', '\n', '\0']) {
            return Err(ConfigError::HeaderValue);
        }
        Ok(Self { header, value })
    }
}

/// An HTTP field name: one or more "tchar"s (RFC 9110 §5.6.2).
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_means_defaults() {
        assert_eq!(Config::from_json(None).unwrap(), Config::default());
        assert_eq!(Config::from_json(Some(b"  ")).unwrap(), Config::default());
        assert_eq!(Config::from_json(Some(b"{}")).unwrap(), Config::default());
    }

    #[test]
    fn header_names_are_lower_cased() {
        let c = Config::from_json(Some(br#"{"header": "X-Served-By", "value": "me"}"#)).unwrap();
        assert_eq!(c.header, "x-served-by");
        assert_eq!(c.value, "me");
    }

    #[test]
    fn bad_fields_are_named() {
        let err = |json: &str| {
            Config::from_json(Some(json.as_bytes()))
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"header": "a b"}"#).contains("`header`"));
        assert!(err(r#"{"header": ""}"#).contains("`header`"));
        assert!(err(r#"{"value": "a\nb"}"#).contains("`value`"));
        assert!(err(r#"{"headr": "x"}"#).contains("unknown field `headr`"));
        assert!(err("[1]").contains("not valid JSON"));
    }
}
