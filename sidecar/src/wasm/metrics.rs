//! Plugin metrics: what the host counts per plugin and hook, and the metrics plugins define.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// Hook durations: 1 µs to 100 ms.
const HOOK_BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
];

/// The plugin metric families, registered once per sidecar.
pub struct WasmMetrics {
    hook_calls: IntCounterVec,
    hook_duration: HistogramVec,
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
        let hook_calls = IntCounterVec::new(
            Opts::new(
                "proxlet_plugin_hook_calls_total",
                "Plugin callbacks called, by plugin and hook.",
            ),
            &["plugin", "hook"],
        )?;
        registry.register(Box::new(hook_calls.clone()))?;
        let hook_duration = HistogramVec::new(
            HistogramOpts::new(
                "proxlet_plugin_hook_duration_seconds",
                "Time spent in plugin callbacks, by plugin and hook.",
            )
            .buckets(HOOK_BUCKETS.to_vec()),
            &["plugin", "hook"],
        )?;
        registry.register(Box::new(hook_duration.clone()))?;
        let info = IntGaugeVec::new(
            Opts::new(
                "proxlet_plugin_info",
                "The module each plugin runs (value 1).",
            ),
            &["plugin", "digest", "abi"],
        )?;
        registry.register(Box::new(info.clone()))?;
        Ok(Self {
            hook_calls,
            hook_duration,
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
        let hooks = Hook::ALL.map(|h| {
            (
                self.hook_calls.with_label_values(&[name, h.label()]),
                self.hook_duration.with_label_values(&[name, h.label()]),
            )
        });
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
    hooks: [(IntCounter, Histogram); 14],
    pub traps: IntCounter,
    pub timeouts: IntCounter,
    pub memory_cap: IntCounter,
    pub fail_open: IntCounter,
    pub local_responses: IntCounter,
    pub reloads: IntCounter,
}

impl PluginMetrics {
    pub fn hook(&self, hook: Hook, seconds: f64) {
        let (calls, duration) = &self.hooks[hook as usize];
        calls.inc();
        duration.observe(seconds);
    }

    pub fn hook_calls(&self, hook: Hook) -> u64 {
        self.hooks[hook as usize].0.get()
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
