//! A `ProxyPlugin`'s status from the outcome of one reconcile: the conditions `Fetched`,
//! `Validated` and `Ready` by Kubernetes conventions (CamelCase reasons; `lastTransitionTime`
//! moves only when a condition's status flips), and the digest in force.
//!
//! Pure functions of the previous status and the outcome, so the rules are unit-tested here and
//! the reconciler only writes what they produce.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use proxlet_crds::{ConditionType, ProxyPluginStatus, Reason};

use crate::pipeline::{PipelineError, Resolved, Stage};

/// What one reconcile found.
pub enum Outcome<'a> {
    /// The module resolved, fetched and validated.
    Ready(&'a Resolved),
    /// A step failed (reading the pull secret included).
    Failed(&'a PipelineError),
}

/// One condition as the reconcile wants it; times are filled in by [`next_status`].
struct Want {
    kind: ConditionType,
    status: &'static str,
    reason: &'static str,
    message: String,
}

/// The status to write after `outcome`, keeping what still holds from `prev`.
pub fn next_status(
    prev: Option<&ProxyPluginStatus>,
    generation: Option<i64>,
    outcome: &Outcome<'_>,
    now: Timestamp,
) -> ProxyPluginStatus {
    let mut next = prev.cloned().unwrap_or_default();
    next.observed_generation = generation;
    let wants = match outcome {
        Outcome::Ready(r) => {
            next.digest = Some(r.digest.clone());
            next.short_digest = Some(r.digest.short().to_owned());
            next.size = i64::try_from(r.size).ok();
            next.format = Some(r.format);
            next.abi = Some(r.abi.label().to_owned());
            next.compiled = r.compiled.clone();
            ready_wants(r)
        }
        Outcome::Failed(e) => failed_wants(prev, e),
    };
    let wants = with_sidecars(wants, &next);
    let old = prev.map(|p| p.conditions.as_slice()).unwrap_or_default();
    next.conditions = wants
        .into_iter()
        .map(|w| condition(old, w, generation, now))
        .collect();
    next
}

fn ready_wants(r: &Resolved) -> Vec<Want> {
    let fetched = if r.pulled {
        Reason::Pulled
    } else {
        Reason::Cached
    };
    let how = if r.pulled {
        "pulled"
    } else {
        "found in the operator's cache"
    };
    vec![
        want(
            ConditionType::Fetched,
            "True",
            fetched.as_str(),
            format!(
                "{} ({} bytes, {:?} layout) {how}",
                r.digest, r.size, r.format
            ),
        ),
        want(
            ConditionType::Validated,
            "True",
            Reason::Valid.as_str(),
            format!("compiles and exports Proxy-Wasm ABI {}", r.abi.label()),
        ),
        want(
            ConditionType::Ready,
            "True",
            Reason::Offered.as_str(),
            format!("{} is offered to the matching sidecars", r.digest),
        ),
    ]
}

fn failed_wants(prev: Option<&ProxyPluginStatus>, e: &PipelineError) -> Vec<Want> {
    let reason = e.reason().as_str();
    match e.stage() {
        Stage::Fetch => fetch_failed_wants(prev, reason, e.to_string()),
        Stage::Validate => {
            let mut wants = vec![
                want(
                    ConditionType::Fetched,
                    "True",
                    Reason::Pulled.as_str(),
                    "the module was fetched".into(),
                ),
                want(ConditionType::Validated, "False", reason, e.to_string()),
            ];
            wants.push(keep_or_fail(
                prev,
                Reason::ValidationFailed,
                "the module did not validate",
            ));
            wants
        }
    }
}

fn fetch_failed_wants(
    prev: Option<&ProxyPluginStatus>,
    reason: &'static str,
    message: String,
) -> Vec<Want> {
    let in_force = prev.and_then(|p| p.digest.as_ref());
    let message = match in_force {
        Some(d) => format!("{message}; {d} stays in force"),
        None => message,
    };
    let validated = match in_force {
        Some(_) => want(
            ConditionType::Validated,
            "True",
            Reason::Valid.as_str(),
            "the module in force validated".into(),
        ),
        None => want(
            ConditionType::Validated,
            "Unknown",
            Reason::NotFetched.as_str(),
            "waiting for the module to be fetched".into(),
        ),
    };
    vec![
        want(ConditionType::Fetched, "False", reason, message),
        validated,
        keep_or_fail(prev, Reason::FetchFailed, "the module could not be fetched"),
    ]
}

/// `Ready`: still `True` on the digest in force when an earlier one validated, else `False`.
fn keep_or_fail(prev: Option<&ProxyPluginStatus>, reason: Reason, why: &str) -> Want {
    match prev.and_then(|p| p.digest.as_ref()) {
        Some(d) => want(
            ConditionType::Ready,
            "True",
            Reason::StaleDigest.as_str(),
            format!("{why}; {d} stays offered to the matching sidecars"),
        ),
        None => want(
            ConditionType::Ready,
            "False",
            reason.as_str(),
            format!("{why}; see the Fetched and Validated conditions"),
        ),
    }
}

/// Adds `Loaded` from what the sidecars reported (`status.sidecars`, written by the leader's
/// report folding), and turns `Ready` `False` while a matching sidecar refuses the module.
fn with_sidecars(mut wants: Vec<Want>, next: &ProxyPluginStatus) -> Vec<Want> {
    let Some(digest) = &next.digest else {
        wants.push(want(
            ConditionType::Loaded,
            "Unknown",
            Reason::NotFetched.as_str(),
            "no module is in force yet".into(),
        ));
        return wants;
    };
    let counts = next
        .sidecars
        .as_ref()
        .filter(|s| s.digest.as_ref() == Some(digest));
    let loaded = match counts {
        Some(s) if s.failed > 0 => {
            let first = s
                .failures
                .first()
                .map(|f| format!("; {}: {}: {}", f.pod, f.reason, f.message))
                .unwrap_or_default();
            let message = format!(
                "{} of {} matching sidecars could not load {digest}{first}",
                s.failed, s.matched
            );
            if let Some(ready) = wants
                .iter_mut()
                .find(|w| w.kind == ConditionType::Ready && w.status == "True")
            {
                ready.status = "False";
                ready.reason = Reason::LoadFailed.as_str();
                ready.message = message.clone();
            }
            want(
                ConditionType::Loaded,
                "False",
                Reason::LoadFailed.as_str(),
                message,
            )
        }
        Some(s) if s.matched > 0 && s.loaded >= s.matched => want(
            ConditionType::Loaded,
            "True",
            Reason::AllLoaded.as_str(),
            format!(
                "{} of {} matching sidecars run {digest}",
                s.loaded, s.matched
            ),
        ),
        Some(s) if s.matched > 0 => want(
            ConditionType::Loaded,
            "False",
            Reason::Propagating.as_str(),
            format!(
                "{} of {} matching sidecars run {digest}",
                s.loaded, s.matched
            ),
        ),
        _ => want(
            ConditionType::Loaded,
            "False",
            Reason::NoMatchingSidecars.as_str(),
            "no sidecar reporting to the operator matches the selector".into(),
        ),
    };
    wants.push(loaded);
    wants
}

fn want(kind: ConditionType, status: &'static str, reason: &'static str, message: String) -> Want {
    Want {
        kind,
        status,
        reason,
        message,
    }
}

/// A condition with `lastTransitionTime` kept from `old` unless the status flipped.
fn condition(old: &[Condition], w: Want, generation: Option<i64>, now: Timestamp) -> Condition {
    let prev = old.iter().find(|c| c.type_ == w.kind.as_str());
    let last_transition_time = match prev {
        Some(c) if c.status == w.status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: w.kind.as_str().to_owned(),
        status: w.status.to_owned(),
        reason: w.reason.to_owned(),
        message: w.message,
        observed_generation: generation,
        last_transition_time,
    }
}

#[cfg(test)]
mod tests;
