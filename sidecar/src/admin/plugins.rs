//! `GET /api/plugins` and `GET /api/plugins/{name}/logs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;

use crate::config::plugins::{FailurePolicy, Phase};
use crate::wasm::logs::Line;
use crate::wasm::metrics::Hook;
use crate::wasm::plugin::Plugin;

#[derive(Serialize)]
pub struct PluginView {
    name: String,
    /// `request` or `background`.
    kind: &'static str,
    root_id: String,
    vm_id: String,
    source: String,
    digest: String,
    abi: &'static str,
    phase: Option<&'static str>,
    priority: i32,
    failure_policy: &'static str,
    /// `running`, or `failed` when no instance could start.
    state: &'static str,
    /// Instances running, of `pool`.
    instances: usize,
    pool: usize,
    /// What failed last (a callback's trap with what the plugin logged, a failed start).
    last_error: Option<String>,
    /// When, as an RFC 3339 time.
    last_error_at: Option<String>,
    /// What looked wrong when the plugin loaded (a root id the module seems not to know).
    warnings: Vec<String>,
    permissions: Permissions,
    /// Host calls refused and body callbacks withheld by the permissions, by call.
    denied: BTreeMap<&'static str, u64>,
    compile: Compile,
    counters: Counters,
}

#[derive(Serialize)]
struct Permissions {
    body: bool,
    shared_data: bool,
    http_calls: Vec<String>,
}

#[derive(Serialize)]
struct Compile {
    /// `compiled`, `memory-cache` or `disk-cache`.
    source: &'static str,
    ms: f64,
}

#[derive(Serialize)]
struct Counters {
    request_headers_calls: u64,
    response_headers_calls: u64,
    log_calls: u64,
    tick_calls: u64,
    traps: u64,
    timeouts: u64,
    memory_cap_hits: u64,
    fail_open_skips: u64,
    local_responses: u64,
}

fn view(p: &Plugin) -> PluginView {
    let m = &p.shared.metrics;
    let failure = p.last_failure();
    let perms = &p.shared.permissions;
    PluginView {
        name: p.shared.name.clone(),
        kind: p.settings.kind.label(),
        root_id: p.shared.root_id.clone(),
        vm_id: p.shared.vm_id.clone(),
        source: p.settings.source.clone(),
        digest: format!("sha256:{}", p.digest),
        abi: p.abi.label(),
        phase: p.settings.phase.map(|ph| match ph {
            Phase::Authn => "AUTHN",
            Phase::Authz => "AUTHZ",
            Phase::Stats => "STATS",
        }),
        priority: p.settings.priority,
        failure_policy: match p.settings.failure_policy {
            FailurePolicy::FailClosed => "FailClosed",
            FailurePolicy::FailOpen => "FailOpen",
        },
        state: if p.running() { "running" } else { "failed" },
        instances: p.running_instances(),
        pool: p.pool_size(),
        last_error_at: failure
            .as_ref()
            .map(|f| humantime::format_rfc3339_millis(f.at).to_string()),
        last_error: failure.map(|f| f.message),
        warnings: p.warnings(),
        permissions: Permissions {
            body: perms.body,
            shared_data: perms.shared_data,
            http_calls: perms.http_calls.clone(),
        },
        denied: m.denials().into_iter().collect(),
        compile: Compile {
            source: p.compiled.from.label(),
            ms: p.compiled.took.as_secs_f64() * 1000.0,
        },
        counters: Counters {
            request_headers_calls: m.hook_calls(Hook::RequestHeaders),
            response_headers_calls: m.hook_calls(Hook::ResponseHeaders),
            log_calls: m.hook_calls(Hook::Log),
            tick_calls: m.hook_calls(Hook::Tick),
            traps: m.traps.get(),
            timeouts: m.timeouts.get(),
            memory_cap_hits: m.memory_cap.get(),
            fail_open_skips: m.fail_open.get(),
            local_responses: m.local_responses.get(),
        },
    }
}

pub fn list(plugins: &[Arc<Plugin>]) -> Vec<PluginView> {
    plugins.iter().map(|p| view(p)).collect()
}

pub fn logs(plugins: &[Arc<Plugin>], name: &str) -> Option<Vec<Line>> {
    let plugin = plugins.iter().find(|p| p.shared.name == name)?;
    Some(plugin.shared.logs.snapshot())
}
