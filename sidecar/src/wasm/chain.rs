//! The plugin chain of a listener and how one request travels through it.
//!
//! Plugins run in order of phase (AUTHN, AUTHZ, STATS, none), then priority (higher first),
//! then name; request hooks in that order, response hooks in reverse. A paused stream waits
//! until the plugin resumes it (from any callback, e.g. an HTTP call's response) or answers
//! it. A local response goes back through the response hooks of the plugins that saw the
//! request, the answering one included, as in Envoy. A plugin that fails (trap, time cap,
//! failed start) costs only this request, per its failure policy.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode, request, response};
use http_body_util::Full;

use super::body_pass::{BodyPass, Direction};
use super::instance::{Action, HookError, Instance};
use super::metrics::Denied;
use super::plugin::{Binding, Plugin};
use super::stream::{LocalResponse, Phase, Stream, StreamInfo};
use crate::config::plugins::{FailurePolicy, PluginKind};
use crate::error::ErrorKind;

/// The ordered plugins of a listener, and the background plugins loaded with them (they run
/// outside the request path, and live as long as the chain).
pub struct Chain {
    pub plugins: Vec<Arc<Plugin>>,
    pub background: Vec<Arc<Plugin>>,
    /// Most body bytes one plugin may hold while it pauses on a body.
    pub body_cap: usize,
}

impl Chain {
    /// Orders the request plugins of `plugins` and keeps the background ones beside them.
    pub fn new(plugins: Vec<Arc<Plugin>>, body_cap: usize) -> Self {
        let (background, mut plugins): (Vec<_>, Vec<_>) = plugins
            .into_iter()
            .partition(|p| p.settings.kind == PluginKind::Background);
        plugins.sort_by(|a, b| {
            let key = |p: &Plugin| {
                (
                    p.settings.phase.is_none(),
                    p.settings.phase,
                    -p.settings.priority,
                )
            };
            key(a).cmp(&key(b)).then_with(|| a.name().cmp(b.name()))
        });
        Self {
            plugins,
            background,
            body_cap,
        }
    }

    /// Whether no request plugin is in the chain (background ones may still run).
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// Every plugin, request plugins in chain order first.
    pub fn all(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().chain(&self.background)
    }
}

/// A local response, before it goes through the response hooks.
pub type Local = Response<Full<Bytes>>;

/// What happened to a request in the chain.
pub enum RequestVerdict {
    Forward(request::Parts),
    /// Answered locally; response hooks of the first `seen` plugins still apply.
    Answer {
        response: Local,
        seen: usize,
    },
}

/// One request's passage through a chain.
pub struct ChainStream {
    chain: Arc<Chain>,
    stream: Arc<Stream>,
    bindings: Vec<Option<Binding>>,
    /// Plugins skipped for this request (FailOpen after a failure).
    skipped: Vec<bool>,
    grpc: bool,
}

enum Step {
    Next,
    Answered,
    Failed(ErrorKind),
}

impl ChainStream {
    pub fn new(chain: Arc<Chain>, info: StreamInfo) -> Self {
        let n = chain.plugins.len();
        Self {
            chain,
            stream: Arc::new(Stream::new(info)),
            bindings: vec![None; n],
            skipped: vec![false; n],
            grpc: false,
        }
    }

    /// Runs the request-headers hooks.
    pub async fn request_headers(
        &mut self,
        parts: request::Parts,
        end_of_stream: bool,
    ) -> RequestVerdict {
        self.grpc = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        let count = header_count(&parts.headers) + 4;
        {
            let mut d = self.stream.lock();
            d.request = Some(parts);
            d.phase = Phase::RequestHeaders;
        }
        for i in 0..self.chain.plugins.len() {
            let step = self
                .run(
                    i,
                    |inst, ctx| inst.request_headers(ctx, count, end_of_stream),
                    Resume::Request,
                )
                .await;
            match step {
                Step::Next => {}
                Step::Answered => return self.answer(i + 1),
                Step::Failed(kind) => {
                    let response = kind.response();
                    return RequestVerdict::Answer { response, seen: i };
                }
            }
        }
        if !end_of_stream {
            self.withhold_body(self.chain.plugins.len(), Denied::RequestBody);
        }
        let mut d = self.stream.lock();
        d.phase = Phase::RequestBody;
        // The plugins keep a copy of the head: `on_log` still reads the request headers.
        let copy = d.request.as_ref().map(copy_request);
        match std::mem::replace(&mut d.request, copy) {
            Some(parts) => RequestVerdict::Forward(parts),
            None => RequestVerdict::Answer {
                response: ErrorKind::PluginFailed.response(),
                seen: 0,
            },
        }
    }

    fn answer(&mut self, seen: usize) -> RequestVerdict {
        let local = self.stream.lock().local_response.take();
        let response = match local {
            Some(local) => self.local(&local),
            // Reset by the plugin: answer with an empty 503 and close.
            None => ErrorKind::PluginReset.response(),
        };
        RequestVerdict::Answer { response, seen }
    }

