//! Plugin metrics: what the host counts per plugin and hook, and the metrics plugins define
//! ([`custom`]).

mod custom;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, Bucket, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use self::custom::CustomFamilies;
pub use self::custom::{CustomMetrics, MetricKind, Tags};

/// The callbacks the host times, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Start,
    ContextCreate,
    RequestHeaders,
    RequestBody,
    RequestTrailers,
    ResponseHeaders,
    ResponseBody,
    ResponseTrailers,
    Log,
    Done,
    Delete,
    Tick,
    HttpCallResponse,
    QueueReady,
}

impl Hook {
    pub const ALL: [Self; 14] = [
        Self::Start,
        Self::ContextCreate,
        Self::RequestHeaders,
        Self::RequestBody,
        Self::RequestTrailers,
        Self::ResponseHeaders,
        Self::ResponseBody,
        Self::ResponseTrailers,
        Self::Log,
        Self::Done,
        Self::Delete,
        Self::Tick,
        Self::HttpCallResponse,
        Self::QueueReady,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::ContextCreate => "context_create",
            Self::RequestHeaders => "request_headers",
            Self::RequestBody => "request_body",
            Self::RequestTrailers => "request_trailers",
            Self::ResponseHeaders => "response_headers",
            Self::ResponseBody => "response_body",
            Self::ResponseTrailers => "response_trailers",
            Self::Log => "log",
            Self::Done => "done",
            Self::Delete => "delete",
            Self::Tick => "tick",
            Self::HttpCallResponse => "http_call_response",
            Self::QueueReady => "queue_ready",
        }
    }
}

/// Upper bounds of the hook-duration buckets in nanoseconds: 1 µs to 100 ms.
const HOOK_BUCKETS_NS: [u64; 16] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

