//! Plugin metrics: what the host counts per plugin and hook, and the metrics plugins define.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, Bucket, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::abi::Status;

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
    custom: Mutex<CustomFamilies>,
    registry: Registry,
}

#[derive(Default)]
struct CustomFamilies {
    counters: HashMap<String, IntCounterVec>,
    gauges: HashMap<String, IntGaugeVec>,
    histograms: HashMap<String, HistogramVec>,
}

fn counter(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), &["plugin"])?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl WasmMetrics {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
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
            custom: Mutex::new(CustomFamilies::default()),
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
        }
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
}

impl PluginMetrics {
    /// Counts one call of `hook` that took `nanos`.
    pub fn hook(&self, hook: Hook, nanos: u64) {
        self.hooks[hook as usize].observe(nanos);
    }

    pub fn hook_calls(&self, hook: Hook) -> u64 {
        self.hooks[hook as usize].count()
    }
}

/// `proxy_metric_type_t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub fn from_abi(v: i32) -> Option<Self> {
        match v {
            0 => Some(Self::Counter),
            1 => Some(Self::Gauge),
            2 => Some(Self::Histogram),
            _ => None,
        }
    }
}

enum Custom {
    Counter(IntCounter),
    Gauge(IntGauge),
    Histogram(Histogram),
}

/// The metrics one plugin defined, shared by its instances (the same name gives the same id).
pub struct CustomMetrics {
    plugin: String,
    families: std::sync::Arc<WasmMetrics>,
    defined: Mutex<Vec<(String, MetricKind, Custom)>>,
}

/// A plugin metric name as a Prometheus name: `proxlet_plugin_metric_` + [a-zA-Z0-9_].
fn metric_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("proxlet_plugin_metric_{clean}")
}

impl CustomMetrics {
    pub fn new(plugin: &str, families: std::sync::Arc<WasmMetrics>) -> Self {
        Self {
            plugin: plugin.to_owned(),
            families,
            defined: Mutex::new(Vec::new()),
        }
    }

    pub fn define(&self, kind: MetricKind, name: &str) -> Result<u32, Status> {
        let mut defined = self.defined.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = defined.iter().position(|(n, k, _)| n == name && *k == kind) {
            return Ok(i as u32 + 1);
        }
        let full = metric_name(name);
        let help = format!("Plugin-defined metric {name}.");
        let mut fams = self
            .families
            .custom
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let registry = &self.families.registry;
        let plugin = [self.plugin.as_str()];
        let metric = match kind {
            MetricKind::Counter => {
                let full = format!("{full}_total");
                let fam = match fams.counters.get(&full) {
                    Some(f) => f.clone(),
                    None => {
                        let f = IntCounterVec::new(Opts::new(&full, &help), &["plugin"])
                            .map_err(|_| Status::BadArgument)?;
                        registry
                            .register(Box::new(f.clone()))
                            .map_err(|_| Status::BadArgument)?;
                        fams.counters.insert(full, f.clone());
                        f
                    }
                };
                Custom::Counter(fam.with_label_values(&plugin))
            }
            MetricKind::Gauge => {
                let fam = match fams.gauges.get(&full) {
                    Some(f) => f.clone(),
                    None => {
                        let f = IntGaugeVec::new(Opts::new(&full, &help), &["plugin"])
                            .map_err(|_| Status::BadArgument)?;
                        registry
                            .register(Box::new(f.clone()))
                            .map_err(|_| Status::BadArgument)?;
                        fams.gauges.insert(full, f.clone());
                        f
                    }
                };
                Custom::Gauge(fam.with_label_values(&plugin))
            }
            MetricKind::Histogram => {
                let fam = match fams.histograms.get(&full) {
                    Some(f) => f.clone(),
                    None => {
                        let opts = HistogramOpts::new(&full, &help).buckets(
                            prometheus::exponential_buckets(1.0, 4.0, 16)
                                .map_err(|_| Status::InternalFailure)?,
                        );
                        let f = HistogramVec::new(opts, &["plugin"])
                            .map_err(|_| Status::BadArgument)?;
                        registry
                            .register(Box::new(f.clone()))
                            .map_err(|_| Status::BadArgument)?;
                        fams.histograms.insert(full, f.clone());
                        f
                    }
                };
                Custom::Histogram(fam.with_label_values(&plugin))
            }
        };
        defined.push((name.to_owned(), kind, metric));
        Ok(defined.len() as u32)
    }

    fn with<T>(&self, id: u32, f: impl FnOnce(&Custom) -> Result<T, Status>) -> Result<T, Status> {
        let defined = self.defined.lock().unwrap_or_else(|p| p.into_inner());
        let (_, _, m) = defined
            .get((id as usize).wrapping_sub(1))
            .ok_or(Status::NotFound)?;
        f(m)
    }

    pub fn increment(&self, id: u32, delta: i64) -> Result<(), Status> {
        self.with(id, |m| match m {
            Custom::Counter(c) if delta > 0 => {
                c.inc_by(delta as u64);
                Ok(())
            }
            Custom::Gauge(g) => {
                g.add(delta);
                Ok(())
            }
            _ => Err(Status::BadArgument),
        })
    }

    pub fn record(&self, id: u32, value: u64) -> Result<(), Status> {
        self.with(id, |m| {
            match m {
                Custom::Counter(c) => c.inc_by(value),
                Custom::Gauge(g) => g.set(value as i64),
                Custom::Histogram(h) => h.observe(value as f64),
            }
            Ok(())
        })
    }

    pub fn get(&self, id: u32) -> Result<u64, Status> {
        self.with(id, |m| match m {
            Custom::Counter(c) => Ok(c.get()),
            Custom::Gauge(g) => Ok(g.get() as u64),
            Custom::Histogram(_) => Err(Status::BadArgument),
        })
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
