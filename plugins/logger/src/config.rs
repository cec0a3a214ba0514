//! The logger's configuration: `{"format": "..."}`, everything optional.

use serde::Deserialize;

use crate::format::{DEFAULT_FORMAT, Format, FormatError};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`format`: {0}")]
    Format(#[from] FormatError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: Option<String>,
}

/// Parses the plugin configuration into a line format. None or blank means the default.
pub fn parse(bytes: Option<&[u8]>) -> Result<Format, ConfigError> {
    let raw = match bytes {
        Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(b)?,
        _ => Raw { format: None },
    };
    Ok(Format::parse(
        raw.format.as_deref().unwrap_or(DEFAULT_FORMAT),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_default_format() {
        let default = Format::parse(DEFAULT_FORMAT).unwrap();
        assert_eq!(parse(None).unwrap(), default);
        assert_eq!(parse(Some(b"{}")).unwrap(), default);
        assert_eq!(parse(Some(b"\n")).unwrap(), default);
    }

    #[test]
    fn errors_name_the_field() {
        let err = |json: &str| parse(Some(json.as_bytes())).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"format": "{bogus}"}"#),
            "`format`: unknown placeholder {bogus}"
        );
        assert!(err(r#"{"fmt": "x"}"#).contains("unknown field `fmt`"));
        assert!(err(r#"{"format": 3}"#).contains("not valid JSON"));
    }
}