/// One hook's calls of one plugin: a count per bucket (the last one above every bound) and the
/// sum of durations. A call adds to two relaxed atomics and takes no lock; the count and the
/// cumulative buckets are worked out when Prometheus scrapes.
#[derive(Default)]
struct HookTimes {
    buckets: [AtomicU64; HOOK_BUCKETS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl HookTimes {
    fn observe(&self, nanos: u64) {
        let i = HOOK_BUCKETS_NS.partition_point(|&bound| bound < nanos);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// The hook calls and durations of every plugin, as `proxlet_plugin_hook_calls_total` and
/// `proxlet_plugin_hook_duration_seconds{plugin, hook}`. A plugin keeps its series across
/// reloads (same name, same counters), as a labelled Prometheus vector would.
#[derive(Clone)]
struct HookCollector(Arc<HookCollectorInner>);

struct HookCollectorInner {
    calls: Desc,
    duration: Desc,
    plugins: Mutex<BTreeMap<String, Arc<[HookTimes; Hook::ALL.len()]>>>,
}

impl HookCollector {
    fn new() -> prometheus::Result<Self> {
        let labels = vec!["plugin".to_owned(), "hook".to_owned()];
        Ok(Self(Arc::new(HookCollectorInner {
            calls: Desc::new(
                "proxlet_plugin_hook_calls_total".into(),
                "Plugin callbacks called, by plugin and hook.".into(),
                labels.clone(),
                HashMap::new(),
            )?,
            duration: Desc::new(
                "proxlet_plugin_hook_duration_seconds".into(),
                "Time spent in plugin callbacks, by plugin and hook.".into(),
                labels,
                HashMap::new(),
            )?,
            plugins: Mutex::new(BTreeMap::new()),
        })))
    }

    fn plugin(&self, name: &str) -> Arc<[HookTimes; Hook::ALL.len()]> {
        let mut plugins = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        plugins.entry(name.to_owned()).or_default().clone()
    }
}

impl Collector for HookCollector {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.0.calls, &self.0.duration]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let plugins = self.0.plugins.lock().unwrap_or_else(|p| p.into_inner());
        let (mut calls, mut durations) = (Vec::new(), Vec::new());
        for (name, hooks) in plugins.iter() {
            for (hook, times) in Hook::ALL.iter().zip(hooks.iter()) {
                // Sorted by name, as the library's own vectors give them.
                let labels = || {
                    [("hook", hook.label()), ("plugin", name.as_str())]
                        .map(|(k, v)| {
                            let mut pair = LabelPair::default();
                            pair.set_name(k.to_owned());
                            pair.set_value(v.to_owned());
                            pair
                        })
                        .to_vec()
                };
                let mut cumulative = 0;
                let buckets = HOOK_BUCKETS_NS
                    .iter()
                    .zip(&times.buckets)
                    .map(|(bound, n)| {
                        cumulative += n.load(Ordering::Relaxed);
                        let mut b = Bucket::default();
                        b.set_upper_bound(*bound as f64 / 1e9);
                        b.set_cumulative_count(cumulative);
                        b
                    })
                    .collect();
                // The buckets as read above, plus the one above every bound: consistent with them.
                let count =
                    cumulative + times.buckets[HOOK_BUCKETS_NS.len()].load(Ordering::Relaxed);
                let mut h = proto::Histogram::default();
                h.set_bucket(buckets);
                h.set_sample_count(count);
                h.set_sample_sum(times.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
                let mut m = Metric::default();
                m.set_label(labels());
                m.set_histogram(h);
                durations.push(m);
                let mut c = proto::Counter::default();
                c.set_value(count as f64);
                let mut m = Metric::default();
                m.set_label(labels());
                m.set_counter(c);
                calls.push(m);
            }
        }
        let family = |desc: &Desc, kind, metrics| {
            let mut f = MetricFamily::default();
            f.set_name(desc.fq_name.clone());
            f.set_help(desc.help.clone());
            f.set_field_type(kind);
            f.set_metric(metrics);
            f
        };
        vec![
            family(&self.0.calls, MetricType::COUNTER, calls),
            family(&self.0.duration, MetricType::HISTOGRAM, durations),
        ]
    }
}

/// The plugin metric families, registered once per sidecar.
pub struct WasmMetrics {
    hooks: HookCollector,
    traps: IntCounterVec,
    timeouts: IntCounterVec,
    memory_cap: IntCounterVec,
    fail_open: IntCounterVec,
    local_responses: IntCounterVec,
    reloads: IntCounterVec,
    info: IntGaugeVec,
    denied: IntCounterVec,
    compile: GaugeVec,
    custom: Mutex<CustomFamilies>,
    tags: Tags,
    registry: Registry,
}

/// What a plugin's permissions refuse: host calls, and body callbacks withheld, as the
/// `call` label of `proxlet_plugin_denied_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    RequestBody,
    ResponseBody,
    GetBuffer,
    SetBuffer,
    BufferStatus,
    HttpCall,
    GrpcCall,
    GetSharedData,
    SetSharedData,
}

impl Denied {
    pub const ALL: [Self; 9] = [
        Self::RequestBody,
        Self::ResponseBody,
        Self::GetBuffer,
        Self::SetBuffer,
        Self::BufferStatus,
        Self::HttpCall,
        Self::GrpcCall,
        Self::GetSharedData,
        Self::SetSharedData,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::RequestBody => "proxy_on_request_body",
            Self::ResponseBody => "proxy_on_response_body",
            Self::GetBuffer => "proxy_get_buffer_bytes",
            Self::SetBuffer => "proxy_set_buffer_bytes",
            Self::BufferStatus => "proxy_get_buffer_status",
            Self::HttpCall => "proxy_http_call",
            Self::GrpcCall => "proxy_grpc_call",
            Self::GetSharedData => "proxy_get_shared_data",
            Self::SetSharedData => "proxy_set_shared_data",
        }
    }
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["plugin"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl WasmMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        Self::with_tags(registry, Tags::default())
    }

    /// The families, with `tags` extracting labels from plugin-defined metric names.
    pub fn with_tags(registry: &Registry, tags: Tags) -> prometheus::Result<Self> {
        let hooks = HookCollector::new()?;
        registry.register(Box::new(hooks.clone()))?;
        let info = IntGaugeVec::new(
            Opts::new(
                "proxlet_plugin_info",
                "The module each plugin runs (value 1).",
            ),
            &["plugin", "digest", "abi"],
        )?;
        registry.register(Box::new(info.clone()))?;
        let denied = IntCounterVec::new(
            Opts::new(
                "proxlet_plugin_denied_total",
                "Host calls a plugin's permissions refused, and body callbacks they withheld, by plugin and call.",
            ),
            &["plugin", "call"],
        )?;
        registry.register(Box::new(denied.clone()))?;
        let compile = GaugeVec::new(
            Opts::new(
                "proxlet_plugin_compile_seconds",
                "Time the plugin's module took to compile, or to load compiled from the cache, when it was last loaded.",
            ),
            &["plugin"],
        )?;
        registry.register(Box::new(compile.clone()))?;
        Ok(Self {
            hooks,
            traps: counter(
                registry,
                "proxlet_plugin_traps_total",
                "Plugin instances that trapped (and were replaced).",
            )?,
            timeouts: counter(
                registry,
                "proxlet_plugin_timeouts_total",
                "Plugin callbacks stopped at the hook time cap.",
            )?,
            memory_cap: counter(
                registry,
                "proxlet_plugin_memory_cap_hits_total",
                "Plugin memory growths refused at the memory cap.",
            )?,
            fail_open: counter(
                registry,
                "proxlet_plugin_fail_open_skips_total",
                "Requests that skipped a failed FailOpen plugin.",
            )?,
            local_responses: counter(
                registry,
                "proxlet_plugin_local_responses_total",
                "Local responses sent by plugins (or for them, on failure).",
            )?,
            reloads: counter(
                registry,
                "proxlet_plugin_reloads_total",
                "Times a plugin was (re)loaded.",
            )?,
            info,
            denied,
            compile,
            custom: Mutex::new(CustomFamilies::default()),
            tags,
            registry: registry.clone(),
        })
    }

    /// Resolves the handles of one plugin.
    pub fn plugin(&self, name: &str, digest: &str, abi: &str) -> PluginMetrics {
        let hooks = self.hooks.plugin(name);
        self.info
            .with_label_values(&[name, &format!("sha256:{digest}"), abi])
            .set(1);
        PluginMetrics {
            hooks,
            traps: self.traps.with_label_values(&[name]),
            timeouts: self.timeouts.with_label_values(&[name]),
            memory_cap: self.memory_cap.with_label_values(&[name]),
            fail_open: self.fail_open.with_label_values(&[name]),
            local_responses: self.local_responses.with_label_values(&[name]),
            reloads: self.reloads.with_label_values(&[name]),
            denied: Denied::ALL.map(|d| self.denied.with_label_values(&[name, d.label()])),
        }
    }

    /// Records how long plugin `name`'s module took to compile (or load compiled).
    pub fn compiled(&self, name: &str, took: std::time::Duration) {
        self.compile
            .with_label_values(&[name])
            .set(took.as_secs_f64());
    }

    /// Forgets the info series of a module no longer loaded.
    pub fn unload(&self, name: &str, digest: &str, abi: &str) {
        let _ = self.info.remove_label_values(&[name, digest, abi]);
    }
}

/// One plugin's host-side metrics.
pub struct PluginMetrics {
    hooks: Arc<[HookTimes; Hook::ALL.len()]>,
    pub traps: IntCounter,
    pub timeouts: IntCounter,
    pub memory_cap: IntCounter,
    pub fail_open: IntCounter,
    pub local_responses: IntCounter,
    pub reloads: IntCounter,
    denied: [IntCounter; Denied::ALL.len()],
}

impl PluginMetrics {
    /// Counts one refusal by the plugin's permissions.
    pub fn deny(&self, what: Denied) {
        self.denied[what as usize].inc();
    }

