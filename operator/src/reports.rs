//! What the sidecars connected to this replica say they run: each sidecar's last report (an ACK
//! or NACK per plugin of its namespace's set, and its labels) and when it was last heard from.
//! A sidecar silent for longer than the expiry (three long polls) is forgotten.
//!
//! [`Reports::tally`] folds them, per plugin of a set, into the counts a ProxyPlugin's status
//! shows; the status writer (on the leader) adds the other replicas' tallies to its own.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proxlet_crds::plugin::SidecarFailure;
use proxlet_crds::{Digest, LoadState, PluginSet, SidecarReport, selector};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// At most this many failing pods are named per plugin.
pub const MAX_FAILURES: usize = 10;

/// One plugin's sidecars, as one replica knows them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tally {
    /// The digest the counts are about.
    pub digest: Option<Digest>,
    /// Live sidecars whose labels the plugin's selector matches.
    pub matched: u32,
    /// Those that run `digest`.
    pub loaded: u32,
    /// Those that could not load `digest`.
    pub failed: u32,
    /// Some of them, by pod name.
    pub failures: Vec<SidecarFailure>,
}

impl Tally {
    /// Adds another replica's counts for the same digest.
    pub fn add(&mut self, other: &Tally) {
        self.matched += other.matched;
        self.loaded += other.loaded;
        self.failed += other.failed;
        self.failures.extend(other.failures.iter().cloned());
        self.failures.sort_by(|a, b| a.pod.cmp(&b.pod));
        self.failures.truncate(MAX_FAILURES);
    }
}

struct Sidecar {
    report: Option<SidecarReport>,
    last_seen: Instant,
}

/// The sidecars of this replica.
pub struct Reports {
    expiry: Duration,
    sidecars: Mutex<HashMap<(String, String), Sidecar>>,
    /// Bumped whenever a report changes or a sidecar comes or goes.
    changes: watch::Sender<u64>,
    /// Per namespace, the last set version every sidecar had applied (for the propagation time).
    converged: Mutex<HashMap<String, String>>,
}

/// What a new report changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Plugins newly refused by this sidecar, with why (for NACK counters and Events).
    pub nacks: Vec<(String, proxlet_crds::PluginReport)>,
}

