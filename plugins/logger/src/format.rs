//! Access-log line formats: `"{method} {path} {status} {duration_ms}ms"` parsed once into
//! literal text and placeholders, then rendered once per request from whatever the caller looks
//! up. Independent of `proxy_wasm`.

use std::time::SystemTime;

/// The format used when the configuration names none.
pub const DEFAULT_FORMAT: &str = "{method} {path} {status} {duration_ms}ms";

/// Written in place of a value that is not there (a header the request lacks, no response).
pub const MISSING: &str = "-";

/// One thing a line can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `{method}`: the request's `:method`.
    Method,
    /// `{path}`: the request's `:path`, query included.
    Path,
    /// `{authority}`: the request's `:authority` (the Host).
    Authority,
    /// `{scheme}`: the request's `:scheme`.
    Scheme,
    /// `{status}`: the response's `:status`.
    Status,
    /// `{req.NAME}`: a request header, name lower-cased.
    RequestHeader(String),
    /// `{resp.NAME}`: a response header, name lower-cased.
    ResponseHeader(String),
    /// `{duration_ms}`: milliseconds from the request headers to the end of the exchange.
    DurationMs,
    /// `{id}`: the request's context id.
    Id,
}

/// When a field's value is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// With the request headers.
    Request,
    /// With the response headers.
    Response,
    /// At the end of the exchange.
    End,
}

impl Field {
    pub fn phase(&self) -> Phase {
        match self {
            Self::Method | Self::Path | Self::Authority | Self::Scheme | Self::RequestHeader(_) => {
                Phase::Request
            }
            Self::Status | Self::ResponseHeader(_) => Phase::Response,
            Self::DurationMs | Self::Id => Phase::End,
        }
    }

    fn parse(name: &str) -> Result<Self, FormatError> {
        let field = match name {
            "method" => Self::Method,
            "path" => Self::Path,
            "authority" => Self::Authority,
            "scheme" => Self::Scheme,
            "status" => Self::Status,
            "duration_ms" => Self::DurationMs,
            "id" => Self::Id,
            _ => {
                if let Some(header) = name.strip_prefix("req.") {
                    Self::RequestHeader(header_name(name, header)?)
                } else if let Some(header) = name.strip_prefix("resp.") {
                    Self::ResponseHeader(header_name(name, header)?)
                } else {
                    return Err(FormatError::UnknownPlaceholder(name.to_owned()));
                }
            }
        };
        Ok(field)
    }
}

fn header_name(placeholder: &str, header: &str) -> Result<String, FormatError> {
    let valid = !header.is_empty()
        && header
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if valid {
        Ok(header.to_ascii_lowercase())
    } else {
        Err(FormatError::BadHeaderName(placeholder.to_owned()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("unknown placeholder {{{0}}}")]
    UnknownPlaceholder(String),
    #[error("placeholder {{{0}}} does not name a valid header")]
    BadHeaderName(String),
    #[error("`{{` at byte {0} is never closed (write `{{{{` for a literal brace)")]
    Unclosed(usize),
    #[error("`}}` at byte {0} closes nothing (write `}}}}` for a literal brace)")]
    Unopened(usize),
}

impl Default for Format {
    /// [`DEFAULT_FORMAT`] (a unit test checks it parses, so the fallback is never used).
    fn default() -> Self {
        Self::parse(DEFAULT_FORMAT).unwrap_or(Self { pieces: Vec::new() })
    }
}

impl Format {
    /// Parses a format. `{{` and `}}` stand for literal braces.
    pub fn parse(format: &str) -> Result<Self, FormatError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = format.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.next_if(|&(_, c)| c == '{').is_some() => text.push('{'),
                '}' if rest.next_if(|&(_, c)| c == '}').is_some() => text.push('}'),
                '}' => return Err(FormatError::Unopened(at)),
                '{' => {
                    let name_len = format[at + 1..]
                        .find('}')
                        .ok_or(FormatError::Unclosed(at))?;
                    let name = &format[at + 1..at + 1 + name_len];
                    if name.contains('{') {
                        return Err(FormatError::Unclosed(at));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(Field::parse(name)?));
                    // Skip the name and the closing brace.
                    for _ in 0..=name.chars().count() {
                        rest.next();
                    }
                }
                _ => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self { pieces })
    }

    /// The fields the format shows, in order, repeats included.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field(f) => Some(f),
            Piece::Text(_) => None,
        })
    }

    /// Renders one line; `value` looks each field up, and `None` shows as [`MISSING`].
    pub fn render(&self, mut value: impl FnMut(&Field) -> Option<String>) -> String {
        let mut line = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => line.push_str(text),
                Piece::Field(field) => match value(field) {
                    Some(v) => line.push_str(&v),
                    None => line.push_str(MISSING),
                },
            }
        }
        line
    }
}

