//! Rate limiter: a token bucket per client address (or per value of a request header), kept in
//! the host's shared data so that every instance of the plugin counts against the same buckets.
//! A request that finds its bucket empty gets a 429 with `retry-after`.
//!
//! Shared data (compare-and-swap on every write):
//! * `rate-limiter/<scope>/epoch`: the current refill epoch, 8 bytes little-endian. The root
//!   context of every instance moves it forward on each tick, to the epoch its clock reads
//!   ([`bucket::epoch_at`]); as all instances write the same value, extra ticks are harmless.
//! * `rate-limiter/<scope>/bucket/<key>`: tokens left and the epoch of the last refill
//!   ([`bucket::Bucket::encode`]).
//!
//! `<scope>` is the plugin name (else its root id), so two rate limiters never share buckets.
//! [`bucket`], [`client`] and [`config`] are pure Rust; this file is the Proxy-Wasm glue.

mod bucket;
mod client;
mod config;

use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, Status};

use bucket::Bucket;
use config::{Config, Key};

/// Tries of a compare-and-swap before giving up on one update.
const CAS_ATTEMPTS: usize = 8;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// The configuration plus the shared-data keys it implies.
struct Limiter {
    config: Config,
    /// `rate-limiter/<scope>/`.
    prefix: String,
}

impl Limiter {
    fn epoch_key(&self) -> String {
        format!("{}epoch", self.prefix)
    }

    fn bucket_key(&self, key: &str) -> String {
        format!("{}bucket/{key}", self.prefix)
    }

    /// Moves the shared epoch forward to the one the clock reads now (never back).
    fn advance_epoch(&self, ctx: &impl Context) {
        let now = ctx
            .get_current_time()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let target = bucket::epoch_at(now, self.config.refill_interval);
        let key = self.epoch_key();
        for _ in 0..CAS_ATTEMPTS {
            let (stored, cas) = ctx.get_shared_data(&key);
            if stored.as_deref().and_then(bucket::decode_u64) >= Some(target) {
                return;
            }
            match ctx.set_shared_data(&key, Some(&target.to_le_bytes()), cas) {
                Err(Status::CasMismatch) => continue,
                Err(e) => log::warn!("cannot store the epoch: {e:?}"),
                Ok(()) => {}
            }
            return;
        }
    }

    /// Takes a token from `key`'s bucket; false when it is empty.
    fn admit(&self, ctx: &impl Context, key: &str) -> bool {
        let (epoch, _) = ctx.get_shared_data(&self.epoch_key());
        let epoch = epoch.as_deref().and_then(bucket::decode_u64).unwrap_or(0);
        let key = self.bucket_key(key);
        let limits = &self.config.limits;
        for _ in 0..CAS_ATTEMPTS {
            let (stored, cas) = ctx.get_shared_data(&key);
            let current = stored.as_deref().and_then(Bucket::decode);
            let bucket = current.unwrap_or_else(|| Bucket::full(limits, epoch));
            let (next, admitted) = bucket.take(epoch, limits);
            if current == Some(next) {
                return admitted; // refused, nothing changed: no write needed
            }
            match ctx.set_shared_data(&key, Some(&next.encode()), cas) {
                Ok(()) => return admitted,
                Err(Status::CasMismatch) => continue, // another request got there first
                Err(e) => {
                    log::warn!("cannot store bucket {key}: {e:?}");
                    return true;
                }
            }
        }
        log::warn!("bucket {key} too contended; refusing the request");
        false
    }
}

#[derive(Default)]
struct Root {
    limiter: Option<Rc<Limiter>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _config_size: usize) -> bool {
        let config = match Config::from_json(self.get_plugin_configuration().as_deref()) {
            Ok(config) => config,
            Err(e) => {
                log::error!("invalid configuration: {e}");
                return false;
            }
        };
        let scope = ["plugin_name", "plugin_root_id"]
            .into_iter()
            .filter_map(|p| String::from_utf8(self.get_property(vec![p])?).ok())
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let limiter = Limiter {
            prefix: format!("rate-limiter/{scope}/"),
            config,
        };
        self.set_tick_period(limiter.config.refill_interval);
        limiter.advance_epoch(self);
        self.limiter = Some(Rc::new(limiter));
        true
    }

    fn on_tick(&mut self) {
        if let Some(limiter) = &self.limiter {
            limiter.advance_epoch(self);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Limit {
            limiter: self.limiter.clone(),
        }))
    }
}

struct Limit {
    /// `None` only if the host runs the plugin without a successful `on_configure`.
    limiter: Option<Rc<Limiter>>,
}

impl Limit {
    fn key(&self, key: &Key) -> String {
        match key {
            Key::Client => {
                let source = self.get_property(vec!["source", "address"]);
                let source = source.as_deref().and_then(|s| std::str::from_utf8(s).ok());
                let forwarded = self.get_http_request_header("x-forwarded-for");
                client::client_key(source, forwarded.as_deref())
            }
            Key::Header(name) => self
                .get_http_request_header(name)
                .unwrap_or_else(|| client::UNKNOWN.to_owned()),
        }
    }
}

impl Context for Limit {}

impl HttpContext for Limit {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(limiter) = self.limiter.clone() else {
            return Action::Continue;
        };
        let key = self.key(&limiter.config.key);
        if limiter.admit(self, &key) {
            return Action::Continue;
        }
        let retry_after = bucket::retry_after_secs(limiter.config.refill_interval).to_string();
        let headers = vec![
            ("content-type", "text/plain"),
            ("retry-after", &retry_after),
        ];
        self.send_http_response(
            limiter.config.status,
            headers,
            Some(b"rate limit exceeded\n"),
        );
        Action::Pause
    }
}
