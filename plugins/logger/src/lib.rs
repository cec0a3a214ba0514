//! Logger: one access-log line per request, written at info level from `on_log`, in a format
//! taken from the configuration (`{"format": "{method} {path} {status} {duration_ms}ms"}`).
//!
//! [`format`] and [`config`] are pure Rust (tested on the build machine); this file is the
//! Proxy-Wasm glue.

mod config;
mod format;

use std::rc::Rc;
use std::time::SystemTime;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use format::{Field, Format, Phase};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    format: Rc<Format>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _config_size: usize) -> bool {
        match config::parse(self.get_plugin_configuration().as_deref()) {
            Ok(format) => {
                self.format = Rc::new(format);
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

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AccessLog {
            id: context_id,
            format: Rc::clone(&self.format),
            started: None,
            captured: Vec::new(),
        }))
    }
}

struct AccessLog {
    id: u32,
    format: Rc<Format>,
    /// When the request headers arrived.
    started: Option<SystemTime>,
    /// Header values read when the headers went past (hosts need not serve them in `on_log`).
    captured: Vec<(Field, Option<String>)>,
}

impl AccessLog {
    /// Reads the fields of one phase while its headers are at hand.
    fn capture(&mut self, phase: Phase) {
        let format = Rc::clone(&self.format);
        for field in format.fields().filter(|f| f.phase() == phase) {
            let value = self.read(field);
            self.captured.push((field.clone(), value));
        }
    }

    /// A field's value: as captured, else as it reads now.
    fn value(&self, field: &Field) -> Option<String> {
        match self.captured.iter().find(|(f, _)| f == field) {
            Some((_, value)) => value.clone(),
            None => self.read(field),
        }
    }

    fn read(&self, field: &Field) -> Option<String> {
        match field {
            Field::Method => self.get_http_request_header(":method"),
            Field::Path => self.get_http_request_header(":path"),
            Field::Authority => self.get_http_request_header(":authority"),
            Field::Scheme => self.get_http_request_header(":scheme"),
            Field::Status => self.get_http_response_header(":status"),
            Field::RequestHeader(name) => self.get_http_request_header(name),
            Field::ResponseHeader(name) => self.get_http_response_header(name),
            Field::DurationMs => self
                .started
                .map(|start| format::elapsed_ms(start, self.get_current_time()).to_string()),
            Field::Id => Some(self.id.to_string()),
        }
    }
}

impl Context for AccessLog {}

impl HttpContext for AccessLog {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.format.fields().any(|f| *f == Field::DurationMs) {
            self.started = Some(self.get_current_time());
        }
        self.capture(Phase::Request);
        Action::Continue
    }

    /// Also runs for a local response (another plugin refusing the request).
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.capture(Phase::Response);
        Action::Continue
    }

    /// The last callback of a request, also for refused or reset ones.
    fn on_log(&mut self) {
        let line = self.format.render(|field| self.value(field));
        log::info!("{line}");
    }
}
