//! Auth callout: holds each request while an auth service decides about it. The plugin sends
//! `GET <path>` with the configured request headers to a named cluster; a 2xx lets the request
//! through (with `x-auth-user` from the answer), a 401 is passed on to the client with its
//! `www-authenticate`, anything else is a 403, and no answer at all a 503.
//!
//! [`config`] and [`decision`] are pure Rust; this file is the Proxy-Wasm glue.

mod config;
mod decision;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use config::Config;
use decision::Decision;

/// Set on the request from the auth service's answer; a client's own is always removed.
const USER_HEADER: &str = "x-auth-user";
/// Copied from a 401 answer to the client's 401.
const CHALLENGE_HEADER: &str = "www-authenticate";

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
struct Root {
    config: Option<Rc<Config>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _config_size: usize) -> bool {
        match Config::from_json(self.get_plugin_configuration().as_deref()) {
            Ok(config) => {
                self.config = Some(Rc::new(config));
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
        // Without a configuration there is no auth service to ask: the plugin refuses every
        // request (a host never gets here, as a failed `on_configure` keeps it from starting).
        Some(Box::new(Authorize {
            config: self.config.clone(),
            pending: None,
        }))
    }
}

struct Authorize {
    config: Option<Rc<Config>>,
    /// Token of the check in flight.
    pending: Option<u32>,
}

impl Authorize {
    /// Sends the check request; the request then waits for [`Self::on_http_call_response`].
    fn ask(&self, config: &Config) -> Result<u32, String> {
        let forwarded: Vec<(&str, String)> = config
            .forward_headers
            .iter()
            .filter_map(|name| Some((name.as_str(), self.get_http_request_header(name)?)))
            .collect();
        let mut headers = vec![
            (":method", "GET"),
            (":path", config.path.as_str()),
            (":authority", config.authority.as_str()),
        ];
        headers.extend(
            forwarded
                .iter()
                .map(|(name, value)| (*name, value.as_str())),
        );
        self.dispatch_http_call(&config.upstream, headers, None, vec![], config.timeout)
            .map_err(|status| format!("cannot call cluster {:?}: {status:?}", config.upstream))
    }

    fn refuse(&self, decision: Decision) {
        let Some((status, body)) = decision.refusal() else {
            return;
        };
        let mut headers = vec![("content-type", "text/plain")];
        let challenge = match decision {
            Decision::Unauthorized => self.get_http_call_response_header(CHALLENGE_HEADER),
            _ => None,
        };
        if let Some(challenge) = &challenge {
            headers.push((CHALLENGE_HEADER, challenge));
        }
        self.send_http_response(status, headers, Some(body.as_bytes()));
    }
}

impl Context for Authorize {
    /// The auth service answered (or the call failed: `num_headers` is then 0).
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, _: usize, _: usize) {
        if self.pending != Some(token) {
            return;
        }
        self.pending = None;
        let status = self.get_http_call_response_header(":status");
        let decision = Decision::from_response(num_headers, status.as_deref());
        log::debug!("auth answered {status:?}: {decision:?}");
        if decision != Decision::Allow {
            return self.refuse(decision);
        }
        if let Some(user) = self.get_http_call_response_header(USER_HEADER) {
            self.set_http_request_header(USER_HEADER, Some(&user));
        }
        self.resume_http_request();
    }
}

impl HttpContext for Authorize {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // Only the auth service may name the user.
        self.remove_http_request_header(USER_HEADER);
        let Some(config) = self.config.clone() else {
            self.refuse(Decision::Unavailable);
            return Action::Pause;
        };
        match self.ask(&config) {
            Ok(token) => self.pending = Some(token),
            Err(e) => {
                log::warn!("{e}");
                self.refuse(Decision::Unavailable);
            }
        }
        Action::Pause
    }
}
