//! Request validator: refuses requests whose method, path, headers, body size or body syntax
//! break the configured rules, with a plain-text local response and an `x-validation-error`
//! reason code. Requests that pass go upstream untouched.
//!
//! [`config`], [`check`] and [`glob`] are pure Rust; this file is the Proxy-Wasm glue.

mod check;
mod config;
mod glob;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use check::Refusal;
use config::Config;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    config: Rc<Config>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _config_size: usize) -> bool {
        match Config::from_json(self.get_plugin_configuration().as_deref()) {
            Ok(config) => {
                self.config = Rc::new(config);
                true
            }
            Err(e) => {
                log::error!("invalid configuration: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Validate {
            config: Rc::clone(&self.config),
            refused: false,
        }))
    }
}

struct Validate {
    config: Rc<Config>,
    /// A local response was sent; ignore what is left of the request.
    refused: bool,
}

impl Validate {
    fn refuse(&mut self, refusal: Refusal) -> Action {
        log::debug!("refused ({}): {}", refusal.code, refusal.message.trim_end());
        let mut headers = vec![
            ("content-type", "text/plain"),
            ("x-validation-error", refusal.code),
        ];
        if let Some(allow) = &refusal.allow {
            headers.push(("allow", allow));
        }
        self.send_http_response(refusal.status, headers, Some(refusal.message.as_bytes()));
        self.refused = true;
        Action::Pause
    }
}

impl Context for Validate {}

impl HttpContext for Validate {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let method = self.get_http_request_header(":method").unwrap_or_default();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        // Read the required headers up front so the check itself stays a pure function.
        let present: Vec<(&str, String)> = self
            .config
            .required_headers
            .iter()
            .filter_map(|name| Some((name.as_str(), self.get_http_request_header(name)?)))
            .collect();
        let lookup = |name: &str| {
            present
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let mut verdict = self.config.check_headers(&method, &path, lookup);
        if verdict.is_ok() && self.config.inspects_body() {
            let content_length = self.get_http_request_header("content-length");
            verdict = self.config.check_content_length(content_length.as_deref());
        }
        match verdict {
            Ok(()) => Action::Continue,
            Err(refusal) => self.refuse(refusal),
        }
    }

    /// Called per chunk; while it pauses, `body_size` is the whole body buffered so far.
    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.refused || !self.config.inspects_body() {
            return Action::Continue;
        }
        let size = u64::try_from(body_size).unwrap_or(u64::MAX);
        if let Err(refusal) = self.config.check_body_size(size) {
            return self.refuse(refusal);
        }
        if !end_of_stream {
            return Action::Pause; // keep buffering until the whole body is here
        }
        if self.config.json_body && body_size > 0 {
            let body = self.get_http_request_body(0, body_size).unwrap_or_default();
            if let Err(refusal) = self.config.check_body(&body) {
                return self.refuse(refusal);
            }
        }
        Action::Continue
    }
}