impl Reports {
    pub fn new(expiry: Duration) -> Self {
        Self {
            expiry,
            sidecars: Mutex::new(HashMap::new()),
            changes: watch::Sender::new(0),
            converged: Mutex::new(HashMap::new()),
        }
    }

    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Sidecar>> {
        self.sidecars.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A poll from `pod`: it is alive.
    pub fn seen(&self, namespace: &str, pod: &str) {
        let new = {
            let mut sidecars = self.lock();
            match sidecars.get_mut(&(namespace.to_owned(), pod.to_owned())) {
                Some(s) => {
                    s.last_seen = Instant::now();
                    false
                }
                None => {
                    sidecars.insert(
                        (namespace.to_owned(), pod.to_owned()),
                        Sidecar {
                            report: None,
                            last_seen: Instant::now(),
                        },
                    );
                    true
                }
            }
        };
        if new {
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// `pod`'s report.
    pub fn record(&self, namespace: &str, pod: &str, report: SidecarReport) -> Recorded {
        let mut recorded = Recorded::default();
        let changed = {
            let mut sidecars = self.lock();
            let key = (namespace.to_owned(), pod.to_owned());
            let previous = sidecars.get(&key).and_then(|s| s.report.as_ref());
            let was_failing: HashSet<(&str, &Digest)> = previous
                .iter()
                .flat_map(|r| r.plugins.iter())
                .filter(|p| p.state == LoadState::Failed)
                .map(|p| (p.name.as_str(), &p.digest))
                .collect();
            for p in &report.plugins {
                if p.state == LoadState::Failed
                    && !was_failing.contains(&(p.name.as_str(), &p.digest))
                {
                    recorded.nacks.push((pod.to_owned(), p.clone()));
                }
            }
            let changed = previous != Some(&report);
            sidecars.insert(
                key,
                Sidecar {
                    report: Some(report),
                    last_seen: Instant::now(),
                },
            );
            changed
        };
        if changed {
            self.changes.send_modify(|n| *n += 1);
        }
        recorded
    }

    /// Forgets sidecars not heard from within the expiry; true when any went.
    pub fn expire(&self) -> bool {
        let gone = {
            let mut sidecars = self.lock();
            let before = sidecars.len();
            sidecars.retain(|_, s| s.last_seen.elapsed() <= self.expiry);
            before != sidecars.len()
        };
        if gone {
            self.changes.send_modify(|n| *n += 1);
        }
        gone
    }

    /// Live sidecars, and per namespace.
    pub fn connected(&self) -> (usize, BTreeMap<String, usize>) {
        let sidecars = self.lock();
        let mut by_ns = BTreeMap::new();
        let mut total = 0;
        for ((ns, _), s) in sidecars.iter() {
            if s.last_seen.elapsed() <= self.expiry {
                *by_ns.entry(ns.clone()).or_insert(0) += 1;
                total += 1;
            }
        }
        (total, by_ns)
    }

    /// Per plugin of `set`, what this replica's live sidecars of its namespace run.
    pub fn tally(&self, set: &PluginSet) -> BTreeMap<String, Tally> {
        let sidecars = self.lock();
        let mut tallies: BTreeMap<String, Tally> = set
            .plugins
            .iter()
            .map(|p| {
                let tally = Tally {
                    digest: Some(p.module.digest.clone()),
                    ..Tally::default()
                };
                (p.name.clone(), tally)
            })
            .collect();
        for ((ns, pod), sidecar) in sidecars.iter() {
            if ns != &set.namespace || sidecar.last_seen.elapsed() > self.expiry {
                continue;
            }
            let Some(report) = &sidecar.report else {
                continue;
            };
            for plugin in &set.plugins {
                if !selector::matches(plugin.selector.as_ref(), &report.labels) {
                    continue;
                }
                let Some(tally) = tallies.get_mut(&plugin.name) else {
                    continue;
                };
                tally.matched += 1;
                let Some(ran) = report
                    .plugins
                    .iter()
                    .find(|r| r.name == plugin.name && r.digest == plugin.module.digest)
                else {
                    continue;
                };
                match ran.state {
                    LoadState::Loaded => tally.loaded += 1,
                    LoadState::Failed => {
                        tally.failed += 1;
                        tally.failures.push(SidecarFailure {
                            pod: pod.clone(),
                            reason: ran
                                .failure
                                .map_or("LoadFailed", proxlet_crds::LoadFailure::as_str)
                                .to_owned(),
                            message: ran.message.clone().unwrap_or_default(),
                        });
                    }
                }
            }
        }
        for tally in tallies.values_mut() {
            tally.failures.sort_by(|a, b| a.pod.cmp(&b.pod));
            tally.failures.truncate(MAX_FAILURES);
        }
        tallies
    }

    /// True the first time every live sidecar of `set`'s namespace has reported `set`'s version
    /// (there is at least one): the moment the change reached them all.
    pub fn newly_converged(&self, set: &PluginSet) -> bool {
        let all = {
            let sidecars = self.lock();
            let mut live = sidecars
                .iter()
                .filter(|((ns, _), s)| ns == &set.namespace && s.last_seen.elapsed() <= self.expiry)
                .peekable();
            live.peek().is_some()
                && live.all(|(_, s)| s.report.as_ref().is_some_and(|r| r.version == set.version))
        };
        if !all {
            return false;
        }
        let mut converged = self.converged.lock().unwrap_or_else(|p| p.into_inner());
        converged
            .insert(set.namespace.clone(), set.version.clone())
            .as_ref()
            != Some(&set.version)
    }
}

#[cfg(test)]
mod tests;
