//! The operator's Prometheus metrics: reconciles, errors by reason, reconcile duration, pulls
//! (count, duration, bytes) and the module cache. Label values are the closed sets of
//! [`Outcome`] and [`Reason`], registered up front so every series exists from the start.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

mod delivery;

pub use self::delivery::{Delivery, Served};
use crate::pipeline::{Reason, Resolved};

/// How a reconcile ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Error,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    reconcile_duration: Histogram,
    pulls: IntCounterVec,
    pull_duration: Histogram,
    pull_bytes: IntCounter,
    cache_entries: IntGauge,
    cache_bytes: IntGauge,
    /// The plugin-set server's and the sidecar reports' series.
    pub delivery: Delivery,
}

const SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_reconciles_total",
                "ProxyPlugin reconciles by result",
            ),
            &["result"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_reconcile_errors_total",
                "Failed reconciles by reason",
            ),
            &["reason"],
        )?;
        let reconcile_duration = Histogram::with_opts(
            HistogramOpts::new(
                "proxlet_operator_reconcile_duration_seconds",
                "Time one reconcile took",
            )
            .buckets(SECONDS.to_vec()),
        )?;
        let pulls = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_pulls_total",
                "Module downloads from registries and URLs by result",
            ),
            &["result"],
        )?;
        let pull_duration = Histogram::with_opts(
            HistogramOpts::new(
                "proxlet_operator_pull_duration_seconds",
                "Time one module download took",
            )
            .buckets(SECONDS.to_vec()),
        )?;
        let pull_bytes = IntCounter::new(
            "proxlet_operator_pull_bytes_total",
            "Bytes downloaded from registries and URLs",
        )?;
        let cache_entries = IntGauge::new(
            "proxlet_operator_cache_entries",
            "Modules in the operator's cache",
        )?;
        let cache_bytes = IntGauge::new(
            "proxlet_operator_cache_bytes",
            "Bytes of modules in the operator's cache",
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(reconcile_duration.clone()))?;
        registry.register(Box::new(pulls.clone()))?;
        registry.register(Box::new(pull_duration.clone()))?;
        registry.register(Box::new(pull_bytes.clone()))?;
        registry.register(Box::new(cache_entries.clone()))?;
        registry.register(Box::new(cache_bytes.clone()))?;
        for o in [Outcome::Ok, Outcome::Error] {
            reconciles.with_label_values(&[o.label()]);
            pulls.with_label_values(&[o.label()]);
        }
        for r in Reason::ALL {
            errors.with_label_values(&[r.as_str()]);
        }
        errors.with_label_values(&[API_ERROR]);
        let delivery = Delivery::new(&registry)?;
        Ok(Self {
            delivery,
            registry,
            reconciles,
            errors,
            reconcile_duration,
            pulls,
            pull_duration,
            pull_bytes,
            cache_entries,
            cache_bytes,
        })
    }

    /// One reconcile ended after `seconds`; `reason` when the module pipeline failed.
    pub fn reconciled(&self, seconds: f64, failure: Option<Reason>) {
        self.reconcile_duration.observe(seconds);
        let outcome = if failure.is_some() {
            Outcome::Error
        } else {
            Outcome::Ok
        };
        self.reconciles.with_label_values(&[outcome.label()]).inc();
        if let Some(r) = failure {
            self.errors.with_label_values(&[r.as_str()]).inc();
        }
    }

    /// A reconcile that failed outside the pipeline (the API server refused a write).
    pub fn api_error(&self) {
        self.reconciles
            .with_label_values(&[Outcome::Error.label()])
            .inc();
        self.errors.with_label_values(&[API_ERROR]).inc();
    }

    /// Records a download, when the pipeline contacted a source.
    pub fn pulled(&self, r: &Resolved) {
        if let Some(t) = r.transfer {
            self.pulls.with_label_values(&[Outcome::Ok.label()]).inc();
            self.pull_duration.observe(t.duration.as_secs_f64());
            self.pull_bytes.inc_by(t.bytes);
        }
    }

    /// A download that failed.
    pub fn pull_failed(&self) {
        self.pulls
            .with_label_values(&[Outcome::Error.label()])
            .inc();
    }

    /// The cache's size, refreshed before each scrape.
    pub fn cache(&self, entries: u64, bytes: u64) {
        self.cache_entries
            .set(i64::try_from(entries).unwrap_or(i64::MAX));
        self.cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// The text exposition format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// The error label of failures talking to the Kubernetes API.
pub const API_ERROR: &str = "KubernetesApi";
