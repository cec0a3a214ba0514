//! Header modifier: removes, sets and adds request headers (before the request goes upstream)
//! and response headers (before the response goes to the client), as configured:
//! `{"request": {"set": {...}, "add": {...}, "remove": [...]}, "response": {...}}`.
//!
//! [`config`] parses and orders the edits without `proxy_wasm`; this file applies them.

mod config;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use config::{Config, Edit};

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
        Some(Box::new(ModifyHeaders {
            config: Rc::clone(&self.config),
        }))
    }
}

struct ModifyHeaders {
    config: Rc<Config>,
}

impl Context for ModifyHeaders {}

impl HttpContext for ModifyHeaders {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for edit in self.config.request.iter() {
            match edit {
                Edit::Remove(name) => self.remove_http_request_header(name),
                Edit::Set(name, value) => self.set_http_request_header(name, Some(value)),
                Edit::Add(name, value) => self.add_http_request_header(name, value),
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for edit in self.config.response.iter() {
            match edit {
                Edit::Remove(name) => self.remove_http_response_header(name),
                Edit::Set(name, value) => self.set_http_response_header(name, Some(value)),
                Edit::Add(name, value) => self.add_http_response_header(name, value),
            }
        }
        Action::Continue
    }
}
