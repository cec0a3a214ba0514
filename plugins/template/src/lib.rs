//! Template: the smallest useful Proxlet plugin, meant to be copied.
//!
//! It adds one header to every response, with the name and value taken from the plugin
//! configuration. Everything that talks to the host (the Proxy-Wasm SDK) lives in this file;
//! everything that can be tested without a host (parsing the configuration) lives in
//! [`config`], which must not depend on `proxy_wasm`.

mod config;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use config::Config;

// The module's entry point: the host calls `_initialize` once per instance, before anything
// else. Register the root context factory here and nothing more.
proxy_wasm::main! {{
    // Route `log::info!` and friends to the host (`proxy_log`), and panics too. The host applies
    // its own level filter, so let everything through here.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_context_id| -> Box<dyn RootContext> {
        Box::new(Root::default())
    });
}}

/// One per plugin per instance: owns the configuration and creates a context per request.
#[derive(Default)]
struct Root {
    // `Rc`, not `Arc`: an instance is single-threaded. Each request gets a cheap clone.
    config: Rc<Config>,
}

// `Context` holds the calls every context may make (properties, shared data, HTTP calls...).
// The defaults are right; there is nothing to override.
impl Context for Root {}

impl RootContext for Root {
    /// Called at start-up and on every configuration change. Returning false tells the host the
    /// configuration is unusable: the plugin does not start (or keeps its previous one).
    fn on_configure(&mut self, _config_size: usize) -> bool {
        let raw = self.get_plugin_configuration();
        match Config::from_json(raw.as_deref()) {
            Ok(config) => {
                log::debug!("adding {}: {} to responses", config.header, config.value);
                self.config = Rc::new(config);
                true
            }
            Err(e) => {
                log::error!("invalid configuration: {e}");
                false
            }
        }
    }

    /// Tells the SDK this root creates HTTP contexts (not TCP ones).
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// Called once per request, before its first callback.
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AddHeader {
            config: Rc::clone(&self.config),
        }))
    }
}

/// The per-request context. Keep request state in fields here; it is dropped with the request.
struct AddHeader {
    config: Rc<Config>,
}

impl Context for AddHeader {}

impl HttpContext for AddHeader {
    /// The upstream's response headers (or a local response's) are here and may be changed.
    /// Callbacks not overridden (request headers, bodies, trailers) continue unchanged.
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // `add` keeps any header of the same name the upstream sent; use
        // `set_http_response_header(name, Some(value))` to replace it instead.
        self.add_http_response_header(&self.config.header, &self.config.value);
        // Continue: let the response go on to the client. `Action::Pause` would hold it until
        // the plugin calls `resume_http_response()`.
        Action::Continue
    }
}
