//! The delivery series: sidecars connected, sets and modules served, requests refused, NACKs
//! by reason, and how long a change takes to reach every sidecar of its namespace.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};
use proxlet_crds::LoadFailure;

use crate::serve::auth::Refusal;

/// What the plugin-set server and the sidecar reports count.
pub struct Delivery {
    connected: IntGauge,
    sets_served: IntCounterVec,
    modules_served: IntCounterVec,
    refused: IntCounterVec,
    nacks: IntCounterVec,
    propagation: Histogram,
}

/// What a module request got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    Module,
    Compiled,
}

impl Served {
    fn label(self) -> &'static str {
        match self {
            Self::Module => "module",
            Self::Compiled => "compiled",
        }
    }
}

/// Change-to-loaded buckets, in seconds.
const PROPAGATION: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];

impl Delivery {
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let connected = IntGauge::new(
            "proxlet_operator_sidecars_connected",
            "Sidecars heard from within the expiry by this replica",
        )?;
        let sets_served = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_plugin_sets_served_total",
                "Plugin sets sent to sidecars, by namespace",
            ),
            &["namespace"],
        )?;
        let modules_served = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_modules_served_total",
                "Modules and compiled artifacts sent to sidecars",
            ),
            &["kind"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_plugin_set_refusals_total",
                "Plugin-set server requests refused, by reason",
            ),
            &["reason"],
        )?;
        let nacks = IntCounterVec::new(
            Opts::new(
                "proxlet_operator_sidecar_nacks_total",
                "Plugins a sidecar reported it could not load, by reason",
            ),
            &["reason"],
        )?;
        let propagation = Histogram::with_opts(
            HistogramOpts::new(
                "proxlet_operator_propagation_seconds",
                "From a namespace's plugin set changing to every sidecar of it reporting the new set",
            )
            .buckets(PROPAGATION.to_vec()),
        )?;
        registry.register(Box::new(connected.clone()))?;
        registry.register(Box::new(sets_served.clone()))?;
        registry.register(Box::new(modules_served.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(nacks.clone()))?;
        registry.register(Box::new(propagation.clone()))?;
        for r in Refusal::ALL {
            refused.with_label_values(&[r.label()]);
        }
        for f in LoadFailure::ALL {
            nacks.with_label_values(&[f.as_str()]);
        }
        for s in [Served::Module, Served::Compiled] {
            modules_served.with_label_values(&[s.label()]);
        }
        Ok(Self {
            connected,
            sets_served,
            modules_served,
            refused,
            nacks,
            propagation,
        })
    }

    pub fn connected(&self, n: usize) {
        self.connected.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn set_served(&self, namespace: &str) {
        self.sets_served.with_label_values(&[namespace]).inc();
    }

    pub fn module_served(&self, kind: Served) {
        self.modules_served.with_label_values(&[kind.label()]).inc();
    }

    pub fn refused(&self, reason: Refusal) {
        self.refused.with_label_values(&[reason.label()]).inc();
    }

    pub fn nack(&self, failure: Option<LoadFailure>) {
        let label = failure.map_or("LoadFailed", LoadFailure::as_str);
        self.nacks.with_label_values(&[label]).inc();
    }

    pub fn propagated(&self, seconds: f64) {
        self.propagation.observe(seconds);
    }
}
