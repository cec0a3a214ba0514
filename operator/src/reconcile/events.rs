//! Kubernetes Events for a `ProxyPlugin`'s transitions, so `kubectl describe pp` and
//! `kubectl get events` tell the story: a condition flipping (its reason and message), a new
//! digest in force, the plugin withdrawn on deletion.
//!
//! Publishing is best effort: an Event that cannot be written is logged, never fails a reconcile.

use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use proxlet_crds::plugin::SidecarFailure;
use proxlet_crds::{ConditionType, ProxyPlugin, ProxyPluginStatus};

pub struct Events(Recorder);

impl Events {
    pub fn new(client: Client) -> Self {
        let reporter = Reporter {
            controller: super::MANAGER.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self(Recorder::new(client, reporter))
    }

    /// Publishes what changed between `prev` and `next`.
    pub async fn transitions(
        &self,
        plugin: &ProxyPlugin,
        prev: Option<&ProxyPluginStatus>,
        next: &ProxyPluginStatus,
    ) {
        for kind in ConditionType::ALL {
            let find = |s: &ProxyPluginStatus| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == kind.as_str())
                    .cloned()
            };
            let Some(now) = find(next) else { continue };
            let before = prev.and_then(find);
            let changed = before.as_ref().is_none_or(|b| {
                b.status != now.status || (now.status != "True" && b.reason != now.reason)
            });
            if !changed || now.status == "Unknown" {
                continue;
            }
            let type_ = if now.status == "True" {
                EventType::Normal
            } else {
                EventType::Warning
            };
            self.publish(plugin, type_, &now.reason, kind.as_str(), now.message)
                .await;
        }
        let old = prev.and_then(|p| p.digest.as_ref());
        if let (Some(old), Some(new)) = (old, next.digest.as_ref())
            && old != new
        {
            let note = format!("{old} replaced by {new}");
            self.publish(plugin, EventType::Normal, "DigestChanged", "Fetched", note)
                .await;
        }
    }

    /// A sidecar that could not load the module in force.
    pub async fn load_failed(&self, plugin: &ProxyPlugin, failure: &SidecarFailure) {
        let note = format!(
            "pod {}: {}: {}",
            failure.pod, failure.reason, failure.message
        );
        self.publish(plugin, EventType::Warning, "LoadFailed", "Load", note)
            .await;
    }

    pub async fn withdrawn(&self, plugin: &ProxyPlugin) {
        let note = "the plugin was deleted and is withdrawn from the sidecars".to_owned();
        self.publish(plugin, EventType::Normal, "Withdrawn", "Delete", note)
            .await;
    }

    async fn publish(
        &self,
        plugin: &ProxyPlugin,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(truncate(note)),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(e) = self.0.publish(&event, &plugin.object_ref(&())).await {
            tracing::warn!(error = %e, reason, "cannot publish an event");
        }
    }
}

/// Events carry at most 1 kB of note.
fn truncate(mut note: String) -> String {
    if note.len() > 1000 {
        let mut end = 1000;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
    }
    note
}
