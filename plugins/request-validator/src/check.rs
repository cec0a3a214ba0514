//! The checks themselves, on plain values: what the request looks like in, a [`Refusal`] (or
//! nothing) out.

use crate::config::Config;

/// Why a request is refused: the local response to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u32,
    /// Short reason code, sent as `x-validation-error`.
    pub code: &'static str,
    /// Plain-text response body, newline-terminated.
    pub message: String,
    /// For 405: the `allow` header value.
    pub allow: Option<String>,
}

impl Config {
    /// Method, then path, then required headers. `header` looks a request header up.
    pub fn check_headers<'h>(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<&'h str>,
    ) -> Result<(), Refusal> {
        if let Some(methods) = &self.methods
            && !methods.iter().any(|m| m == method)
        {
            return Err(Refusal {
                status: 405,
                code: "method-not-allowed",
                message: format!("method {method} is not allowed\n"),
                allow: Some(methods.join(", ")),
            });
        }
        if let Some(paths) = &self.paths {
            let path_only = path.split_once('?').map_or(path, |(p, _query)| p);
            if !paths.iter().any(|glob| glob.matches(path_only)) {
                return Err(self.refusal(
                    "path-not-allowed",
                    format!("path {path_only} is not allowed\n"),
                ));
            }
        }
        for name in &self.required_headers {
            if header(name).is_none_or(|v| v.trim().is_empty()) {
                return Err(self.refusal(
                    "missing-header",
                    format!("missing required header {name}\n"),
                ));
            }
        }
        Ok(())
    }

    /// Whether the plugin has to see the body.
    pub fn inspects_body(&self) -> bool {
        self.max_body_bytes.is_some() || self.json_body
    }

    /// Refuses early when `content-length` already announces too large a body.
    pub fn check_content_length(&self, content_length: Option<&str>) -> Result<(), Refusal> {
        match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(len) => self.check_body_size(len),
            None => Ok(()),
        }
    }

    /// Checks the body received so far.
    pub fn check_body_size(&self, size: u64) -> Result<(), Refusal> {
        match self.max_body_bytes {
            Some(max) if size > max => Err(Refusal {
                status: 413,
                code: "body-too-large",
                message: format!("request body is larger than {max} bytes\n"),
                allow: None,
            }),
            _ => Ok(()),
        }
    }

    /// Checks the complete body. An empty body (a request without one) passes.
    pub fn check_body(&self, body: &[u8]) -> Result<(), Refusal> {
        if !self.json_body || body.is_empty() {
            return Ok(());
        }
        match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Ok(()),
            Err(e) => Err(self.refusal(
                "invalid-json",
                format!("request body is not valid JSON: {e}\n"),
            )),
        }
    }

    fn refusal(&self, code: &'static str, message: String) -> Refusal {
        Refusal {
            status: self.status,
            code,
            message,
            allow: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> Config {
        Config::from_json(Some(json.as_bytes())).unwrap()
    }

    fn code(r: Result<(), Refusal>) -> Option<(u32, &'static str)> {
        r.err().map(|r| (r.status, r.code))
    }

    #[test]
    fn nothing_configured_passes_everything() {
        let c = Config::default();
        assert_eq!(c.check_headers("BREW", "", |_| None), Ok(()));
        assert!(!c.inspects_body());
        assert_eq!(c.check_body_size(u64::MAX), Ok(()));
        assert_eq!(c.check_body(b"not json"), Ok(()));
    }

    #[test]
    fn methods_answer_405_with_allow() {
        let c = config(r#"{"methods": ["GET", "post"], "status": 422}"#);
        assert_eq!(c.check_headers("POST", "/", |_| None), Ok(()));
        let r = c.check_headers("DELETE", "/", |_| None).unwrap_err();
        assert_eq!((r.status, r.code), (405, "method-not-allowed"));
        assert_eq!(r.allow.as_deref(), Some("GET, POST"));
        assert_eq!(r.message, "method DELETE is not allowed\n");
    }

    #[test]
    fn paths_ignore_the_query_string() {
        let c = config(r#"{"paths": ["/api/*", "/health"]}"#);
        assert_eq!(c.check_headers("GET", "/api/v1?x=1", |_| None), Ok(()));
        assert_eq!(c.check_headers("GET", "/health?full", |_| None), Ok(()));
        let r = c
            .check_headers("GET", "/admin?to=/api/", |_| None)
            .unwrap_err();
        assert_eq!((r.status, r.code), (400, "path-not-allowed"));
        assert_eq!(r.message, "path /admin is not allowed\n");
    }

    #[test]
    fn required_headers_must_be_non_empty() {
        let c = config(r#"{"required_headers": ["x-api-key"], "status": 401}"#);
        let with = |v: Option<&'static str>| c.check_headers("GET", "/", move |_| v);
        assert_eq!(with(Some("k")), Ok(()));
        assert_eq!(code(with(Some(" "))), Some((401, "missing-header")));
        assert_eq!(code(with(None)), Some((401, "missing-header")));
    }

    #[test]
    fn method_is_checked_before_path_and_headers() {
        let c = config(r#"{"methods": ["GET"], "paths": ["/a"], "required_headers": ["h"]}"#);
        assert_eq!(
            code(c.check_headers("PUT", "/b", |_| None)),
            Some((405, "method-not-allowed"))
        );
        assert_eq!(
            code(c.check_headers("GET", "/b", |_| None)),
            Some((400, "path-not-allowed"))
        );
        assert_eq!(
            code(c.check_headers("GET", "/a", |_| None)),
            Some((400, "missing-header"))
        );
    }

    #[test]
    fn body_size_limit() {
        let c = config(r#"{"max_body_bytes": 10}"#);
        assert!(c.inspects_body());
        assert_eq!(c.check_body_size(10), Ok(()));
        assert_eq!(code(c.check_body_size(11)), Some((413, "body-too-large")));
        assert_eq!(
            code(c.check_content_length(Some("11"))),
            Some((413, "body-too-large"))
        );
        assert_eq!(c.check_content_length(Some("10")), Ok(()));
        assert_eq!(c.check_content_length(Some("junk")), Ok(()));
        assert_eq!(c.check_content_length(None), Ok(()));
    }

    #[test]
    fn json_bodies() {
        let c = config(r#"{"json_body": true}"#);
        assert!(c.inspects_body());
        assert_eq!(c.check_body(br#"{"a": [1, 2, {"b": null}]}"#), Ok(()));
        assert_eq!(c.check_body(b"42"), Ok(()));
        assert_eq!(c.check_body(b""), Ok(()));
        assert_eq!(code(c.check_body(b"{\"a\": ")), Some((400, "invalid-json")));
        assert_eq!(code(c.check_body(b"{} {}")), Some((400, "invalid-json")));
    }
}