/// Whole milliseconds from `start` to `end`; 0 if the clock went backwards.
pub fn elapsed_ms(start: SystemTime, end: SystemTime) -> u128 {
    end.duration_since(start).map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(field: &Field) -> Option<String> {
        Some(match field {
            Field::Method => "GET".into(),
            Field::Path => "/a?b=1".into(),
            Field::Authority => "example.com".into(),
            Field::Scheme => "http".into(),
            Field::Status => "200".into(),
            Field::RequestHeader(name) if name == "user-agent" => "curl/8".into(),
            Field::RequestHeader(_) | Field::ResponseHeader(_) => return None,
            Field::DurationMs => "12".into(),
            Field::Id => "2".into(),
        })
    }

    #[test]
    fn default_format_renders() {
        let f = Format::parse(DEFAULT_FORMAT).unwrap();
        assert_eq!(f.render(sample), "GET /a?b=1 200 12ms");
        assert_eq!(Format::default(), f);
    }

    #[test]
    fn every_placeholder_parses() {
        let f = Format::parse(
            "{id} {scheme}://{authority}{path} {method} {status} {duration_ms} \
             {req.User-Agent} {resp.content-type}",
        )
        .unwrap();
        assert_eq!(
            f.render(sample),
            "2 http://example.com/a?b=1 GET 200 12 curl/8 -"
        );
        let phases: Vec<Phase> = f.fields().map(Field::phase).collect();
        use Phase::{End, Request, Response};
        let expected = [
            End, Request, Request, Request, Request, Response, End, Request, Response,
        ];
        assert_eq!(phases, expected);
    }

    #[test]
    fn literal_braces_and_text() {
        let f = Format::parse("{{\"m\": \"{method}\"}} é").unwrap();
        assert_eq!(f.render(sample), "{\"m\": \"GET\"} é");
        assert_eq!(Format::parse("").unwrap().render(sample), "");
    }

    #[test]
    fn malformed_formats_are_refused() {
        let err = |s: &str| Format::parse(s).unwrap_err();
        assert_eq!(
            err("{nope}"),
            FormatError::UnknownPlaceholder("nope".into())
        );
        assert_eq!(err("{}"), FormatError::UnknownPlaceholder(String::new()));
        assert_eq!(err("{req.}"), FormatError::BadHeaderName("req.".into()));
        assert_eq!(
            err("{resp.a b}"),
            FormatError::BadHeaderName("resp.a b".into())
        );
        assert_eq!(err("x {method"), FormatError::Unclosed(2));
        assert_eq!(err("{me{thod}"), FormatError::Unclosed(0));
        assert_eq!(err("a}"), FormatError::Unopened(1));
    }

    #[test]
    fn elapsed_is_whole_milliseconds() {
        use std::time::Duration;
        let start = SystemTime::UNIX_EPOCH + Duration::from_millis(1);
        assert_eq!(elapsed_ms(start, start + Duration::from_micros(12_999)), 12);
        assert_eq!(elapsed_ms(start, SystemTime::UNIX_EPOCH), 0);
    }
}
