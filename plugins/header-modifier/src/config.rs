//! The header-modifier configuration: which headers to remove, set and add, on the request and
//! on the response. Parsed and validated here, without `proxy_wasm`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The edits for both directions. Either may be empty.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Config {
    pub request: Edits,
    pub response: Edits,
}

/// The edits for one header map. Names are lower-case.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Edits {
    remove: Vec<String>,
    set: Vec<(String, String)>,
    add: Vec<(String, String)>,
}

/// One change to a header map, in the order it must be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit<'a> {
    /// Remove every header with this name.
    Remove(&'a str),
    /// Replace every header with this name by one with this value (or add it).
    Set(&'a str, &'a str),
    /// Add one more header, keeping the ones already there.
    Add(&'a str, &'a str),
}

impl Edits {
    /// Removals first, then sets, then adds: so `remove: ["x"]` with `add: {"x": ...}` leaves
    /// exactly one `x`, and an `add` is never undone by a `set` of the same name.
    pub fn iter(&self) -> impl Iterator<Item = Edit<'_>> {
        let remove = self.remove.iter().map(|n| Edit::Remove(n));
        let set = self.set.iter().map(|(n, v)| Edit::Set(n, v));
        let add = self.add.iter().map(|(n, v)| Edit::Add(n, v));
        remove.chain(set).chain(add)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("not valid JSON for this plugin: {0}")]
    Json(#[from] serde_json::Error),
    #[error("`{field}`: {name:?} is not a valid header name")]
    HeaderName { field: String, name: String },
    #[error("`{field}`: {name:?} is a pseudo-header; this plugin does not change those")]
    PseudoHeader { field: String, name: String },
    #[error("`{field}`: the value of {name} contains CR, LF or NUL")]
    HeaderValue { field: String, name: String },
    #[error("`{field}`: {name} is given twice (header names ignore case)")]
    Duplicate { field: String, name: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    request: RawEdits,
    #[serde(default)]
    response: RawEdits,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawEdits {
    set: BTreeMap<String, String>,
    add: BTreeMap<String, String>,
    remove: Vec<String>,
}

impl Config {
    /// Parses the plugin configuration; none at all means no edits.
    pub fn from_json(bytes: Option<&[u8]>) -> Result<Self, ConfigError> {
        let raw: Raw = match bytes {
            Some(b) if !b.iter().all(u8::is_ascii_whitespace) => serde_json::from_slice(b)?,
            _ => return Ok(Self::default()),
        };
        Ok(Self {
            request: Edits::validate("request", raw.request)?,
            response: Edits::validate("response", raw.response)?,
        })
    }
}

impl Edits {
    fn validate(section: &str, raw: RawEdits) -> Result<Self, ConfigError> {
        let field = format!("{section}.remove");
        let mut remove = Vec::new();
        for name in raw.remove {
            let name = header_name(&field, &name)?;
            if remove.contains(&name) {
                return Err(ConfigError::Duplicate { field, name });
            }
            remove.push(name);
        }
        Ok(Self {
            remove,
            set: pairs(&format!("{section}.set"), raw.set)?,
            add: pairs(&format!("{section}.add"), raw.add)?,
        })
    }
}

fn pairs(field: &str, raw: BTreeMap<String, String>) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let name = header_name(field, &name)?;
        if value.contains(['\r', '\n', '\0']) {
            let field = field.to_owned();
            return Err(ConfigError::HeaderValue { field, name });
        }
        if out.iter().any(|(n, _)| *n == name) {
            let field = field.to_owned();
            return Err(ConfigError::Duplicate { field, name });
        }
        out.push((name, value));
    }
    Ok(out)
}

/// Lower-cases and checks a header name: one or more RFC 9110 "tchar"s.
fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let (field, name) = (field.to_owned(), name.to_ascii_lowercase());
    if name.starts_with(':') {
        return Err(ConfigError::PseudoHeader { field, name });
    }
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(name)
    } else {
        Err(ConfigError::HeaderName { field, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Config, ConfigError> {
        Config::from_json(Some(json.as_bytes()))
    }

    #[test]
    fn empty_configurations_change_nothing() {
        for c in [
            Config::from_json(None),
            parse("{}"),
            parse(r#"{"request": {}}"#),
        ] {
            let c = c.unwrap();
            assert_eq!(c, Config::default());
            assert_eq!(c.request.iter().count() + c.response.iter().count(), 0);
        }
    }

    #[test]
    fn edits_come_lower_cased_and_in_order() {
        let c = parse(
            r#"{"request": {"add": {"X-Tag": "a"}, "set": {"X-Env": "dev", "Via": "p"},
                            "remove": ["Cookie"]},
                "response": {"remove": ["server"]}}"#,
        )
        .unwrap();
        let edits: Vec<Edit<'_>> = c.request.iter().collect();
        assert_eq!(
            edits,
            [
                Edit::Remove("cookie"),
                Edit::Set("via", "p"),
                Edit::Set("x-env", "dev"),
                Edit::Add("x-tag", "a"),
            ]
        );
        assert_eq!(
            c.response.iter().collect::<Vec<_>>(),
            [Edit::Remove("server")]
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        let err = |json: &str| parse(json).unwrap_err().to_string();
        assert_eq!(
            err(r#"{"request": {"set": {"bad name": "x"}}}"#),
            r#"`request.set`: "bad name" is not a valid header name"#
        );
        assert!(err(r#"{"response": {"remove": [""]}}"#).starts_with("`response.remove`"));
        assert!(err(r#"{"request": {"set": {":path": "/"}}}"#).contains("pseudo-header"));
        assert!(err(r#"{"request": {"add": {"x": "a\r\nb: c"}}}"#).contains("CR, LF"));
        assert!(err(r#"{"request": {"set": {"X-A": "1", "x-a": "2"}}}"#).contains("twice"));
        assert!(err(r#"{"request": {"remove": ["a", "A"]}}"#).contains("twice"));
        assert!(err(r#"{"request": {"replace": {}}}"#).contains("unknown field `replace`"));
        assert!(err(r#"{"requests": {}}"#).contains("unknown field `requests`"));
    }
}