    /// Runs the response-headers hooks of the first `seen` plugins, in reverse. Returns the
    /// response to send: the same head, or a local response a plugin replaced it with.
    pub async fn response_headers(
        &mut self,
        parts: response::Parts,
        end_of_stream: bool,
        seen: usize,
    ) -> Result<response::Parts, Local> {
        let count = header_count(&parts.headers) + 1;
        {
            let mut d = self.stream.lock();
            d.response = Some(parts);
            d.phase = Phase::ResponseHeaders;
        }
        for i in (0..seen.min(self.chain.plugins.len())).rev() {
            let step = self
                .run(
                    i,
                    |inst, ctx| inst.response_headers(ctx, count, end_of_stream),
                    Resume::Response,
                )
                .await;
            match step {
                Step::Next => {}
                Step::Answered => {
                    let local = self.stream.lock().local_response.take();
                    return Err(match local {
                        Some(l) => self.local(&l),
                        None => ErrorKind::PluginReset.response(),
                    });
                }
                Step::Failed(kind) => return Err(kind.response()),
            }
        }
        if !end_of_stream {
            self.withhold_body(seen, Denied::ResponseBody);
        }
        let mut d = self.stream.lock();
        d.phase = Phase::ResponseBody;
        let copy = d.response.as_ref().map(copy_response);
        std::mem::replace(&mut d.response, copy).ok_or_else(|| ErrorKind::PluginFailed.response())
    }

    /// Counts a body withheld from each of the first `seen` plugins that saw the stream but may
    /// not see bodies, so that a body plugin loaded without the permission shows it.
    fn withhold_body(&self, seen: usize, what: Denied) {
        for (i, p) in self.chain.plugins.iter().enumerate().take(seen) {
            if !p.shared.permissions.body && self.bindings[i].is_some() && !self.skipped[i] {
                p.shared.metrics.deny(what);
            }
        }
    }

    /// Runs one hook of plugin `i`, applying its failure policy and waiting while it pauses.
    async fn run(
        &mut self,
        i: usize,
        hook: impl FnOnce(&mut Instance, u32) -> Result<Action, HookError>,
        resume: Resume,
    ) -> Step {
        if self.skipped[i] {
            return Step::Next;
        }
        let plugin = self.chain.plugins[i].clone();
        // A span per hook call, under the request's span when that one is recorded.
        let span = if tracing::Span::current().is_disabled() {
            tracing::Span::none()
        } else {
            tracing::info_span!(
                "plugin_hook",
                plugin = plugin.name(),
                phase = resume.label()
            )
        };
        let entered = span.enter();
        let result = self.call_bound(i, hook);
        drop(entered);
        let action = match result {
            Ok(a) => a,
            Err(e) => return self.failed(i, &e),
        };
        {
            let mut d = self.stream.lock();
            if d.finished() {
                drop(d);
                plugin.shared.metrics.local_responses.inc();
                return Step::Answered;
            }
            if action == Action::Continue {
                // A resume asked for during the hook is moot: the stream goes on anyway.
                let _ = resume.take(&mut d);
                return Step::Next;
            }
        }
        loop {
            {
                let mut d = self.stream.lock();
                if d.finished() {
                    drop(d);
                    plugin.shared.metrics.local_responses.inc();
                    return Step::Answered;
                }
                if resume.take(&mut d) {
                    return Step::Next;
                }
            }
            self.stream.wait().await;
        }
    }

    /// Runs `hook` on the stream's context in plugin `i`, creating the context on first use. If
    /// that context died with an instance another request trapped, the stream gets a fresh
    /// context in the replacement instance: one request's trap costs only that request.
    fn call_bound(
        &mut self,
        i: usize,
        hook: impl FnOnce(&mut Instance, u32) -> Result<Action, HookError>,
    ) -> Result<Action, HookError> {
        let plugin = self.chain.plugins[i].clone();
        let mut hook = Some(hook);
        if let Some(b) = self.bindings[i] {
            let bound = plugin.with_slot(b.slot, Some(b.generation), |inst| match hook.take() {
                Some(h) => h(inst, b.context),
                None => Err(HookError::Lost),
            });
            match bound {
                // The context died with its instance: a fresh one below, if the hook did not
                // run yet.
                Err(HookError::Lost) | Ok((Err(HookError::Lost), _)) => self.bindings[i] = None,
                other => return other.and_then(|(r, _)| r),
            }
        }
        let hook = hook.take().ok_or(HookError::Lost)?;
        // The first hook of a stream creates its context in the same visit to the instance.
        let (binding, result) = plugin.open_stream_with(self.stream.clone(), hook)?;
        self.bindings[i] = Some(binding);
        result
    }

