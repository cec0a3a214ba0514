//! The metrics plugins define (`proxy_define_metric`): exported under the name the plugin gave
//! (made a valid Prometheus name; counters end in `_total`), labelled with the plugin, and with
//! the labels the configured tag rules extract from the name, as Envoy's stats tags do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

use super::WasmMetrics;
use crate::config::plugins::TagRule;
use crate::wasm::abi::Status;

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

/// The tag rules, compiled once per sidecar.
#[derive(Default)]
pub struct Tags(Vec<(String, regex::Regex)>);

impl Tags {
    /// Compiles the rules; a rule that does not compile is left out with a warning (the
    /// configuration was validated already).
    pub fn new(rules: &[TagRule]) -> Self {
        let compiled = rules
            .iter()
            .filter_map(|r| match regex::Regex::new(&r.regex) {
                Ok(re) => Some((r.name.clone(), re)),
                Err(e) => {
                    tracing::warn!(tag = %r.name, error = %e, "tag rule left out");
                    None
                }
            });
        Self(compiled.collect())
    }

    /// Splits a defined name into what is left of it and the tags found in it, in rule order:
    /// each rule's first capture group is cut out of the name, and its second (else its first)
    /// is the tag's value.
    pub fn extract(&self, name: &str) -> (String, Vec<(String, String)>) {
        let mut rest = name.to_owned();
        let mut tags = Vec::new();
        for (tag, re) in &self.0 {
            let Some(caps) = re.captures(&rest) else {
                continue;
            };
            let (Some(cut), value) = (caps.get(1), caps.get(2).or_else(|| caps.get(1))) else {
                continue;
            };
            let value = value.map_or("", |v| v.as_str()).to_owned();
            let range = cut.range();
            rest.replace_range(range, "");
            tags.push((tag.clone(), value));
        }
        (rest, tags)
    }
}

/// A plugin metric name as a Prometheus name: characters outside `[a-zA-Z0-9_:]` become `_`,
/// and a name starting with a digit gets a `_` in front.
pub fn prometheus_name(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
        clean.insert(0, '_');
    }
    clean
}

/// The families of plugin-defined metrics, by Prometheus name (one label set each).
#[derive(Default)]
pub struct CustomFamilies {
    counters: HashMap<String, (Vec<String>, IntCounterVec)>,
    gauges: HashMap<String, (Vec<String>, IntGaugeVec)>,
    histograms: HashMap<String, (Vec<String>, HistogramVec)>,
}

enum Custom {
    Counter(IntCounter),
    Gauge(IntGauge),
    Histogram(Histogram),
}

/// The metrics one plugin defined, shared by its instances (the same name gives the same id).
pub struct CustomMetrics {
    plugin: String,
    families: Arc<WasmMetrics>,
    defined: Mutex<Vec<(String, MetricKind, Custom)>>,
}

/// The family `name` with `labels` in `map`, registered on first use; `None` if that name is
/// taken with other labels (or by another kind, or by the sidecar itself).
fn family<V: prometheus::core::Collector + Clone + 'static>(
    map: &mut HashMap<String, (Vec<String>, V)>,
    registry: &prometheus::Registry,
    name: &str,
    labels: &[String],
    make: impl FnOnce(&[&str]) -> prometheus::Result<V>,
) -> Option<V> {
    if let Some((have, fam)) = map.get(name) {
        return (have == labels).then(|| fam.clone());
    }
    let names: Vec<&str> = labels.iter().map(String::as_str).collect();
    let fam = make(&names).ok()?;
    registry.register(Box::new(fam.clone())).ok()?;
    map.insert(name.to_owned(), (labels.to_vec(), fam.clone()));
    Some(fam)
}

impl CustomMetrics {
    pub fn new(plugin: &str, families: Arc<WasmMetrics>) -> Self {
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
        let (rest, tags) = self.families.tags.extract(name);
        let mut full = prometheus_name(&rest);
        if kind == MetricKind::Counter && !full.ends_with("_total") {
            full.push_str("_total");
        }
        let help = format!("Plugin-defined metric {name}.");
        let mut labels = vec!["plugin".to_owned()];
        labels.extend(tags.iter().map(|(k, _)| k.clone()));
        let mut values = vec![self.plugin.as_str()];
        values.extend(tags.iter().map(|(_, v)| v.as_str()));
        let mut fams = self
            .families
            .custom
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let registry = &self.families.registry;
        let metric = match kind {
            MetricKind::Counter => {
                let fam = family(&mut fams.counters, registry, &full, &labels, |l| {
                    IntCounterVec::new(Opts::new(&full, &help), l)
                });
                Custom::Counter(fam.ok_or(Status::BadArgument)?.with_label_values(&values))
            }
            MetricKind::Gauge => {
                let fam = family(&mut fams.gauges, registry, &full, &labels, |l| {
                    IntGaugeVec::new(Opts::new(&full, &help), l)
                });
                Custom::Gauge(fam.ok_or(Status::BadArgument)?.with_label_values(&values))
            }
            MetricKind::Histogram => {
                let buckets = prometheus::exponential_buckets(1.0, 4.0, 16)
                    .map_err(|_| Status::InternalFailure)?;
                let fam = family(&mut fams.histograms, registry, &full, &labels, |l| {
                    HistogramVec::new(HistogramOpts::new(&full, &help).buckets(buckets), l)
                });
                Custom::Histogram(fam.ok_or(Status::BadArgument)?.with_label_values(&values))
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
    use super::{Tags, prometheus_name};
    use crate::config::plugins::TagRule;

    #[test]
    fn names_are_kept_and_tags_extracted_as_envoy_does() {
        let rules = [
            TagRule {
                name: "method".into(),
                regex: r"(\.method=(\w+))".into(),
            },
            TagRule {
                name: "code".into(),
                regex: r"(\.code=(\d+))".into(),
            },
        ];
        let tags = Tags::new(&rules);
        let (rest, found) = tags.extract("requests.method=GET.code=200");
        assert_eq!(rest, "requests");
        assert_eq!(
            found,
            [
                ("method".into(), "GET".into()),
                ("code".into(), "200".into())
            ]
        );
        // Without rules the name stays whole, only made a valid Prometheus name.
        let (rest, found) = Tags::default().extract("requests.method=GET");
        assert_eq!(prometheus_name(&rest), "requests_method_GET");
        assert!(found.is_empty());
        assert_eq!(prometheus_name("2xx"), "_2xx");
        assert_eq!(prometheus_name("app:hits"), "app:hits");
    }
}