    /// The refusals so far, by call, those that happened only.
    pub fn denials(&self) -> Vec<(&'static str, u64)> {
        Denied::ALL
            .iter()
            .zip(&self.denied)
            .filter(|(_, c)| c.get() > 0)
            .map(|(d, c)| (d.label(), c.get()))
            .collect()
    }

    /// Counts one call of `hook` that took `nanos`.
    pub fn hook(&self, hook: Hook, nanos: u64) {
        self.hooks[hook as usize].observe(nanos);
    }

    pub fn hook_calls(&self, hook: Hook) -> u64 {
        self.hooks[hook as usize].count()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder, Registry, TextEncoder};

    use super::{Hook, WasmMetrics};

    fn scrape(registry: &Registry) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn hook_times_are_prometheus_histograms() {
        let registry = Registry::new();
        let metrics = WasmMetrics::new(&registry).unwrap();
        let m = metrics.plugin("p", "abc", "0.2.1");
        // On a bound, between bounds, above the last one.
        for nanos in [1_000, 3_000, 3_000, 200_000_000] {
            m.hook(Hook::RequestHeaders, nanos);
        }
        m.hook(Hook::Log, 500);
        assert_eq!(m.hook_calls(Hook::RequestHeaders), 4);
        assert_eq!(m.hook_calls(Hook::ResponseHeaders), 0);
        let text = scrape(&registry);
        let series = |s: &str| text.lines().any(|l| l == s);
        let rh = r#"hook="request_headers",plugin="p""#;
        for want in [
            "# TYPE proxlet_plugin_hook_duration_seconds histogram".to_owned(),
            "# TYPE proxlet_plugin_hook_calls_total counter".to_owned(),
            format!(r#"proxlet_plugin_hook_calls_total{{{rh}}} 4"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_bucket{{{rh},le="0.000001"}} 1"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_bucket{{{rh},le="0.0000025"}} 1"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_bucket{{{rh},le="0.000005"}} 3"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_bucket{{{rh},le="0.1"}} 3"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_bucket{{{rh},le="+Inf"}} 4"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_count{{{rh}}} 4"#),
            format!(r#"proxlet_plugin_hook_duration_seconds_sum{{{rh}}} 0.200007"#),
            r#"proxlet_plugin_hook_calls_total{hook="log",plugin="p"} 1"#.to_owned(),
        ] {
            assert!(series(&want), "missing {want:?} in\n{text}");
        }
        // A reloaded plugin keeps counting on the same series.
        let again = metrics.plugin("p", "def", "0.2.1");
        again.hook(Hook::RequestHeaders, 10);
        assert_eq!(m.hook_calls(Hook::RequestHeaders), 5);
    }
}