    fn failed(&mut self, i: usize, e: &HookError) -> Step {
        let plugin = &self.chain.plugins[i];
        tracing::debug!(plugin = plugin.name(), error = %e, "plugin failed for this request");
        match plugin.settings.failure_policy {
            FailurePolicy::FailOpen => {
                plugin.shared.metrics.fail_open.inc();
                self.skipped[i] = true;
                Step::Next
            }
            FailurePolicy::FailClosed => {
                plugin.shared.metrics.local_responses.inc();
                self.skipped[i] = true;
                Step::Failed(ErrorKind::PluginFailed)
            }
        }
    }

    /// Builds the response for a plugin's local reply (a trailers-only reply for gRPC).
    fn local(&self, local: &LocalResponse) -> Local {
        let grpc = self.grpc && local.grpc_status.is_some();
        let mut res = if grpc {
            Response::new(Full::new(Bytes::new()))
        } else {
            Response::new(Full::new(local.body.clone()))
        };
        *res.status_mut() = if grpc {
            StatusCode::OK
        } else {
            StatusCode::from_u16(local.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        };
        let h = res.headers_mut();
        for (k, v) in &local.headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(&k.to_ascii_lowercase()),
                HeaderValue::from_bytes(v),
            ) {
                h.append(k, v);
            }
        }
        if grpc {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert(
                "grpc-status",
                HeaderValue::from(u16::from(local.grpc_status.unwrap_or(2))),
            );
            if let Ok(m) = HeaderValue::from_bytes(&local.body) {
                h.insert("grpc-message", m);
            }
        } else if !local.body.is_empty() && !h.contains_key(http::header::CONTENT_TYPE) {
            h.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain"),
            );
        }
        res
    }

    /// The passage of a body through the body hooks of the plugins allowed to see it (those
    /// that saw the request; for the response, the first `seen`), or `None` if there are none.
    pub fn body_pass(&self, direction: Direction, seen: usize) -> Option<BodyPass> {
        let allowed = |i: &usize| {
            !self.skipped[*i]
                && self.bindings[*i].is_some()
                && self.chain.plugins[*i].shared.permissions.body
        };
        let mut order: Vec<usize> = (0..self.chain.plugins.len().min(seen))
            .filter(allowed)
            .collect();
        if direction == Direction::Response {
            order.reverse();
        }
        if order.is_empty() {
            return None;
        }
        Some(BodyPass {
            chain: self.chain.clone(),
            stream: self.stream.clone(),
            bindings: self.bindings.clone(),
            direction,
            held: order
                .into_iter()
                .map(|i| (i, bytes::BytesMut::new()))
                .collect(),
            cap: self.chain.body_cap,
        })
    }

    /// Whether a FailClosed plugin failed in a body or trailers hook and stopped the body.
    pub fn plugin_failed(&self) -> bool {
        self.stream.lock().plugin_failed
    }

    /// A local response a plugin asked for after the request went upstream (from a body
    /// hook), to send instead of the upstream's.
    pub fn take_local(&mut self) -> Option<Local> {
        let local = self.stream.lock().local_response.take()?;
        Some(self.local(&local))
    }

    /// Ends the stream in every plugin that saw it: `on_log`, `on_done`, `on_delete`, also in
    /// the contexts a body pass opened anew.
    pub fn finish(&mut self) {
        let rebound = {
            let mut d = self.stream.lock();
            d.phase = Phase::Log;
            std::mem::take(&mut d.rebound)
        };
        let own = self.bindings.iter_mut().enumerate();
        let bindings = own.filter_map(|(i, b)| b.take().map(|b| (i, b)));
        // A context whose instance is gone answers Lost here and is skipped.
        for (i, b) in bindings.chain(rebound) {
            let _ = self.chain.plugins[i].with_slot(b.slot, Some(b.generation), |inst| {
                inst.finish_stream(b.context)
            });
        }
    }
}

impl Drop for ChainStream {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Which direction a pause waits on.
#[derive(Clone, Copy)]
enum Resume {
    Request,
    Response,
}

impl Resume {
    fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Response => "response",
        }
    }

    fn take(self, d: &mut super::stream::StreamData) -> bool {
        let flag = match self {
            Self::Request => &mut d.resume_request,
            Self::Response => &mut d.resume_response,
        };
        std::mem::take(flag)
    }
}

/// A copy of a request head (without extensions), for the hooks that run after it left.
fn copy_request(p: &request::Parts) -> request::Parts {
    let mut copy = http::Request::new(()).into_parts().0;
    copy.method = p.method.clone();
    copy.uri = p.uri.clone();
    copy.version = p.version;
    copy.headers = p.headers.clone();
    copy
}

fn copy_response(p: &response::Parts) -> response::Parts {
    let mut copy = Response::new(()).into_parts().0;
    copy.status = p.status;
    copy.version = p.version;
    copy.headers = p.headers.clone();
    copy
}

fn header_count(h: &http::HeaderMap) -> usize {
    h.len()
}
