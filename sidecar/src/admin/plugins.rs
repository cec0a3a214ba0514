//! `GET /api/plugins` and `GET /api/plugins/{name}/logs`.

use serde::Serialize;

use crate::config::plugins::{FailurePolicy, PluginPhase};
use crate::wasm::chain::Chain;
use crate::wasm::logs::Line;
use crate::wasm::metrics::Hook;

#[derive(Serialize)]
pub struct PluginView {
    name: String,
    root_id: String,
    source: String,
    digest: String,
    abi: &'static str,
    phase: Option<&'static str>,
    priority: i32,
    failure_policy: &'static str,
    /// `running`, or `failed` when no instance could start.
    state: &'static str,
    last_error: Option<String>,
    counters: Counters,
}

#[derive(Serialize)]
struct Counters {
    request_headers_calls: u64,
    response_headers_calls: u64,
    log_calls: u64,
    traps: u64,
    timeouts: u64,
    memory_cap_hits: u64,
    fail_open_skips: u64,
    local_responses: u64,
}

pub fn list(chain: Option<&Chain>) -> Vec<PluginView> {
    let Some(chain) = chain else {
        return Vec::new();
    };
    chain
        .plugins
        .iter()
        .map(|p| {
            let m = &p.shared.metrics;
            PluginView {
                name: p.shared.name.clone(),
                root_id: p.shared.root_id.clone(),
                source: p.settings.source.clone(),
                digest: format!("sha256:{}", p.digest),
                abi: p.abi.label(),
                phase: p.settings.phase.map(|ph| match ph {
                    PluginPhase::Authn => "AUTHN",
                    PluginPhase::Authz => "AUTHZ",
                    PluginPhase::Stats => "STATS",
                }),
                priority: p.settings.priority,
                failure_policy: match p.settings.failure_policy {
                    FailurePolicy::FailClosed => "FailClosed",
                    FailurePolicy::FailOpen => "FailOpen",
                },
                state: if p.running() { "running" } else { "failed" },
                last_error: p.last_error(),
                counters: Counters {
                    request_headers_calls: m.hook_calls(Hook::RequestHeaders),
                    response_headers_calls: m.hook_calls(Hook::ResponseHeaders),
                    log_calls: m.hook_calls(Hook::Log),
                    traps: m.traps.get(),
                    timeouts: m.timeouts.get(),
                    memory_cap_hits: m.memory_cap.get(),
                    fail_open_skips: m.fail_open.get(),
                    local_responses: m.local_responses.get(),
                },
            }
        })
        .collect()
}

pub fn logs(chain: Option<&Chain>, name: &str) -> Option<Vec<Line>> {
    let plugin = chain?.plugins.iter().find(|p| p.shared.name == name)?;
    Some(plugin.shared.logs.snapshot())
}
